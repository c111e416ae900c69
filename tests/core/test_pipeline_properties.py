"""Properties of the full signal pipeline and of the kill switch over random streams.

1. Random batches of signals (symbols in several sectors, index funds, a leveraged fund and an
   unmapped ticker; both directions; random entries, stops, convictions, trade and order types)
   run through the full pipeline (validate -> kill switch -> instrument -> sizing -> entry ->
   risk) in every instrument mode, with random fills, exits and price moves between batches.
   After every approval the book, recomputed here from the approvals (positions filled at the
   price of the moment plus working orders), stays within the profile's maximum number of
   positions and its single-name and sector exposure limits, and nothing is approved once the
   day's loss reached the daily loss limit.
2. The kill switch latches exactly when a trigger holds, stays on whatever comes later, and only
   a named person releases it.
3. Every plan has one decision per stage run, in order; a rejected plan ends in the rejecting
   stage and carries a non-empty reason.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from decimal import Decimal as D
from typing import Any

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from core.domain import (
    CENT,
    ONE,
    ZERO,
    AccountState,
    Direction,
    InstrumentType,
    KillSwitchState,
    OrderType,
    Position,
    Side,
    Signal,
    TradeType,
    ValidationError,
)
from core.instruments.config import InstrumentConfig
from core.instruments.etf_sizer import LeveragedETFSizer
from core.instruments.modes import InstrumentMode
from core.instruments.router import InstrumentRouter, NoInstrument
from core.marketdata.calendar import ManualClock, default_calendar
from core.pipeline import PipelineContext, Plan, SignalPipeline
from core.risk import (
    AGGRESSIVE,
    CONSERVATIVE,
    KillSwitch,
    KillSwitchConfig,
    KillSwitchInputs,
    OrderFingerprint,
    RiskGate,
    RiskProfile,
    RiskSnapshot,
    WorkingOrder,
)
from core.sizing.entry import EntryStage
from core.sizing.position import PositionSizer
from core.stages import RiskBook, full_pipeline, sector_lookup
from tests.core.risk.support import OPEN

MODES = [InstrumentMode.OPTIONS, InstrumentMode.LEVERAGED_ETF, InstrumentMode.BOTH]

#: The sector (or index) of every ticker a signal may name or be routed to, written out here so
#: that exposures are checked against a reading independent of the product's own maps. A
#: leveraged fund belongs to the sector or index it tracks.
STOCKS: dict[str, str | None] = {
    "AAPL": "technology",
    "MSFT": "technology",
    "ORCL": "technology",
    "CRM": "technology",
    "ADBE": "technology",
    "NVDA": "semiconductors",
    "AMD": "semiconductors",
    "AVGO": "semiconductors",
    "JPM": "financials",
    "BAC": "financials",
    "GS": "financials",
    "XOM": "energy",
    "CVX": "energy",
    "UNH": "healthcare",
    "LLY": "healthcare",
    "GE": "industrials",
    "CAT": "industrials",
    "SPY": "sp500",
    "QQQ": "nasdaq100",
    "IWM": "russell2000",
    "ZZZT": None,  # in no map: no sector limit, and no leveraged fund to trade
}
FUNDS: dict[str, str] = {
    "TECL": "technology",
    "TECS": "technology",
    "SOXL": "semiconductors",
    "SOXS": "semiconductors",
    "FAS": "financials",
    "FAZ": "financials",
    "ERX": "energy",
    "ERY": "energy",
    "CURE": "healthcare",
    "SPXL": "sp500",
    "SPXS": "sp500",
    "UPRO": "sp500",
    "SPXU": "sp500",
    "TQQQ": "nasdaq100",
    "SQQQ": "nasdaq100",
    "TNA": "russell2000",
    "TZA": "russell2000",
}
INVERSE_FUNDS = frozenset({"TECS", "SOXS", "FAZ", "ERY", "SPXS", "SPXU", "SQQQ", "TZA"})
SECTOR: dict[str, str | None] = {**STOCKS, **FUNDS}
#: What signals name: stocks in seven sectors, index funds, an unmapped ticker and a leveraged
#: fund itself.
SIGNAL_SYMBOLS = [*STOCKS, "SOXL"]
HEAVY = [s for s in STOCKS if STOCKS[s] in ("technology", "semiconductors")]
TICKERS = sorted(SECTOR)
KNOWN = frozenset(TICKERS)


def start_price(i: int) -> D:
    """Prices spread from about 15 to 500."""
    return D(15 + 37 * i % 480) + D(i) / 100


@dataclass
class Book:
    """What the approvals built: positions filled at the price of the moment, working orders
    not yet filled, and cash. Exposures are recomputed from it, not by the gate's helpers."""

    cash: D
    prices: dict[str, D]
    start: D = ZERO
    peak: D = ZERO
    qty: dict[str, D] = field(default_factory=dict)
    avg: dict[str, D] = field(default_factory=dict)
    kind: dict[str, InstrumentType] = field(default_factory=dict)
    #: (symbol, signed qty, price, instrument type) of approved orders not yet filled.
    working: list[tuple[str, D, D, InstrumentType]] = field(default_factory=list)
    recent: list[OrderFingerprint] = field(default_factory=list)

    def equity(self) -> D:
        return self.cash + sum((q * self.prices[s] for s, q in self.qty.items()), ZERO)

    def exposure(self) -> dict[str, D]:
        """Signed value per symbol: positions at the current price plus working orders."""
        out: dict[str, D] = {}
        for s, q in self.qty.items():
            out[s] = out.get(s, ZERO) + q * self.prices[s]
        for s, signed, price, _ in self.working:
            out[s] = out.get(s, ZERO) + signed * price
        return out

    def symbols(self) -> set[str]:
        """Symbols held or with a working order."""
        return set(self.qty) | {w[0] for w in self.working}

    def snapshot(self) -> RiskSnapshot:
        equity = self.equity()
        gross = sum((abs(v) for v in self.exposure().values()), ZERO)
        positions = {
            s: Position(s, q, self.avg[s], self.prices[s], self.kind[s])
            for s, q in self.qty.items()
        }
        working = [
            WorkingOrder(s, Side.BUY if q > 0 else Side.SELL, abs(q), p, k)
            for s, q, p, k in self.working
        ]
        return RiskSnapshot(
            account=AccountState(
                equity=equity, cash=self.cash, buying_power=max(2 * equity - gross, ZERO)
            ),
            starting_equity=self.start,
            positions=positions,
            peak_equity=self.peak,
            working_orders=working,
            recent_orders=self.recent,
        )

    def fill(self, symbol: str, signed: D, kind: InstrumentType) -> None:
        price = self.prices[symbol]
        held = self.qty.get(symbol, ZERO)
        new = held + signed
        self.avg[symbol] = (self.avg.get(symbol, ZERO) * held + price * signed) / new
        self.kind[symbol] = kind
        self.qty[symbol] = new
        self.cash -= signed * price

    def close(self, symbol: str) -> None:
        self.cash += self.qty.pop(symbol) * self.prices[symbol]
        del self.avg[symbol], self.kind[symbol]

    def move(self, symbol: str, pct: int) -> None:
        self.prices[symbol] = max((self.prices[symbol] * (100 + pct) / 100).quantize(CENT), ONE)


# -- strategies ---------------------------------------------------------------------------------

signal_spec = st.fixed_dictionaries(
    {
        # technology and semiconductors weighted, so that their sector limits are reached
        "symbol": st.sampled_from(SIGNAL_SYMBOLS) | st.sampled_from(HEAVY),
        "direction": st.sampled_from(list(Direction)),
        "entry_bp": st.integers(-200, 200),  # entry against the current price, basis points
        "stop_bp": st.integers(-50, 1500),  # stop distance; zero or less makes a malformed signal
        "conviction": st.integers(0, 100) | st.integers(50, 100) | st.integers(75, 100),
        "trade_type": st.sampled_from(list(TradeType)),
        "order_type": st.sampled_from([OrderType.MARKET, OrderType.LIMIT, OrderType.BRACKET]),
        "target": st.sampled_from([True, True, False]),
        "qty": st.one_of(st.none(), st.integers(1, 2_000)),
    }
)
batch = st.fixed_dictionaries(
    {
        "signals": st.lists(signal_spec, min_size=1, max_size=8),
        "fill": st.lists(st.booleans(), max_size=8),  # which working orders fill after the batch
        "close": st.lists(st.sampled_from(TICKERS), max_size=2),
        "moves": st.lists(st.tuples(st.sampled_from(TICKERS), st.integers(-30, 40)), max_size=6),
        "crash": st.sampled_from([0, 0, 0, 0, 0]) | st.integers(1, 12),
        "wait": st.integers(0, 120),
        "halted": st.integers(0, 19),  # 0: the kill switch is on during the batch
    }
)


def make_signal(spec: dict[str, Any], book: Book, sid: int, now: datetime) -> Signal:
    entry = (book.prices[spec["symbol"]] * (10_000 + spec["entry_bp"]) / 10_000).quantize(CENT)
    sign = 1 if spec["direction"] is Direction.LONG else -1
    stop = (entry * (10_000 - sign * spec["stop_bp"]) / 10_000).quantize(CENT)
    reward = 2 * max(spec["stop_bp"], 1)
    target = (entry * (10_000 + sign * reward) / 10_000).quantize(CENT)
    return Signal(
        spec["symbol"],
        spec["direction"],
        entry,
        stop,
        now,
        target=target if spec["target"] and target > 0 else None,
        qty=None if spec["qty"] is None else D(spec["qty"]),
        conviction=spec["conviction"],
        trade_type=spec["trade_type"],
        order_type=spec["order_type"],
        id=sid,
    )


def check_trail(plan: Plan, halted: bool) -> None:
    """Property 3: one decision per stage run, in order; a rejection ends in its stage and
    carries a non-empty reason."""
    names = [d.stage for d in plan.decisions]
    if plan.request is None:
        assert plan.reason is not None and plan.reason.strip()
        last = plan.decisions[-1]
        assert not last.approved and last.reason == plan.reason
        assert all(d.approved for d in plan.decisions[:-1])
        # building the order from a fully approved draft is the step after the last stage
        ran = names[:-1] if names[-1] == "order" else names
        assert ran == (STAGES if names[-1] == "order" else STAGES[: len(ran)])
        if halted:
            assert names[-1] in ("validate", "kill_switch")
    else:
        assert plan.reason is None and not halted
        assert names == STAGES
        assert all(d.approved and d.reason is None for d in plan.decisions)


def check_limits(book: Book, symbol: str, equity: D, profile: RiskProfile) -> None:
    """Property 1: with the order just approved the book stays within the profile's limits."""
    value = book.exposure()
    assert len(book.symbols()) <= profile.max_concurrent_positions
    assert abs(value[symbol]) <= equity * profile.max_single_exposure, (symbol, value[symbol])
    sector = SECTOR[symbol]
    if sector is not None:
        gross = sum((abs(v) for s, v in value.items() if SECTOR[s] == sector), ZERO)
        assert gross <= equity * profile.max_sector_exposure, (sector, gross, equity)


def pipeline_for(profile: RiskProfile, scale_in: bool) -> SignalPipeline:
    """The stages ``use_full_pipeline`` gives the executor, built the same way from ``profile``
    and the default instrument settings (the entry stage with or without the scale-in split)."""
    config = InstrumentConfig()
    router = InstrumentRouter(config)
    etf_sizer = LeveragedETFSizer(
        config,
        max_risk_per_trade=profile.max_risk_per_trade,
        max_single_etf_exposure=profile.max_single_exposure,
    )
    gate = RiskGate(profile, default_calendar(), sector_of=sector_lookup(router))
    return full_pipeline(
        router,
        PositionSizer(profile),
        etf_sizer,
        gate,
        EntryStage(scale_in=scale_in),
    )


#: The shipped profiles, and the conservative one held to five positions so that the limit on
#: concurrent positions is reached often.
PROFILES = [
    AGGRESSIVE,
    CONSERVATIVE,
    replace(CONSERVATIVE, name="five_positions", max_concurrent_positions=5),
]
PIPELINES = {
    (p.name, scale_in): pipeline_for(p, scale_in) for p in PROFILES for scale_in in (True, False)
}
#: The stages in the order they run: validate, kill switch, instrument, sizing, ..., risk.
STAGES = [s.name for s in PIPELINES[(AGGRESSIVE.name, True)].stages]
assert STAGES[:4] == ["validate", "kill_switch", "instrument", "sizing"] and STAGES[-1] == "risk"


def risk_event(plan: Plan) -> None:
    """Which risk outcome a plan had, so the statistics show that every limit is exercised."""
    if plan.decisions[-1].stage != "risk":
        return
    if plan.request is None:
        assert plan.reason is not None
        event(f"risk rejected: {re.sub(r'[0-9][0-9.,]*', '#', plan.reason.split(':')[0])}")
    elif plan.draft is not None and "adjustments" in plan.draft.notes:
        event(f"risk reduced: {json.loads(plan.draft.notes['adjustments'])['by']}")


def run_stream(
    profile: RiskProfile,
    mode: InstrumentMode,
    equity: int,
    prior_loss: D,
    scale_in: bool,
    batches: list[dict[str, Any]],
) -> None:
    pipeline = PIPELINES[(profile.name, scale_in)]
    clock = ManualClock(OPEN + timedelta(minutes=5))
    book = Book(D(equity), {s: start_price(i) for i, s in enumerate(TICKERS)})
    # the day began with more equity: a loss of ``prior_loss`` times the daily limit is realized
    book.start = book.peak = (book.equity() / (1 - prior_loss * profile.daily_loss_limit)).quantize(
        CENT
    )
    adv = dict.fromkeys(TICKERS, D(50_000_000))
    sid = approved = 0
    for b in batches:
        now = clock.now()
        snap = book.snapshot()
        halted = b["halted"] == 0
        ctx = PipelineContext(
            now=now,
            account=snap.account,
            positions=dict(snap.positions),
            kill_switch=KillSwitchState(True, "manual halt", now, "alice")
            if halted
            else KillSwitchState(False),
            known_symbols=KNOWN,
            default_qty=ONE,
            mode=mode,
            prices=dict(book.prices),
            adv_dollars=adv,
            risk=RiskBook(snap),
        )
        equity_now = book.equity()
        loss_reached = equity_now - book.start <= -profile.daily_loss_limit * book.start
        for spec in b["signals"]:
            sid += 1
            plan = pipeline.plan(make_signal(spec, book, sid, now), ctx)
            check_trail(plan, halted)
            risk_event(plan)
            if plan.request is None:
                continue
            assert not loss_reached, "an order was approved after the daily loss limit was reached"
            approved += 1
            req = plan.request
            signed = req.qty * req.side.sign
            held = book.qty.get(req.symbol, ZERO)
            assert held == 0 or (held > 0) == (signed > 0), "an entry against a held position"
            book.working.append((req.symbol, signed, book.prices[req.symbol], req.instrument_type))
            book.recent.append(OrderFingerprint(req.symbol, req.side, req.qty, now))
            check_limits(book, req.symbol, equity_now, profile)
        # between batches: working orders fill or keep working, positions are closed, prices
        # move (a crash takes every price down and the inverse funds up) and time passes
        fills = b["fill"] + [False] * len(book.working)
        for (s, signed, _, kind), filled in zip(book.working, fills, strict=False):
            if filled:
                book.fill(s, signed, kind)
        book.working = [w for w, filled in zip(book.working, fills, strict=False) if not filled]
        for s in b["close"]:
            if s in book.qty:
                book.close(s)
        for s, pct in b["moves"]:
            book.move(s, pct)
        if b["crash"]:
            for s in book.prices:
                book.move(s, 3 * b["crash"] if s in INVERSE_FUNDS else -b["crash"])
        book.peak = max(book.peak, book.equity())
        clock.advance(b["wait"])
    event(f"approved orders: {min(approved, 10)}{'+' if approved >= 10 else ''}")


@pytest.mark.parametrize("profile", PROFILES, ids=lambda p: p.name)
@settings(max_examples=40, deadline=None)
@given(
    mode=st.sampled_from(MODES),
    equity=st.integers(30_000, 400_000),
    prior_loss=st.just(ZERO)
    | st.decimals(min_value=0, max_value=D("1.2"), places=2)
    | st.decimals(min_value=D("0.95"), max_value=D("1.05"), places=3),
    scale_in=st.booleans(),
    batches=st.lists(batch, min_size=2, max_size=10),
)
def test_approved_orders_keep_the_account_within_the_profile(
    profile: RiskProfile,
    mode: InstrumentMode,
    equity: int,
    prior_loss: D,
    scale_in: bool,
    batches: list[dict[str, Any]],
) -> None:
    run_stream(profile, mode, equity, prior_loss, scale_in, batches)


def test_every_routed_ticker_has_a_price_and_a_sector_here() -> None:
    """The stream prices every ticker the router can pick for its signals, so that no signal is
    turned away for want of a price and every approval is checked against a sector."""
    router = InstrumentRouter(InstrumentConfig())
    adv = dict.fromkeys(TICKERS, D(50_000_000))
    routed = set()
    for symbol in SIGNAL_SYMBOLS:
        for direction in Direction:
            stop = D(99) if direction is Direction.LONG else D(101)
            for trade_type in TradeType:
                signal = Signal(symbol, direction, D(100), stop, OPEN, trade_type=trade_type)
                for mode in MODES:
                    try:
                        routed.add(router.route(signal, mode, adv.get).ticker)
                    except NoInstrument:
                        assert symbol == "ZZZT"
    assert routed <= KNOWN
    assert set(FUNDS) - routed <= {"UPRO", "SPXU"}  # the S&P 500 alternates stay unused


# -- kill switch --------------------------------------------------------------------------------

money = st.decimals(min_value=5_000, max_value=200_000, places=2)
inputs_spec = st.fixed_dictionaries(
    {
        "equity": money,
        "start": money,
        "pnl_shift": st.none() | st.decimals(min_value=-30_000, max_value=30_000, places=2),
        "offline": st.none() | st.integers(-30, 180),  # seconds since the link dropped
        "returns": st.lists(
            st.decimals(min_value=D("-0.2"), max_value=D("0.2"), places=4), max_size=6
        ),
        "peak_extra": st.none() | st.decimals(min_value=-500, max_value=100_000, places=2),
        "manual": st.none() | st.none() | st.none() | st.text(max_size=8),
    }
)
ks_step = st.one_of(
    st.tuples(st.just("inputs"), inputs_spec, st.integers(0, 600)),
    st.tuples(
        st.just("release"),
        st.sampled_from(["system", " system ", "System", "SYSTEM", "", "  ", "alice", "risk desk"]),
        st.sampled_from(["reviewed the losses", "", "  "]),
    ),
)
KS_CONFIGS = [
    KillSwitchConfig(),
    KillSwitchConfig.from_profile(AGGRESSIVE),
    KillSwitchConfig.from_profile(CONSERVATIVE),
    KillSwitchConfig(min_equity=ZERO, consecutive_losses=2, max_drawdown=D("0.05")),
]


def to_inputs(spec: dict[str, Any], now: datetime) -> KillSwitchInputs:
    equity, start = spec["equity"], spec["start"]
    peak = None if spec["peak_extra"] is None else equity + spec["peak_extra"]
    offline = spec["offline"]
    return KillSwitchInputs(
        equity=equity,
        starting_equity=start,
        daily_pnl=None if spec["pnl_shift"] is None else equity - start + spec["pnl_shift"],
        disconnected_since=None if offline is None else now - timedelta(seconds=offline),
        recent_trade_returns=spec["returns"],
        peak_equity=peak if peak is None or peak > 0 else None,
        manual_request=spec["manual"],
    )


def any_trigger_holds(config: KillSwitchConfig, spec: dict[str, Any]) -> bool:
    """Whether a trigger condition holds, read from the spec without the kill switch's code."""
    equity, start = spec["equity"], spec["start"]
    pnl = equity - start + (spec["pnl_shift"] or 0)
    peak = None if spec["peak_extra"] is None else equity + spec["peak_extra"]
    n = config.consecutive_losses
    last = spec["returns"][-n:]
    return any(
        [
            pnl <= -config.daily_loss_limit * start,
            spec["manual"] is not None,
            spec["offline"] is not None and spec["offline"] > 60,
            equity < config.min_equity,
            len(last) == n and all(r < -config.consecutive_loss_pct for r in last),
            config.max_drawdown is not None
            and peak is not None
            and peak > 0
            and equity <= peak * (1 - config.max_drawdown),
        ]
    )


@settings(max_examples=150, deadline=None)
@given(config=st.sampled_from(KS_CONFIGS), steps=st.lists(ks_step, min_size=1, max_size=15))
def test_kill_switch_latches_exactly_when_a_trigger_holds(
    config: KillSwitchConfig, steps: list[tuple[Any, ...]]
) -> None:
    clock = ManualClock(OPEN)
    ks = KillSwitch(config)
    for op in steps:
        now = clock.now()
        before = ks.state
        if op[0] == "inputs":
            _, spec, wait = op
            expected = any_trigger_holds(config, spec)
            activation = ks.evaluate(to_inputs(spec, now), now)
            if before.active:  # latched: later inputs, tripping or not, change nothing
                assert ks.state == before
                assert activation is None or not activation.newly_active
                event("inputs while on")
            elif expected:
                assert activation is not None and activation.newly_active
                assert ks.active and ks.state == activation.state
                assert ks.state.reason and ks.state.reason.strip()
                assert (ks.state.by, ks.state.at) == ("system", now)
                event("tripped")
            else:
                assert activation is None and ks.state == before
                event("nothing holds")
            clock.advance(wait)
        else:
            _, by, reason = op
            person = by.strip() and by.strip().casefold() != "system"
            if person and reason.strip() and before.active:
                state = ks.deactivate(by, reason, now)
                assert state == ks.state and not state.active and state.by == by
                event("released")
            else:
                with pytest.raises(ValidationError):
                    ks.deactivate(by, reason, now)
                assert ks.state == before
        assert ks.active is ks.state.active
        if ks.active:
            assert ks.state.reason and ks.state.reason.strip()
