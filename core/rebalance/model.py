"""Rebalance plans: the trades that move the portfolio to its targets, and their life.

A plan is built from a snapshot (positions, prices, equity) and is only valid near it::

    proposed ──approve──► approved ──► executing ──► completed
        │                    │             │    └──► partially_completed
        │                    │             └───────► failed
        └──► expired ◄───────┘   (prices moved past the tolerance, or the plan got too old)
        └──► cancelled (a person discarded it)

Approval is a command (who and when are kept); the executor re-checks prices when it applies
it, so a stale plan is expired instead of executed. Every change is kept in ``history``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from core.domain import ZERO, IllegalTransition, Side, to_decimal, utc


class PlanStatus(StrEnum):
    PROPOSED = "proposed"
    APPROVED = "approved"
    EXECUTING = "executing"
    COMPLETED = "completed"
    PARTIALLY_COMPLETED = "partially_completed"
    FAILED = "failed"
    EXPIRED = "expired"
    CANCELLED = "cancelled"

    @property
    def is_terminal(self) -> bool:
        return self in _TERMINAL_PLAN

    @property
    def is_active(self) -> bool:
        """Approved or executing: the executor works on it."""
        return self in (PlanStatus.APPROVED, PlanStatus.EXECUTING)


_TERMINAL_PLAN = frozenset(
    {
        PlanStatus.COMPLETED,
        PlanStatus.PARTIALLY_COMPLETED,
        PlanStatus.FAILED,
        PlanStatus.EXPIRED,
        PlanStatus.CANCELLED,
    }
)

PLAN_TRANSITIONS: dict[PlanStatus, frozenset[PlanStatus]] = {
    PlanStatus.PROPOSED: frozenset({PlanStatus.APPROVED, PlanStatus.EXPIRED, PlanStatus.CANCELLED}),
    PlanStatus.APPROVED: frozenset(
        {PlanStatus.EXECUTING, PlanStatus.EXPIRED, PlanStatus.FAILED, PlanStatus.CANCELLED}
    ),
    PlanStatus.EXECUTING: frozenset(
        {PlanStatus.COMPLETED, PlanStatus.PARTIALLY_COMPLETED, PlanStatus.FAILED}
    ),
    **{s: frozenset() for s in _TERMINAL_PLAN},
}


class LegStatus(StrEnum):
    """Where one trade of a plan is."""

    PENDING = "pending"
    WORKING = "working"
    FILLED = "filled"
    PARTIALLY_FILLED = "partially_filled"
    FAILED = "failed"
    SKIPPED = "skipped"

    @property
    def is_terminal(self) -> bool:
        return self not in (LegStatus.PENDING, LegStatus.WORKING)


@dataclass(slots=True)
class PlannedTrade:
    """One trade of a plan, with the estimate it was approved on and what became of it."""

    seq: int
    symbol: str
    side: Side
    qty: Decimal
    #: Last price when the plan was built, and the limit derived from it (last ± buffer).
    ref_price: Decimal
    limit_price: Decimal
    current_qty: Decimal
    target_qty: Decimal
    current_weight: Decimal
    target_weight: Decimal
    est_commission: Decimal = ZERO
    est_spread: Decimal = ZERO
    est_impact: Decimal = ZERO
    #: The smart order router's choice at preview time (market, limit, twap, vwap).
    algorithm: str = "market"
    sector: str | None = None
    #: True when it closes the whole position (a name no longer in the targets).
    closes_position: bool = False
    status: LegStatus = LegStatus.PENDING
    #: The algorithm parent's client order id once execution started.
    client_order_id: str | None = None
    filled_qty: Decimal = ZERO
    avg_price: Decimal | None = None
    reason: str | None = None

    @property
    def notional(self) -> Decimal:
        return self.qty * self.ref_price

    @property
    def est_cost(self) -> Decimal:
        return self.est_commission + self.est_spread + self.est_impact

    def to_dict(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "symbol": self.symbol,
            "side": self.side.value,
            "qty": str(self.qty),
            "ref_price": str(self.ref_price),
            "limit_price": str(self.limit_price),
            "current_qty": str(self.current_qty),
            "target_qty": str(self.target_qty),
            "current_weight": str(self.current_weight),
            "target_weight": str(self.target_weight),
            "est_commission": str(self.est_commission),
            "est_spread": str(self.est_spread),
            "est_impact": str(self.est_impact),
            "algorithm": self.algorithm,
            "sector": self.sector,
            "closes_position": self.closes_position,
            "status": self.status.value,
            "client_order_id": self.client_order_id,
            "filled_qty": str(self.filled_qty),
            "avg_price": None if self.avg_price is None else str(self.avg_price),
            "reason": self.reason,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PlannedTrade:
        def dec(name: str) -> Decimal:
            return to_decimal(data[name], name)

        avg = data.get("avg_price")
        return cls(
            seq=int(data["seq"]),
            symbol=str(data["symbol"]),
            side=Side(data["side"]),
            qty=dec("qty"),
            ref_price=dec("ref_price"),
            limit_price=dec("limit_price"),
            current_qty=dec("current_qty"),
            target_qty=dec("target_qty"),
            current_weight=dec("current_weight"),
            target_weight=dec("target_weight"),
            est_commission=dec("est_commission"),
            est_spread=dec("est_spread"),
            est_impact=dec("est_impact"),
            algorithm=str(data.get("algorithm") or "market"),
            sector=data.get("sector"),
            closes_position=bool(data.get("closes_position", False)),
            status=LegStatus(data.get("status", LegStatus.PENDING.value)),
            client_order_id=data.get("client_order_id"),
            filled_qty=to_decimal(data.get("filled_qty", "0"), "filled_qty"),
            avg_price=None if avg is None else to_decimal(avg, "avg_price"),
            reason=data.get("reason"),
        )


@dataclass(frozen=True, slots=True)
class PlanEvent:
    """One step of a plan's life: who moved it, when and why."""

    from_status: PlanStatus | None
    to_status: PlanStatus
    at: datetime
    by: str
    reason: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "from": None if self.from_status is None else self.from_status.value,
            "to": self.to_status.value,
            "at": self.at.isoformat(),
            "by": self.by,
            "reason": self.reason,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PlanEvent:
        return cls(
            None if data.get("from") is None else PlanStatus(data["from"]),
            PlanStatus(data["to"]),
            utc(datetime.fromisoformat(data["at"])),
            str(data.get("by", "")),
            str(data.get("reason", "")),
        )


@dataclass(slots=True)
class RebalancePlan:
    """A proposed move from the current to the target portfolio (seed 000 R5.2)."""

    trigger: str
    method: str
    equity: Decimal
    current_weights: dict[str, Decimal]
    target_weights: dict[str, Decimal]
    trades: list[PlannedTrade]
    created_at: datetime
    created_by: str
    price_tolerance_bps: Decimal
    expires_at: datetime | None = None
    trigger_detail: dict[str, Any] = field(default_factory=dict)
    #: Readable notes: constraint effects, trades left out by the minimum trade size.
    notes: list[str] = field(default_factory=list)
    status: PlanStatus = PlanStatus.PROPOSED
    id: int | None = None
    approved_by: str | None = None
    approved_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    reason: str | None = None
    #: Executed without a person's approval (only with the autonomous opt-in).
    autonomous: bool = False
    history: list[PlanEvent] = field(default_factory=list)

    # -------------------------------------------------------------- figures
    @property
    def est_commission(self) -> Decimal:
        return sum((t.est_commission for t in self.trades), ZERO)

    @property
    def est_spread(self) -> Decimal:
        return sum((t.est_spread for t in self.trades), ZERO)

    @property
    def est_impact(self) -> Decimal:
        return sum((t.est_impact for t in self.trades), ZERO)

    @property
    def est_cost(self) -> Decimal:
        return self.est_commission + self.est_spread + self.est_impact

    @property
    def gross_notional(self) -> Decimal:
        return sum((t.notional for t in self.trades), ZERO)

    @property
    def turnover(self) -> Decimal:
        """Traded value over equity, both sides counted (selling 10% to buy 10% is 0.20)."""
        if self.equity <= 0:
            return ZERO
        return (self.gross_notional / self.equity).quantize(Decimal("0.0001"))

    @property
    def sells(self) -> list[PlannedTrade]:
        return [t for t in self.trades if t.side is Side.SELL]

    @property
    def buys(self) -> list[PlannedTrade]:
        return [t for t in self.trades if t.side is Side.BUY]

    def trade(self, seq: int) -> PlannedTrade:
        for t in self.trades:
            if t.seq == seq:
                return t
        raise KeyError(f"plan {self.id} has no trade {seq}")

    @property
    def progress(self) -> tuple[int, int]:
        """(trades finished, trades in all)."""
        return sum(1 for t in self.trades if t.status.is_terminal), len(self.trades)

    # -------------------------------------------------------------- life
    def can_transition(self, to: PlanStatus) -> bool:
        return to in PLAN_TRANSITIONS[self.status]

    def transition(self, to: PlanStatus, at: datetime, by: str, reason: str = "") -> PlanEvent:
        """Move to ``to``, recording who, when and why; :class:`IllegalTransition` if the
        lifecycle does not allow it (an expired plan can never be approved, for instance)."""
        to = PlanStatus(to)
        if not self.can_transition(to):
            raise IllegalTransition(
                f"rebalance plan {self.id}: {self.status.value} -> {to.value} is not allowed"
            )
        at = utc(at)
        event = PlanEvent(self.status, to, at, by, reason)
        self.history.append(event)
        self.status = to
        if to is PlanStatus.APPROVED:
            self.approved_by, self.approved_at = by, at
        elif to is PlanStatus.EXECUTING:
            self.started_at = at
        if to.is_terminal:
            self.finished_at = at
            if reason:
                self.reason = reason
        return event


def parent_order_id(plan_id: int, seq: int) -> str:
    """The client order id of a plan trade's algorithm parent (children add ``-{n}``)."""
    return f"ax-r{plan_id}-{seq}"


__all__ = [
    "PLAN_TRANSITIONS",
    "LegStatus",
    "PlanEvent",
    "PlanStatus",
    "PlannedTrade",
    "RebalancePlan",
    "parent_order_id",
]
