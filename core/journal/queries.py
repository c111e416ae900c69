"""Reading the journal: a session's P&L summary and the trade history (seed 001
``get_daily_summary`` and ``get_trade_history``).

A session's realized P&L and trade counts come from the trades that closed on that date (the
UTC date of their exit time). Sums are exact: they are taken without rounding, so adding trades
one at a time gives the same figure as adding them all at once, in any order.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import MAX_PREC, Decimal, localcontext

from core.domain import ZERO, DailyPnl, TradeExecution, utc
from core.ports import UnitOfWork

#: ``DailyPnl.metadata["source"]`` of a summary computed from closed trades (no stored row).
COMPUTED_FROM_TRADES = "closed_trades"


def exact_sum(values: Iterable[Decimal]) -> Decimal:
    """The sum of ``values`` without rounding (independent of the order of the terms)."""
    with localcontext() as ctx:
        ctx.prec = MAX_PREC
        return sum(values, ZERO)


def session_span(session: date) -> tuple[datetime, datetime]:
    """The UTC instants ``[start, end)`` of the calendar date ``session``."""
    start = datetime.combine(session, time.min, tzinfo=UTC)
    return start, start + timedelta(days=1)


@dataclass(slots=True)
class SessionTotals:
    """Realized P&L and win/loss counts of the trades that closed in one session."""

    realized: Decimal = ZERO
    trades: int = 0
    wins: int = 0
    losses: int = 0

    def add(self, pnl: Decimal | None) -> None:
        """Count one closed trade with realized P&L ``pnl`` (``None`` counts as zero)."""
        value = pnl if pnl is not None else ZERO
        self.realized = exact_sum((self.realized, value))
        self.trades += 1
        if value > 0:
            self.wins += 1
        elif value < 0:
            self.losses += 1

    @classmethod
    def of(cls, trades: Iterable[TradeExecution]) -> SessionTotals:
        """Totals over ``trades`` (the caller picks the session's closed trades)."""
        totals = cls()
        for trade in trades:
            totals.add(trade.pnl)
        return totals


def closed_in_session(uow: UnitOfWork, session: date) -> list[TradeExecution]:
    """The trades that closed on ``session`` (UTC date of the exit), in exit order."""
    start, end = session_span(session)
    return uow.journal.closed_between(start, end)


def get_daily_summary(uow: UnitOfWork, session_date: date) -> DailyPnl:
    """The stored P&L summary of ``session_date``; when the executor has not written one (it
    does on every mark while the market is open), one computed from the trades closed that day.

    A computed summary knows no equity: its starting and ending equity and unrealized P&L are
    zero and ``metadata["source"]`` is :data:`COMPUTED_FROM_TRADES`.
    """
    row = uow.journal.daily_pnl(session_date)
    if row is not None:
        return row
    totals = SessionTotals.of(closed_in_session(uow, session_date))
    return DailyPnl(
        date=session_date,
        starting_equity=ZERO,
        ending_equity=ZERO,
        realized_pnl=totals.realized,
        unrealized_pnl=ZERO,
        total_trades=totals.trades,
        winning_trades=totals.wins,
        losing_trades=totals.losses,
        max_drawdown=None,
        metadata={"source": COMPUTED_FROM_TRADES},
    )


def get_trade_history(
    uow: UnitOfWork, ticker: str | None, days: int, now: datetime
) -> list[TradeExecution]:
    """Trades entered in the last ``days`` days up to ``now`` (open and closed), newest first;
    with ``ticker``, only trades in that traded symbol."""
    if days < 0:
        raise ValueError(f"days must not be negative, got {days}")
    since = utc(now) - timedelta(days=days)
    return uow.journal.trades_since(since, ticker)
