"""Performance tracking over journal trades (seed 000 R6.2): per-trade P&L with holding period,
win/loss by strategy, sector, regime or instrument type, and an overall summary.

Pure functions over a sequence of :class:`~core.domain.TradeExecution`. Only closed trades count
towards wins, losses and averages; a trade with a positive realized P&L is a win, a negative one
a loss and a zero one neither (it still counts as a trade). Sums are exact; ratios and averages
are Decimal divisions in the current decimal context.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from enum import Enum
from typing import Literal, get_args

from core.domain import ZERO, Direction, TradeExecution, TradeStatus, utc
from core.journal.queries import exact_sum

GroupKey = Literal["strategy", "sector", "regime", "instrument_type"]
GROUP_KEYS: tuple[str, ...] = get_args(GroupKey)
#: The group key of :func:`summary`'s figures.
ALL_TRADES = "all"


@dataclass(frozen=True, slots=True)
class TradeStats:
    """One trade's realized P&L, return on its entry cost and holding period.

    ``pnl`` is the realized P&L (for an open trade: what partial exits realized so far, or
    ``None``); ``holding`` is entry to exit, ``None`` while the trade is open.
    """

    trade: TradeExecution
    pnl: Decimal | None
    pnl_pct: Decimal | None
    holding: timedelta | None
    closed: bool

    @property
    def is_win(self) -> bool:
        return self.closed and self.pnl is not None and self.pnl > 0

    @property
    def is_loss(self) -> bool:
        return self.closed and self.pnl is not None and self.pnl < 0


@dataclass(frozen=True, slots=True)
class GroupStats:
    """Win/loss figures of the closed trades sharing one value of a key."""

    key: str | None
    trades: int
    wins: int
    losses: int
    win_rate: Decimal  # wins / trades
    total_pnl: Decimal
    average_pnl: Decimal
    average_holding: timedelta | None

    @property
    def breakeven(self) -> int:
        return self.trades - self.wins - self.losses


@dataclass(frozen=True, slots=True)
class JournalSummary:
    """Figures over every closed trade, plus how many are still open."""

    closed: GroupStats
    open_trades: int
    average_win: Decimal | None
    average_loss: Decimal | None
    #: Gross profit over gross loss; ``None`` without losing trades.
    profit_factor: Decimal | None


def trade_stats(trade: TradeExecution) -> TradeStats:
    """P&L and holding period of ``trade``.

    A closed trade's P&L is its recorded realized P&L; a closed record without one (written by
    hand) is valued from its entry and exit prices.
    """
    closed = trade.status is TradeStatus.CLOSED
    pnl = trade.pnl
    if closed and pnl is None:
        if trade.exit_price is not None:
            sign = 1 if trade.direction is Direction.LONG else -1
            pnl = (trade.exit_price - trade.entry_price) * trade.shares * sign
        else:
            pnl = ZERO
    pnl_pct = trade.pnl_pct
    basis = trade.entry_price * trade.shares
    if pnl_pct is None and closed and pnl is not None and basis:
        pnl_pct = pnl / basis
    holding = None
    if trade.exit_time is not None:
        holding = utc(trade.exit_time) - utc(trade.entry_time)
    return TradeStats(trade, pnl, pnl_pct, holding, closed)


def _group(key: str | None, stats: Sequence[TradeStats]) -> GroupStats:
    n = len(stats)
    total = exact_sum(s.pnl or ZERO for s in stats)
    wins = sum(1 for s in stats if s.is_win)
    losses = sum(1 for s in stats if s.is_loss)
    holdings = [s.holding for s in stats if s.holding is not None]
    return GroupStats(
        key=key,
        trades=n,
        wins=wins,
        losses=losses,
        win_rate=Decimal(wins) / Decimal(n) if n else ZERO,
        total_pnl=total,
        average_pnl=total / n if n else ZERO,
        average_holding=sum(holdings, timedelta()) / len(holdings) if holdings else None,
    )


def _closed(trades: Iterable[TradeExecution]) -> list[TradeStats]:
    return [s for s in map(trade_stats, trades) if s.closed]


def _key_of(trade: TradeExecution, key: str) -> str | None:
    value = getattr(trade, key)
    if value is None:
        return None
    return value.value if isinstance(value, Enum) else str(value)


def win_loss_by(trades: Iterable[TradeExecution], key: GroupKey) -> dict[str | None, GroupStats]:
    """Closed trades grouped by ``key`` (``strategy``, ``sector``, ``regime`` or
    ``instrument_type``), each group with its win/loss figures; groups in key order, trades
    without a value for the key last (under ``None``)."""
    if key not in GROUP_KEYS:
        raise ValueError(f"cannot group trades by {key!r}; use one of {', '.join(GROUP_KEYS)}")
    groups: dict[str | None, list[TradeStats]] = {}
    for s in _closed(trades):
        groups.setdefault(_key_of(s.trade, key), []).append(s)
    ordered = sorted(groups, key=lambda k: (k is None, k or ""))
    return {k: _group(k, groups[k]) for k in ordered}


def summary(trades: Iterable[TradeExecution]) -> JournalSummary:
    """Win/loss figures over all closed trades, average win and loss, profit factor and the
    number of open trades."""
    trades = list(trades)
    closed = _closed(trades)
    wins = [s.pnl for s in closed if s.is_win and s.pnl is not None]
    losses = [s.pnl for s in closed if s.is_loss and s.pnl is not None]
    gross_profit, gross_loss = exact_sum(wins), -exact_sum(losses)
    return JournalSummary(
        closed=_group(ALL_TRADES, closed),
        open_trades=sum(1 for t in trades if t.status is TradeStatus.OPEN),
        average_win=gross_profit / len(wins) if wins else None,
        average_loss=-gross_loss / len(losses) if losses else None,
        profit_factor=gross_profit / gross_loss if losses else None,
    )
