"""Column types that keep money exact and time in UTC on SQLite and PostgreSQL alike."""

from __future__ import annotations

import math
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
        if value is None or isinstance(value, Decimal):
            return value
        if isinstance(value, float):  # only a row written behind our back could hold one
            return Decimal(repr(value))
        return Decimal(value)

    @property
    def python_type(self) -> type[Decimal]:
        return Decimal


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
        if value is None:
            return None
        if not isinstance(value, datetime):
            raise TypeError(f"UTC timestamp column needs a datetime, got {type(value).__name__}")
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value!r}: timestamps must be timezone-aware")
        value = value.astimezone(UTC)
        # SQLAlchemy's SQLite DATETIME drops tzinfo when formatting; converting first is what
        # keeps every stored value in one zone.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)

    @property
    def python_type(self) -> type[datetime]:
        return datetime


class JSONDoc(TypeDecorator[Any]):
    """A JSON document: ``JSONB`` on PostgreSQL, ``JSON`` (text) elsewhere.

    Values are made JSON-safe on the way in: Decimals become strings (exact, never floats),
    datetimes and dates ISO-8601 strings, enums their value, tuples and sets lists. They come back
    as those plain JSON values; the repositories turn them back into domain types where needed.
    """

    impl = JSON
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "postgresql":
            return dialect.type_descriptor(JSONB())
        return dialect.type_descriptor(JSON())

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        return None if value is None else to_jsonable(value)


def to_jsonable(value: Any) -> Any:
    """Return ``value`` with Decimals, datetimes, dates and enums replaced by JSON-safe values.

    Non-finite floats are refused: JSON has no spelling for them and PostgreSQL rejects them.
    """
    if value is None or isinstance(value, str | bool | int):
        return value
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError(f"cannot store non-finite {value!r} in a JSON document")
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"cannot store non-finite {value!r} in a JSON document")
        return value
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [to_jsonable(v) for v in value]
    raise TypeError(f"cannot store {type(value).__name__} in a JSON document")
