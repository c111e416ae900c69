"""Rebalance plans with their trades, and the smart order router's parent orders."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from sqlalchemy import Row, delete, insert, select, update

from core.domain import Side
from core.execution.parent import ParentOrder, ParentStatus
from core.rebalance.model import (
    LegStatus,
    PlanEvent,
    PlannedTrade,
    PlanStatus,
    RebalancePlan,
)
from db.errors import RowNotFoundError
from db.repositories._base import Repository
from db.tables import ALGO_ORDERS, REBALANCE_PLANS, REBALANCE_TRADES

_ACTIVE = (PlanStatus.APPROVED.value, PlanStatus.EXECUTING.value)


def _weights_doc(weights: dict[str, Decimal]) -> dict[str, Any]:
    return {symbol: str(w) for symbol, w in sorted(weights.items())}


def _weights_from(doc: dict[str, Any] | None) -> dict[str, Decimal]:
    return {symbol: Decimal(str(w)) for symbol, w in (doc or {}).items()}


def _plan_values(plan: RebalancePlan) -> dict[str, Any]:
    return {
        "status": plan.status.value,
        "trigger": plan.trigger,
        "trigger_detail": plan.trigger_detail,
        "method": plan.method,
        "equity": plan.equity,
        "turnover": plan.turnover,
        "est_commission": plan.est_commission,
        "est_spread": plan.est_spread,
        "est_impact": plan.est_impact,
        "price_tolerance_bps": plan.price_tolerance_bps,
        "current_weights": _weights_doc(plan.current_weights),
        "target_weights": _weights_doc(plan.target_weights),
        "notes": {"notes": list(plan.notes)},
        "history": {"events": [e.to_dict() for e in plan.history]},
        "autonomous": plan.autonomous,
        "created_by": plan.created_by,
        "created_at": plan.created_at,
        "expires_at": plan.expires_at,
        "approved_by": plan.approved_by,
        "approved_at": plan.approved_at,
        "started_at": plan.started_at,
        "finished_at": plan.finished_at,
        "reason": plan.reason,
    }


def _trade_values(plan_id: int, t: PlannedTrade) -> dict[str, Any]:
    return {
        "plan_id": plan_id,
        "seq": t.seq,
        "symbol": t.symbol,
        "side": t.side.value,
        "qty": t.qty,
        "ref_price": t.ref_price,
        "limit_price": t.limit_price,
        "current_qty": t.current_qty,
        "target_qty": t.target_qty,
        "current_weight": t.current_weight,
        "target_weight": t.target_weight,
        "est_commission": t.est_commission,
        "est_spread": t.est_spread,
        "est_impact": t.est_impact,
        "algorithm": t.algorithm,
        "sector": t.sector,
        "closes_position": t.closes_position,
        "status": t.status.value,
        "client_order_id": t.client_order_id,
        "filled_qty": t.filled_qty,
        "avg_price": t.avg_price,
        "reason": t.reason,
    }


def _trade_from_row(r: Row[Any]) -> PlannedTrade:
    m = r._mapping
    return PlannedTrade(
        seq=m["seq"],
        symbol=m["symbol"],
        side=Side(m["side"]),
        qty=m["qty"],
        ref_price=m["ref_price"],
        limit_price=m["limit_price"],
        current_qty=m["current_qty"],
        target_qty=m["target_qty"],
        current_weight=m["current_weight"],
        target_weight=m["target_weight"],
        est_commission=m["est_commission"],
        est_spread=m["est_spread"],
        est_impact=m["est_impact"],
        algorithm=m["algorithm"],
        sector=m["sector"],
        closes_position=m["closes_position"],
        status=LegStatus(m["status"]),
        client_order_id=m["client_order_id"],
        filled_qty=m["filled_qty"],
        avg_price=m["avg_price"],
        reason=m["reason"],
    )


def _plan_from_row(r: Row[Any], trades: list[PlannedTrade]) -> RebalancePlan:
    m = r._mapping
    return RebalancePlan(
        id=m["id"],
        status=PlanStatus(m["status"]),
        trigger=m["trigger"],
        trigger_detail=dict(m["trigger_detail"] or {}),
        method=m["method"],
        equity=m["equity"],
        current_weights=_weights_from(m["current_weights"]),
        target_weights=_weights_from(m["target_weights"]),
        trades=trades,
        notes=list((m["notes"] or {}).get("notes", [])),
        history=[PlanEvent.from_dict(e) for e in (m["history"] or {}).get("events", [])],
        price_tolerance_bps=m["price_tolerance_bps"],
        autonomous=m["autonomous"],
        created_by=m["created_by"],
        created_at=m["created_at"],
        expires_at=m["expires_at"],
        approved_by=m["approved_by"],
        approved_at=m["approved_at"],
        started_at=m["started_at"],
        finished_at=m["finished_at"],
        reason=m["reason"],
    )


class SqlRebalanceRepository(Repository):
    """Plans and their trades; a plan is written whole (plan row plus trade rows)."""

    __slots__ = ()

    def add(self, plan: RebalancePlan) -> int:
        """Insert ``plan`` and its trades; returns its id and sets ``plan.id``."""
        result = self._conn.execute(insert(REBALANCE_PLANS), _plan_values(plan))
        plan.id = int(result.inserted_primary_key[0])  # type: ignore[index]
        self._write_trades(plan.id, plan.trades)
        return plan.id

    def update(self, plan: RebalancePlan) -> None:
        """Store the plan's status, figures and history, and its trades as they are now."""
        if plan.id is None:
            raise RowNotFoundError("the plan was never stored")
        result = self._conn.execute(
            update(REBALANCE_PLANS)
            .where(REBALANCE_PLANS.c.id == plan.id)
            .values(**_plan_values(plan))
        )
        if result.rowcount != 1:
            raise RowNotFoundError(f"rebalance plan {plan.id} is not stored")
        self._conn.execute(delete(REBALANCE_TRADES).where(REBALANCE_TRADES.c.plan_id == plan.id))
        self._write_trades(plan.id, plan.trades)

    def _write_trades(self, plan_id: int, trades: Sequence[PlannedTrade]) -> None:
        if trades:
            self._conn.execute(
                insert(REBALANCE_TRADES), [_trade_values(plan_id, t) for t in trades]
            )

    def _load(self, rows: Sequence[Row[Any]]) -> list[RebalancePlan]:
        if not rows:
            return []
        ids = [r._mapping["id"] for r in rows]
        by_plan: dict[int, list[PlannedTrade]] = {i: [] for i in ids}
        trade_rows = self._conn.execute(
            select(REBALANCE_TRADES)
            .where(REBALANCE_TRADES.c.plan_id.in_(ids))
            .order_by(REBALANCE_TRADES.c.plan_id, REBALANCE_TRADES.c.seq)
        )
        for tr in trade_rows:
            by_plan[tr._mapping["plan_id"]].append(_trade_from_row(tr))
        return [_plan_from_row(r, by_plan[r._mapping["id"]]) for r in rows]

    def get(self, plan_id: int) -> RebalancePlan | None:
        rows = self._conn.execute(
            select(REBALANCE_PLANS).where(REBALANCE_PLANS.c.id == plan_id)
        ).all()
        plans = self._load(rows)
        return plans[0] if plans else None

    def recent(self, limit: int = 50, status: PlanStatus | None = None) -> list[RebalancePlan]:
        """Newest first, optionally in one status."""
        query = select(REBALANCE_PLANS).order_by(REBALANCE_PLANS.c.id.desc()).limit(limit)
        if status is not None:
            query = query.where(REBALANCE_PLANS.c.status == PlanStatus(status).value)
        return self._load(self._conn.execute(query).all())

    def active(self) -> list[RebalancePlan]:
        """Approved and executing plans, oldest first (the executor's work list)."""
        rows = self._conn.execute(
            select(REBALANCE_PLANS)
            .where(REBALANCE_PLANS.c.status.in_(_ACTIVE))
            .order_by(REBALANCE_PLANS.c.id)
        ).all()
        return self._load(rows)

    def proposed(self) -> list[RebalancePlan]:
        """Plans waiting for approval, oldest first."""
        rows = self._conn.execute(
            select(REBALANCE_PLANS)
            .where(REBALANCE_PLANS.c.status == PlanStatus.PROPOSED.value)
            .order_by(REBALANCE_PLANS.c.id)
        ).all()
        return self._load(rows)


# ---------------------------------------------------------------------------------------------
# Algorithm parents
# ---------------------------------------------------------------------------------------------


def _parent_values(p: ParentOrder) -> dict[str, Any]:
    return {
        "parent_id": p.parent_id,
        "plan_id": p.plan_id,
        "symbol": p.symbol,
        "side": p.side.value,
        "qty": p.qty,
        "algorithm": p.algorithm,
        "status": p.status.value,
        "arrival_price": p.arrival_price,
        "limit_price": p.limit_price,
        "bound_price": p.bound_price,
        "expected_cost_bps": p.expected_cost_bps,
        "slices_total": p.slices_total,
        "slices_sent": p.slices_sent,
        "slices_done": p.slices_done,
        "filled_qty": p.filled_qty,
        "avg_price": p.avg_price,
        "slippage_bps": p.slippage_bps,
        "commission": p.commission,
        "schedule": p.schedule_document(),
        "strategy": p.strategy,
        "sector": p.sector,
        "regime": p.regime,
        "reason": p.reason,
        "created_at": p.created_at,
        "updated_at": p.updated_at or p.created_at,
    }


def _parent_from_row(r: Row[Any]) -> ParentOrder:
    m = r._mapping
    parent = ParentOrder(
        parent_id=m["parent_id"],
        symbol=m["symbol"],
        side=Side(m["side"]),
        qty=m["qty"],
        algorithm=m["algorithm"],
        arrival_price=m["arrival_price"],
        created_at=m["created_at"],
        plan_id=m["plan_id"],
        limit_price=m["limit_price"],
        bound_price=m["bound_price"],
        expected_cost_bps=m["expected_cost_bps"],
        status=ParentStatus(m["status"]),
        slices_sent=m["slices_sent"],
        slices_done=m["slices_done"],
        filled_qty=m["filled_qty"],
        avg_price=m["avg_price"],
        slippage_bps=m["slippage_bps"],
        commission=m["commission"],
        strategy=m["strategy"],
        sector=m["sector"],
        regime=m["regime"],
        reason=m["reason"],
        updated_at=m["updated_at"],
    )
    parent.load_schedule_document(dict(m["schedule"] or {}))
    return parent


class SqlAlgoOrderRepository(Repository):
    """Smart-order-router parents; their children are rows of ``orders``."""

    __slots__ = ()

    def add(self, parent: ParentOrder) -> None:
        self._conn.execute(insert(ALGO_ORDERS), _parent_values(parent))

    def update(self, parent: ParentOrder) -> None:
        values = _parent_values(parent)
        values.pop("parent_id")
        result = self._conn.execute(
            update(ALGO_ORDERS).where(ALGO_ORDERS.c.parent_id == parent.parent_id).values(**values)
        )
        if result.rowcount != 1:
            raise RowNotFoundError(f"algorithm order {parent.parent_id} is not stored")

    def get(self, parent_id: str) -> ParentOrder | None:
        row = self._conn.execute(
            select(ALGO_ORDERS).where(ALGO_ORDERS.c.parent_id == parent_id)
        ).first()
        return None if row is None else _parent_from_row(row)

    def working(self) -> list[ParentOrder]:
        rows = self._conn.execute(
            select(ALGO_ORDERS)
            .where(ALGO_ORDERS.c.status == ParentStatus.WORKING.value)
            .order_by(ALGO_ORDERS.c.created_at, ALGO_ORDERS.c.parent_id)
        )
        return [_parent_from_row(r) for r in rows]

    def for_plan(self, plan_id: int) -> list[ParentOrder]:
        rows = self._conn.execute(
            select(ALGO_ORDERS)
            .where(ALGO_ORDERS.c.plan_id == plan_id)
            .order_by(ALGO_ORDERS.c.created_at, ALGO_ORDERS.c.parent_id)
        )
        return [_parent_from_row(r) for r in rows]

    def recent(self, limit: int = 100) -> list[ParentOrder]:
        """Newest first."""
        rows = self._conn.execute(
            select(ALGO_ORDERS)
            .order_by(ALGO_ORDERS.c.created_at.desc(), ALGO_ORDERS.c.parent_id.desc())
            .limit(limit)
        )
        return [_parent_from_row(r) for r in rows]


__all__ = ["SqlAlgoOrderRepository", "SqlRebalanceRepository"]
