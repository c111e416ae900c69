"""A synchronous test harness around a PaperBroker on a FixedMarket."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from datetime import datetime
from typing import Any, TypeVar

import pytest

from core.brokers.paper import MemoryPaperLedger, PaperBroker, PaperConfig
from core.domain import (
    AccountState,
    Bar,
    BrokerEvent,
    BrokerOrder,
    Fill,
    OrderRequest,
    Position,
    Side,
)
from core.marketdata.calendar import ManualClock
from core.ports import OrderRejected
from tests.core.brokers.fixed_market import FixedMarket, at

T = TypeVar("T")


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


class Harness:
    """A connected broker, its market, clock and ledger, with blocking helpers."""

    def __init__(
        self,
        bars: dict[str, list[Bar]] | None = None,
        *,
        config: PaperConfig | None = None,
        adv: dict[str, Any] | None = None,
        start: datetime | None = None,
        spread: Any = "0.02",
        ledger: MemoryPaperLedger | None = None,
    ) -> None:
        self.clock = ManualClock(start or at(20, 15))
        self.market = FixedMarket(self.clock, bars, adv=adv, spread=spread)
        self.ledger = ledger or MemoryPaperLedger()
        self.config = config or PaperConfig()
        self.broker = self.new_broker()

    def new_broker(self) -> PaperBroker:
        """A fresh broker on the same market and ledger (a restart)."""
        broker = PaperBroker(self.market, self.ledger, self.config)
        run(broker.connect())
        return broker

    def restart(self) -> PaperBroker:
        self.broker = self.new_broker()
        return self.broker

    # -- calls --------------------------------------------------------------------------------
    def submit(self, coid: str, side: str, qty: Any, symbol: str = "AAA", **kw: Any) -> BrokerOrder:
        request = OrderRequest(coid, symbol, Side(side), qty, **kw)
        return run(self.broker.submit_order(request))

    def reject(self, coid: str, side: str, qty: Any, symbol: str = "AAA", **kw: Any) -> str:
        with pytest.raises(OrderRejected) as info:
            self.submit(coid, side, qty, symbol, **kw)
        return info.value.reason

    def updates(self) -> list[BrokerEvent]:
        return run(self.broker.updates())

    def at(self, ts: datetime) -> list[BrokerEvent]:
        """Move the clock to ``ts`` and collect the updates."""
        self.clock.set(ts)
        return self.updates()

    def order(self, coid: str) -> BrokerOrder | None:
        return run(self.broker.get_order(coid))

    def orders(self, status: str = "open") -> list[BrokerOrder]:
        return run(self.broker.get_orders(status))

    def fills(self, coid: str | None = None, since: datetime | None = None) -> list[Fill]:
        return run(self.broker.get_fills(coid, since))

    def account(self) -> AccountState:
        return run(self.broker.get_account())

    def positions(self) -> dict[str, Position]:
        return {p.symbol: p for p in run(self.broker.get_positions())}

    def cancel(self, coid: str) -> bool:
        return run(self.broker.cancel_order(coid))

    def cancel_all(self) -> int:
        return run(self.broker.cancel_all())
