"""Paper account books: cash, positions, realized P&L, commissions, RegT buying power and the
pattern-day-trader (PDT) record.

Formulas (``mark`` = quote mid, see :class:`~core.brokers.paper.PaperBroker`):

* ``equity = cash + sum(qty * mark * m)`` (``qty`` signed; shorts add negative value), where
  ``m`` is the contract multiplier: 100 for options (``qty`` in contracts, prices per share of
  premium), 1 for everything else. Cash and realized P&L move by ``qty * price * m`` too.
* ``long_market_value = sum(qty * mark * m for qty > 0)``; ``short_market_value`` is the same
  sum over shorts (negative). ``gross = long_market_value - short_market_value``.
* ``multiplier = intraday_multiplier`` (4x) when ``equity >= pdt_equity_threshold`` and the
  market is in a session, else ``overnight_multiplier`` (2x); the multiplier used is
  ``min(multiplier, leverage_limit)``.
* ``buying_power = max(0, equity * min(multiplier, leverage_limit) - gross)``.
* ``margin_used = max(0, gross - equity)``: the borrowed part of the gross position value.
* ``day_trade_count``: day trades in the last 5 sessions (the current or latest one included);
  ``day_trades_remaining = max(0, 3 - count)`` below the PDT threshold, else None;
  ``pattern_day_trader = count >= 4``.
* ``daily_pnl = equity - start-of-session equity``, where start-of-session equity is the cash
  and positions held at the session's open marked at each symbol's last 1-minute close before
  the open.

Day trade rule: a day trade is counted once per reducing order (all its partial fills together)
whose fills close, in the same session, quantity that was opened or increased in that session in
that symbol. Same-session quantity is closed first (last in, first out), so selling shares held
overnight after buying more today counts as a day trade.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from core.brokers.paper_config import PaperConfig
from core.brokers.paper_state import (
    contract_multiplier,
    dec_or_none,
    dec_str,
    time_or_none,
    time_str,
)
from core.domain import (
    ZERO,
    AccountState,
    Fill,
    InstrumentType,
    Position,
    Side,
    apply_fill_to_position,
)

#: Day trades allowed in 5 sessions below the PDT equity threshold.
PDT_DAY_TRADE_LIMIT = 3
PDT_WINDOW_SESSIONS = 5


@dataclass(frozen=True, slots=True)
class MarketValues:
    """An account marked to market."""

    equity: Decimal
    long_market_value: Decimal
    short_market_value: Decimal

    @property
    def gross(self) -> Decimal:
        return self.long_market_value - self.short_market_value


def regt_buying_power(
    equity: Decimal, gross: Decimal, in_session: bool, config: PaperConfig
) -> tuple[Decimal, Decimal]:
    """``(buying_power, multiplier)`` under RegT capped by ``config.leverage_limit``."""
    if in_session and equity >= config.pdt_equity_threshold:
        multiplier = config.intraday_multiplier
    else:
        multiplier = config.overnight_multiplier
    multiplier = min(multiplier, config.leverage_limit)
    return max(ZERO, equity * multiplier - gross), multiplier


class PaperAccount:
    """Cash, positions and the day-trade record of one paper account."""

    def __init__(self, cash: Decimal) -> None:
        self.cash = cash
        self.realized_pnl = ZERO
        self.commissions = ZERO
        self.positions: dict[str, Position] = {}
        #: The session the day-trade state and ``sod_equity`` belong to.
        self.day_session: date | None = None
        self.sod_equity: Decimal | None = None
        #: Quantity opened or increased in ``day_session``, per symbol, not yet closed.
        self.opened_today: dict[str, Decimal] = {}
        #: Day trades made per session (only the last few sessions are kept).
        self.day_trades: dict[date, int] = {}

    # -- positions -----------------------------------------------------------------------------
    def position_qty(self, symbol: str) -> Decimal:
        pos = self.positions.get(symbol)
        return ZERO if pos is None else pos.qty

    def market_values(self, marks: dict[str, Decimal]) -> MarketValues:
        """Equity and market values with ``marks`` (average entry where a mark is missing)."""
        long_value = ZERO
        short_value = ZERO
        for symbol, pos in self.positions.items():
            price = marks.get(symbol, pos.avg_entry_price)
            value = pos.qty * price * contract_multiplier(pos.instrument_type)
            if value >= 0:
                long_value += value
            else:
                short_value += value
        return MarketValues(self.cash + long_value + short_value, long_value, short_value)

    # -- sessions ------------------------------------------------------------------------------
    def start_session(self, session: date, sod_equity: Decimal) -> None:
        """Begin ``session``'s day-trade bookkeeping (call before its first fill)."""
        self.day_session = session
        self.sod_equity = sod_equity
        self.opened_today = {}

    def opened_in(self, symbol: str, session: date) -> Decimal:
        """Quantity of ``symbol`` opened in ``session`` and still open."""
        if self.day_session != session:
            return ZERO
        return self.opened_today.get(symbol, ZERO)

    def would_day_trade(self, symbol: str, side: Side, session: date) -> bool:
        """Would an order of ``side`` in ``symbol`` now be a day trade (it reduces a position that
        holds quantity opened this session)?"""
        qty = self.position_qty(symbol)
        reduces = (qty > 0 and side is Side.SELL) or (qty < 0 and side is Side.BUY)
        return reduces and self.opened_in(symbol, session) > 0

    def day_trade_count(self, sessions: frozenset[date]) -> int:
        return sum(self.day_trades.get(session, 0) for session in sessions)

    def prune_day_trades(self, oldest: date) -> None:
        """Forget day trades from sessions before ``oldest``."""
        self.day_trades = {s: n for s, n in self.day_trades.items() if s >= oldest}

    # -- fills ---------------------------------------------------------------------------------
    def apply_fill(
        self,
        fill: Fill,
        session: date,
        order_counted: bool = False,
        instrument_type: InstrumentType = InstrumentType.STOCK,
    ) -> bool:
        """Book ``fill`` (made in ``session``) of an ``instrument_type``: cash, position,
        realized P&L, commission and the day-trade record. Buys pay
        ``qty * price * m + commission``; sells receive ``qty * price * m - commission``
        (``m``: 100 for options, else 1). The position keeps per-share prices and carries
        ``instrument_type``.

        ``order_counted`` says the fill's order already made a day trade in ``session``. Returns
        True when this fill makes a new day trade."""
        prev = self.positions.get(fill.symbol)
        prev_qty = ZERO if prev is None else prev.qty
        change = apply_fill_to_position(prev, fill)
        instrument_type = InstrumentType(instrument_type)  # stored requests hold plain strings
        multiplier = contract_multiplier(instrument_type)
        sign = fill.side.sign
        self.cash -= fill.qty * fill.price * sign * multiplier + fill.commission
        self.realized_pnl += change.realized_pnl * multiplier
        self.commissions += fill.commission
        position = change.position
        if position.qty == 0:
            self.positions.pop(fill.symbol, None)
        else:
            if position.instrument_type is not instrument_type:
                position = replace(position, instrument_type=instrument_type)
            self.positions[fill.symbol] = position

        opposite = (prev_qty > 0 and sign < 0) or (prev_qty < 0 and sign > 0)
        reduced = min(fill.qty, abs(prev_qty)) if opposite else ZERO
        opened = fill.qty - reduced
        today = self.opened_in(fill.symbol, session)
        day_trade = False
        if reduced > 0 and today > 0:
            if not order_counted:
                self.day_trades[session] = self.day_trades.get(session, 0) + 1
                day_trade = True
            today -= min(today, reduced)
        if opened > 0:
            today = opened if reduced > 0 else today + opened
        if self.day_session == session:
            if today > 0:
                self.opened_today[fill.symbol] = today
            else:
                self.opened_today.pop(fill.symbol, None)
        return day_trade

    # -- reporting -----------------------------------------------------------------------------
    def state(
        self,
        marks: dict[str, Decimal],
        *,
        in_session: bool,
        config: PaperConfig,
        day_trade_count: int,
        sod_equity: Decimal | None,
        at: datetime,
    ) -> AccountState:
        """The :class:`AccountState` with the formulas in this module's docstring."""
        values = self.market_values(marks)
        equity = values.equity
        gross = values.gross
        buying_power, _ = regt_buying_power(equity, gross, in_session, config)
        below = equity < config.pdt_equity_threshold
        return AccountState(
            equity=equity,
            cash=self.cash,
            buying_power=buying_power,
            margin_used=max(ZERO, gross - equity),
            day_trades_remaining=max(0, PDT_DAY_TRADE_LIMIT - day_trade_count) if below else None,
            day_trade_count=day_trade_count,
            pattern_day_trader=day_trade_count > PDT_DAY_TRADE_LIMIT,
            long_market_value=values.long_market_value,
            short_market_value=values.short_market_value,
            daily_pnl=ZERO if sod_equity is None else equity - sod_equity,
            at=at,
        )

    # -- persistence ---------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """JSON-able account state (Decimals and dates as strings)."""
        return {
            "cash": str(self.cash),
            "realized_pnl": str(self.realized_pnl),
            "commissions": str(self.commissions),
            "positions": {
                symbol: {
                    "qty": str(p.qty),
                    "avg_entry_price": str(p.avg_entry_price),
                    "opened_at": time_str(p.opened_at),
                    "realized_pnl": str(p.realized_pnl),
                    "instrument_type": p.instrument_type.value,
                }
                for symbol, p in self.positions.items()
            },
            "day_session": None if self.day_session is None else self.day_session.isoformat(),
            "sod_equity": dec_str(self.sod_equity),
            "opened_today": {s: str(q) for s, q in self.opened_today.items()},
            "day_trades": {s.isoformat(): n for s, n in self.day_trades.items()},
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PaperAccount:
        account = cls(Decimal(data["cash"]))
        account.realized_pnl = Decimal(data.get("realized_pnl", "0"))
        account.commissions = Decimal(data.get("commissions", "0"))
        for symbol, p in data.get("positions", {}).items():
            account.positions[symbol] = Position(
                symbol=symbol,
                qty=Decimal(p["qty"]),
                avg_entry_price=Decimal(p["avg_entry_price"]),
                opened_at=time_or_none(p.get("opened_at")),
                realized_pnl=Decimal(p.get("realized_pnl", "0")),
                instrument_type=InstrumentType(p.get("instrument_type", "stock")),
            )
        session = data.get("day_session")
        account.day_session = None if session is None else date.fromisoformat(session)
        account.sod_equity = dec_or_none(data.get("sod_equity"))
        account.opened_today = {s: Decimal(q) for s, q in data.get("opened_today", {}).items()}
        account.day_trades = {
            date.fromisoformat(s): int(n) for s, n in data.get("day_trades", {}).items()
        }
        return account
