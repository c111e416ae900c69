"""Smart-order-router parents: one per order the router works over time.

The parent is never sent to a broker. Its child orders are ordinary orders (written ahead,
submitted, filled like any other) whose ``parent_id`` is the parent's id and whose own id is
``{parent_id}-{n}``. The parent keeps the schedule, the progress (slices done out of total) and
the aggregated result (filled quantity, average price, slippage against the arrival price).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from core.domain import ZERO, Side, to_decimal, utc
from core.execution.schedule import Slice


class ParentStatus(StrEnum):
    WORKING = "working"
    FILLED = "filled"
    PARTIALLY_FILLED = "partially_filled"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def is_terminal(self) -> bool:
        return self is not ParentStatus.WORKING


def slice_to_dict(s: Slice) -> dict[str, Any]:
    return {"index": s.index, "at": s.at.isoformat(), "qty": str(s.qty)}


def slice_from_dict(data: dict[str, Any]) -> Slice:
    return Slice(
        int(data["index"]),
        utc(datetime.fromisoformat(data["at"])),
        to_decimal(data["qty"], "qty"),
    )


@dataclass(slots=True)
class ParentOrder:
    """An order the smart order router works through child orders."""

    parent_id: str
    symbol: str
    side: Side
    qty: Decimal
    algorithm: str
    arrival_price: Decimal
    created_at: datetime
    schedule: list[Slice] = field(default_factory=list)
    plan_id: int | None = None
    #: The price the first child rests at (limit algorithms), and how far a chase may go.
    limit_price: Decimal | None = None
    bound_price: Decimal | None = None
    expected_cost_bps: Decimal | None = None
    status: ParentStatus = ParentStatus.WORKING
    slices_sent: int = 0
    slices_done: int = 0
    filled_qty: Decimal = ZERO
    avg_price: Decimal | None = None
    slippage_bps: Decimal | None = None
    commission: Decimal = ZERO
    strategy: str = "rebalance"
    sector: str | None = None
    regime: str | None = None
    reason: str | None = None
    updated_at: datetime | None = None
    #: Limit-chase state: the working child's price and when it may next be re-priced.
    chase_price: Decimal | None = None
    next_chase_at: datetime | None = None
    #: How many children were sent in all (a chase replaces a child with a new one).
    children_sent: int = 0
    #: The child the router asked the broker to cancel (to re-price it or to fold it into the
    #: next slice); any other cancelled child was cancelled by a person and stops the parent.
    cancelling: str | None = None

    @property
    def slices_total(self) -> int:
        return len(self.schedule)

    @property
    def remaining_qty(self) -> Decimal:
        return self.qty - self.filled_qty

    @property
    def progress(self) -> Decimal:
        """Filled share of the parent, 0 to 1."""
        return ZERO if self.qty <= 0 else min(Decimal(1), self.filled_qty / self.qty)

    def child_id(self, n: int) -> str:
        return f"{self.parent_id}-{n}"

    def schedule_document(self) -> dict[str, Any]:
        """The JSON document stored with the parent: its slices and the chase state."""
        return {
            "slices": [slice_to_dict(s) for s in self.schedule],
            "chase_price": None if self.chase_price is None else str(self.chase_price),
            "next_chase_at": None if self.next_chase_at is None else self.next_chase_at.isoformat(),
            "children_sent": self.children_sent,
            "cancelling": self.cancelling,
        }

    def load_schedule_document(self, doc: dict[str, Any]) -> None:
        self.schedule = [slice_from_dict(s) for s in doc.get("slices", [])]
        chase = doc.get("chase_price")
        self.chase_price = None if chase is None else to_decimal(chase, "chase_price")
        nxt = doc.get("next_chase_at")
        self.next_chase_at = None if nxt is None else utc(datetime.fromisoformat(nxt))
        self.children_sent = int(doc.get("children_sent", 0))
        self.cancelling = doc.get("cancelling")


__all__ = ["ParentOrder", "ParentStatus", "slice_from_dict", "slice_to_dict"]
