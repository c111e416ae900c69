"""TradeJournalWriter: applies fills to positions and keeps the trade journal.

Seed 001's ``TradeJournalWriter``: every fill updates the position (average cost, realized P&L)
and the round-trip record in ``trade_executions``. An opening fill starts a trade
(:meth:`~TradeJournalWriter.record_entry`) with the signal's context: the seed 000 R6.1 record
fields (trigger, strategy, sector, regime, factor scores, portfolio value, notes) and the stop,
target and leverage the pipeline decided for the traded instrument. Adding fills update its size
and average entry, reducing fills accumulate realized P&L, and the fill that flattens the
position closes it (:meth:`~TradeJournalWriter.record_exit`) with an exit reason read from the
closing order's client order id (:func:`exit_reason_for`) and the holding period.

The session's realized P&L and win/loss counts are kept as running totals: read from the store
once per session, then updated as trades close.
"""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from core.domain import (
    ONE,
    ZERO,
    DailyPnl,
    Direction,
    Fill,
    Order,
    Position,
    Signal,
    StageDecision,
    TradeExecution,
    TradeStatus,
    TradeType,
    ValidationError,
    apply_fill_to_position,
    contract_multiplier,
    is_expiry_settlement,
    to_decimal,
    utc,
)
from core.instruments.sector_map import sector_of
from core.journal.queries import SessionTotals, closed_in_session
from core.ports import UnitOfWork

#: ``TradeExecution.trigger`` values (seed 000 R6.1).
TRIGGER_SIGNAL = "signal"
TRIGGER_MANUAL = "manual"
TRIGGER_REBALANCE = "rebalance"

#: Exit reasons of orders that are not exit-monitor exits.
EXIT_TARGET = "target"
EXIT_STOP_LOSS = "stop_loss"
#: An option held through its expiry: settled by the broker (intrinsic value, or worthless).
EXIT_EXPIRY = "expiry"
#: What an options trade keeps from its pipeline decision: the contract and how it was chosen.
OPTION_NOTES = (
    "underlying",
    "expiry",
    "strike",
    "right",
    "expiry_kind",
    "iv",
    "delta",
    "premium_at_risk",
)
EXIT_KILL_SWITCH = "kill_switch"
EXIT_MANUAL = "manual"
EXIT_SIGNAL = "signal"
EXIT_REBALANCE = "rebalance"

# Exit-monitor exits: ax-x{trade id}-{reason}-{attempt}; the reason may contain underscores.
_EXIT_MONITOR_ID = re.compile(r"^ax-x[^-]+-(?P<reason>[a-z][a-z0-9_]*)-\d+$")
# Kill-switch automatic closes: ax-k{...}-close-{symbol}.
_KILL_SWITCH_CLOSE = re.compile(r"^ax-k.*-close-")


def exit_reason_for(order: Order) -> str:
    """Why ``order`` closed a position, from its client order id.

    ``ax-x{trade}-{reason}-{n}`` (exit monitor) gives its reason (an exit monitor reason such as
    ``stop_loss``, ``cloud_flip`` or ``max_hold_days``); kill-switch closes
    (``ax-k…-close-{symbol}``) and flattens (``…-flatten…``) give ``kill_switch``; bracket legs
    ``…-tp``/``…-sl`` give ``target``/``stop_loss``; other command orders (``ax-c…``) give
    ``manual``; rebalance plan orders (``ax-r…``) give ``rebalance``; anything else (a
    signal's own order) gives ``signal``.
    """
    coid = order.client_order_id
    if is_expiry_settlement(coid):
        return EXIT_EXPIRY
    exit_monitor = _EXIT_MONITOR_ID.match(coid)
    if exit_monitor is not None:
        return exit_monitor.group("reason")
    if _KILL_SWITCH_CLOSE.match(coid) or "-flatten" in coid:
        return EXIT_KILL_SWITCH
    if coid.endswith("-tp"):
        return EXIT_TARGET
    if coid.endswith("-sl"):
        return EXIT_STOP_LOSS
    if coid.startswith("ax-c"):
        return EXIT_MANUAL
    if coid.startswith("ax-r"):
        return EXIT_REBALANCE
    return EXIT_SIGNAL


def trigger_for(order: Order, signal: Signal | None) -> str | None:
    """What started a trade: a signal, a trader's manual order (``ax-c…``) or a rebalance plan
    (``ax-r…``, the smart order router's children)."""
    if signal is not None or order.client_order_id.startswith("ax-s"):
        return TRIGGER_SIGNAL
    if order.client_order_id.startswith("ax-c"):
        return TRIGGER_MANUAL
    if order.client_order_id.startswith("ax-r"):
        return TRIGGER_REBALANCE
    return None


#: Decisions recorded for a signal after its entry (exits, scale-in adds): not entry notes.
_AFTER_ENTRY_STAGES = frozenset({"exit", "scale_in"})


def last_approved_details(decisions: list[StageDecision]) -> dict[str, Any]:
    """The notes the entry pipeline accumulated up to its last approving stage (empty if
    none)."""
    for decision in reversed(decisions):
        if decision.approved and decision.stage not in _AFTER_ENTRY_STAGES:
            return dict(decision.details)
    return {}


def _decimal_note(details: dict[str, Any], key: str) -> Decimal | None:
    value = details.get(key)
    if value is None or value == "":
        return None
    try:
        return to_decimal(value, key)
    except ValidationError:
        return None


def _entry_notes(details: dict[str, Any]) -> str | None:
    """A short text on how the trade came about: the instrument choice, the sizing, a scale-in
    split and any risk gate reduction."""
    parts = [str(details.get("why") or ""), str(details.get("sizing") or "")]
    first = _decimal_note(details, "entry_qty")
    rest = _decimal_note(details, "scale_in_remaining")
    if first is not None and rest:
        parts.append(f"scale-in: {first} first, {rest} on a pullback")
    sent = first if first is not None else _decimal_note(details, "qty")
    approved = _decimal_note(details, "approved_qty")
    if sent is not None and approved is not None and approved != sent:
        parts.append(f"risk gate reduced {sent} to {approved}")
    text = "; ".join(p for p in parts if p)
    return text or None


def holding_seconds(trade: TradeExecution) -> int | None:
    """Whole seconds from entry to exit (``None`` while the trade is open)."""
    if trade.exit_time is None:
        return None
    return (utc(trade.exit_time) - utc(trade.entry_time)) // timedelta(seconds=1)


class TradeJournalWriter:
    """Keeps positions and trade records in step with fills. Holds a cache of positions and of
    the current session's totals, which is safe because the executor is the only writer of
    positions and trades."""

    def __init__(self) -> None:
        self.positions: dict[str, Position] = {}
        self.open_trades: dict[str, TradeExecution] = {}
        self._sessions: dict[date, SessionTotals] = {}

    def load(self, uow: UnitOfWork) -> None:
        self.positions = {p.symbol: p for p in uow.positions.all()}
        self.open_trades = {t.ticker: t for t in uow.journal.open_trades()}
        self._sessions = {}

    # ------------------------------------------------------------------ fills
    def record_fill(
        self,
        uow: UnitOfWork,
        order: Order,
        fill: Fill,
        portfolio_value: Decimal | None = None,
    ) -> Position:
        """Apply ``fill`` (already stored and applied to ``order``) to position and journal.

        ``portfolio_value`` is the account equity at the time, recorded on a trade it opens.
        """
        before = self.positions.get(fill.symbol)
        change = apply_fill_to_position(before, fill)
        pos = change.position
        kind = order.request.instrument_type
        if change.opened and pos.instrument_type != kind:
            pos = replace(pos, instrument_type=kind)
        # prices are per share; an option contract's P&L is x100 (its multiplier)
        multiplier = contract_multiplier(kind)
        if multiplier != 1:
            change = replace(change, realized_pnl=change.realized_pnl * multiplier)
        uow.positions.upsert(pos)
        if pos.qty == 0:
            self.positions.pop(fill.symbol, None)
        else:
            self.positions[fill.symbol] = pos

        trade = self.open_trades.get(fill.symbol) if before is not None else None
        reduced = before is not None and not change.opened and abs(pos.qty) < abs(before.qty)
        if change.closed:
            if trade is not None:
                self.record_exit(uow, pos, None, order, fill, realized_pnl=change.realized_pnl)
        elif reduced:
            if trade is not None:
                self._add_exit(trade, pos, order, fill, change.realized_pnl)
                uow.journal.update_trade(trade)
        elif not change.opened and trade is not None:  # added to the position
            trade.shares = abs(pos.qty)
            trade.entry_price = pos.avg_entry_price
            uow.journal.update_trade(trade)
        if change.opened:
            signal = uow.signals.get(order.request.signal_id) if order.request.signal_id else None
            self.record_entry(uow, signal, order, fill, pos, portfolio_value=portfolio_value)
        return pos

    def record_entry(
        self,
        uow: UnitOfWork,
        signal: Signal | None,
        order: Order,
        fill: Fill,
        position: Position,
        portfolio_value: Decimal | None = None,
    ) -> TradeExecution:
        """Open the trade record for ``position`` (the position after its opening ``fill``).

        With a signal, the record carries its context: strategy (the signal source), the sector
        of the signal's ticker, the regime and factor scores from the signal's metadata, and the
        leverage, stop and target of the last approved pipeline decision (in the traded
        instrument), falling back to the signal's own stop and target.
        """
        details: dict[str, Any] = {}
        if signal is not None and signal.id is not None:
            details = last_approved_details(uow.decisions.for_signal(signal.id))
        original = signal.symbol if signal is not None else None
        sector = sector_of(original or fill.symbol)
        stop = _decimal_note(details, "stop")
        target = _decimal_note(details, "target")
        leverage = _decimal_note(details, "leverage")
        metadata: dict[str, Any] = {"source": signal.source if signal else TRIGGER_MANUAL}
        for key in ("etf_stop", "max_hold_days", *OPTION_NOTES):
            if details.get(key):
                metadata[key] = str(details[key])
        if signal is not None:
            if stop is not None and stop != signal.stop:
                metadata["signal_stop"] = str(signal.stop)
            if target is not None and signal.target is not None and target != signal.target:
                metadata["signal_target"] = str(signal.target)
        trigger = trigger_for(order, signal)
        if signal is not None:
            notes = _entry_notes(details)
        elif trigger == TRIGGER_MANUAL:
            notes = f"manual order {order.client_order_id}"
        elif trigger == TRIGGER_REBALANCE:
            notes = f"rebalance order {order.client_order_id}"
        else:
            notes = None
        # A rebalance builds a holding, not a day trade: the kill switch's day-trade closes and
        # the end-of-day exit leave it alone (it has no stop, so no exit rule manages it).
        if signal is not None:
            trade_type = signal.trade_type
        else:
            trade_type = TradeType.SWING if trigger == TRIGGER_REBALANCE else TradeType.DAY
        trade = TradeExecution(
            ticker=fill.symbol,
            direction=Direction.LONG if position.qty > 0 else Direction.SHORT,
            trade_type=trade_type,
            entry_price=position.avg_entry_price,
            shares=abs(position.qty),
            entry_time=fill.at,
            signal_id=signal.id if signal else None,
            instrument_type=order.request.instrument_type,
            original_ticker=original,
            leverage=leverage if leverage is not None else ONE,
            stop_loss=stop if stop is not None else (signal.stop if signal else None),
            target_price=target if target is not None else (signal.target if signal else None),
            conviction=signal.conviction if signal else None,
            broker=fill.broker,
            order_id=order.client_order_id,
            metadata=metadata,
            trigger=trigger,
            strategy=signal.source
            if signal
            else (TRIGGER_REBALANCE if trigger == TRIGGER_REBALANCE else None),
            sector=sector.value if sector is not None else None,
            regime=_regime(signal),
            factor_scores=dict(signal.metadata.get("factor_scores") or {}) if signal else {},
            portfolio_value=portfolio_value,
            notes=notes,
        )
        uow.journal.open_trade(trade)
        self.open_trades[fill.symbol] = trade
        return trade

    def record_exit(
        self,
        uow: UnitOfWork,
        position: Position,
        exit_reason: str | None,
        order: Order,
        fill: Fill,
        realized_pnl: Decimal | None = None,
    ) -> TradeExecution | None:
        """Close the open trade in ``position.symbol`` with ``fill``, the fill that flattened
        the position (``position`` is the position after it: flat, or the opposite side when
        the fill flipped it).

        ``exit_reason`` defaults to :func:`exit_reason_for` the order. ``realized_pnl`` is what
        this fill realized; when omitted it is computed from the trade's average entry price.
        Returns the closed trade, or ``None`` when no trade is open in the symbol.
        """
        trade = self.open_trades.get(position.symbol)
        if trade is None:
            return None
        if realized_pnl is None:
            sign = 1 if trade.direction is Direction.LONG else -1
            closing = _closed_qty(trade, position, fill)
            realized_pnl = (fill.price - trade.entry_price) * closing * sign
        self._add_exit(trade, position, order, fill, realized_pnl)
        exits = trade.metadata.get("exits", [])
        qty = sum((Decimal(e["qty"]) for e in exits), ZERO)
        notional = sum((Decimal(e["qty"]) * Decimal(e["price"]) for e in exits), ZERO)
        trade.exit_price = notional / qty if qty else fill.price
        trade.exit_time = fill.at
        trade.status = TradeStatus.CLOSED
        trade.exit_reason = exit_reason or exit_reason_for(order)
        basis = trade.entry_price * trade.shares * contract_multiplier(trade.instrument_type)
        trade.pnl_pct = (trade.pnl or ZERO) / basis if basis else None
        trade.metadata["holding_seconds"] = holding_seconds(trade)
        uow.journal.update_trade(trade)
        self.open_trades.pop(position.symbol, None)
        totals = self._sessions.get(utc(fill.at).date())
        if totals is not None:
            totals.add(trade.pnl)
        return trade

    @staticmethod
    def _add_exit(
        trade: TradeExecution, position: Position, order: Order, fill: Fill, realized: Decimal
    ) -> None:
        """Record a reducing fill on the trade: the quantity it closed, its price and the P&L
        it realized."""
        trade.pnl = (trade.pnl or ZERO) + realized
        exits = trade.metadata.setdefault("exits", [])
        exits.append(
            {
                "qty": str(_closed_qty(trade, position, fill)),
                "price": str(fill.price),
                "order": order.client_order_id,
            }
        )

    # ------------------------------------------------------------------ marks and daily P&L
    def mark(self, uow: UnitOfWork, prices: dict[str, Decimal]) -> None:
        """Store current prices on positions (for unrealized P&L in the views)."""
        for symbol, price in prices.items():
            pos = self.positions.get(symbol)
            if pos is not None and pos.current_price != price:
                pos = pos.marked(price)
                self.positions[symbol] = pos
                uow.positions.upsert(pos)

    def session_totals(self, uow: UnitOfWork, session: date) -> SessionTotals:
        """Realized P&L and counts of the trades closed on ``session``: read from the store the
        first time a session is asked for, then kept up to date by :meth:`record_exit`."""
        totals = self._sessions.get(session)
        if totals is None:
            totals = SessionTotals.of(closed_in_session(uow, session))
            self._sessions = {session: totals}
        return totals

    def update_daily_pnl(
        self,
        uow: UnitOfWork,
        session: date,
        equity: Decimal,
        now: datetime,
        kill_switch_triggered: bool,
    ) -> DailyPnl:
        """Upsert today's row: starting equity is the first equity seen in the session."""
        row = uow.journal.daily_pnl(session)
        unrealized = sum(
            (
                p.unrealized_pnl * contract_multiplier(p.instrument_type)
                for p in self.positions.values()
            ),
            ZERO,
        )
        if row is None:
            row = DailyPnl(
                date=session,
                starting_equity=equity,
                ending_equity=equity,
                realized_pnl=ZERO,
                unrealized_pnl=unrealized,
                max_drawdown=ZERO,
                metadata={"peak_equity": str(equity)},
            )
        peak = max(Decimal(row.metadata.get("peak_equity", str(equity))), equity)
        drawdown = (peak - equity) / peak if peak > 0 else ZERO
        totals = self.session_totals(uow, session)
        row = replace(
            row,
            ending_equity=equity,
            unrealized_pnl=unrealized,
            realized_pnl=totals.realized,
            total_trades=totals.trades,
            winning_trades=totals.wins,
            losing_trades=totals.losses,
            max_drawdown=max(row.max_drawdown or ZERO, drawdown),
            kill_switch_triggered=row.kill_switch_triggered or kill_switch_triggered,
            metadata={**row.metadata, "peak_equity": str(peak), "updated_at": now.isoformat()},
        )
        uow.journal.upsert_daily_pnl(row)
        return row


def _closed_qty(trade: TradeExecution, position: Position, fill: Fill) -> Decimal:
    """How much of ``fill`` reduced the trade: all of it, unless it flipped the position to the
    other side (``position`` is the position after the fill)."""
    flipped = position.qty != 0 and (position.qty > 0) != (trade.direction is Direction.LONG)
    return fill.qty - abs(position.qty) if flipped else fill.qty


def _regime(signal: Signal | None) -> str | None:
    if signal is None:
        return None
    regime = signal.metadata.get("regime")
    return None if regime is None else str(regime)
