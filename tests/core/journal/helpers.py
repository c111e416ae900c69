"""Building orders, fills, signals and pipeline decisions for the journal tests."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from decimal import Decimal

from core.domain import (
    Direction,
    Fill,
    InstrumentType,
    Order,
    OrderRequest,
    Side,
    Signal,
    StageDecision,
)
from core.journal import TradeJournalWriter
from core.ports import Store

D = Decimal
T0 = datetime(2024, 5, 6, 14, 0, tzinfo=UTC)
_fill_ids = itertools.count(1)


def order(
    coid: str,
    symbol: str,
    side: Side,
    qty: Decimal | int | str,
    signal_id: int | None = None,
    instrument_type: InstrumentType = InstrumentType.STOCK,
) -> Order:
    return Order(
        OrderRequest(
            client_order_id=coid,
            symbol=symbol,
            side=side,
            qty=D(qty),
            signal_id=signal_id,
            instrument_type=instrument_type,
        )
    )


def fill_for(o: Order, price: Decimal | str, at: datetime, qty: Decimal | None = None) -> Fill:
    return Fill(
        fill_id=f"f{next(_fill_ids)}",
        client_order_id=o.client_order_id,
        symbol=o.symbol,
        side=o.request.side,
        qty=qty if qty is not None else o.request.qty,
        price=D(price),
        at=at,
        broker="paper",
    )


def add_signal(store: Store, **kw: object) -> Signal:
    fields: dict = {
        "symbol": "AAPL",
        "direction": Direction.LONG,
        "entry": D(100),
        "stop": D(98),
        "target": D(104),
        "created_at": T0,
        "source": "ema_cloud",
        "conviction": 80,
    }
    fields.update(kw)
    with store.unit_of_work() as uow:
        signal_id = uow.signals.add(Signal(**fields))
        uow.commit()
    with store.unit_of_work(read_only=True) as uow:
        stored = uow.signals.get(signal_id)
    assert stored is not None
    return stored


def add_decisions(store: Store, signal_id: int, *steps: tuple[str, bool, dict]) -> None:
    with store.unit_of_work() as uow:
        uow.decisions.add_many(
            [
                StageDecision(signal_id, stage, approved, T0, None if approved else "no", details)
                for stage, approved, details in steps
            ]
        )
        uow.commit()


def apply(
    store: Store,
    writer: TradeJournalWriter,
    o: Order,
    price: Decimal | str,
    at: datetime,
    qty: Decimal | None = None,
    portfolio_value: Decimal | None = None,
) -> Fill:
    """Record a fill of ``o`` through the writer in its own committed unit of work."""
    fill = fill_for(o, price, at, qty)
    with store.unit_of_work() as uow:
        writer.record_fill(uow, o, fill, portfolio_value=portfolio_value)
        uow.commit()
    return fill
