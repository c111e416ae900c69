"""Active Positions: open positions marked to market, with the open journal trade behind each
one (entry, stop, target, time in trade) and any closing order already working.

Money stays exact: every price, quantity and P&L in the frames is a :class:`~decimal.Decimal`
(``None`` where unknown). Unrealized P&L is computed in Python because SQLite keeps these
columns as text.

Options: a position in an option is named by its OCC symbol and priced per share of premium.
Its market value and P&L (unrealized, and the realized P&L the position keeps per share) are
multiplied by the contract multiplier (100); its underlying, expiry, strike and right (``C`` or
``P``) are read from the symbol (``None`` for other rows).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import pandas as pd
from sqlalchemy import select

from core.domain import ZERO, OrderStatus, TradeStatus, utcnow
from db.queries.contracts import contract_fields, multiplier
from db.tables import ORDERS, POSITIONS, TRADES

if TYPE_CHECKING:
    from db.store import SqlStore

#: Order statuses that are still working at the broker (not new, not final).
OPEN_ORDER_STATUSES: tuple[str, ...] = tuple(s.value for s in OrderStatus if s.is_open)

#: The columns of :meth:`PositionQueries.open_positions`, in display order.
POSITION_COLUMNS: tuple[str, ...] = (
    "symbol",
    "instrument_type",
    "underlying",
    "expiry",
    "strike",
    "right",
    "side",
    "qty",
    "avg_entry_price",
    "mark",
    "market_value",
    "unrealized_pnl",
    "unrealized_pnl_pct",
    "realized_pnl",
    "entry_price",
    "stop_loss",
    "target_price",
    "trade_type",
    "strategy",
    "entry_time",
    "time_in_trade",
    "closing_qty",
    "updated_at",
)

#: An option's contract, read from its OCC symbol (``None`` for other positions).
CONTRACT_COLUMNS: tuple[str, ...] = ("underlying", "expiry", "strike", "right")

#: Unrealized P&L as a fraction is a ratio for display, kept to a millionth.
PCT_PLACES = Decimal("0.000001")

_POSITIONS = select(
    POSITIONS.c.symbol,
    POSITIONS.c.qty,
    POSITIONS.c.avg_entry_price,
    POSITIONS.c.current_price,
    POSITIONS.c.instrument_type,
    POSITIONS.c.opened_at,
    POSITIONS.c.realized_pnl,
    POSITIONS.c.updated_at,
).order_by(POSITIONS.c.symbol)

_TRADE_COLUMNS = (
    TRADES.c.id,
    TRADES.c.ticker,
    TRADES.c.entry_price,
    TRADES.c.stop_loss,
    TRADES.c.target_price,
    TRADES.c.entry_time,
    TRADES.c.trade_type,
    TRADES.c.strategy,
    TRADES.c.trigger,
)

_OPEN_TRADES = (
    select(*_TRADE_COLUMNS)
    .where(TRADES.c.status == TradeStatus.OPEN.value)
    .order_by(TRADES.c.id)  # the newest open trade of a symbol comes last and wins
)


@dataclass(frozen=True, slots=True)
class PositionTotals:
    """The book at a glance: exact sums over the open positions."""

    count: int
    market_value: Decimal
    gross_exposure: Decimal
    unrealized_pnl: Decimal
    realized_pnl: Decimal
    unmarked: int

    @classmethod
    def of(cls, frame: pd.DataFrame) -> PositionTotals:
        if frame.empty:
            return cls(0, ZERO, ZERO, ZERO, ZERO, 0)
        values = list(frame["market_value"])
        return cls(
            count=len(frame),
            market_value=sum(values, ZERO),
            gross_exposure=sum((abs(v) for v in values), ZERO),
            unrealized_pnl=sum((v for v in frame["unrealized_pnl"] if v is not None), ZERO),
            realized_pnl=sum(frame["realized_pnl"], ZERO),
            unmarked=int(frame["mark"].isna().sum()),
        )


def _pnl(
    qty: Decimal, entry: Decimal, mark: Decimal | None, instrument_type: Any = None
) -> tuple[Decimal, Any, Any]:
    """(market value, unrealized P&L, unrealized P&L as a fraction of the cost basis), in
    dollars: an option's per-share prices are multiplied by its contract multiplier."""
    size = qty * multiplier(instrument_type)
    if mark is None:
        return size * entry, None, None
    pnl = (mark - entry) * size
    basis = abs(size * entry)
    return size * mark, pnl, ((pnl / basis).quantize(PCT_PLACES) if basis else ZERO)


def mark_positions(frame: pd.DataFrame, marks: Mapping[str, Decimal]) -> pd.DataFrame:
    """A copy of an :meth:`PositionQueries.open_positions` frame marked at ``marks``
    (symbol → price; symbols not in ``marks`` keep their mark)."""
    if frame.empty or not marks:
        return frame
    out = frame.copy()
    for i, row in out.iterrows():
        price = marks.get(row["symbol"])
        if price is None:
            continue
        value, pnl, pct = _pnl(row["qty"], row["avg_entry_price"], price, row["instrument_type"])
        out.at[i, "mark"] = price
        out.at[i, "market_value"] = value
        out.at[i, "unrealized_pnl"] = pnl
        out.at[i, "unrealized_pnl_pct"] = pct
    return out


class PositionQueries:
    """Read views of the Active Positions page."""

    def __init__(self, store: SqlStore) -> None:
        self.store = store

    def open_positions(self, now: datetime | None = None) -> pd.DataFrame:
        """Every open position (by symbol) with the columns in :data:`POSITION_COLUMNS`.

        ``mark`` is the price the executor last stored on the position (``None`` until it
        marks it); market value and P&L are in dollars (an option's per-share prices times
        100); an option's underlying, expiry, strike and right come from its OCC symbol;
        entry, stop, target, trade type and strategy come from the newest open journal trade
        in the symbol; ``time_in_trade`` runs from its entry (else from the
        position's opening) to ``now``; ``closing_qty`` is the quantity of reduce-only orders
        still working in the symbol (a close already on its way).
        """
        now = now or utcnow()
        with self.store.unit_of_work(read_only=True) as uow:
            conn = uow.connection
            positions = [p for p in conn.execute(_POSITIONS) if p.qty]
            symbols = [p.symbol for p in positions]
            trades: dict[str, Any] = {}
            closing: dict[str, Decimal] = {}
            if symbols:
                # Open trades are few, closed ones many: select by status alone (a ticker
                # filter would make SQLite walk every closed trade of each symbol by index).
                held = set(symbols)
                trades = {t.ticker: t for t in conn.execute(_OPEN_TRADES) if t.ticker in held}
                working = conn.execute(
                    select(ORDERS.c.symbol, ORDERS.c.qty, ORDERS.c.filled_qty).where(
                        ORDERS.c.status.in_(OPEN_ORDER_STATUSES),
                        ORDERS.c.reduce_only.is_(True),
                        ORDERS.c.symbol.in_(symbols),
                    )
                )
                for o in working:
                    closing[o.symbol] = closing.get(o.symbol, ZERO) + o.qty - o.filled_qty
        records = []
        for p in positions:
            trade = trades.get(p.symbol)
            value, pnl, pct = _pnl(p.qty, p.avg_entry_price, p.current_price, p.instrument_type)
            since = trade.entry_time if trade is not None else p.opened_at
            records.append(
                (
                    p.symbol,
                    p.instrument_type,
                    *contract_fields(p.symbol),
                    "long" if p.qty > 0 else "short",
                    p.qty,
                    p.avg_entry_price,
                    p.current_price,
                    value,
                    pnl,
                    pct,
                    p.realized_pnl * multiplier(p.instrument_type),
                    trade.entry_price if trade is not None else None,
                    trade.stop_loss if trade is not None else None,
                    trade.target_price if trade is not None else None,
                    trade.trade_type if trade is not None else None,
                    None if trade is None else (trade.strategy or trade.trigger),
                    since,
                    None if since is None else max(now - since, timedelta(0)),
                    closing.get(p.symbol, ZERO),
                    p.updated_at,
                )
            )
        frame = pd.DataFrame.from_records(records, columns=list(POSITION_COLUMNS))
        for i, name in enumerate(CONTRACT_COLUMNS, start=POSITION_COLUMNS.index("underlying")):
            # kept as objects, so a stock's row holds None (not NaN) like the other columns
            frame[name] = pd.Series([r[i] for r in records], index=frame.index, dtype=object)
        return frame

    def totals(self, now: datetime | None = None) -> PositionTotals:
        """:class:`PositionTotals` of :meth:`open_positions`."""
        return PositionTotals.of(self.open_positions(now))


__all__ = [
    "CONTRACT_COLUMNS",
    "OPEN_ORDER_STATUSES",
    "POSITION_COLUMNS",
    "PositionQueries",
    "PositionTotals",
    "mark_positions",
]
