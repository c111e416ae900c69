"""The position manager: watches the executor's open trades and closes them when an exit fires.

The last two boxes of seed 001's execution pipeline (position manager → exit monitor). Each tick
the executor hands it the current prices; for every open trade it keeps a
:class:`~core.exits.model.TrackedPosition` (the trade's entry, its stop and target in the traded
instrument, its leverage), feeds the :class:`~core.exits.monitor.ExitMonitor` the bars completed
since the last tick, and asks the monitor whether an exit fires.

An exit becomes a reduce-only market order for the whole position, with a deterministic client
order id ``ax-x{trade id}-{reason}-{attempt}``, written ahead like every other order. Exits are
never blocked: they do not go through the risk gate and the kill switch does not stop them. While
an exit (or any other reduce-only order) is working for a symbol no second one is sent; the
position's protective bracket legs are cancelled first so they cannot close it twice.

The hot path, :meth:`PositionManager.on_price` (mark one position and check its exits), does no
I/O; ``benchmarks/ticks.py`` measures it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING

from core.domain import (
    OrderRequest,
    Side,
    StageDecision,
    TradeExecution,
    ValidationError,
)
from core.exits.model import ExitDecision, ExitReason, TrackedPosition
from core.exits.monitor import ExitMonitor
from core.marketdata.bars import timeframe_minutes

if TYPE_CHECKING:
    from core.executor import TradeExecutor

log = logging.getLogger("axion.positions")

#: Bars fetched to prime a (symbol, timeframe) the first time (the macro cloud needs 50).
HISTORY_BARS = 150


def exit_client_order_id(trade_id: int, reason: ExitReason | str, attempt: int) -> str:
    return f"ax-x{trade_id}-{ExitReason(reason).value}-{attempt}"


@dataclass(slots=True)
class Watched:
    """One open trade under watch: its key (so a changed trade is rebuilt) and position."""

    key: tuple[object, ...]
    trade: TradeExecution
    position: TrackedPosition | None
    #: Why the trade cannot be watched (no stop, say); logged once.
    problem: str | None = None


def _trade_key(trade: TradeExecution) -> tuple[object, ...]:
    return (trade.id, trade.shares, trade.entry_price, trade.stop_loss, trade.target_price)


def tracked_position(trade: TradeExecution) -> TrackedPosition:
    """The exit monitor's view of an open trade; ValidationError if it has no usable stop."""
    if trade.stop_loss is None:
        raise ValidationError("the trade has no stop, so the exit rules cannot manage it")
    timeframe = trade.metadata.get("timeframe") if trade.metadata else None
    return TrackedPosition(
        symbol=trade.ticker,
        direction=trade.direction,
        entry_price=trade.entry_price,
        stop=trade.stop_loss,
        target=trade.target_price,
        qty=trade.shares,
        entry_time=trade.entry_time,
        trade_type=trade.trade_type,
        leverage=trade.leverage,
        instrument_type=trade.instrument_type,
        signal_id=trade.signal_id,
        timeframe=timeframe if isinstance(timeframe, str) else None,
    )


class PositionManager:
    """See the module docstring."""

    def __init__(self, ex: TradeExecutor, monitor: ExitMonitor, history_bars: int = HISTORY_BARS):
        self.ex = ex
        self.monitor = monitor
        self.history_bars = history_bars
        self.watched: dict[str, Watched] = {}
        #: Last completed bar end fed per (symbol, timeframe).
        self._fed_until: dict[tuple[str, str], datetime] = {}
        self.exits_sent = 0
        self.last_decisions: dict[str, ExitDecision] = {}

    # ------------------------------------------------------------------ watching trades
    def sync(self) -> None:
        """Follow the journal's open trades: watch new ones, rebuild changed ones, drop closed."""
        trades = self.ex.journal.open_trades
        for symbol in [s for s in self.watched if s not in trades]:
            del self.watched[symbol]
            self.last_decisions.pop(symbol, None)
        for symbol, trade in trades.items():
            key = _trade_key(trade)
            current = self.watched.get(symbol)
            if current is not None and current.key == key:
                current.trade = trade
                continue
            try:
                position: TrackedPosition | None = tracked_position(trade)
                problem = None
            except ValidationError as exc:
                position, problem = None, str(exc)
                log.info("open %s trade %s is not exit-managed: %s", symbol, trade.id, problem)
            self.watched[symbol] = Watched(key, trade, position, problem)

    def timeframes(self) -> set[tuple[str, str]]:
        return {
            (w.position.symbol, self.monitor.timeframe_of(w.position))
            for w in self.watched.values()
            if w.position is not None
        }

    async def feed_bars(self, now: datetime) -> int:
        """Feed the monitor the bars completed since the last call (history the first time)."""
        fed = 0
        for symbol, timeframe in sorted(self.timeframes()):
            last = self._fed_until.get((symbol, timeframe))
            step = timedelta(minutes=timeframe_minutes(timeframe))
            if last is not None and now < last + step:
                continue
            if last is None:
                bars = await self.ex.market.bars(
                    symbol, timeframe, end=now, limit=self.history_bars
                )
            else:
                bars = await self.ex.market.bars(symbol, timeframe, start=last, end=now)
            for bar in bars:
                if self.monitor.on_bar(symbol, bar, timeframe):
                    fed += 1
            if bars:
                self._fed_until[(symbol, timeframe)] = bars[-1].end
            elif last is None:
                self._fed_until[(symbol, timeframe)] = now - step
        return fed

    # ------------------------------------------------------------------ the hot path
    def on_price(self, symbol: str, price: Decimal, now: datetime) -> ExitDecision | None:
        """Mark one watched position at ``price`` and return the exit that fires, if any."""
        watched = self.watched.get(symbol)
        if watched is None or watched.position is None:
            return None
        return self.monitor.check(watched.position, price, now)

    # ------------------------------------------------------------------ the tick step
    async def run(self, prices: dict[str, Decimal], now: datetime) -> int:
        """One tick: sync, feed bars, check each position, send the exits that fire."""
        self.sync()
        if not self.watched:
            return 0
        await self.feed_bars(now)
        requests: list[tuple[OrderRequest, ExitDecision, TradeExecution]] = []
        for symbol in sorted(self.watched):
            watched = self.watched[symbol]
            price = prices.get(symbol)
            if watched.position is None or price is None:
                continue
            decision = self.monitor.check(watched.position, price, now)
            if decision is None:
                continue
            self.last_decisions[symbol] = decision
            if self._exit_working(symbol):
                continue
            request = self._exit_request(watched, decision)
            if request is not None:
                requests.append((request, decision, watched.trade))
        if not requests:
            return 0
        for request, _, _ in requests:
            await self.ex.cancel_protective_legs(request.symbol)
        decisions = [
            StageDecision(
                trade.signal_id,
                "exit",
                True,
                now,
                decision.detail,
                {
                    "reason": decision.reason.value,
                    "price": str(decision.price),
                    "client_order_id": request.client_order_id,
                    "trade_id": str(trade.id),
                },
            )
            for request, decision, trade in requests
            if trade.signal_id is not None
        ]
        sent = await self.ex.write_and_submit([r for r, _, _ in requests], decisions=decisions)
        self.exits_sent += sent
        for request, decision, _ in requests:
            log.info(
                "exit %s %s: %s (%s)",
                request.symbol,
                decision.reason.value,
                decision.detail,
                request.client_order_id,
            )
        return sent

    def _exit_working(self, symbol: str) -> bool:
        """An exit or another reduce-only order (not a bracket leg) is working for ``symbol``."""
        return any(
            o.symbol == symbol
            and o.request.reduce_only
            and o.parent_id is None
            and not o.status.is_terminal
            for o in self.ex.open_orders.values()
        )

    def _exit_request(self, watched: Watched, decision: ExitDecision) -> OrderRequest | None:
        trade = watched.trade
        pos = self.ex.journal.positions.get(trade.ticker)
        if pos is None or pos.qty == 0 or trade.id is None:
            return None
        with self.ex.store.unit_of_work(read_only=True) as uow:
            attempt = 1
            while uow.orders.get(exit_client_order_id(trade.id, decision.reason, attempt)):
                attempt += 1
        return OrderRequest(
            client_order_id=exit_client_order_id(trade.id, decision.reason, attempt),
            symbol=trade.ticker,
            side=Side.SELL if pos.qty > 0 else Side.BUY,
            qty=abs(pos.qty),
            reduce_only=True,
            signal_id=trade.signal_id,
            instrument_type=trade.instrument_type,
        )


__all__ = ["PositionManager", "exit_client_order_id", "tracked_position"]
