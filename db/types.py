"""Column types that keep money exact and time in UTC on SQLite and PostgreSQL alike."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any

from sqlalchemy import JSON, DateTime, Text
from sqlalchemy.dialects.postgresql import JSONB, NUMERIC
from sqlalchemy.engine import Dialect
from sqlalchemy.types import Numeric, TypeDecorator, TypeEngine


class ExactDecimal(TypeDecorator[Decimal]):
    """A :class:`~decimal.Decimal` stored without rounding.

    SQLite has no exact decimal type (its NUMERIC affinity turns ``'0.1'`` into a float), so the
    value is stored as TEXT holding ``str(Decimal)``. PostgreSQL gets an unconstrained ``NUMERIC``:
    no precision or scale, so nothing is rounded. Floats, NaN and infinities are refused when
    binding, because a float has already lost the exact value by the time it reaches us.

    TEXT on SQLite means SQL arithmetic and ordering on these columns are not numeric there; do
    money arithmetic in Python.
    """

    impl = Numeric
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(Text())
        if dialect.name == "postgresql":
            return dialect.type_descriptor(NUMERIC())
        return dialect.type_descriptor(Numeric(asdecimal=True))

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        exact = _exact(value)
        return str(exact) if dialect.name == "sqlite" else exact

    def process_literal_param(self, value: Any, dialect: Dialect) -> str:
        if value is None:
            return "NULL"
        text = str(_exact(value))
        return f"'{text}'" if dialect.name == "sqlite" else text

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        return _to_decimal(value)

    # The processor overrides below are the same conversions without TypeDecorator's layering:
    # these columns sit on the executor's hot path.

    def bind_processor(self, dialect: Dialect) -> Any:
        if dialect.name != "sqlite":
            return super().bind_processor(dialect)

        def process(value: Any) -> str | None:
            return None if value is None else str(_exact(value))

        return process

    def result_processor(self, dialect: Dialect, coltype: Any) -> Any:
        if dialect.name != "sqlite":
            return super().result_processor(dialect, coltype)
        return _to_decimal

    @property
    def python_type(self) -> type[Decimal]:
        return Decimal


def _to_decimal(value: Any) -> Decimal | None:
    if value is None or isinstance(value, Decimal):
        return value
    if isinstance(value, float):  # only a row written behind our back could hold one
        return Decimal(repr(value))
    return Decimal(value)


def _exact(value: Any) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, Decimal | int):
        raise TypeError(
            f"exact decimal column needs a Decimal or int, got {type(value).__name__} {value!r}"
        )
    result = Decimal(value)
    if not result.is_finite():
        raise ValueError(f"exact decimal column refuses non-finite value {value!r}")
    return result


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC timestamp.

    Naive datetimes are refused on bind rather than guessed. PostgreSQL stores ``timestamptz``;
    SQLite stores the UTC wall time as fixed-width ISO text (``YYYY-MM-DD HH:MM:SS.ffffff``), so
    comparing and ordering the text is comparing and ordering the instants. Results are always
    aware UTC datetimes.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> datetime | None:
        return None if value is None else _aware_utc(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)

    # On SQLite, format and parse the text ourselves (the same layout SQLAlchemy's DATETIME
    # writes) instead of stacking two Python processors on the hot path.

    def bind_processor(self, dialect: Dialect) -> Any:
        if dialect.name != "sqlite":
            return super().bind_processor(dialect)

        def process(value: Any) -> str | None:
            if value is None:
                return None
            return _aware_utc(value).replace(tzinfo=None).isoformat(" ", "microseconds")

        return process

    def result_processor(self, dialect: Dialect, coltype: Any) -> Any:
        if dialect.name != "sqlite":
            return super().result_processor(dialect, coltype)

        def process(value: Any) -> datetime | None:
            if value is None:
                return None
            parsed = datetime.fromisoformat(value) if isinstance(value, str) else value
            if parsed.tzinfo is None:
                return parsed.replace(tzinfo=UTC)
            return parsed.astimezone(UTC)

        return process

    @property
    def python_type(self) -> type[datetime]:
        return datetime


def _aware_utc(value: Any) -> datetime:
    if not isinstance(value, datetime):
        raise TypeError(f"UTC timestamp column needs a datetime, got {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"naive datetime {value!r}: timestamps must be timezone-aware")
    return value.astimezone(UTC)


class JSONDoc(TypeDecorator[Any]):
    """A JSON document: ``JSONB`` on PostgreSQL, ``JSON`` (text) on SQLite.

    Values are serialized with :func:`dumps_json`: Decimals become strings (exact, never
    floats), datetimes and dates ISO-8601 strings, enums their value, sets lists; NaN and
    infinities are refused. They come back as those plain JSON values; the repositories turn them
    back into domain types where needed. Python ``None`` is stored as JSON ``null``.
    """

    impl = JSON
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "postgresql":
            return dialect.type_descriptor(JSONB())
        return dialect.type_descriptor(JSON())

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        # Only reached for dialects other than the two below; round-trip through our encoder
        # so the stored document is the same everywhere.
        return json.loads(dumps_json(value))

    # Serializing once, in C, with a hook only for the few non-JSON types is several times
    # faster than walking the document in Python first; the paper ledger saves whole account
    # states this way on every order.

    def bind_processor(self, dialect: Dialect) -> Any:
        if dialect.name in ("sqlite", "postgresql"):
            # PostgreSQL casts the text to JSONB (SQLAlchemy renders ``::JSONB``).
            return dumps_json
        return super().bind_processor(dialect)

    def result_processor(self, dialect: Dialect, coltype: Any) -> Any:
        if dialect.name != "sqlite":
            return super().result_processor(dialect, coltype)

        def process(value: Any) -> Any:
            return json.loads(value) if isinstance(value, str | bytes) else value

        return process


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError(f"cannot store non-finite {value!r} in a JSON document")
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, set | frozenset):
        return list(value)
    if isinstance(value, Mapping):
        return dict(value)
    raise TypeError(f"cannot store {type(value).__name__} in a JSON document")


_ENCODER = json.JSONEncoder(
    default=_json_default, allow_nan=False, ensure_ascii=False, separators=(",", ":")
)


def dumps_json(value: Any) -> str:
    """Serialize ``value`` the way :class:`JSONDoc` stores it (see there).

    Raises ``ValueError`` for NaN and infinities and ``TypeError`` for values JSON cannot hold.
    """
    return _ENCODER.encode(value)
