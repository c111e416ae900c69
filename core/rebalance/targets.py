"""Target portfolios: what the rebalancer should hold, as weights or as scores.

A target portfolio maps symbols to either

``weights``
    shares of account equity (``0.10`` is 10%). Zero means "hold none" (sell all of it); the
    weights together may not exceed the leverage limit (1x by default, seed 000 R4.2).
``scores``
    factor scores of any scale; the allocation step turns them into weights later, so they may
    add up to anything.

Targets arrive from the API as a mapping, or as a CSV or JSON document (see
:func:`parse_targets`). Every input is checked as a whole: :class:`TargetError` lists every
problem found (with the CSV line or JSON item it came from) so a user can fix a file in one pass.
Numbers are read from their text as :class:`~decimal.Decimal`, never through float, so ``0.1`` is
exactly one tenth.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from pathlib import Path
from types import MappingProxyType
from typing import Any

from core.domain import ZERO, ValidationError, to_decimal

#: The message for input with no targets at all.
NO_TARGETS = "no targets given"
_CENT = Decimal("0.01")


class TargetKind(StrEnum):
    WEIGHTS = "weights"
    SCORES = "scores"

    @property
    def noun(self) -> str:
        """The name of one value: ``weight`` or ``score`` (also the CSV / JSON column name)."""
        return "weight" if self is TargetKind.WEIGHTS else "score"


class TargetError(ValidationError):
    """Targets that cannot be used; ``problems`` holds every problem found, in input order."""

    def __init__(self, problems: Iterable[str]) -> None:
        self.problems: list[str] = list(problems) or ["invalid targets"]
        super().__init__("; ".join(self.problems))


# ---------------------------------------------------------------------------------------------
# Validation
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Entry:
    """One symbol/value pair as given; ``where`` (``line 3``, ``item 2``) locates it in a file.
    ``error`` marks a row or item too malformed to hold a pair, kept in place so problems are
    reported in file order."""

    symbol: Any
    value: Any
    where: str | None = None
    error: str | None = None


def _kind(kind: Any) -> TargetKind:
    try:
        return TargetKind(kind)
    except ValueError:
        known = " or ".join(k.value for k in TargetKind)
        raise TargetError([f"unknown target kind {kind!r}; use {known}"]) from None


def _text(value: Decimal) -> str:
    """At least two decimals (``1.20``), more when needed to show the exact value (``1.0001``)."""
    if value == value.quantize(_CENT):
        return f"{value:.2f}"
    return format(value.normalize(), "f")


def _describe(value: Any) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, _JsonObject | Mapping):
        return "an object"
    if isinstance(value, list | tuple):
        return "a list"
    return repr(value)


def _number(value: Any, name: str) -> Decimal:
    # to_decimal names Python types; JSON users know objects, lists and null instead.
    if value is None or isinstance(value, _JsonObject | Mapping | list | tuple):
        raise ValidationError(f"{name} must be a number, got {_describe(value)}")
    if isinstance(value, Decimal) and not value.is_finite():
        # JSON NaN / Infinity arrive as Decimals; name them as they were written
        raise ValidationError(f"{name} must be a finite number, got {value}")
    return to_decimal(value, name)


def _clean(
    entries: list[_Entry],
    kind: TargetKind,
    *,
    known_symbols: Iterable[str] | None = None,
    leverage_limit: Any = None,
    problems: list[str] | None = None,
) -> dict[str, Decimal]:
    """Validated, upper-cased symbol -> value; raises :class:`TargetError` with ``problems``
    (found earlier, e.g. malformed rows) plus everything wrong with ``entries``.

    ``leverage_limit`` None skips the weight-sum check (a stored portfolio was checked when it
    was built, against the limit of that time)."""
    problems = list(problems or [])
    if not entries and not problems:
        raise TargetError([NO_TARGETS])

    values: dict[str, Decimal] = {}
    seen: dict[str, list[_Entry]] = {}
    for e in entries:
        prefix = f"{e.where}: " if e.where else ""
        if e.error is not None:
            problems.append(f"{prefix}{e.error}")
            continue
        if not isinstance(e.symbol, str):
            problems.append(f"{prefix}symbol must be text, got {_describe(e.symbol)}")
            continue
        symbol = e.symbol.strip().upper()
        if not symbol:
            problems.append(f"{prefix}empty symbol")
            continue
        seen.setdefault(symbol, []).append(e)
        name = f"{kind.noun} of {symbol}"
        try:
            value = _number(e.value, name)
        except ValidationError as exc:
            problems.append(f"{prefix}{exc}")
            continue
        if value < 0:
            problems.append(f"{prefix}{name} must not be negative, got {value}")
            continue
        # a duplicate is reported below; keep the first value so the sum is not double counted
        values.setdefault(symbol, value)

    for symbol, group in seen.items():
        if len(group) > 1:
            places = ", ".join(e.where or repr(e.symbol) for e in group)
            problems.append(f"duplicate symbol {symbol} ({places})")

    if known_symbols is not None:
        known = {s.strip().upper() for s in known_symbols}
        unknown = sorted(s for s in seen if s not in known)
        if unknown:
            label = "unknown symbol" if len(unknown) == 1 else "unknown symbols"
            problems.append(f"{label}: {', '.join(unknown)}")

    if leverage_limit is not None:
        try:
            limit = to_decimal(leverage_limit, "leverage limit")
        except ValidationError as exc:
            problems.append(str(exc))
        else:
            if limit <= 0:
                problems.append(f"leverage limit must be above 0, got {limit}")
            elif kind is TargetKind.WEIGHTS:
                # values holds only valid, non-negative weights, so if these alone pass the limit
                # the full set does too
                total = sum(values.values(), ZERO)
                if total > limit:
                    problems.append(
                        f"weights sum to {_text(total)}, above the leverage limit {_text(limit)}"
                    )

    if problems:
        raise TargetError(problems)
    return dict(sorted(values.items()))


def _entries(mapping: Mapping[str, Any] | Iterable[tuple[Any, Any]]) -> list[_Entry]:
    if isinstance(mapping, Mapping):
        return [_Entry(s, v) for s, v in mapping.items()]
    if isinstance(mapping, str | bytes):
        raise TargetError(["targets must be a mapping of symbol to value"])
    out = []
    for i, pair in enumerate(mapping, start=1):
        if not isinstance(pair, tuple | list) or len(pair) != 2:
            raise TargetError([f"item {i}: expected a (symbol, value) pair, got {pair!r}"])
        out.append(_Entry(pair[0], pair[1]))
    return out


# ---------------------------------------------------------------------------------------------
# The portfolio
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TargetPortfolio:
    """Validated targets: upper-case symbols in sorted order, non-negative finite Decimals.

    ``values`` is read-only. ``source`` says where the targets came from (``api``, a file name,
    a strategy). Build one with :func:`build_targets` to also check known symbols and leverage;
    the constructor checks only what every portfolio must satisfy.
    """

    kind: TargetKind
    values: Mapping[str, Decimal]
    source: str = "api"

    def __post_init__(self) -> None:
        kind = _kind(self.kind)
        if not isinstance(self.source, str) or not self.source.strip():
            raise TargetError([f"source must be a non-empty string, got {self.source!r}"])
        if not isinstance(self.values, Mapping):
            raise TargetError(["targets must be a mapping of symbol to value"])
        clean = _clean(_entries(self.values), kind)
        object.__setattr__(self, "kind", kind)
        object.__setattr__(self, "values", MappingProxyType(clean))

    def __hash__(self) -> int:
        # the generated hash would fail on the mapping proxy; hash its items instead
        return hash((self.kind, tuple(self.values.items()), self.source))

    @property
    def symbols(self) -> tuple[str, ...]:
        return tuple(self.values)

    @property
    def total(self) -> Decimal:
        """Sum of the values (for weights: the gross exposure the targets ask for)."""
        return sum(self.values.values(), ZERO)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form; values are strings so no precision is lost."""
        return {
            "kind": self.kind.value,
            "source": self.source,
            "values": {s: str(v) for s, v in self.values.items()},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TargetPortfolio:
        """The inverse of :meth:`to_dict`. The leverage limit is not re-checked: it applied
        when the portfolio was built."""
        if not isinstance(data, Mapping):
            raise TargetError(["a target portfolio must be an object"])
        extra = sorted(set(data) - {"kind", "source", "values"})
        if extra:
            raise TargetError([f"unexpected target portfolio fields: {', '.join(map(str, extra))}"])
        if "kind" not in data or "values" not in data:
            raise TargetError(["a target portfolio needs kind and values"])
        values = data["values"]
        if not isinstance(values, Mapping):
            raise TargetError(["values must be a mapping of symbol to value"])
        return cls(kind=_kind(data["kind"]), values=values, source=data.get("source", "api"))


def build_targets(
    mapping: Mapping[str, Any] | Iterable[tuple[Any, Any]],
    *,
    kind: TargetKind | str,
    known_symbols: frozenset[str] | None = None,
    leverage_limit: Decimal = Decimal(1),
    source: str = "api",
) -> TargetPortfolio:
    """Validate ``mapping`` (symbol -> weight or score, or (symbol, value) pairs) into a
    :class:`TargetPortfolio`.

    Symbols are stripped and upper-cased. Every problem is collected into one
    :class:`TargetError`: empty input, symbols not in ``known_symbols`` (when given), values that
    are not numbers or not finite, negative values, symbols given twice (ignoring case), and
    weights adding up to more than ``leverage_limit``. Scores may add up to anything; a zero
    weight is allowed and means "sell all".
    """
    k = _kind(kind)
    values = _clean(
        _entries(mapping), k, known_symbols=known_symbols, leverage_limit=leverage_limit
    )
    return TargetPortfolio(kind=k, values=values, source=source)


# ---------------------------------------------------------------------------------------------
# CSV and JSON
# ---------------------------------------------------------------------------------------------


class _JsonObject:
    """A JSON object as its key/value pairs in document order, so repeated keys (which
    ``json.loads`` would silently collapse to the last one) can be reported."""

    __slots__ = ("pairs",)

    def __init__(self, pairs: list[tuple[str, Any]]) -> None:
        self.pairs = pairs

    def lower_keys(self) -> dict[str, Any]:
        return {k.strip().lower(): v for k, v in self.pairs}


def _column_kind(name: str) -> TargetKind | None:
    return {"weight": TargetKind.WEIGHTS, "score": TargetKind.SCORES}.get(name.strip().lower())


def _csv_entries(text: str) -> tuple[TargetKind | None, list[_Entry], list[str]]:
    """Header ``symbol,weight`` or ``symbol,score`` (either order, any case), then one row per
    symbol; blank lines are skipped. Returns the kind (None if the header is unusable), the rows
    and the problems found in the file's shape."""
    reader = csv.reader(io.StringIO(text))
    header: list[str] | None = None
    symbol_col = value_col = 0
    kind: TargetKind | None = None
    entries: list[_Entry] = []
    problems: list[str] = []
    try:
        for row in reader:
            line = reader.line_num
            if not any(cell.strip() for cell in row):
                continue
            if header is None:
                header = [cell.strip().lower() for cell in row]
                kinds = [_column_kind(c) for c in header]
                if len(header) != 2 or "symbol" not in header or kinds.count(None) != 1:
                    got = ",".join(cell.strip() for cell in row)
                    error = f"the header must be 'symbol,weight' or 'symbol,score', got {got!r}"
                    return None, [], [f"line {line}: {error}"]
                symbol_col = header.index("symbol")
                value_col = 1 - symbol_col
                kind = kinds[value_col]
                continue
            if len(row) != 2:
                error = f"expected 2 fields (symbol and {header[value_col]}), got {len(row)}"
                entries.append(_Entry(None, None, f"line {line}", error))
                continue
            entries.append(_Entry(row[symbol_col], row[value_col].strip(), f"line {line}"))
    except csv.Error as exc:
        problems.append(f"line {reader.line_num}: {exc}")
    return kind, entries, problems


def _json_list_entries(items: list[Any]) -> tuple[TargetKind | None, list[_Entry], list[str]]:
    """``[{"symbol": "AAPL", "weight": 0.1}, ...]``: every item names one column, the same one."""
    kind: TargetKind | None = None
    entries: list[_Entry] = []
    for i, item in enumerate(items, start=1):
        where = f"item {i}"
        if not isinstance(item, _JsonObject):
            error = "expected an object with symbol and weight or score"
            entries.append(_Entry(None, None, where, error))
            continue
        fields = item.lower_keys()
        if len(fields) != len(item.pairs):
            entries.append(_Entry(None, None, where, "a field is given twice"))
            continue
        columns = [k for k in fields if _column_kind(k) is not None]
        extra = set(fields) - {"symbol", *columns}
        if "symbol" not in fields or len(columns) != 1 or extra:
            names = ", ".join(k for k, _ in item.pairs) or "none"
            error = f"expected fields symbol and weight or score, got {names}"
            entries.append(_Entry(None, None, where, error))
            continue
        item_kind = _column_kind(columns[0])
        if kind is None:
            kind = item_kind
        elif item_kind is not kind:
            error = f"gives a {columns[0]} but earlier items give a {kind.noun}"
            entries.append(_Entry(None, None, where, error))
            continue
        entries.append(_Entry(fields["symbol"], fields[columns[0]], where))
    if kind is None and entries:
        # no usable item: report the items' problems rather than guess a kind
        return None, [], [f"{e.where}: {e.error}" for e in entries]
    return kind, entries, []


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | Decimal):
        return "a number"
    if isinstance(value, str):
        return "a string"
    return "null"


def _json_entries(
    text: str, default_kind: TargetKind
) -> tuple[TargetKind | None, list[_Entry], list[str]]:
    try:
        doc = json.loads(
            text,
            parse_float=Decimal,
            # NaN and Infinity become Decimals so they are reported as not finite
            parse_constant=Decimal,
            object_pairs_hook=_JsonObject,
        )
    except json.JSONDecodeError as exc:
        raise TargetError([f"invalid JSON: {exc}"]) from None
    if isinstance(doc, list):
        return _json_list_entries(doc)
    if not isinstance(doc, _JsonObject):
        return None, [], [f"JSON targets must be an object or a list, got {_json_type(doc)}"]
    fields = doc.lower_keys()
    # {"weights": {...}} / {"scores": {...}}
    if len(doc.pairs) == 1 and isinstance(doc.pairs[0][1], _JsonObject):
        key, inner = doc.pairs[0]
        wrapped = {"weights": TargetKind.WEIGHTS, "scores": TargetKind.SCORES}.get(key.lower())
        if wrapped is not None:
            return wrapped, [_Entry(s, v) for s, v in inner.pairs], []
    # the TargetPortfolio.to_dict form: {"kind": ..., "values": {...}, "source": ...}
    if (
        "values" in fields
        and isinstance(fields["values"], _JsonObject)
        and set(fields) <= {"kind", "values", "source"}
    ):
        stored = _kind(fields.get("kind", default_kind.value))
        return stored, [_Entry(s, v) for s, v in fields["values"].pairs], []
    return default_kind, [_Entry(s, v) for s, v in doc.pairs], []


def parse_targets(
    text: str,
    fmt: str,
    *,
    kind: TargetKind | str | None = None,
    known_symbols: frozenset[str] | None = None,
    leverage_limit: Decimal = Decimal(1),
    source: str = "api",
) -> TargetPortfolio:
    """Read targets from ``text`` in ``fmt`` ``csv`` or ``json`` and validate them as
    :func:`build_targets` does.

    CSV: a header ``symbol,weight`` or ``symbol,score`` (any case; the column decides the kind),
    then ``AAPL,0.10`` rows; blank lines are ignored and problems name their line.

    JSON, one of::

        {"AAPL": 0.1, "MSFT": 0.2}                      kind from ``kind`` (default weights)
        {"weights": {"AAPL": 0.1}}  /  {"scores": {"AAPL": 1.5}}
        [{"symbol": "AAPL", "weight": 0.1}, ...]        or "score"; problems name the item
        {"kind": "weights", "values": {...}}            the TargetPortfolio.to_dict form

    When ``kind`` is given and the document says otherwise that is an error.
    """
    if not isinstance(text, str):
        raise TargetError([f"targets text must be a string, got {type(text).__name__}"])
    wanted = None if kind is None else _kind(kind)
    f = str(fmt).strip().lower().lstrip(".")
    if f == "csv":
        got, entries, problems = _csv_entries(text)
    elif f == "json":
        got, entries, problems = _json_entries(text, wanted or TargetKind.WEIGHTS)
    else:
        raise TargetError([f"unknown targets format {fmt!r}; use csv or json"])
    if got is None:
        if entries or problems:
            raise TargetError(problems)
        raise TargetError([NO_TARGETS])
    if wanted is not None and got is not wanted:
        problems.insert(0, f"the targets are {got.value} but {wanted.value} were expected")
    values = _clean(
        entries,
        got,
        known_symbols=known_symbols,
        leverage_limit=leverage_limit,
        problems=problems,
    )
    return TargetPortfolio(kind=got, values=values, source=source)


def load_targets(path: str | Path, **kwargs: Any) -> TargetPortfolio:
    """:func:`parse_targets` on a ``.csv`` or ``.json`` file (UTF-8, a byte-order mark is
    allowed); ``source`` defaults to ``file:<name>``. Keyword arguments as for parse_targets."""
    p = Path(path)
    fmt = p.suffix.lower().lstrip(".")
    if fmt not in ("csv", "json"):
        raise TargetError([f"cannot tell the format of {p.name}: use a .csv or .json file"])
    try:
        # utf-8-sig: spreadsheets often save CSV with a byte-order mark
        text = p.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise TargetError([f"cannot read {p}: {exc}"]) from None
    kwargs.setdefault("source", f"file:{p.name}")
    return parse_targets(text, fmt, **kwargs)
