"""The paper broker's records: working orders with their trigger state, fills, and an in-memory
ledger. Everything round-trips through plain JSON-able dicts (Decimals and times as strings)."""

from __future__ import annotations

import copy
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from core.domain import (
    ONE,
    ZERO,
    BrokerOrder,
    Fill,
    InstrumentType,
    OrderRequest,
    OrderStatus,
    OrderType,
    Side,
    TimeInForce,
)
from core.options.occ import MULTIPLIER
from core.ports import PaperSnapshot


def contract_multiplier(instrument_type: InstrumentType) -> Decimal:
    """Money per unit of quantity per unit of price: 100 for options (prices are per share of
    premium, quantities whole contracts), 1 for everything else."""
    return MULTIPLIER if instrument_type == InstrumentType.OPTION else ONE


# ---------------------------------------------------------------------------------------------
# Plain-data helpers
# ---------------------------------------------------------------------------------------------


def dec_str(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def dec_or_none(value: Any) -> Decimal | None:
    return None if value is None else Decimal(value)


def time_str(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def time_or_none(value: Any) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def fill_to_dict(fill: Fill) -> dict[str, Any]:
    """A fill as JSON-able data (keyed by ``fill_id`` in the ledger)."""
    return {
        "fill_id": fill.fill_id,
        "client_order_id": fill.client_order_id,
        "symbol": fill.symbol,
        "side": fill.side.value,
        "qty": str(fill.qty),
        "price": str(fill.price),
        "at": fill.at.isoformat(),
        "broker": fill.broker,
        "expected_price": dec_str(fill.expected_price),
        "commission": str(fill.commission),
        "broker_order_id": fill.broker_order_id,
    }


def fill_sort_key(fill: Fill) -> tuple[datetime, str, int]:
    """Time, then order (broker order ids count up), then the fill's number within its order."""
    number = fill.fill_id.rpartition("-")[2]
    return fill.at, fill.broker_order_id or "", int(number) if number.isdigit() else 0


def fill_from_dict(data: dict[str, Any]) -> Fill:
    return Fill(
        fill_id=data["fill_id"],
        client_order_id=data["client_order_id"],
        symbol=data["symbol"],
        side=Side(data["side"]),
        qty=Decimal(data["qty"]),
        price=Decimal(data["price"]),
        at=datetime.fromisoformat(data["at"]),
        broker=data["broker"],
        expected_price=dec_or_none(data.get("expected_price")),
        commission=Decimal(data.get("commission", "0")),
        broker_order_id=data.get("broker_order_id"),
    )


# ---------------------------------------------------------------------------------------------
# Orders
# ---------------------------------------------------------------------------------------------


def working_type(request: OrderRequest) -> OrderType:
    """How an order works: a bracket works as its entry (limit or market)."""
    t = request.order_type
    if t is OrderType.BRACKET:
        return OrderType.LIMIT if request.limit_price is not None else OrderType.MARKET
    return t


@dataclass(slots=True)
class PaperOrder:
    """One order as the paper broker works it.

    ``qty`` is the order's current size: the request's quantity, except for bracket legs, whose
    size follows the filled entry (minus what the other leg has filled), and notional orders:
    what their dollar amount buys at the touch on submission, then what it bought at the fill.
    ``last_evaluated`` is the end of the last 1-minute bar the order has seen; only bars ending
    later are walked.
    ``deadline`` is the session close at which a day order expires or a market-on-close order
    fills. ``triggered``/``stop_level``/``water_mark`` are the stop and trailing-stop state.
    ``opening_qty``/``reserve_price`` are what the order holds of the buying power while it works.
    """

    request: OrderRequest
    broker_order_id: str
    status: OrderStatus
    qty: Decimal
    submitted_at: datetime
    eligible_at: datetime
    last_evaluated: datetime
    updated_at: datetime
    deadline: datetime | None = None
    expected_price: Decimal | None = None
    filled_qty: Decimal = ZERO
    avg_fill_price: Decimal | None = None
    commission: Decimal = ZERO
    fill_count: int = 0
    reason: str | None = None
    triggered: bool = False
    stop_level: Decimal | None = None
    water_mark: Decimal | None = None
    parent_id: str | None = None
    leg: str | None = None
    opening_qty: Decimal = ZERO
    reserve_price: Decimal = ZERO
    #: The session in which this order last made a day trade (counted once per session).
    day_trade_session: date | None = None
    #: ``request.to_dict()``, computed once (the request never changes).
    request_data: dict[str, Any] | None = field(default=None, repr=False, compare=False)

    # -- views ---------------------------------------------------------------------------------
    @property
    def client_order_id(self) -> str:
        return self.request.client_order_id

    @property
    def symbol(self) -> str:
        return self.request.symbol

    @property
    def side(self) -> Side:
        return self.request.side

    @property
    def remaining(self) -> Decimal:
        return self.qty - self.filled_qty

    @property
    def is_open(self) -> bool:
        return self.status.is_open

    @property
    def kind(self) -> OrderType:
        """How the order works: a bracket works as its entry (limit or market)."""
        return working_type(self.request)

    @property
    def is_option(self) -> bool:
        return self.request.instrument_type == InstrumentType.OPTION

    @property
    def multiplier(self) -> Decimal:
        """100 for options, 1 otherwise (see :func:`contract_multiplier`)."""
        return contract_multiplier(self.request.instrument_type)

    @property
    def at_close(self) -> bool:
        """Market- or limit-on-close."""
        return self.request.time_in_force is TimeInForce.CLS

    @property
    def reserved(self) -> Decimal:
        """Buying power this working order holds: its unfilled opening quantity at its price
        (times 100 for option contracts)."""
        if not self.is_open or self.opening_qty <= 0:
            return ZERO
        return min(self.opening_qty, self.remaining) * self.reserve_price * self.multiplier

    def to_broker_order(self) -> BrokerOrder:
        return BrokerOrder(
            client_order_id=self.request.client_order_id,
            broker_order_id=self.broker_order_id,
            symbol=self.request.symbol,
            side=self.request.side,
            qty=self.qty,
            status=self.status,
            filled_qty=self.filled_qty,
            avg_fill_price=self.avg_fill_price,
            order_type=self.request.order_type,
            reason=self.reason,
            submitted_at=self.submitted_at,
            notional=self.request.notional,
        )

    def record_fill(self, qty: Decimal, price: Decimal, commission: Decimal) -> None:
        """Add an execution to the filled quantity, average price and commission."""
        value = (self.avg_fill_price or ZERO) * self.filled_qty + qty * price
        self.filled_qty += qty
        self.avg_fill_price = value / self.filled_qty
        self.commission += commission
        self.fill_count += 1

    # -- persistence ---------------------------------------------------------------------------
    def _request_data(self) -> dict[str, Any]:
        if self.request_data is None:
            self.request_data = self.request.to_dict()
        return self.request_data

    def to_dict(self) -> dict[str, Any]:
        """JSON-able data, keyed by ``client_order_id`` in the ledger."""
        return {
            "client_order_id": self.request.client_order_id,
            "request": self._request_data(),
            "broker_order_id": self.broker_order_id,
            "status": self.status.value,
            "qty": str(self.qty),
            "submitted_at": self.submitted_at.isoformat(),
            "eligible_at": self.eligible_at.isoformat(),
            "last_evaluated": self.last_evaluated.isoformat(),
            "updated_at": self.updated_at.isoformat(),
            "deadline": time_str(self.deadline),
            "expected_price": dec_str(self.expected_price),
            "filled_qty": str(self.filled_qty),
            "avg_fill_price": dec_str(self.avg_fill_price),
            "commission": str(self.commission),
            "fill_count": self.fill_count,
            "reason": self.reason,
            "triggered": self.triggered,
            "stop_level": dec_str(self.stop_level),
            "water_mark": dec_str(self.water_mark),
            "parent_id": self.parent_id,
            "leg": self.leg,
            "opening_qty": str(self.opening_qty),
            "reserve_price": str(self.reserve_price),
            "day_trade_session": (
                None if self.day_trade_session is None else self.day_trade_session.isoformat()
            ),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PaperOrder:
        return cls(
            request=OrderRequest.from_dict(dict(data["request"])),
            broker_order_id=data["broker_order_id"],
            status=OrderStatus(data["status"]),
            qty=Decimal(data["qty"]),
            submitted_at=datetime.fromisoformat(data["submitted_at"]),
            eligible_at=datetime.fromisoformat(data["eligible_at"]),
            last_evaluated=datetime.fromisoformat(data["last_evaluated"]),
            updated_at=datetime.fromisoformat(data["updated_at"]),
            deadline=time_or_none(data.get("deadline")),
            expected_price=dec_or_none(data.get("expected_price")),
            filled_qty=Decimal(data["filled_qty"]),
            avg_fill_price=dec_or_none(data.get("avg_fill_price")),
            commission=Decimal(data.get("commission", "0")),
            fill_count=int(data.get("fill_count", 0)),
            reason=data.get("reason"),
            triggered=bool(data.get("triggered", False)),
            stop_level=dec_or_none(data.get("stop_level")),
            water_mark=dec_or_none(data.get("water_mark")),
            parent_id=data.get("parent_id"),
            leg=data.get("leg"),
            opening_qty=Decimal(data.get("opening_qty", "0")),
            reserve_price=Decimal(data.get("reserve_price", "0")),
            day_trade_session=(
                None
                if data.get("day_trade_session") is None
                else date.fromisoformat(data["day_trade_session"])
            ),
        )


# ---------------------------------------------------------------------------------------------
# In-memory ledger
# ---------------------------------------------------------------------------------------------


class MemoryPaperLedger:
    """A :class:`core.ports.PaperLedger` kept in memory, for tests and throwaway demos.

    ``save`` stores the dicts it is given (orders upserted by ``client_order_id``, fills inserted
    once by ``fill_id``); ``load`` hands back deep copies. ``saves`` counts ``save`` calls.
    """

    def __init__(self) -> None:
        self._account: dict[str, Any] | None = None
        self._orders: dict[str, dict[str, Any]] = {}
        self._fills: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()
        self.saves = 0

    def load(self) -> PaperSnapshot:
        with self._lock:
            return PaperSnapshot(
                account=copy.deepcopy(self._account),
                orders=copy.deepcopy(list(self._orders.values())),
                fills=copy.deepcopy(list(self._fills.values())),
            )

    def save(
        self,
        account: dict[str, Any] | None = None,
        orders: Sequence[dict[str, Any]] = (),
        fills: Sequence[dict[str, Any]] = (),
    ) -> None:
        with self._lock:
            if account is not None:
                self._account = account
            for order in orders:
                self._orders[order["client_order_id"]] = order
            for fill in fills:
                self._fills.setdefault(fill["fill_id"], fill)
            self.saves += 1
