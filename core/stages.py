"""The full signal pipeline: instrument router → sizer → risk gate (seed 001's execution pipeline).

Sizing runs before the gate (the seed's picture draws the gate first) because the exposure,
buying-power and duplicate checks need the size; the gate then approves, reduces (an
adjustment) or rejects it. Every stage's outcome is stored as a ``StageDecision``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING

from core.domain import CENT, ONE, ZERO, AccountState, Direction, InstrumentType, Side
from core.exits.model import ExitConfig
from core.exits.monitor import ExitMonitor
from core.instruments.config import InstrumentConfig
from core.instruments.etf_sizer import LeveragedETFSizer
from core.instruments.modes import InstrumentMode
from core.instruments.router import InstrumentDecision, InstrumentRouter
from core.instruments.sector_map import sector_of
from core.kill_switch_monitor import KillSwitchMonitor
from core.options.occ import is_occ, parse_occ
from core.options.stage import OptionsStage
from core.pipeline import (
    KillSwitchGate,
    OrderDraft,
    PipelineContext,
    Rejected,
    SignalPipeline,
    ValidateSignal,
)
from core.position_manager import PositionManager
from core.risk.config import RiskProfile
from core.risk.gate import RiskGate
from core.risk.model import OrderFingerprint, RiskSnapshot, TradeIntent, WorkingOrder
from core.sizing.entry import EntryStage
from core.sizing.position import PositionSizer
from core.sizing.scale_in import ScaleInPlan

if TYPE_CHECKING:
    from core.executor import TradeExecutor


class InstrumentStage:
    name = "instrument"

    def __init__(self, router: InstrumentRouter):
        self.router = router

    def apply(self, draft: OrderDraft, ctx: PipelineContext) -> OrderDraft:
        mode = ctx.mode or InstrumentMode.BOTH
        decision: InstrumentDecision = self.router.route(
            draft.signal, mode, lambda t: ctx.adv_dollars.get(t)
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
        if draft.instrument_type is InstrumentType.OPTION:
            return draft  # the options stage sized it by premium at risk
        if ctx.account is None:
            raise Rejected("no account snapshot to size against")
        price = draft.price or s.entry
        own_ticker = draft.decision is None or draft.decision.ticker == s.symbol
        if (
            draft.instrument_type is InstrumentType.LEVERAGED_ETF
            and draft.decision is not None
            and not own_ticker
        ):
            size = self.etf.calculate(s, draft.decision, ctx.account, price)
            qty, reason = size.shares, size.reason
            stop = size.etf_stop_price
            target = None
            if s.target is not None:
                move = abs(s.target - s.entry) / s.entry * draft.leverage
                target = (price * (1 + move)).quantize(CENT)
            details = {"etf_stop": str(stop), "max_hold_days": str(size.max_hold_days)}
        else:
            # a stock, or a signal on a fund's own ticker: its entry and stop are already prices
            # of what is traded, so the stop distance is not leveraged again
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
            notes={
                **draft.notes,
                "qty": str(qty),
                "sizing": reason,
                "stop": str(stop),
                "target": "" if target is None else str(target),
                **details,
            },
        )


@dataclass(slots=True)
class RiskBook:
    """The batch's risk snapshot; each approval replaces it with one that includes the order."""

    snapshot: RiskSnapshot


def build_risk_book(
    ex: TradeExecutor, account: AccountState, now: datetime, ctx: PipelineContext
) -> RiskBook:
    """The risk gate's view of the account for one batch of signals."""
    session = ex.market.calendar.session_date(now)
    row = ex.last_daily_row  # kept by the executor's mark to market
    if session is not None and (row is None or row.date != session):
        with ex.store.unit_of_work(read_only=True) as uow:
            row = uow.journal.daily_pnl(session)
    elif session is None:
        row = None
    starting = row.starting_equity if row is not None else account.equity
    peak = Decimal(row.metadata.get("peak_equity", str(account.equity))) if row else account.equity
    positions = {
        s: (p.marked(ctx.prices[s]) if s in ctx.prices else p)
        for s, p in ex.journal.positions.items()
    }
    working = [
        WorkingOrder(
            o.symbol,
            o.request.side,
            o.remaining_qty,
            o.request.limit_price or o.request.stop_price or ctx.prices.get(o.symbol, ZERO) or ONE,
            o.request.instrument_type,
            o.request.reduce_only or o.is_bracket_leg,
        )
        for o in ex.open_orders.values()
        if o.remaining_qty > 0
    ]
    cutoff = now - ex.recent_window
    # newest first, stopping at the window's start (orders are written in clock order)
    recent: list[OrderFingerprint] = []
    for f in reversed(ex.recent_fingerprints):
        if f[3] < cutoff:
            break
        recent.append(OrderFingerprint(*f))
    recent.reverse()
    snapshot = RiskSnapshot(
        account=account,
        starting_equity=starting,
        positions=positions,
        peak_equity=max(peak, account.equity),
        working_orders=working,
        recent_orders=recent,
        kill_switch=ex.kill_switch,
    )
    return RiskBook(snapshot)


class RiskStage:
    name = "risk"

    def __init__(self, gate: RiskGate):
        self.gate = gate

    def apply(self, draft: OrderDraft, ctx: PipelineContext) -> OrderDraft:
        assert draft.qty is not None and isinstance(ctx.risk, RiskBook)
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
        decision = self.gate.validate(intent, ctx.risk.snapshot, ctx.now)
        failed = [c.name for c in decision.failed_checks]
        if not decision.approved or decision.qty is None:
            raise Rejected(decision.reason or f"risk gate rejected: {', '.join(failed)}")
        qty = decision.qty
        # later signals in the same batch see this order as working and recently sent
        ctx.risk.snapshot = ctx.risk.snapshot.with_sent(intent, qty, ctx.now)
        notes = {**draft.notes, "approved_qty": str(qty)}
        if decision.adjustments:
            notes["adjustments"] = json.dumps(
                decision.to_dict().get("adjustments", {}), default=str
            )
        return replace(draft, qty=qty, notes=notes)


def full_pipeline(
    router: InstrumentRouter,
    stock_sizer: PositionSizer,
    etf_sizer: LeveragedETFSizer,
    gate: RiskGate,
    entry: EntryStage | None = None,
    options: OptionsStage | None = None,
) -> SignalPipeline:
    """validate → kill switch → instrument router → options (contract and premium-at-risk
    size, for scalps routed to options) → sizer → entry (order type, scale-in split) → risk
    gate."""
    return SignalPipeline(
        [
            ValidateSignal(),
            KillSwitchGate(),
            InstrumentStage(router),
            *([options] if options is not None else []),
            SizingStage(stock_sizer, etf_sizer),
            entry or EntryStage(),
            RiskStage(gate),
        ]
    )


class AddCheck:
    """The risk gate's say on a scale-in add: the quantity it allows, or why not."""

    def __init__(self, gate: RiskGate):
        self.gate = gate

    async def __call__(
        self, ex: TradeExecutor, plan: ScaleInPlan, price: Decimal, now: datetime
    ) -> tuple[Decimal | None, str]:
        ctx = await ex._context(now)
        assert isinstance(ctx.risk, RiskBook)
        trade = ex.journal.open_trades.get(plan.symbol)
        intent = TradeIntent(
            symbol=plan.symbol,
            direction=Direction.LONG if plan.entry_side is Side.BUY else Direction.SHORT,
            qty=plan.remaining_qty,
            price=price,
            stop=trade.stop_loss if trade is not None else None,
            trade_type=plan.trade_type,
            instrument_type=plan.instrument_type,
            signal_id=plan.signal_id,
        )
        decision = self.gate.validate(intent, ctx.risk.snapshot, now)
        if not decision.approved or decision.qty is None:
            failed = ", ".join(c.name for c in decision.failed_checks)
            return None, decision.reason or f"risk gate rejected: {failed}"
        return decision.qty, decision.reason or "approved"


__all__ = [
    "AddCheck",
    "InstrumentStage",
    "RiskStage",
    "SizingStage",
    "full_pipeline",
    "sector_lookup",
]


def sector_lookup(router: InstrumentRouter) -> Callable[[str], str | None]:
    """The risk gate's sector of a symbol: a stock's sector, or the sector a leveraged fund
    tracks, so funds count toward the sector limit like the stocks they stand for."""

    def sector(symbol: str) -> str | None:
        if is_occ(symbol):  # an option counts toward its underlying's sector
            symbol = parse_occ(symbol).underlying
        fund = router.catalog.entry_for(symbol)
        found = fund.sector if fund is not None else sector_of(symbol)
        return None if found is None else found.value

    return sector


def use_full_pipeline(
    ex: TradeExecutor,
    mode: InstrumentMode | None = None,
    profile: RiskProfile | None = None,
    instrument_config: InstrumentConfig | None = None,
    exit_config: ExitConfig | None = None,
) -> None:
    """Give ``ex`` the seed 001 pipeline: validate → kill switch → instrument router → sizer →
    entry → risk gate, plus exit management and the kill switch's triggers, all reading the
    executor's config. Arguments replace the config's mode, risk profile, instrument or exit
    settings; the executor's config is updated to what it now runs with."""
    ex.config = replace(
        ex.config,
        instrument_mode=mode if mode is not None else ex.config.instrument_mode,
        risk=profile if profile is not None else ex.config.risk,
        instruments=instrument_config or ex.config.instruments,
        exits=exit_config or ex.config.exits,
    )
    cfg = ex.config
    mode, profile, config = cfg.instrument_mode, cfg.risk, cfg.instruments
    router = InstrumentRouter(config)
    sector = sector_lookup(router)

    gate = RiskGate(profile, ex.market.calendar, sector_of=sector)
    etf_sizer = LeveragedETFSizer(
        config,
        max_risk_per_trade=profile.max_risk_per_trade,
        max_single_etf_exposure=profile.max_single_exposure,
    )
    entry = EntryStage(scale_in=cfg.scale_in, initial_fraction=cfg.scale_in_fraction)
    options = OptionsStage(cfg.options, profile.max_risk_per_trade, ex.market.calendar)
    ex.pipeline = full_pipeline(router, PositionSizer(profile), etf_sizer, gate, entry, options)
    ex.pipeline_needs_market = True
    ex.instrument_mode = mode
    ex.risk_snapshot = build_risk_book
    ex.add_check = AddCheck(gate)
    # Exit management and the kill switch's triggers follow the profile too; an executor that
    # already manages positions keeps its manager (and what it has learnt from the bars).
    if ex.position_manager is None:
        ex.position_manager = PositionManager(ex, ExitMonitor(cfg.exits, ex.market.calendar))
    kill_config = cfg.kill_switch_config
    if ex.kill_monitor is None:
        ex.kill_monitor = KillSwitchMonitor(ex, kill_config)
    else:
        ex.kill_monitor.config = kill_config
