"""Repositories on the executor's hot path: signals, orders (with status history), fills, positions.

They use prebuilt SQLAlchemy Core statements on the unit of work's connection: no ORM identity
map, no per-call statement construction, batches where the port allows them.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Row, bindparam, delete, func, insert, select, update

from core.domain import (
    TERMINAL_STATUSES,
    Direction,
    Fill,
    InstrumentType,
    Order,
    OrderRequest,
    OrderStatus,
    OrderType,
    Position,
    Side,
    Signal,
    SignalStatus,
    StatusChange,
    TimeInForce,
    TradeType,
    utcnow,
)
from db.errors import DuplicateKeyError, RowNotFoundError
from db.prepared import PreparedStatement
from db.repositories._base import InsertBuilder, Repository, enum_value, for_dialect
from db.tables import FILLS, ORDER_HISTORY, ORDERS, POSITIONS, SIGNALS
from db.types import UTCDateTime

# Enough to stay under every engine's bound-parameter limit when loading history for many orders.
_IN_CHUNK = 500

# ---------------------------------------------------------------------------------------------
# Signals
# ---------------------------------------------------------------------------------------------

_INSERT_SIGNAL = insert(SIGNALS)
_INSERT_SIGNALS_RETURNING = insert(SIGNALS).returning(SIGNALS.c.id, sort_by_parameter_order=True)
_SELECT_SIGNALS = select(SIGNALS)
_SELECT_SIGNAL = _SELECT_SIGNALS.where(SIGNALS.c.id == bindparam("b_id"))
_RECENT_SIGNALS = _SELECT_SIGNALS.order_by(SIGNALS.c.id.desc()).limit(bindparam("b_limit"))
_RECENT_SIGNALS_WITH_STATUS = _RECENT_SIGNALS.where(SIGNALS.c.status == bindparam("b_status"))
_PENDING_SIGNALS = (
    select(SIGNALS)
    .where(SIGNALS.c.status == SignalStatus.PENDING.value)
    .order_by(SIGNALS.c.id)
    .limit(bindparam("b_limit"))
)
_MARK_SIGNAL = PreparedStatement(
    update(SIGNALS)
    .where(SIGNALS.c.id == bindparam("b_id"))
    .values(
        status=bindparam("b_status"),
        client_order_id=bindparam("b_coid"),
        reason=bindparam("b_reason"),
        processed_at=bindparam("b_at", type_=UTCDateTime()),
    )
)


def _signal_params(s: Signal) -> dict[str, Any]:
    return {
        "symbol": s.symbol,
        "direction": None if s.direction is None else enum_value(s.direction),
        "trade_type": enum_value(s.trade_type),
        "timeframe": s.timeframe,
        "entry": s.entry,
        "stop": s.stop,
        "target": s.target,
        "qty": s.qty,
        "conviction": s.conviction,
        "source": s.source,
        "order_type": enum_value(s.order_type),
        "status": enum_value(s.status),
        "reason": s.reason,
        "client_order_id": None,
        "metadata": s.metadata or {},
        "created_at": s.created_at,
        "processed_at": None if s.status is SignalStatus.PENDING else s.created_at,
    }


def _signal_from_row(r: Row[Any]) -> Signal:
    m = r._mapping
    return Signal(
        symbol=m["symbol"],
        direction=Direction(m["direction"]) if m["direction"] is not None else None,  # type: ignore[arg-type]
        entry=m["entry"],
        stop=m["stop"],
        created_at=m["created_at"],
        target=m["target"],
        qty=m["qty"],
        conviction=m["conviction"],
        trade_type=TradeType(m["trade_type"]),
        timeframe=m["timeframe"],
        source=m["source"],
        order_type=OrderType(m["order_type"]),
        status=SignalStatus(m["status"]),
        reason=m["reason"],
        id=m["id"],
        metadata=dict(m["metadata"] or {}),
    )


class SqlSignalRepository(Repository):
    """Signals waiting for the executor, and what became of them."""

    __slots__ = ()

    def add(self, signal: Signal) -> int:
        result = self._conn.execute(_INSERT_SIGNAL, _signal_params(signal))
        return int(result.inserted_primary_key[0])  # type: ignore[index]

    def add_many(self, signals: Sequence[Signal]) -> list[int]:
        """Insert ``signals`` in one executemany; ids come back in input order."""
        if not signals:
            return []
        rows = [_signal_params(s) for s in signals]
        return list(self._conn.scalars(_INSERT_SIGNALS_RETURNING, rows))

    def get(self, signal_id: int) -> Signal | None:
        row = self._conn.execute(_SELECT_SIGNAL, {"b_id": signal_id}).first()
        return None if row is None else _signal_from_row(row)

    def pending(self, limit: int = 100) -> list[Signal]:
        rows = self._conn.execute(_PENDING_SIGNALS, {"b_limit": limit})
        return [_signal_from_row(r) for r in rows]

    def mark_routed(self, signal_id: int, client_order_id: str, at: datetime) -> None:
        self._mark(signal_id, SignalStatus.ROUTED, client_order_id, None, at)

    def mark_rejected(self, signal_id: int, reason: str, at: datetime) -> None:
        self._mark(signal_id, SignalStatus.REJECTED, None, reason, at)

    def _mark(
        self,
        signal_id: int,
        status: SignalStatus,
        client_order_id: str | None,
        reason: str | None,
        at: datetime,
    ) -> None:
        params = {
            "b_id": signal_id,
            "b_status": status.value,
            "b_coid": client_order_id,
            "b_reason": reason,
            "b_at": at,
        }
        if _MARK_SIGNAL.execute(self._conn, params) != 1:
            raise RowNotFoundError(f"signal {signal_id} is not stored")

    def recent(self, limit: int = 100, status: str | None = None) -> list[Signal]:
        """Newest first, optionally only those with ``status``."""
        if status is None:
            rows = self._conn.execute(_RECENT_SIGNALS, {"b_limit": limit})
        else:
            params = {"b_limit": limit, "b_status": enum_value(status)}
            rows = self._conn.execute(_RECENT_SIGNALS_WITH_STATUS, params)
        return [_signal_from_row(r) for r in rows]


# ---------------------------------------------------------------------------------------------
# Orders and their status history
# ---------------------------------------------------------------------------------------------

_INSERT_HISTORY = PreparedStatement(insert(ORDER_HISTORY))
_SELECT_ORDERS = select(ORDERS)
_SELECT_HISTORY = select(
    ORDER_HISTORY.c.client_order_id,
    ORDER_HISTORY.c.from_status,
    ORDER_HISTORY.c.to_status,
    ORDER_HISTORY.c.at,
    ORDER_HISTORY.c.reason,
)
_SELECT_ONE_ORDER = _SELECT_ORDERS.where(ORDERS.c.client_order_id == bindparam("b_coid"))
_SELECT_ONE_HISTORY = _SELECT_HISTORY.where(
    ORDER_HISTORY.c.client_order_id == bindparam("b_coid")
).order_by(ORDER_HISTORY.c.seq)
_SELECT_HISTORY_IN = _SELECT_HISTORY.where(
    ORDER_HISTORY.c.client_order_id.in_(bindparam("b_coids", expanding=True))
).order_by(ORDER_HISTORY.c.client_order_id, ORDER_HISTORY.c.seq)
_UPDATE_ORDER = PreparedStatement(
    update(ORDERS)
    .where(ORDERS.c.client_order_id == bindparam("b_coid"))
    .values(
        status=bindparam("b_status"),
        broker=bindparam("b_broker"),
        broker_order_id=bindparam("b_broker_order_id"),
        filled_qty=bindparam("b_filled_qty", type_=ORDERS.c.filled_qty.type),
        avg_fill_price=bindparam("b_avg_fill_price", type_=ORDERS.c.avg_fill_price.type),
        reason=bindparam("b_reason"),
        updated_at=bindparam("b_updated_at", type_=UTCDateTime()),
        parent_id=bindparam("b_parent_id"),
    )
)
_ORDERS_WITH_STATUS = _SELECT_ORDERS.where(
    ORDERS.c.status.in_(bindparam("b_statuses", expanding=True))
).order_by(ORDERS.c.created_at, ORDERS.c.client_order_id)
_RECENT_ORDERS = _SELECT_ORDERS.order_by(
    ORDERS.c.created_at.desc(), ORDERS.c.client_order_id.desc()
).limit(bindparam("b_limit"))
_CHILD_ORDERS = _SELECT_ORDERS.where(ORDERS.c.parent_id == bindparam("b_parent")).order_by(
    ORDERS.c.created_at, ORDERS.c.client_order_id
)
_OPEN_STATUSES = [
    s.value for s in OrderStatus if s is not OrderStatus.NEW and s not in TERMINAL_STATUSES
]


def _insert_order_once(ins: InsertBuilder) -> Any:
    return ins(ORDERS).on_conflict_do_nothing(index_elements=[ORDERS.c.client_order_id])


def _insert_history_once(ins: InsertBuilder) -> Any:
    return ins(ORDER_HISTORY).on_conflict_do_nothing(
        index_elements=[ORDER_HISTORY.c.client_order_id, ORDER_HISTORY.c.seq]
    )


_INSERT_ORDER_ONCE = PreparedStatement(for_dialect(_insert_order_once))
_INSERT_HISTORY_ONCE = PreparedStatement(for_dialect(_insert_history_once))


def _order_params(order: Order) -> dict[str, Any]:
    req = order.request
    return {
        "client_order_id": req.client_order_id,
        "broker": order.broker,
        "broker_order_id": order.broker_order_id,
        "signal_id": req.signal_id,
        "parent_id": order.parent_id,
        "symbol": req.symbol,
        "side": enum_value(req.side),
        "qty": req.qty,
        "order_type": enum_value(req.order_type),
        "time_in_force": enum_value(req.time_in_force),
        "limit_price": req.limit_price,
        "stop_price": req.stop_price,
        "trail_percent": req.trail_percent,
        "trail_price": req.trail_price,
        "take_profit_price": req.take_profit_price,
        "stop_loss_price": req.stop_loss_price,
        "notional": req.notional,
        "reduce_only": req.reduce_only,
        "instrument_type": enum_value(req.instrument_type),
        "status": enum_value(order.status),
        "filled_qty": order.filled_qty,
        "avg_fill_price": order.avg_fill_price,
        "reason": order.reason,
        "created_at": order.created_at,
        "updated_at": order.updated_at,
    }


def _history_params(coid: str, history: Sequence[StatusChange], start: int = 0) -> list[dict]:
    return [
        {
            "client_order_id": coid,
            "seq": seq,
            "from_status": None if ch.from_status is None else enum_value(ch.from_status),
            "to_status": enum_value(ch.to_status),
            "at": ch.at,
            "reason": ch.reason,
        }
        for seq, ch in enumerate(history[start:], start)
    ]


def _change_from_row(r: Row[Any]) -> StatusChange:
    _, from_status, to_status, at, reason = r
    return StatusChange(
        None if from_status is None else OrderStatus(from_status),
        OrderStatus(to_status),
        at,
        reason,
    )


def _order_from_row(r: Row[Any], history: list[StatusChange]) -> Order:
    m = r._mapping
    request = OrderRequest(
        client_order_id=m["client_order_id"],
        symbol=m["symbol"],
        side=Side(m["side"]),
        qty=m["qty"],
        order_type=OrderType(m["order_type"]),
        time_in_force=TimeInForce(m["time_in_force"]),
        limit_price=m["limit_price"],
        stop_price=m["stop_price"],
        trail_percent=m["trail_percent"],
        trail_price=m["trail_price"],
        take_profit_price=m["take_profit_price"],
        stop_loss_price=m["stop_loss_price"],
        notional=m["notional"],
        signal_id=m["signal_id"],
        reduce_only=bool(m["reduce_only"]),
        instrument_type=InstrumentType(m["instrument_type"]),
    )
    return Order(
        request=request,
        status=OrderStatus(m["status"]),
        broker=m["broker"],
        broker_order_id=m["broker_order_id"],
        filled_qty=m["filled_qty"],
        avg_fill_price=m["avg_fill_price"],
        reason=m["reason"],
        created_at=m["created_at"],
        updated_at=m["updated_at"],
        history=history,
        parent_id=m["parent_id"],
    )


class SqlOrderRepository(Repository):
    """Our orders, written before the broker is called, with their full status history.

    History rows carry ``seq`` = the entry's index in ``Order.history``; ``update`` inserts the
    entries with ``ON CONFLICT DO NOTHING`` so calling it again never duplicates history.
    """

    __slots__ = ()

    def add(self, order: Order) -> None:
        """Insert the order and its history; :class:`DuplicateKeyError` if the id is taken."""
        conn = self._conn
        if _INSERT_ORDER_ONCE.execute(conn, _order_params(order)) != 1:
            raise DuplicateKeyError(f"order {order.client_order_id!r} is already stored")
        if order.history:
            _INSERT_HISTORY.executemany(conn, _history_params(order.client_order_id, order.history))

    def update(self, order: Order) -> None:
        """Persist status, fill progress, broker ids, reason, parent and new history entries."""
        conn = self._conn
        params = {
            "b_coid": order.client_order_id,
            "b_status": enum_value(order.status),
            "b_broker": order.broker,
            "b_broker_order_id": order.broker_order_id,
            "b_filled_qty": order.filled_qty,
            "b_avg_fill_price": order.avg_fill_price,
            "b_reason": order.reason,
            "b_updated_at": order.updated_at,
            "b_parent_id": order.parent_id,
        }
        if _UPDATE_ORDER.execute(conn, params) != 1:
            raise RowNotFoundError(f"order {order.client_order_id!r} is not stored")
        if order.history:
            _INSERT_HISTORY_ONCE.executemany(
                conn, _history_params(order.client_order_id, order.history)
            )

    def get(self, client_order_id: str) -> Order | None:
        conn = self._conn
        row = conn.execute(_SELECT_ONE_ORDER, {"b_coid": client_order_id}).first()
        if row is None:
            return None
        history = [
            _change_from_row(h)
            for h in conn.execute(_SELECT_ONE_HISTORY, {"b_coid": client_order_id})
        ]
        return _order_from_row(row, history)

    def with_status(self, statuses: Sequence[OrderStatus]) -> list[Order]:
        """Orders in any of ``statuses``, oldest first."""
        values = [enum_value(s) for s in statuses]
        if not values:
            return []
        return self._load(_ORDERS_WITH_STATUS, {"b_statuses": values})

    def open_orders(self) -> list[Order]:
        """Orders that are neither new nor terminal, oldest first."""
        return self.with_status([OrderStatus(s) for s in _OPEN_STATUSES])

    def recent(self, limit: int = 100) -> list[Order]:
        """Newest first."""
        return self._load(_RECENT_ORDERS, {"b_limit": limit})

    def children(self, parent_id: str) -> list[Order]:
        """Bracket legs and algorithm slices of ``parent_id``, oldest first."""
        return self._load(_CHILD_ORDERS, {"b_parent": parent_id})

    def _load(self, stmt: Any, params: dict[str, Any]) -> list[Order]:
        conn = self._conn
        rows = conn.execute(stmt, params).all()
        if not rows:
            return []
        histories = self._histories([r._mapping["client_order_id"] for r in rows])
        return [_order_from_row(r, histories[r._mapping["client_order_id"]]) for r in rows]

    def _histories(self, coids: Iterable[str]) -> defaultdict[str, list[StatusChange]]:
        # One query per chunk rather than one per order.
        out: defaultdict[str, list[StatusChange]] = defaultdict(list)
        ids = list(coids)
        for i in range(0, len(ids), _IN_CHUNK):
            chunk = ids[i : i + _IN_CHUNK]
            for h in self._conn.execute(_SELECT_HISTORY_IN, {"b_coids": chunk}):
                out[h[0]].append(_change_from_row(h))
        return out


# ---------------------------------------------------------------------------------------------
# Fills
# ---------------------------------------------------------------------------------------------

_SELECT_FILLS = select(FILLS)
_FILLS_FOR_ORDER = _SELECT_FILLS.where(FILLS.c.client_order_id == bindparam("b_coid")).order_by(
    FILLS.c.at, FILLS.c.id
)
_RECENT_FILLS = _SELECT_FILLS.order_by(FILLS.c.id.desc()).limit(bindparam("b_limit"))
_COUNT_FILLS = select(func.count()).select_from(FILLS)


def _insert_fill_once(ins: InsertBuilder) -> Any:
    return ins(FILLS).on_conflict_do_nothing(index_elements=[FILLS.c.broker, FILLS.c.fill_id])


_INSERT_FILL_ONCE = PreparedStatement(for_dialect(_insert_fill_once))


def _fill_params(f: Fill) -> dict[str, Any]:
    return {
        "fill_id": f.fill_id,
        "broker": f.broker,
        "client_order_id": f.client_order_id,
        "broker_order_id": f.broker_order_id,
        "symbol": f.symbol,
        "side": enum_value(f.side),
        "qty": f.qty,
        "price": f.price,
        "expected_price": f.expected_price,
        "slippage_bps": f.slippage_bps,
        "commission": f.commission,
        "at": f.at,
    }


def _fill_from_row(r: Row[Any]) -> Fill:
    m = r._mapping
    return Fill(
        fill_id=m["fill_id"],
        client_order_id=m["client_order_id"],
        symbol=m["symbol"],
        side=Side(m["side"]),
        qty=m["qty"],
        price=m["price"],
        at=m["at"],
        broker=m["broker"],
        expected_price=m["expected_price"],
        commission=m["commission"],
        broker_order_id=m["broker_order_id"],
    )


class SqlFillRepository(Repository):
    """Executions, recorded exactly once per (broker, fill_id)."""

    __slots__ = ()

    def add(self, fill: Fill) -> bool:
        """Record ``fill``; False and no change if it is already stored."""
        return _INSERT_FILL_ONCE.execute(self._conn, _fill_params(fill)) == 1

    def for_order(self, client_order_id: str) -> list[Fill]:
        """Fills of one order in execution order."""
        rows = self._conn.execute(_FILLS_FOR_ORDER, {"b_coid": client_order_id})
        return [_fill_from_row(r) for r in rows]

    def recent(self, limit: int = 100) -> list[Fill]:
        """Newest first (by time recorded)."""
        rows = self._conn.execute(_RECENT_FILLS, {"b_limit": limit})
        return [_fill_from_row(r) for r in rows]

    def count(self) -> int:
        return int(self._conn.execute(_COUNT_FILLS).scalar_one())


# ---------------------------------------------------------------------------------------------
# Positions
# ---------------------------------------------------------------------------------------------

_SELECT_POSITIONS = select(POSITIONS)
_SELECT_POSITION = _SELECT_POSITIONS.where(POSITIONS.c.symbol == bindparam("b_symbol"))
_ALL_POSITIONS = _SELECT_POSITIONS.order_by(POSITIONS.c.symbol)
_DELETE_POSITION = delete(POSITIONS).where(POSITIONS.c.symbol == bindparam("b_symbol"))
_POSITION_COLUMNS = (
    "qty",
    "avg_entry_price",
    "current_price",
    "instrument_type",
    "opened_at",
    "realized_pnl",
    "updated_at",
)


def _upsert_position(ins: InsertBuilder) -> Any:
    stmt = ins(POSITIONS)
    return stmt.on_conflict_do_update(
        index_elements=[POSITIONS.c.symbol],
        set_={name: stmt.excluded[name] for name in _POSITION_COLUMNS},
    )


_UPSERT_POSITION = PreparedStatement(for_dialect(_upsert_position))


def _position_from_row(r: Row[Any]) -> Position:
    m = r._mapping
    return Position(
        symbol=m["symbol"],
        qty=m["qty"],
        avg_entry_price=m["avg_entry_price"],
        current_price=m["current_price"],
        instrument_type=InstrumentType(m["instrument_type"]),
        opened_at=m["opened_at"],
        realized_pnl=m["realized_pnl"],
    )


class SqlPositionRepository(Repository):
    """Our positions; a flat position (qty 0) has no row."""

    __slots__ = ()

    def get(self, symbol: str) -> Position | None:
        row = self._conn.execute(_SELECT_POSITION, {"b_symbol": symbol}).first()
        return None if row is None else _position_from_row(row)

    def all(self) -> list[Position]:
        """Open positions by symbol."""
        return [_position_from_row(r) for r in self._conn.execute(_ALL_POSITIONS)]

    def upsert(self, position: Position) -> None:
        """Insert or replace the position; qty 0 deletes it."""
        conn = self._conn
        if position.qty == 0:
            conn.execute(_DELETE_POSITION, {"b_symbol": position.symbol})
            return
        _UPSERT_POSITION.execute(
            conn,
            {
                "symbol": position.symbol,
                "qty": position.qty,
                "avg_entry_price": position.avg_entry_price,
                "current_price": position.current_price,
                "instrument_type": enum_value(position.instrument_type),
                "opened_at": position.opened_at,
                "realized_pnl": position.realized_pnl,
                "updated_at": utcnow(),
            },
        )
