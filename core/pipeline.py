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
from typing import Any, Protocol

from core.domain import (
    CENT,
    ONE,
    AccountState,
    InstrumentType,
    KillSwitchState,
    OrderRequest,
    OrderType,
    Position,
    Side,
    Signal,
    StageDecision,
    TimeInForce,
    ValidationError,
    client_order_id_for,
)


class Rejected(Exception):
    """A stage declined the signal; the message is stored as the signal's reason."""


@dataclass(frozen=True, slots=True)
class PipelineContext:
    """What the stages may look at for one batch of signals (built once per batch)."""

    now: datetime
    account: AccountState | None
    positions: dict[str, Position]
    kill_switch: KillSwitchState
    known_symbols: frozenset[str]
    default_qty: Decimal
    mode: Any = None  # core.instruments.modes.InstrumentMode
    prices: dict[str, Decimal] = field(default_factory=dict)
    adv_dollars: dict[str, Decimal] = field(default_factory=dict)
    risk: Any = None  # core.risk.model.RiskSnapshot
    #: Orders approved earlier in the batch are appended here so later signals see them.
    working_orders: list[Any] = field(default_factory=list)
    recent_orders: list[Any] = field(default_factory=list)
    #: ``(underlying, expiry or None) -> option quotes`` when the market quotes option chains.
    option_chain: Any = None


@dataclass(frozen=True, slots=True)
class OrderDraft:
    """A signal on its way to becoming an order. Stages fill in the instrument (symbol, side,
    leverage), the reference price, the size and the stop/target in the traded instrument."""

    signal: Signal
    symbol: str
    qty: Decimal | None = None
    order_type: OrderType = OrderType.MARKET
    notes: dict[str, str] = field(default_factory=dict)
    side: Side | None = None
    instrument_type: InstrumentType = InstrumentType.STOCK
    leverage: Decimal = ONE
    decision: Any = None  # core.instruments.router.InstrumentDecision
    price: Decimal | None = None
    stop: Decimal | None = None
    target: Decimal | None = None
    #: The limit of a limit entry in the traded instrument (the entry stage sets it); when
    #: None, a limit entry is placed at the signal's entry (or the routed instrument's price).
    limit_price: Decimal | None = None


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
    side = draft.side or s.direction.entry_side
    coid = client_order_id_for(s.id)
    order_type = draft.order_type
    routed = draft.symbol != s.symbol
    kwargs: dict[str, object] = {}
    if order_type is OrderType.LIMIT:
        if draft.limit_price is not None:
            kwargs["limit_price"] = draft.limit_price
        elif routed:
            # the limit is the signal's entry translated into the traded instrument
            if draft.price is None or s.entry is None:
                raise Rejected("no price to place a limit in the routed instrument")
            kwargs["limit_price"] = draft.price.quantize(CENT)
        else:
            kwargs["limit_price"] = s.entry
    elif order_type is OrderType.BRACKET:
        target = draft.target if draft.target is not None else (None if routed else s.target)
        stop = draft.stop if draft.stop is not None else s.stop
        if target is None:
            raise Rejected("a bracket order needs a target on the signal")
        kwargs["take_profit_price"] = target
        kwargs["stop_loss_price"] = stop
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
        instrument_type=draft.instrument_type,
        **kwargs,  # type: ignore[arg-type]
    )


@dataclass(slots=True)
class Plan:
    """The outcome for one signal: the order request (None when rejected) and each stage's
    decision, in order, for the audit trail."""

    request: OrderRequest | None
    decisions: list[StageDecision]
    reason: str | None = None
    draft: OrderDraft | None = None


class SignalPipeline:
    """Runs the stages in order and builds the order request."""

    def __init__(self, stages: Sequence[Stage]):
        self.stages = tuple(stages)

    def plan(self, signal: Signal, ctx: PipelineContext) -> Plan:
        assert signal.id is not None
        draft = OrderDraft(signal=signal, symbol=signal.symbol, order_type=signal.order_type)
        decisions: list[StageDecision] = []
        for stage in self.stages:
            applies = getattr(stage, "applies", None)
            if applies is not None and not applies(draft):
                continue  # a stage for other instruments: no decision to record
            try:
                draft = stage.apply(draft, ctx)
            except (Rejected, ValidationError) as exc:
                decisions.append(StageDecision(signal.id, stage.name, False, ctx.now, str(exc)))
                return Plan(None, decisions, str(exc), draft)
            decisions.append(
                StageDecision(signal.id, stage.name, True, ctx.now, None, dict(draft.notes))
            )
        try:
            request = build_request(draft)
        except (Rejected, ValidationError) as exc:
            decisions.append(StageDecision(signal.id, "order", False, ctx.now, str(exc)))
            return Plan(None, decisions, str(exc), draft)
        return Plan(request, decisions, None, draft)


def pass_through_pipeline() -> SignalPipeline:
    return SignalPipeline([ValidateSignal(), KillSwitchGate(), FixedQuantity()])


__all__ = [
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
