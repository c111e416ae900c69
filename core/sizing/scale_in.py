"""Scale-in: when the rest of a position goes in (seed 001 "Entry Strategies", *Scale-In*).

The entry stage (:mod:`core.sizing.entry`) sends the first part of the size and leaves the rest
in the draft's ``scale_in_remaining`` note. Once the first part has filled, a
:class:`ScaleInPlan` (:func:`plan_from_draft`) records what is left to add, and
:meth:`ScaleInPlanner.on_bar` reads each completed bar of the plan's chart with the clouds after
that bar (``ExitMonitor.clouds(symbol, timeframe)`` once the bar has been fed to the monitor):

* **add** on the first pullback to the cloud that holds. Long: the bar's low touches or enters
  the pullback (8/9) cloud (``low <= top``) while its close does not fall below the cloud's
  bottom (``close >= bottom``, the EMA-cloud engine's convention) and stays above the stop.
  Short: ``high >= bottom``, ``close <= top`` and below the stop;
* **cancel** when the position is gone, when a bar closes beyond the macro (34/50) cloud against
  the position (below its bottom for a long, above its top for a short) or at or through the
  stop, and when the plan expires: day trades and scalps at their session's end-of-day cutoff
  (the close minus ``eod_lead``, 15:55 ET on a regular session; no add while the EOD exit takes
  the position off), swings after ``swing_max_bars`` bars without an add.

Bars that closed at or before the plan's ``created_at`` are ignored (the bar a signal came from
is not a pullback after the entry), as is a bar not later than the last one seen for the plan.
A plan is decided once: after an add or a cancel the planner forgets it.

For a signal routed to a leveraged ETF the plan watches the signal's own chart
(``chart_symbol``, with the signal's direction and stop) and the add buys the fund (``symbol``,
``side``). :func:`add_request` builds the add order with the id of
:func:`client_order_id_for_add`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from enum import StrEnum

from core.domain import (
    Bar,
    Direction,
    InstrumentType,
    OrderRequest,
    OrderType,
    Position,
    Side,
    TimeInForce,
    TradeType,
    ValidationError,
    client_order_id_for,
    positive,
    to_decimal,
    utc,
)
from core.marketdata.calendar import EASTERN, default_calendar
from core.pipeline import OrderDraft
from core.ports import MarketCalendar
from core.signals.clouds import CloudState

#: Swing plans are cancelled after this many bars without a pullback that held.
DEFAULT_SWING_MAX_BARS = 20
#: Day and scalp plans end this long before the session's close (the EOD exit cutoff).
DEFAULT_EOD_LEAD = timedelta(minutes=5)


def client_order_id_for_add(signal_id: int | str) -> str:
    """The deterministic client order id of a signal's scale-in add: ``ax-s{signal_id}-add``."""
    return client_order_id_for(signal_id, "add")


class ScaleInAction(StrEnum):
    ADD = "add"
    CANCEL = "cancel"


@dataclass(frozen=True, slots=True)
class ScaleInPlan:
    """The part of a position still to be added on the first pullback that holds.

    ``symbol`` is the instrument the add is ordered in and ``side`` its order side (the
    direction's entry side when not given). ``chart_symbol`` is the symbol whose bars and clouds
    are watched (``symbol`` when not given); ``direction`` and ``stop`` are on that chart.
    ``created_at`` is when the plan started (the first part's fill): bars that closed by then
    are ignored.
    """

    symbol: str
    direction: Direction
    remaining_qty: Decimal
    signal_id: int
    trade_type: TradeType
    timeframe: str
    stop: Decimal
    created_at: datetime
    side: Side | None = None
    instrument_type: InstrumentType = InstrumentType.STOCK
    chart_symbol: str | None = None

    def __post_init__(self) -> None:
        if not self.symbol or not isinstance(self.symbol, str):
            raise ValidationError("scale-in plan has no symbol")
        object.__setattr__(self, "direction", Direction(self.direction))
        object.__setattr__(self, "trade_type", TradeType(self.trade_type))
        object.__setattr__(self, "instrument_type", InstrumentType(self.instrument_type))
        if self.side is not None:
            object.__setattr__(self, "side", Side(self.side))
        object.__setattr__(self, "remaining_qty", positive(self.remaining_qty, "remaining_qty"))
        object.__setattr__(self, "stop", positive(self.stop, "stop"))
        object.__setattr__(self, "created_at", utc(self.created_at))

    @property
    def entry_side(self) -> Side:
        """The side of the entry and of the add."""
        return self.side or self.direction.entry_side

    @property
    def watch_symbol(self) -> str:
        """The symbol whose bars and clouds decide the add."""
        return self.chart_symbol or self.symbol

    @property
    def long(self) -> bool:
        return self.direction is Direction.LONG


def plan_from_draft(draft: OrderDraft, created_at: datetime) -> ScaleInPlan | None:
    """The plan for a draft that went through the entry stage, or None when nothing is left to
    add (``scale_in_remaining`` is 0 or missing). ``created_at`` is when the first part filled.

    A routed draft watches the signal's chart (its symbol, direction and stop) and adds in the
    traded instrument.
    """
    remaining = to_decimal(draft.notes.get("scale_in_remaining", "0"), "scale_in_remaining")
    if remaining <= 0:
        return None
    s = draft.signal
    if s.id is None:
        raise ValidationError("a scale-in plan needs a stored signal (no signal id)")
    return ScaleInPlan(
        symbol=draft.symbol,
        direction=s.direction,
        remaining_qty=remaining,
        signal_id=s.id,
        trade_type=s.trade_type,
        timeframe=s.timeframe,
        stop=s.stop,
        created_at=created_at,
        side=draft.side or s.direction.entry_side,
        instrument_type=draft.instrument_type,
        chart_symbol=None if s.symbol == draft.symbol else s.symbol,
    )


def add_request(plan: ScaleInPlan, client_order_id: str, price: Decimal) -> OrderRequest:
    """The add: a day market order for the remaining quantity, on the entry's side.

    ``price`` is the traded instrument's current price (the one the add is checked against by
    the caller); it must be a positive number, so an add is never sent without a price.
    """
    positive(price, "price")
    return OrderRequest(
        client_order_id=client_order_id,
        symbol=plan.symbol,
        side=plan.entry_side,
        qty=plan.remaining_qty,
        order_type=OrderType.MARKET,
        time_in_force=TimeInForce.DAY,
        signal_id=plan.signal_id,
        instrument_type=plan.instrument_type,
    )


@dataclass(frozen=True, slots=True)
class ScaleInDecision:
    """What to do with a plan: ``add`` the remaining quantity or ``cancel`` the plan, with a
    sentence a trader can read. ``price`` is the deciding bar's close on the plan's chart."""

    kind: ScaleInAction
    plan: ScaleInPlan
    reason: str
    at: datetime
    price: Decimal | None = None


class ScaleInPlanner:
    """Decides when a :class:`ScaleInPlan` adds or is cancelled (see the module docstring).

    Keeps, per plan (by signal id), the last bar seen and how many bars were counted.
    """

    def __init__(
        self,
        calendar: MarketCalendar | None = None,
        *,
        swing_max_bars: int = DEFAULT_SWING_MAX_BARS,
        eod_lead: timedelta = DEFAULT_EOD_LEAD,
    ):
        if calendar is None:
            calendar = default_calendar()
        if isinstance(swing_max_bars, bool) or not isinstance(swing_max_bars, int):
            raise ValidationError("swing_max_bars must be an integer")
        if swing_max_bars < 1:
            raise ValidationError("swing_max_bars must be at least 1")
        if eod_lead < timedelta(0):
            raise ValidationError("eod_lead must not be negative")
        self.calendar = calendar
        self.swing_max_bars = swing_max_bars
        self.eod_lead = eod_lead
        #: signal id -> (end of the last bar counted, bars counted)
        self._seen: dict[int, tuple[datetime, int]] = {}
        self._deadlines: dict[date, datetime] = {}

    # -- state ---------------------------------------------------------------------------------
    def bars_seen(self, plan: ScaleInPlan) -> int:
        """Bars counted for the plan so far (those that closed after its ``created_at``)."""
        seen = self._seen.get(plan.signal_id)
        return 0 if seen is None else seen[1]

    def forget(self, plan: ScaleInPlan) -> None:
        """Drop what is kept about a plan (e.g. when the executor drops it)."""
        self._seen.pop(plan.signal_id, None)

    # -- decisions -----------------------------------------------------------------------------
    def on_bar(
        self,
        plan: ScaleInPlan,
        bar: Bar,
        clouds: Mapping[str, CloudState | None],
        *,
        position: Position | None,
    ) -> ScaleInDecision | None:
        """Read one completed bar of the plan's chart; a decision, or None to keep waiting.

        ``clouds`` are the ``fast``/``pullback``/``macro`` clouds after ``bar`` (None while not
        warmed up: no add and no macro check then). ``position`` is the current position in the
        traded instrument (None when there is none). A bar of another symbol is an error.
        """
        if bar.symbol != plan.watch_symbol:
            raise ValueError(
                f"bar of {bar.symbol} given to the scale-in plan watching {plan.watch_symbol}"
            )
        end = utc(bar.end)
        if end <= plan.created_at:
            return None
        key = plan.signal_id
        seen = self._seen.get(key)
        if seen is not None and end <= seen[0]:
            return None
        count = (0 if seen is None else seen[1]) + 1
        self._seen[key] = (end, count)
        decision = self._decide(plan, bar, end, clouds, position, count)
        if decision is not None:
            self._seen.pop(key, None)
        return decision

    def check_expiry(self, plan: ScaleInPlan, now: datetime) -> ScaleInDecision | None:
        """A cancel when a day or scalp plan's session cutoff has passed at ``now`` (for when no
        bar arrives); None otherwise. Swing plans expire by bar count in :meth:`on_bar`."""
        now = utc(now)
        deadline = self.deadline(plan)
        if deadline is not None and now >= deadline:
            self.forget(plan)
            return self._cancel(plan, self._expired_reason(plan, deadline), now, None)
        return None

    def deadline(self, plan: ScaleInPlan) -> datetime | None:
        """When a day or scalp plan expires: its session's close minus ``eod_lead`` (the session
        of ``created_at``, or the next one for a plan made outside a session); None for swings."""
        if plan.trade_type is TradeType.SWING:
            return None
        cal = self.calendar
        session = cal.session_date(plan.created_at)
        if session is None:
            session = cal.session_date(cal.next_open(plan.created_at))
            assert session is not None
        deadline = self._deadlines.get(session)
        if deadline is None:
            deadline = self._deadlines[session] = cal.session_close(session) - self.eod_lead
        return deadline

    # -- rules ---------------------------------------------------------------------------------
    def _decide(
        self,
        plan: ScaleInPlan,
        bar: Bar,
        end: datetime,
        clouds: Mapping[str, CloudState | None],
        position: Position | None,
        count: int,
    ) -> ScaleInDecision | None:
        close = bar.close
        long = plan.long
        if not _holds(position, plan.entry_side):
            return self._cancel(
                plan, f"no {plan.entry_side.value} position in {plan.symbol} to add to", end, close
            )
        deadline = self.deadline(plan)
        if deadline is not None and end >= deadline:
            return self._cancel(plan, self._expired_reason(plan, deadline), end, close)
        macro = clouds.get("macro")
        if macro is not None:
            x = float(close)
            if (x < macro.bottom) if long else (x > macro.top):
                word, edge, level = (
                    ("below", "bottom", macro.bottom) if long else ("above", "top", macro.top)
                )
                return self._cancel(
                    plan, f"close {close} {word} the macro cloud {edge} {level:.2f}", end, close
                )
        if (close <= plan.stop) if long else (close >= plan.stop):
            word = "at or below" if long else "at or above"
            return self._cancel(plan, f"close {close} {word} the stop {plan.stop}", end, close)
        pull = clouds.get("pullback")
        if pull is not None:
            x = float(close)
            if long and float(bar.low) <= pull.top and x >= pull.bottom:
                return ScaleInDecision(
                    ScaleInAction.ADD,
                    plan,
                    f"low {bar.low} touched the pullback cloud (top {pull.top:.2f}) and the "
                    f"close {close} held above its bottom {pull.bottom:.2f}",
                    end,
                    close,
                )
            if not long and float(bar.high) >= pull.bottom and x <= pull.top:
                return ScaleInDecision(
                    ScaleInAction.ADD,
                    plan,
                    f"high {bar.high} touched the pullback cloud (bottom {pull.bottom:.2f}) and "
                    f"the close {close} held below its top {pull.top:.2f}",
                    end,
                    close,
                )
        if plan.trade_type is TradeType.SWING and count >= self.swing_max_bars:
            return self._cancel(
                plan, f"expired: no pullback that held in {count} {plan.timeframe} bars", end, close
            )
        return None

    @staticmethod
    def _expired_reason(plan: ScaleInPlan, deadline: datetime) -> str:
        local = deadline.astimezone(EASTERN)
        return (
            f"expired: no pullback that held before the {plan.trade_type.value} cutoff "
            f"{local:%H:%M} ET on {local:%Y-%m-%d}"
        )

    @staticmethod
    def _cancel(
        plan: ScaleInPlan, reason: str, at: datetime, price: Decimal | None
    ) -> ScaleInDecision:
        return ScaleInDecision(ScaleInAction.CANCEL, plan, reason, at, price)


def _holds(position: Position | None, side: Side) -> bool:
    """True when ``position`` is open on the entry's side."""
    if position is None:
        return False
    return position.qty > 0 if side is Side.BUY else position.qty < 0


__all__ = [
    "DEFAULT_EOD_LEAD",
    "DEFAULT_SWING_MAX_BARS",
    "ScaleInAction",
    "ScaleInDecision",
    "ScaleInPlan",
    "ScaleInPlanner",
    "add_request",
    "client_order_id_for_add",
    "plan_from_draft",
]
