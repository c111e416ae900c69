"""Rebalancing triggers (seed 000 R5.1): when the portfolio should be looked at again.

==============  =====================================================  ========================
Trigger         Fires when                                             Meaning
==============  =====================================================  ========================
stop_loss       a holding is down more than ``stop_loss_pct`` (15%)    close the position
                from its entry (a short is down when the price rises)
signal          a held name's score percentile is below                exit the position
                ``signal_percentile`` (30)
drift           a weight is more than ``drift_threshold`` (5%,         rebalance drifted names
                relative) from its target
new_top_decile  an unheld name is at or above percentile               evaluate for addition
                ``top_decile`` (90) and was not there before
calendar        the current session is the month's first trading       full rebalance
                session, once per session
==============  =====================================================  ========================

Every check is a pure function of its inputs and returns a :class:`TriggerEvent` (or None); the
events carry the numbers in ``detail`` (strings, JSON-able) and a readable ``message``. All
thresholds are strict: a value exactly at a threshold does not fire (except ``top_decile``,
which is "at or above").

Drift is relative to the target: ``|current - target| / target``. A target of 10% with a 5%
threshold tolerates weights from 9.5% to 10.5%. A target of 0 has no relative scale, so a holding
with a zero target counts as drifted when the absolute value of its weight is above
``min_weight`` (0.1% by default) — leftovers below that are not worth a trade.

Score percentiles are defined by :func:`percentile_ranks`.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Any

from core.domain import (
    ZERO,
    Position,
    ValidationError,
    known_changes,
    plain_data,
    to_decimal,
    utc,
)
from core.ports import MarketCalendar

HUNDRED = Decimal(100)
_CENT = Decimal("0.01")
_FINE = Decimal("0.000001")
_MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)


class TriggerKind(StrEnum):
    CALENDAR = "calendar"
    DRIFT = "drift"
    SIGNAL = "signal"
    STOP_LOSS = "stop_loss"
    NEW_TOP_DECILE = "new_top_decile"
    MANUAL = "manual"


# ---------------------------------------------------------------------------------------------
# Configuration and inputs
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TriggerConfig:
    """Trigger thresholds. ``drift_threshold`` and ``min_weight`` are fractions (0.05 = 5%);
    ``signal_percentile``, ``stop_loss_pct`` and ``top_decile`` are percent (0..100)."""

    calendar: bool = True
    drift_threshold: Decimal = Decimal("0.05")
    min_weight: Decimal = Decimal("0.001")
    signal_percentile: Decimal = Decimal(30)
    stop_loss_pct: Decimal = Decimal(15)
    top_decile: Decimal = Decimal(90)

    def __post_init__(self) -> None:
        problems: list[str] = []
        if not isinstance(self.calendar, bool):
            problems.append(f"calendar must be true or false, got {self.calendar!r}")
        # name -> (lowest allowed, highest allowed or None, lowest is allowed itself)
        ranges: dict[str, tuple[Decimal, Decimal | None, bool]] = {
            "drift_threshold": (ZERO, None, True),
            "min_weight": (ZERO, None, True),
            "signal_percentile": (ZERO, HUNDRED, True),
            "stop_loss_pct": (ZERO, None, False),
            "top_decile": (ZERO, HUNDRED, True),
        }
        for name, (low, high, low_ok) in ranges.items():
            try:
                value = to_decimal(getattr(self, name), name)
            except ValidationError as exc:
                problems.append(str(exc))
                continue
            if value < low or (value == low and not low_ok):
                bound = "at least" if low_ok else "above"
                problems.append(f"{name} must be {bound} {low}, got {value}")
            elif high is not None and value > high:
                problems.append(f"{name} must be at most {high}, got {value}")
            else:
                object.__setattr__(self, name, value)
        if problems:
            raise ValidationError("; ".join(problems))

    def to_dict(self) -> dict[str, Any]:
        """JSON-able: numbers as strings so no precision is lost."""
        return plain_data(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TriggerConfig:
        """Build from a mapping as :meth:`to_dict` writes it; missing keys keep their default,
        unknown keys are an error (a misspelt threshold must not silently keep the default)."""
        return cls(**known_changes(cls, data, "trigger"))


#: The seed 000 R5.1 thresholds (frozen, so safe to share as a default argument).
DEFAULT_CONFIG = TriggerConfig()


@dataclass(frozen=True, slots=True)
class HoldingSnapshot:
    """One holding at a price. ``qty`` is signed: positive long, negative short."""

    symbol: str
    qty: Decimal
    avg_entry_price: Decimal
    price: Decimal

    def __post_init__(self) -> None:
        if not isinstance(self.symbol, str) or not self.symbol.strip():
            raise ValidationError(f"symbol must be a non-empty string, got {self.symbol!r}")
        object.__setattr__(self, "symbol", self.symbol.strip().upper())
        object.__setattr__(self, "qty", to_decimal(self.qty, f"qty of {self.symbol}"))
        entry = to_decimal(self.avg_entry_price, f"entry price of {self.symbol}")
        if entry <= 0:
            raise ValidationError(f"entry price of {self.symbol} must be above 0, got {entry}")
        object.__setattr__(self, "avg_entry_price", entry)
        price = to_decimal(self.price, f"price of {self.symbol}")
        if price < 0:
            raise ValidationError(f"price of {self.symbol} must not be negative, got {price}")
        object.__setattr__(self, "price", price)

    @classmethod
    def from_position(cls, position: Position, price: Decimal | None = None) -> HoldingSnapshot:
        """A snapshot of ``position`` at ``price`` (default: the position's current price)."""
        mark = price if price is not None else position.current_price
        if mark is None:
            raise ValidationError(f"no price for {position.symbol}")
        return cls(position.symbol, position.qty, position.avg_entry_price, mark)

    @property
    def is_short(self) -> bool:
        return self.qty < 0

    @property
    def return_pct(self) -> Decimal:
        """Return since entry in percent, from the holder's side: (price - entry) / entry x 100,
        with the sign flipped for a short (a short gains when the price falls)."""
        move = (self.price - self.avg_entry_price) / self.avg_entry_price * HUNDRED
        return -move if self.is_short else move


@dataclass(frozen=True)
class TriggerEvent:
    """A trigger that fired. ``symbols`` is empty when it concerns the whole portfolio
    (calendar); ``detail`` holds the numbers as strings."""

    kind: TriggerKind
    symbols: tuple[str, ...]
    detail: dict[str, str]
    message: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", TriggerKind(self.kind))
        object.__setattr__(self, "symbols", tuple(self.symbols))
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in self.detail.items()):
            raise ValidationError("trigger detail must map strings to strings")
        object.__setattr__(self, "detail", dict(self.detail))

    def __hash__(self) -> int:
        # the generated hash would fail on the detail dict
        return hash((self.kind, self.symbols, tuple(sorted(self.detail.items())), self.message))

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind.value,
            "symbols": list(self.symbols),
            "detail": dict(self.detail),
            "message": self.message,
        }


# ---------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------


def _plain(value: Decimal) -> str:
    """Without trailing zeros or exponent: ``5``, ``0.1``, ``37.5``."""
    return format(value.normalize(), "f")


def _num(value: Decimal, against: Decimal | None = None, trim: bool = False) -> str:
    """``value`` to two decimals; finer when two decimals would make a value that differs from
    the threshold ``against`` look equal to it (15.001 against 15). ``trim`` drops trailing
    zeros (percentile 20 rather than 20.00)."""
    shown = value.quantize(_CENT)
    if against is not None and shown == against and value != against:
        return _plain(value.quantize(_FINE))
    return _plain(shown) if trim else format(shown, "f")


def _numbers(values: Mapping[str, Any], name: str) -> dict[str, Decimal]:
    if not isinstance(values, Mapping):
        raise ValidationError(f"{name} must be a mapping of symbol to number")
    return {s: to_decimal(v, f"{name}[{s}]") for s, v in values.items()}


# ---------------------------------------------------------------------------------------------
# Percentiles
# ---------------------------------------------------------------------------------------------


def percentile_ranks(scores: Mapping[str, Decimal]) -> dict[str, Decimal]:
    """Each name's score percentile in 0..100 among the names in ``scores``.

    percentile = 100 x (names with a strictly lower score + half the other names with the same
    score) / (n - 1)

    so the lowest distinct score ranks 0, the highest 100, and tied names share the average of
    the ranks they span (all names tied rank 50). A single name ranks 50: it is neither above
    nor below anything. With 11 names scored 0..10 the name scored 3 ranks exactly 30.
    """
    values = _numbers(scores, "scores")
    n = len(values)
    if n == 0:
        return {}
    if n == 1:
        return dict.fromkeys(values, Decimal(50))
    ordered = sorted(values.values())
    out: dict[str, Decimal] = {}
    for symbol in sorted(values):
        v = values[symbol]
        lower = bisect_left(ordered, v)
        tied_others = bisect_right(ordered, v) - lower - 1
        out[symbol] = HUNDRED * (Decimal(lower) + Decimal(tied_others) / 2) / Decimal(n - 1)
    return out


# ---------------------------------------------------------------------------------------------
# Triggers
# ---------------------------------------------------------------------------------------------


def check_calendar(
    now: datetime, calendar: MarketCalendar, last_run: date | None
) -> TriggerEvent | None:
    """Fires during the first trading session of a month, unless ``last_run`` (the session of
    the last calendar rebalance) is already that session (or later).

    The month's first session comes from ``calendar`` (holidays and weekends included): the
    session whose previous session lies in an earlier month. Outside a session (before the open
    on that day, after its close) it stays quiet, so the rebalance trades while the market is
    open.
    """
    session = calendar.session_date(utc(now))
    if session is None:
        return None
    if last_run is not None and last_run >= session:
        return None
    # the latest session opening strictly before this one's open is the previous session
    before = calendar.previous_session(calendar.session_open(session) - timedelta(microseconds=1))
    if (before.year, before.month) == (session.year, session.month):
        return None
    month = f"{_MONTHS[session.month - 1]} {session.year}"
    return TriggerEvent(
        TriggerKind.CALENDAR,
        (),
        {
            "session": session.isoformat(),
            "previous_session": before.isoformat(),
            "last_run": last_run.isoformat() if last_run is not None else "",
        },
        f"{session.isoformat()} is the first trading session of {month}: full rebalance",
    )


def check_drift(
    current_weights: Mapping[str, Decimal],
    target_weights: Mapping[str, Decimal],
    config: TriggerConfig = DEFAULT_CONFIG,
) -> TriggerEvent | None:
    """Fires for every name whose weight drifted past ``drift_threshold`` from its target (see
    the module docstring; a name missing from one side has weight 0 there)."""
    current = _numbers(current_weights, "current_weights")
    target = _numbers(target_weights, "target_weights")
    for s, t in target.items():
        if t < 0:
            raise ValidationError(f"target_weights[{s}] must not be negative, got {t}")
    threshold = config.drift_threshold
    detail: dict[str, str] = {
        "threshold": str(threshold),
        "min_weight": str(config.min_weight),
    }
    drifted: list[str] = []
    lines: list[str] = []
    for s in sorted(set(current) | set(target)):
        c, t = current.get(s, ZERO), target.get(s, ZERO)
        if t > 0:
            drift = abs(c - t) / t
            if drift <= threshold:
                continue
            detail[f"{s}.drift"] = _plain(drift)
            lines.append(
                f"{s} is {_num(drift * HUNDRED, threshold * HUNDRED)}% from its target weight "
                f"({_num(c * HUNDRED)}% held vs {_num(t * HUNDRED)}% target), "
                f"threshold {_plain(threshold * HUNDRED)}%"
            )
        else:
            if abs(c) <= config.min_weight:
                continue
            lines.append(
                f"{s} holds {_num(abs(c) * HUNDRED, config.min_weight * HUNDRED)}% against a "
                f"target of 0% (above the {_plain(config.min_weight * HUNDRED)}% minimum weight)"
            )
        detail[f"{s}.current"] = str(c)
        detail[f"{s}.target"] = str(t)
        drifted.append(s)
    if not drifted:
        return None
    return TriggerEvent(TriggerKind.DRIFT, tuple(drifted), detail, "; ".join(lines))


def check_signal(
    scores: Mapping[str, Decimal],
    held_symbols: Iterable[str],
    config: TriggerConfig = DEFAULT_CONFIG,
) -> TriggerEvent | None:
    """Fires for held names whose score percentile (:func:`percentile_ranks` over all of
    ``scores``) is below ``signal_percentile``: exit them. A held name without a score is not
    judged: missing data is not a bad score."""
    ranks = percentile_ranks(scores)
    threshold = config.signal_percentile
    exits = sorted(s for s in set(held_symbols) if s in ranks and ranks[s] < threshold)
    if not exits:
        return None
    detail = {"threshold": str(threshold), "scored": str(len(ranks))}
    lines = []
    for s in exits:
        detail[f"{s}.percentile"] = _plain(ranks[s])
        rank = _num(ranks[s], threshold, trim=True)
        lines.append(
            f"{s} score ranks at percentile {rank} of {len(ranks)} names, "
            f"below {_plain(threshold)}: exit"
        )
    return TriggerEvent(TriggerKind.SIGNAL, tuple(exits), detail, "; ".join(lines))


def check_stop_loss(
    holdings: Sequence[HoldingSnapshot],
    config: TriggerConfig = DEFAULT_CONFIG,
) -> TriggerEvent | None:
    """Fires for holdings down more than ``stop_loss_pct`` from entry (``return_pct`` below
    ``-stop_loss_pct``): close them. Flat holdings (qty 0) have nothing to close."""
    seen: set[str] = set()
    for h in holdings:
        if not isinstance(h, HoldingSnapshot):
            raise ValidationError(f"holdings must be HoldingSnapshot, got {type(h).__name__}")
        if h.symbol in seen:
            raise ValidationError(f"holding {h.symbol} is given twice")
        seen.add(h.symbol)
    limit = config.stop_loss_pct
    hit = sorted(
        (h for h in holdings if h.qty != 0 and h.return_pct < -limit), key=lambda h: h.symbol
    )
    if not hit:
        return None
    detail = {"stop_loss_pct": str(limit)}
    lines = []
    for h in hit:
        detail[f"{h.symbol}.return_pct"] = _plain(h.return_pct)
        detail[f"{h.symbol}.entry"] = str(h.avg_entry_price)
        detail[f"{h.symbol}.price"] = str(h.price)
        side = " (short)" if h.is_short else ""
        lines.append(
            f"{h.symbol}{side} is down {_num(-h.return_pct, limit)}% from entry "
            f"(entry {_plain(h.avg_entry_price)}, now {_plain(h.price)}), "
            f"stop loss {_plain(limit)}%: close"
        )
    return TriggerEvent(
        TriggerKind.STOP_LOSS, tuple(h.symbol for h in hit), detail, "; ".join(lines)
    )


def check_new_top_decile(
    scores: Mapping[str, Decimal],
    previous_scores: Mapping[str, Decimal],
    held_symbols: Iterable[str],
    config: TriggerConfig = DEFAULT_CONFIG,
) -> TriggerEvent | None:
    """Fires for names now at or above percentile ``top_decile`` that were below it in
    ``previous_scores`` (or not scored there) and are not held: evaluate them for addition.
    With no previous scores every unheld top-decile name is new."""
    ranks = percentile_ranks(scores)
    before = percentile_ranks(previous_scores)
    threshold = config.top_decile
    held = set(held_symbols)
    new = sorted(
        s
        for s, p in ranks.items()
        if p >= threshold and s not in held and not (s in before and before[s] >= threshold)
    )
    if not new:
        return None
    detail = {"threshold": str(threshold)}
    lines = []
    for s in new:
        detail[f"{s}.percentile"] = _plain(ranks[s])
        detail[f"{s}.previous_percentile"] = _plain(before[s]) if s in before else ""
        was = f"was {_num(before[s], threshold, trim=True)}" if s in before else "not scored before"
        rank = _num(ranks[s], trim=True)
        lines.append(
            f"{s} entered the top decile at percentile {rank} ({was}, "
            f"threshold {_plain(threshold)}): evaluate for addition"
        )
    return TriggerEvent(TriggerKind.NEW_TOP_DECILE, tuple(new), detail, "; ".join(lines))


def evaluate_triggers(
    now: datetime,
    calendar: MarketCalendar,
    *,
    holdings: Sequence[HoldingSnapshot],
    current_weights: Mapping[str, Decimal],
    target_weights: Mapping[str, Decimal],
    scores: Mapping[str, Decimal],
    previous_scores: Mapping[str, Decimal],
    last_calendar_run: date | None,
    config: TriggerConfig = DEFAULT_CONFIG,
) -> list[TriggerEvent]:
    """Every trigger that fires, in a fixed order: stop_loss, signal, drift, new_top_decile,
    calendar (calendar only when ``config.calendar``). Held names are the holdings with a
    non-zero qty. Each check is independent: a name can appear in more than one event."""
    held = {h.symbol for h in holdings if h.qty != 0}
    events = [
        check_stop_loss(holdings, config),
        check_signal(scores, held, config),
        check_drift(current_weights, target_weights, config),
        check_new_top_decile(scores, previous_scores, held, config),
        check_calendar(now, calendar, last_calendar_run) if config.calendar else None,
    ]
    return [e for e in events if e is not None]
