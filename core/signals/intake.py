"""Signal intake: the one way signals from outside (API, CSV/JSON import, the dashboard) enter
the queue.

Input is plain data. A readable, valid signal is stored ``pending``. Anything else is stored
``rejected`` with the reason and the raw input (``metadata["raw"]``), so nothing a source sends is
lost or silently dropped, even a NaN price or an unknown direction.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal
from typing import Any

from core.domain import (
    Direction,
    OrderType,
    Signal,
    SignalStatus,
    TradeType,
    ValidationError,
    positive,
    to_decimal,
)
from core.ports import Store

_REQUIRED = ("symbol", "direction", "entry", "stop")
_OPTIONAL = (
    "target",
    "qty",
    "conviction",
    "trade_type",
    "timeframe",
    "order_type",
    "metadata",
    "created_at",
)


@dataclass(slots=True)
class IntakeResult:
    accepted: list[int] = field(default_factory=list)
    #: (position in the input, stored signal id, reason)
    rejected: list[tuple[int, int, str]] = field(default_factory=list)


def _number(raw: Mapping[str, Any], name: str, problems: list[str]) -> Decimal | None:
    value = raw.get(name)
    if value is None or value == "":
        return None
    try:
        return positive(value, name)
    except ValidationError as exc:
        problems.append(str(exc))
        return None


def parse_signal(raw: Mapping[str, Any], source: str, now: datetime) -> tuple[Signal, list[str]]:
    """Build a Signal from plain data. Returns it with the list of problems found (empty when
    it is fit to queue); unreadable fields are left empty on the signal."""
    problems: list[str] = []
    unknown = sorted(set(raw) - set(_REQUIRED) - set(_OPTIONAL))
    if unknown:
        problems.append(f"unknown fields: {', '.join(unknown)}")
    for name in _REQUIRED:
        if raw.get(name) in (None, ""):
            problems.append(f"{name} is required")
    symbol = str(raw.get("symbol") or "").strip().upper()
    direction: Direction | None = None
    if raw.get("direction") not in (None, ""):
        try:
            direction = Direction(str(raw["direction"]).strip().lower())
        except ValueError:
            problems.append(f"direction must be long or short, got {raw['direction']!r}")

    def enum(name: str, kind: type, default: Any) -> Any:
        value = raw.get(name)
        if value in (None, ""):
            return default
        try:
            return kind(str(value).strip().lower())
        except ValueError:
            allowed = ", ".join(m.value for m in kind)
            problems.append(f"{name} must be one of {allowed}, got {value!r}")
            return default

    conviction = 75
    if raw.get("conviction") not in (None, ""):
        try:
            c = to_decimal(raw["conviction"], "conviction")
            if c != c.to_integral_value():
                raise ValidationError("conviction must be a whole number")
            conviction = int(c)
        except ValidationError as exc:
            problems.append(str(exc))
    signal = Signal(
        symbol=symbol,
        direction=direction,  # type: ignore[arg-type]  # None only on rejected input
        entry=_number(raw, "entry", problems),  # type: ignore[arg-type]
        stop=_number(raw, "stop", problems),  # type: ignore[arg-type]
        target=_number(raw, "target", problems),
        qty=_number(raw, "qty", problems),
        conviction=conviction,
        trade_type=enum("trade_type", TradeType, TradeType.DAY),
        timeframe=str(raw.get("timeframe") or "10Min"),
        order_type=enum("order_type", OrderType, OrderType.MARKET),
        created_at=now,
        source=source,
        metadata=dict(raw.get("metadata") or {})
        if isinstance(raw.get("metadata") or {}, dict)
        else {},
    )
    if not problems:
        try:
            signal.validate()
        except ValidationError as exc:
            problems.append(str(exc))
    return signal, problems


def submit_signals(
    store: Store, items: Iterable[Mapping[str, Any]], source: str, now: datetime
) -> IntakeResult:
    """Validate and store signals in one transaction: good ones pending, bad ones rejected with
    the reason and the raw input."""
    result = IntakeResult()
    rows: list[tuple[int, Signal, str | None]] = []
    for i, raw in enumerate(items):
        if not isinstance(raw, Mapping):
            bad = Signal("", None, None, None, now, source=source)  # type: ignore[arg-type]
            rows.append(
                (
                    i,
                    _rejected(bad, {"value": repr(raw)}, "a signal must be an object"),
                    "a signal must be an object",
                )
            )
            continue
        signal, problems = parse_signal(raw, source, now)
        if problems:
            reason = "; ".join(problems)
            rows.append((i, _rejected(signal, raw, reason), reason))
        else:
            rows.append((i, signal, None))
    with store.unit_of_work() as uow:
        ids = uow.signals.add_many([s for _, s, _ in rows])
        uow.commit()
    for (i, _, reason), sid in zip(rows, ids, strict=True):
        if reason is None:
            result.accepted.append(sid)
        else:
            result.rejected.append((i, sid, reason))
    return result


def submit_signal(
    store: Store, raw: Mapping[str, Any], source: str, now: datetime
) -> tuple[int, str | None]:
    """Submit one signal; returns (stored id, rejection reason or None)."""
    r = submit_signals(store, [raw], source, now)
    if r.accepted:
        return r.accepted[0], None
    _, sid, reason = r.rejected[0]
    return sid, reason


def _rejected(signal: Signal, raw: Mapping[str, Any], reason: str) -> Signal:
    return replace(
        signal,
        status=SignalStatus.REJECTED,
        reason=reason,
        metadata={**signal.metadata, "raw": {str(k): str(v) for k, v in raw.items()}},
    )
