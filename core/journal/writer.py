"""TradeJournalWriter: applies fills to positions and keeps the trade journal.

Seed 001's ``TradeJournalWriter``: every fill updates the position (average cost, realized P&L)
and the round-trip record in ``trade_executions``: an opening fill starts a trade with the signal's
context (stop, target, conviction, trade type), adding fills update its size and average entry,
reducing fills accumulate realized P&L and the fill that flattens the position closes it with an
exit reason.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime
from decimal import Decimal

from core.domain import (
    ZERO,
    DailyPnl,
    Direction,
    Fill,
    Order,
    Position,
    Signal,
    TradeExecution,
    TradeStatus,
    TradeType,
    apply_fill_to_position,
)
from core.ports import UnitOfWork


def exit_reason_for(order: Order) -> str:
    """Why an order closed a position, from its role (bracket leg, manual, kill switch)."""
    coid = order.client_order_id
    if coid.endswith("-tp"):
        return "target"
    if coid.endswith("-sl"):
        return "stop_loss"
    if "-flatten" in coid:
        return "kill_switch"
    if coid.startswith("ax-c"):
        return "manual"
    return "signal"


class TradeJournalWriter:
    """Keeps positions and trade records in step with fills. Holds a cache of positions, which
    is safe because the executor is the only writer of positions."""

    def __init__(self) -> None:
        self.positions: dict[str, Position] = {}
        self.open_trades: dict[str, TradeExecution] = {}

    def load(self, uow: UnitOfWork) -> None:
        self.positions = {p.symbol: p for p in uow.positions.all()}
        self.open_trades = {t.ticker: t for t in uow.journal.open_trades()}

    def record_fill(self, uow: UnitOfWork, order: Order, fill: Fill) -> Position:
        """Apply ``fill`` (already stored and applied to ``order``) to position and journal."""
        before = self.positions.get(fill.symbol)
        change = apply_fill_to_position(before, fill)
        pos = change.position
        uow.positions.upsert(pos)
        if pos.qty == 0:
            self.positions.pop(fill.symbol, None)
        else:
            self.positions[fill.symbol] = pos

        trade = self.open_trades.get(fill.symbol) if before is not None else None
        if change.realized_pnl != 0 or change.closed:
            if trade is not None:
                trade.pnl = (trade.pnl or ZERO) + change.realized_pnl
                exits = trade.metadata.setdefault("exits", [])
                exits.append(
                    {"qty": str(fill.qty), "price": str(fill.price), "order": order.client_order_id}
                )
                if change.closed:
                    self._close(trade, order, fill)
                    self.open_trades.pop(fill.symbol, None)
                uow.journal.update_trade(trade)
        elif not change.opened and trade is not None:  # added to the position
            trade.shares = abs(pos.qty)
            trade.entry_price = pos.avg_entry_price
            uow.journal.update_trade(trade)
        if change.opened:
            signal = uow.signals.get(order.request.signal_id) if order.request.signal_id else None
            trade = self._new_trade(order, fill, pos, signal)
            uow.journal.open_trade(trade)
            self.open_trades[fill.symbol] = trade
        return pos

    @staticmethod
    def _close(trade: TradeExecution, order: Order, fill: Fill) -> None:
        exits = trade.metadata.get("exits", [])
        qty = sum((Decimal(e["qty"]) for e in exits), ZERO)
        notional = sum((Decimal(e["qty"]) * Decimal(e["price"]) for e in exits), ZERO)
        trade.exit_price = notional / qty if qty else fill.price
        trade.exit_time = fill.at
        trade.status = TradeStatus.CLOSED
        trade.exit_reason = exit_reason_for(order)
        basis = trade.entry_price * trade.shares
        trade.pnl_pct = (trade.pnl or ZERO) / basis if basis else None

    @staticmethod
    def _new_trade(
        order: Order, fill: Fill, pos: Position, signal: Signal | None
    ) -> TradeExecution:
        return TradeExecution(
            ticker=fill.symbol,
            direction=Direction.LONG if pos.qty > 0 else Direction.SHORT,
            trade_type=signal.trade_type if signal else TradeType.DAY,
            entry_price=pos.avg_entry_price,
            shares=abs(pos.qty),
            entry_time=fill.at,
            signal_id=signal.id if signal else None,
            instrument_type=order.request.instrument_type,
            original_ticker=signal.symbol if signal else None,
            stop_loss=signal.stop if signal else None,
            target_price=signal.target if signal else None,
            conviction=signal.conviction if signal else None,
            broker=fill.broker,
            order_id=order.client_order_id,
            metadata={"source": signal.source if signal else "manual"},
        )

    def mark(self, uow: UnitOfWork, prices: dict[str, Decimal]) -> None:
        """Store current prices on positions (for unrealized P&L in the views)."""
        for symbol, price in prices.items():
            pos = self.positions.get(symbol)
            if pos is not None and pos.current_price != price:
                pos = pos.marked(price)
                self.positions[symbol] = pos
                uow.positions.upsert(pos)

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
        unrealized = sum((p.unrealized_pnl for p in self.positions.values()), ZERO)
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
        closed = [
            t
            for t in uow.journal.trades(limit=1000)
            if t.status is TradeStatus.CLOSED and t.exit_time and t.exit_time.date() == session
        ]
        row = replace(
            row,
            ending_equity=equity,
            unrealized_pnl=unrealized,
            realized_pnl=sum(((t.pnl or ZERO) for t in closed), ZERO),
            total_trades=len(closed),
            winning_trades=sum(1 for t in closed if (t.pnl or ZERO) > 0),
            losing_trades=sum(1 for t in closed if (t.pnl or ZERO) < 0),
            max_drawdown=max(row.max_drawdown or ZERO, drawdown),
            kill_switch_triggered=row.kill_switch_triggered or kill_switch_triggered,
            metadata={**row.metadata, "peak_equity": str(peak), "updated_at": now.isoformat()},
        )
        uow.journal.upsert_daily_pnl(row)
        return row
