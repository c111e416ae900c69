"""A simple demo strategy so that a fresh install shows orders and fills within a minute.

Every ``every`` of market time it takes the next symbol of the watchlist and writes one bracket
signal: long when the last close is above the average of the last ``lookback`` one-minute closes,
short otherwise, with a stop and a 1.5:1 target around the last price.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

from core.domain import CENT, Direction, OrderType, Signal, TradeType
from core.ports import MarketData, Store


class DemoSignalSource:
    def __init__(
        self,
        market: MarketData,
        watchlist: list[str],
        every: timedelta = timedelta(minutes=3),
        qty: Decimal = Decimal(10),
        stop_pct: Decimal = Decimal("0.004"),
        lookback: int = 10,
    ):
        unknown = sorted(set(watchlist) - set(market.symbols()))
        if unknown:
            raise ValueError(
                f"watchlist has symbols the market does not know: {', '.join(unknown)}"
            )
        if not watchlist:
            raise ValueError("the demo needs at least one symbol")
        self.market = market
        self.watchlist = list(watchlist)
        self.every = every
        self.qty = qty
        self.stop_pct = stop_pct
        self.lookback = lookback
        self._next_at: datetime | None = None
        self._i = 0
        self.emitted = 0

    async def emit(self, store: Store, now: datetime) -> int:
        if not self.market.calendar.is_open(now):
            return 0
        if self._next_at is not None and now < self._next_at:
            return 0
        self._next_at = now + self.every
        symbol = self.watchlist[self._i % len(self.watchlist)]
        self._i += 1
        quote = await self.market.quote(symbol)
        bars = await self.market.bars(symbol, "1Min", limit=self.lookback)
        closes = [b.close for b in bars] or [quote.last]
        average = sum(closes, Decimal(0)) / len(closes)
        direction = Direction.LONG if quote.last >= average else Direction.SHORT
        entry = quote.last
        risk = max((entry * self.stop_pct).quantize(CENT), CENT)
        sign = 1 if direction is Direction.LONG else -1
        signal = Signal(
            symbol=symbol,
            direction=direction,
            entry=entry,
            stop=entry - sign * risk,
            target=entry + sign * (risk * Decimal("1.5")).quantize(CENT),
            created_at=now,
            qty=self.qty,
            conviction=75,
            trade_type=TradeType.DAY,
            timeframe="10Min",
            source="demo",
            order_type=OrderType.BRACKET,
        )
        with store.unit_of_work() as uow:
            uow.signals.add(signal)
            uow.commit()
        self.emitted += 1
        return 1
