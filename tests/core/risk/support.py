"""Builders shared by the risk tests: accounts, snapshots, intents, a gate on the XNYS calendar."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal as D
from typing import Any

from core.domain import AccountState, Direction, KillSwitchState, Position, TradeType
from core.marketdata.calendar import ManualClock, default_calendar
from core.risk import AGGRESSIVE, RiskGate, RiskProfile, RiskSnapshot, TradeIntent

#: A regular session: Friday 2026-11-20, 14:30-21:00 UTC.
OPEN = datetime(2026, 11, 20, 14, 30, tzinfo=UTC)
CLOSE = datetime(2026, 11, 20, 21, 0, tzinfo=UTC)
NOON = datetime(2026, 11, 20, 17, 0, tzinfo=UTC)
#: Thanksgiving: no session.
HOLIDAY = datetime(2026, 11, 26, 15, 0, tzinfo=UTC)

SECTORS = {
    "AAPL": "tech",
    "MSFT": "tech",
    "NVDA": "tech",
    "AMD": "tech",
    "JPM": "financials",
    "BAC": "financials",
    "GS": "financials",
    "XOM": "energy",
    "CVX": "energy",
    "KO": "staples",
    "PEP": "staples",
    "UNH": "health",
}

#: The aggressive profile without the slippage buffer, so boundaries fall on round numbers.
FLAT = replace(AGGRESSIVE, name="flat", slippage_buffer=D(0))


def clock(at: datetime = NOON) -> ManualClock:
    return ManualClock(at)


def gate(profile: RiskProfile = FLAT) -> RiskGate:
    return RiskGate(profile, default_calendar(), SECTORS.get)


def account(
    equity: Any = 100_000, cash: Any = None, buying_power: Any = 200_000, **kw: Any
) -> AccountState:
    equity = D(str(equity))
    return AccountState(
        equity=equity,
        cash=equity if cash is None else D(str(cash)),
        buying_power=D(str(buying_power)),
        **kw,
    )


def position(symbol: str, qty: Any, avg: Any, price: Any = None) -> Position:
    return Position(
        symbol,
        D(str(qty)),
        D(str(avg)),
        D(str(price if price is not None else avg)),
    )


def snapshot(
    equity: Any = 100_000,
    *,
    buying_power: Any = 200_000,
    starting_equity: Any = None,
    positions: list[Position] | None = None,
    kill_switch: KillSwitchState | None = None,
    **kw: Any,
) -> RiskSnapshot:
    start = D(str(starting_equity if starting_equity is not None else equity))
    return RiskSnapshot(
        account=account(equity, buying_power=buying_power),
        starting_equity=start,
        positions={p.symbol: p for p in positions or []},
        kill_switch=kill_switch or KillSwitchState(active=False),
        **kw,
    )


def intent(
    symbol: str = "AAPL",
    qty: Any = 100,
    price: Any = 100,
    direction: Direction = Direction.LONG,
    **kw: Any,
) -> TradeIntent:
    kw.setdefault("trade_type", TradeType.DAY)
    return TradeIntent(symbol, direction, D(str(qty)), D(str(price)), **kw)
