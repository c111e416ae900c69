"""The entry stage: order type by conviction and volume, limits at the cloud edge (in the stock
and translated into bull and inverse leveraged ETFs), and the scale-in split."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal as D

import pytest

from core.domain import (
    AccountState,
    Direction,
    InstrumentType,
    KillSwitchState,
    OrderType,
    Side,
    Signal,
    TradeType,
    ValidationError,
)
from core.instruments.config import InstrumentConfig
from core.instruments.etf_sizer import LeveragedETFSizer
from core.instruments.modes import InstrumentMode
from core.instruments.router import InstrumentDecision, InstrumentRouter
from core.pipeline import OrderDraft, PipelineContext, Rejected, SignalPipeline, build_request
from core.sizing.entry import (
    EntryStage,
    cloud_edge,
    round_limit,
    translate_level,
    volume_confirmed,
)
from core.sizing.position import PositionSizer
from core.stages import InstrumentStage, SizingStage

T0 = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)


def ema_metadata(volume_points: int, edge: str = "99.10", ratio: float | None = 1.2) -> dict:
    """What the EMA-cloud engine puts on a signal, with the volume points it scored."""
    return {
        "engine": "ema_cloud",
        "cloud_edge": edge,
        "volume_ratio": ratio,
        "conviction_parts": {"setup": 40, "alignment": 30.0, "volume": volume_points},
    }


def sig(
    symbol: str = "AAPL",
    direction: Direction = Direction.LONG,
    entry: str = "100",
    stop: str | None = None,
    conviction: int = 80,
    order_type: OrderType = OrderType.MARKET,
    metadata: dict | None = None,
    target: str | None = None,
    trade_type: TradeType = TradeType.DAY,
) -> Signal:
    if stop is None:
        stop = "98" if direction is Direction.LONG else "102"
    return Signal(
        symbol=symbol,
        direction=direction,
        entry=D(entry),
        stop=D(stop),
        created_at=T0,
        target=None if target is None else D(target),
        conviction=conviction,
        trade_type=trade_type,
        order_type=order_type,
        id=7,
        metadata=metadata or {},
    )


def ctx(prices: dict[str, str] | None = None, **kw) -> PipelineContext:
    return PipelineContext(
        now=T0,
        account=kw.pop("account", None),
        positions={},
        kill_switch=KillSwitchState(False),
        known_symbols=frozenset({"AAPL", "QQQ", "TQQQ", "SQQQ"}),
        default_qty=D(1),
        prices={k: D(v) for k, v in (prices or {}).items()},
        **kw,
    )


def stock_draft(signal: Signal, qty: str = "10") -> OrderDraft:
    return OrderDraft(
        signal=signal,
        symbol=signal.symbol,
        qty=D(qty),
        order_type=signal.order_type,
        side=signal.direction.entry_side,
        price=signal.entry,
    )


def etf_draft(signal: Signal, ticker: str, price: str, inverse: bool, qty: str = "10"):
    decision = InstrumentDecision(
        InstrumentType.LEVERAGED_ETF,
        ticker=ticker,
        original_ticker=signal.symbol,
        leverage=D(3),
        is_inverse=inverse,
        catalog_entry=None,
        reason="test",
        side=Side.BUY,
    )
    return OrderDraft(
        signal=signal,
        symbol=ticker,
        qty=D(qty),
        order_type=signal.order_type,
        side=Side.BUY,
        instrument_type=InstrumentType.LEVERAGED_ETF,
        leverage=D(3),
        decision=decision,
        price=D(price),
    )


def run(draft: OrderDraft, context: PipelineContext | None = None, **kw) -> OrderDraft:
    return EntryStage(**kw).apply(draft, context or ctx())


class TestOrderType:
    @pytest.mark.parametrize(
        ("conviction", "metadata", "expected"),
        [
            # no volume information (an API signal): counts as confirmed
            (100, None, OrderType.MARKET),
            (75, None, OrderType.MARKET),
            (74, None, OrderType.LIMIT),
            (50, None, OrderType.LIMIT),
            # EMA-cloud signals: the engine's scored volume points decide
            (80, ema_metadata(30), OrderType.MARKET),
            (80, ema_metadata(15), OrderType.MARKET),
            (80, ema_metadata(0, ratio=0.8), OrderType.LIMIT),
            (60, ema_metadata(15), OrderType.LIMIT),
            # other sources: an explicit flag, else the volume ratio
            (90, {"volume_confirmed": False}, OrderType.LIMIT),
            (90, {"volume_confirmed": True}, OrderType.MARKET),
            (90, {"volume_ratio": 0.99}, OrderType.LIMIT),
            (90, {"volume_ratio": 1.0}, OrderType.MARKET),
            (90, {"volume_ratio": None}, OrderType.LIMIT),
        ],
    )
    def test_by_conviction_band_and_volume(self, conviction, metadata, expected):
        out = run(stock_draft(sig(conviction=conviction, metadata=metadata)))
        assert out.order_type is expected
        assert out.notes["entry_type"] == expected.value
        assert ("limit_price" in out.notes) is (expected is OrderType.LIMIT)

    def test_below_50_is_no_trade(self):
        with pytest.raises(Rejected, match="conviction 49 is below 50"):
            run(stock_draft(sig(conviction=49)))

    def test_volume_confirmed_reading(self):
        assert volume_confirmed(sig(metadata={"engine": "manual"}))
        assert not volume_confirmed(sig(metadata={"conviction_parts": {"volume": "oops"}}))
        assert volume_confirmed(sig(metadata={"conviction_parts": {"volume": "15"}}))

    def test_explicit_stop_and_bracket_orders_keep_their_type(self):
        stop = run(stock_draft(sig(conviction=60, order_type=OrderType.STOP)))
        assert stop.order_type is OrderType.STOP and stop.limit_price is None
        assert stop.notes["entry_type"] == "stop" and "limit_price" not in stop.notes
        assert build_request(stop).stop_price == D(100)

        bracket = run(stock_draft(sig(conviction=60, order_type=OrderType.BRACKET, target="104")))
        assert bracket.order_type is OrderType.BRACKET
        req = build_request(bracket)
        assert (req.take_profit_price, req.stop_loss_price, req.qty) == (D(104), D(98), D(5))

    def test_explicit_limit_is_kept_at_high_conviction_and_rests_at_the_cloud_edge(self):
        out = run(
            stock_draft(sig(conviction=95, order_type=OrderType.LIMIT, metadata=ema_metadata(30)))
        )
        assert out.order_type is OrderType.LIMIT
        assert out.limit_price == D("99.10")


class TestLimitPrice:
    def test_stock_long_at_the_cloud_edge(self):
        out = run(stock_draft(sig(conviction=60, metadata=ema_metadata(0))))
        assert out.limit_price == D("99.10")
        assert out.notes["limit_price"] == "99.10"
        req = build_request(out)
        assert req.order_type is OrderType.LIMIT and req.limit_price == D("99.10")

    def test_without_a_cloud_edge_the_limit_is_the_entry(self):
        out = run(stock_draft(sig(conviction=60)))
        assert out.limit_price == D(100)
        assert build_request(out).limit_price == D(100)
        assert cloud_edge(sig(metadata={"cloud_edge": ""})) == D(100)

    def test_buys_round_down_and_sells_round_up(self):
        long_ = run(stock_draft(sig(conviction=60, metadata={"cloud_edge": "98.567"})))
        assert long_.limit_price == D("98.56")  # nearest would be 98.57
        short = run(
            stock_draft(
                sig(
                    direction=Direction.SHORT,
                    conviction=60,
                    metadata={"cloud_edge": "101.231"},
                )
            )
        )
        assert short.limit_price == D("101.24")  # nearest would be 101.23
        assert build_request(short).side is Side.SELL
        assert round_limit(D("10.001"), Side.BUY) == D("10.00")
        assert round_limit(D("10.001"), Side.SELL) == D("10.01")
        assert round_limit(D("10.00"), Side.SELL) == D("10.00")

    def test_bull_etf_scales_the_distance_by_the_leverage(self):
        # QQQ now 500 (the signal's entry 498 is stale), edge 496.10: 3.90 below = 0.78 %;
        # 3x = 2.34 % below TQQQ's 80 = 80 - 1.872 = 78.128 -> buy rounds down to 78.12
        s = sig("QQQ", entry="498", stop="495", conviction=60, metadata={"cloud_edge": "496.10"})
        out = run(etf_draft(s, "TQQQ", "80", inverse=False), ctx({"QQQ": "500", "TQQQ": "80"}))
        assert out.limit_price == D("78.12")
        req = build_request(out)
        assert (req.symbol, req.side, req.limit_price) == ("TQQQ", Side.BUY, D("78.12"))

    def test_inverse_etf_moves_opposite(self):
        # short QQQ at 500, edge 503.90: 0.78 % above; the 3x inverse fund is 2.34 % lower:
        # 21 - 21 x 0.0234 = 21 - 0.4914 = 20.5086 -> buy rounds down to 20.50
        s = sig(
            "QQQ",
            Direction.SHORT,
            entry="500",
            stop="505",
            conviction=60,
            metadata={"cloud_edge": "503.90"},
        )
        out = run(etf_draft(s, "SQQQ", "21", inverse=True), ctx({"QQQ": "500"}))
        assert out.limit_price == D("20.50")
        req = build_request(out)
        assert (req.symbol, req.side, req.limit_price) == ("SQQQ", Side.BUY, D("20.50"))

    def test_underlying_price_falls_back_to_the_signal_entry(self):
        s = sig("QQQ", entry="500", stop="495", conviction=60, metadata={"cloud_edge": "496.10"})
        out = run(etf_draft(s, "TQQQ", "80", inverse=False), ctx({}))
        assert out.limit_price == D("78.12")

    def test_translate_level(self):
        assert translate_level(D(99), D(100), D(50), D(3), False) == D("48.50")
        assert translate_level(D(99), D(100), D(50), D(3), True) == D("51.50")
        assert translate_level(D(100), D(100), D(50), D(2), True) == D(50)
        with pytest.raises(ValidationError):
            translate_level(D(99), D(0), D(50), D(3), False)

    def test_a_limit_that_translates_below_zero_is_rejected(self):
        # edge 40 % below: 3x = 120 % below the fund's price
        s = sig("QQQ", entry="500", stop="250", conviction=60, metadata={"cloud_edge": "300"})
        with pytest.raises(Rejected, match="no positive limit"):
            run(etf_draft(s, "TQQQ", "80", inverse=False), ctx({"QQQ": "500"}))

    def test_routed_draft_without_a_price_is_rejected(self):
        s = sig("QQQ", entry="500", stop="495", conviction=60)
        draft = etf_draft(s, "TQQQ", "80", inverse=False)
        with pytest.raises(Rejected, match="no price for TQQQ"):
            run(replace(draft, price=None))


class TestBuildRequestLimit:
    """build_request prefers the draft's limit and keeps its old behaviour without one."""

    def test_old_behaviour_without_a_draft_limit(self):
        s = sig(conviction=60, order_type=OrderType.LIMIT)
        assert build_request(stock_draft(s)).limit_price == D(100)
        q = sig("QQQ", entry="500", stop="495", order_type=OrderType.LIMIT)
        assert build_request(etf_draft(q, "TQQQ", "80.123", inverse=False)).limit_price == D(
            "80.12"
        )

    def test_draft_limit_wins(self):
        s = sig(conviction=60, order_type=OrderType.LIMIT)
        draft = replace(stock_draft(s), limit_price=D("97.25"))
        assert build_request(draft).limit_price == D("97.25")


class TestScaleIn:
    def test_half_now_half_on_the_pullback(self):
        out = run(stock_draft(sig(), qty="10"))
        assert out.qty == D(5)
        assert out.notes["entry_qty"] == "5"
        assert out.notes["scale_in_remaining"] == "5"
        assert out.notes["entry_type"] == "market"
        assert build_request(out).qty == D(5)

    def test_odd_sizes_put_the_smaller_part_first(self):
        out = run(stock_draft(sig(), qty="7"))
        assert (out.qty, out.notes["scale_in_remaining"]) == (D(3), "4")

    @pytest.mark.parametrize("qty", ["1", "1.5"])
    def test_below_two_shares_goes_in_whole(self, qty):
        out = run(stock_draft(sig(), qty=qty))
        assert out.qty == D(qty)
        assert out.notes["scale_in_remaining"] == "0"

    def test_switched_off(self):
        out = run(stock_draft(sig(), qty="10"), scale_in=False)
        assert out.qty == D(10)
        assert out.notes["scale_in_remaining"] == "0"

    def test_configurable_first_fraction(self):
        out = run(stock_draft(sig(), qty="10"), initial_fraction=D("0.25"))
        assert (out.qty, out.notes["scale_in_remaining"]) == (D(2), "8")

    def test_fractional_step(self):
        out = run(stock_draft(sig(), qty="2.5"), step=D("0.01"))
        assert (out.qty, out.notes["scale_in_remaining"]) == (D("1.25"), "1.25")

    @pytest.mark.parametrize("fraction", ["0", "1.5", "-0.5"])
    def test_bad_fraction(self, fraction):
        with pytest.raises(ValidationError):
            EntryStage(initial_fraction=D(fraction))

    def test_limit_notes(self):
        out = run(stock_draft(sig(conviction=60, metadata=ema_metadata(0)), qty="9"))
        assert out.notes == {
            "entry_type": "limit",
            "limit_price": "99.10",
            "entry_qty": "4",
            "scale_in_remaining": "5",
        }

    def test_no_quantity_is_rejected(self):
        with pytest.raises(Rejected, match="no quantity"):
            run(replace(stock_draft(sig()), qty=None))


def test_after_the_router_and_the_sizer_an_inverse_fund_gets_a_translated_limit():
    """InstrumentStage -> SizingStage -> EntryStage on a medium-conviction short signal."""
    s = sig(
        "QQQ",
        Direction.SHORT,
        entry="500",
        stop="505",
        conviction=60,
        metadata={"cloud_edge": "503.90"},
        trade_type=TradeType.SWING,
    )
    account = AccountState(equity=D(100_000), cash=D(100_000), buying_power=D(200_000))
    context = ctx(
        {"QQQ": "500", "TQQQ": "80", "SQQQ": "21"},
        account=account,
        mode=InstrumentMode.LEVERAGED_ETF,
        adv_dollars={t: D(10**9) for t in ("QQQ", "TQQQ", "SQQQ")},
    )
    pipeline = SignalPipeline(
        [
            InstrumentStage(InstrumentRouter()),
            SizingStage(PositionSizer(), LeveragedETFSizer(InstrumentConfig())),
            EntryStage(),
        ]
    )
    plan = pipeline.plan(s, context)
    assert plan.request is not None, plan.reason
    draft = plan.draft
    assert draft is not None and draft.symbol == "SQQQ"
    sized = D(draft.notes["qty"])
    assert plan.request.order_type is OrderType.LIMIT
    assert plan.request.limit_price == D("20.50")
    assert plan.request.qty + D(draft.notes["scale_in_remaining"]) == sized
    assert [d.stage for d in plan.decisions] == ["instrument", "sizing", "entry"]
    assert plan.decisions[-1].details["limit_price"] == "20.50"
