"""The full signal pipeline: instrument router → sizer → risk gate (seed 001's execution pipeline).

Sizing runs before the gate (the seed's picture draws the gate first) because the exposure,
buying-power and duplicate checks need the size; the gate then approves, reduces (an
adjustment) or rejects it. Every stage's outcome is stored as a ``StageDecision``.
"""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

from core.domain import CENT, Direction, InstrumentType, OrderType, Side
from core.instruments.etf_sizer import LeveragedETFSizer
from core.instruments.modes import InstrumentMode
from core.instruments.router import InstrumentDecision, InstrumentRouter
from core.pipeline import (
    KillSwitchGate,
    OrderDraft,
    PipelineContext,
    Rejected,
    SignalPipeline,
    ValidateSignal,
)
from core.risk.gate import RiskGate
from core.risk.model import OrderFingerprint, TradeIntent, WorkingOrder
from core.sizing.position import PositionSizer


class OptionsUnavailable(Rejected):
    """Options decisions until the options stage exists: rejected with the reason, never dropped."""


class InstrumentStage:
    name = "instrument"

    def __init__(self, router: InstrumentRouter):
        self.router = router

    def apply(self, draft: OrderDraft, ctx: PipelineContext) -> OrderDraft:
        mode = ctx.mode or InstrumentMode.BOTH
        decision: InstrumentDecision = self.router.route(
            draft.signal, mode, lambda t: ctx.adv_dollars.get(t)
        )
        if decision.instrument_type is InstrumentType.OPTION:
            raise OptionsUnavailable(
                f"{draft.signal.trade_type.value} signal routes to 0DTE/1DTE options in "
                f"{mode.value} mode, and options trading is not supported yet"
            )
        price = ctx.prices.get(decision.ticker)
        if price is None:
            raise Rejected(f"no price for {decision.ticker}")
        return replace(
            draft,
            symbol=decision.ticker,
            side=decision.side,
            instrument_type=decision.instrument_type,
            leverage=decision.leverage,
            decision=decision,
            price=price,
            notes={
                **draft.notes,
                "instrument": decision.instrument_type.value,
                "ticker": decision.ticker,
                "leverage": str(decision.leverage),
                "why": decision.reason or "",
            },
        )


class SizingStage:
    name = "sizing"

    def __init__(self, stock: PositionSizer, etf: LeveragedETFSizer):
        self.stock = stock
        self.etf = etf

    def apply(self, draft: OrderDraft, ctx: PipelineContext) -> OrderDraft:
        s = draft.signal
        if ctx.account is None:
            raise Rejected("no account snapshot to size against")
        price = draft.price or s.entry
        if draft.instrument_type is InstrumentType.LEVERAGED_ETF and draft.decision is not None:
            size = self.etf.calculate(s, draft.decision, ctx.account, price)
            qty, reason = size.shares, size.reason
            stop = size.etf_stop_price
            target = None
            if s.target is not None:
                move = abs(s.target - s.entry) / s.entry * draft.leverage
                target = (price * (1 + move)).quantize(CENT)
            details = {"etf_stop": str(stop), "max_hold_days": str(size.max_hold_days)}
        else:
            res = self.stock.size(s.entry, s.stop, s.conviction, ctx.account.equity, price)
            qty, reason, stop, target = res.qty, res.reason, s.stop, s.target
            details = {"risk_amount": str(res.risk_amount), "capped": str(res.capped)}
        if s.qty is not None and s.qty < qty:
            qty, reason = s.qty, f"signal asked for {s.qty}, below the sized {qty}"
        if qty <= 0:
            raise Rejected(f"sized to zero: {reason}")
        return replace(
            draft,
            qty=qty,
            stop=stop,
            target=target,
            notes={**draft.notes, "qty": str(qty), "sizing": reason, **details},
        )


class RiskStage:
    name = "risk"

    def __init__(self, gate: RiskGate):
        self.gate = gate

    def apply(self, draft: OrderDraft, ctx: PipelineContext) -> OrderDraft:
        assert draft.qty is not None and ctx.risk is not None
        direction = Direction.LONG if draft.side is Side.BUY else Direction.SHORT
        intent = TradeIntent(
            symbol=draft.symbol,
            direction=direction,
            qty=draft.qty,
            price=draft.price or draft.signal.entry,
            stop=draft.stop,
            trade_type=draft.signal.trade_type,
            instrument_type=draft.instrument_type,
            signal_id=draft.signal.id,
        )
        decision = self.gate.validate(intent, ctx.risk, ctx.now)
        failed = [c.name for c in decision.failed_checks]
        if not decision.approved or decision.qty is None:
            raise Rejected(decision.reason or f"risk gate rejected: {', '.join(failed)}")
        qty = decision.qty
        # later signals in the same batch see this order as working and recently sent
        ctx.working_orders.append(
            WorkingOrder(draft.symbol, intent.side, qty, intent.price, draft.instrument_type)
        )
        ctx.recent_orders.append(OrderFingerprint(draft.symbol, intent.side, qty, ctx.now))
        notes = {**draft.notes, "approved_qty": str(qty)}
        if decision.adjustments:
            notes["adjustments"] = str(decision.adjustments)
        return replace(draft, qty=qty, notes=notes)


def full_pipeline(
    router: InstrumentRouter,
    stock_sizer: PositionSizer,
    etf_sizer: LeveragedETFSizer,
    gate: RiskGate,
) -> SignalPipeline:
    return SignalPipeline(
        [
            ValidateSignal(),
            KillSwitchGate(),
            InstrumentStage(router),
            SizingStage(stock_sizer, etf_sizer),
            RiskStage(gate),
        ]
    )


__all__ = [
    "Decimal",
    "InstrumentStage",
    "OptionsUnavailable",
    "OrderType",
    "RiskStage",
    "SizingStage",
    "full_pipeline",
]
