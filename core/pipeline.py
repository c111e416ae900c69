"""The signal pipeline: stages that turn a pending signal into order requests.

A stage takes an :class:`OrderDraft` and returns it (possibly changed) or raises
:class:`Rejected` / :class:`~core.domain.ValidationError`; the executor stores the reason on the
signal. The instrument router, risk gate and sizer plug in as stages; until they exist the
pass-through pipeline validates the signal and submits its order unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal
from typing import Protocol

from core.domain import (
    AccountState,
    Direction,
    KillSwitchState,
    OrderRequest,
    OrderType,
    Position,
    Signal,
    TimeInForce,
    client_order_id_for,
)


class Rejected(Exception):
    """A stage declined the signal; the message is stored as the signal's reason."""


@dataclass(frozen=True, slots=True)
class PipelineContext:
    now: datetime
    account: AccountState | None
    positions: dict[str, Position]
    kill_switch: KillSwitchState
    known_symbols: frozenset[str]
    default_qty: Decimal


@dataclass(frozen=True, slots=True)
class OrderDraft:
    """A signal on its way to becoming an order."""

    signal: Signal
    symbol: str
    qty: Decimal | None = None
    order_type: OrderType = OrderType.MARKET
    notes: dict[str, str] = field(default_factory=dict)


class Stage(Protocol):
    name: str

    def apply(self, draft: OrderDraft, ctx: PipelineContext) -> OrderDraft: ...


class ValidateSignal:
    """Reject malformed signals (prices, stop side, conviction, unknown symbol)."""

    name = "validate"

    def apply(self, draft: OrderDraft, ctx: PipelineContext) -> OrderDraft:
        draft.signal.validate(ctx.known_symbols)
        return draft


class KillSwitchGate:
    """While the kill switch is on, no new risk is taken."""

    name = "kill_switch"

    def apply(self, draft: OrderDraft, ctx: PipelineContext) -> OrderDraft:
        if ctx.kill_switch.active:
            raise Rejected(f"kill switch is on: {ctx.kill_switch.reason or 'no reason given'}")
        return draft


class FixedQuantity:
    """Pass-through sizing: the signal's own quantity, else the configured default."""

    name = "fixed_qty"

    def apply(self, draft: OrderDraft, ctx: PipelineContext) -> OrderDraft:
        return replace(draft, qty=draft.signal.qty or ctx.default_qty)


def build_request(draft: OrderDraft) -> OrderRequest:
    """Turn a sized draft into the entry order request with a deterministic client order id."""
    s = draft.signal
    if draft.qty is None:
        raise Rejected("no quantity was decided for the signal")
    assert s.id is not None, "signals get their id from the store before processing"
    side = s.direction.entry_side
    coid = client_order_id_for(s.id)
    order_type = draft.order_type
    kwargs: dict[str, object] = {}
    if order_type is OrderType.LIMIT:
        kwargs["limit_price"] = s.entry
    elif order_type is OrderType.BRACKET:
        if s.target is None:
            raise Rejected("a bracket order needs a target on the signal")
        kwargs["take_profit_price"] = s.target
        kwargs["stop_loss_price"] = s.stop
    elif order_type is OrderType.STOP:
        kwargs["stop_price"] = s.entry
    elif order_type is not OrderType.MARKET:
        raise Rejected(f"signals cannot open {order_type.value} orders")
    return OrderRequest(
        client_order_id=coid,
        symbol=draft.symbol,
        side=side,
        qty=draft.qty,
        order_type=order_type,
        time_in_force=TimeInForce.DAY,
        signal_id=s.id,
        **kwargs,  # type: ignore[arg-type]
    )


class SignalPipeline:
    """Runs the stages in order and builds the order request."""

    def __init__(self, stages: Sequence[Stage]):
        self.stages = tuple(stages)

    def plan(self, signal: Signal, ctx: PipelineContext) -> OrderRequest:
        draft = OrderDraft(signal=signal, symbol=signal.symbol, order_type=signal.order_type)
        for stage in self.stages:
            draft = stage.apply(draft, ctx)
        return build_request(draft)


def pass_through_pipeline() -> SignalPipeline:
    return SignalPipeline([ValidateSignal(), KillSwitchGate(), FixedQuantity()])


__all__ = [
    "Direction",
    "FixedQuantity",
    "KillSwitchGate",
    "OrderDraft",
    "PipelineContext",
    "Rejected",
    "SignalPipeline",
    "Stage",
    "ValidateSignal",
    "build_request",
    "pass_through_pipeline",
]
