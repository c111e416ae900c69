"""The scale-in planner: the add on the first pullback to the cloud that holds, cancels on a macro
break, a closed position or expiry, and the add order."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

import pytest

from core.domain import (
    Bar,
    Direction,
    InstrumentType,
    OrderType,
    Position,
    Side,
    Signal,
    TimeInForce,
    TradeType,
    ValidationError,
)
from core.exits.monitor import ExitMonitor
from core.pipeline import OrderDraft
from core.signals.clouds import CloudState
from core.sizing.scale_in import (
    ScaleInAction,
    ScaleInPlan,
    ScaleInPlanner,
    add_request,
    client_order_id_for_add,
    plan_from_draft,
)

# Monday 2026-03-02, 10:00 ET (EST: UTC-5); the session closes at 21:00 UTC, cutoff 20:55 UTC
T0 = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
TEN = timedelta(minutes=10)

# long setup: pullback cloud 100-101, macro cloud 96-97
PULL = CloudState(101.0, 100.0)
MACRO = CloudState(97.0, 96.0)
FAST = CloudState(103.0, 102.0)
LONG_CLOUDS = {"fast": FAST, "pullback": PULL, "macro": MACRO}
# short setup (bearish clouds): pullback 99-100, macro 103-104
SHORT_CLOUDS = {
    "fast": CloudState(97.0, 98.0),
    "pullback": CloudState(99.0, 100.0),
    "macro": CloudState(103.0, 104.0),
}


def plan(**kw) -> ScaleInPlan:
    values = {
        "symbol": "AAPL",
        "direction": Direction.LONG,
        "remaining_qty": D(5),
        "signal_id": 7,
        "trade_type": TradeType.DAY,
        "timeframe": "10Min",
        "stop": D(95),
        "created_at": T0,
    }
    values.update(kw)
    return ScaleInPlan(**values)


def bar(end: datetime, low: str, close: str, high: str | None = None, symbol: str = "AAPL"):
    high = high or str(max(D(close), D(low)) + 1)
    return Bar(symbol, end - TEN, end, D(close), D(high), D(low), D(close), D(1000))


LONG_POS = Position("AAPL", D(5), D(102))


@pytest.fixture
def planner() -> ScaleInPlanner:
    return ScaleInPlanner()


class TestLong:
    def test_touch_and_hold_adds(self, planner):
        p = plan()
        d = planner.on_bar(p, bar(T0 + TEN, "100.50", "102"), LONG_CLOUDS, position=LONG_POS)
        assert d is not None and d.kind is ScaleInAction.ADD and d.kind == "add"
        assert (d.plan, d.at, d.price) == (p, T0 + TEN, D(102))
        assert "touched the pullback cloud" in d.reason

    def test_a_close_on_the_bottom_edge_holds(self, planner):
        d = planner.on_bar(plan(), bar(T0 + TEN, "99.50", "100"), LONG_CLOUDS, position=LONG_POS)
        assert d is not None and d.kind is ScaleInAction.ADD

    def test_touch_and_close_through_does_not_add(self, planner):
        p = plan()
        through = bar(T0 + TEN, "99.00", "99.80")  # below the cloud's bottom 100, above the macro
        assert planner.on_bar(p, through, LONG_CLOUDS, position=LONG_POS) is None
        # the next pullback that holds still adds
        d = planner.on_bar(p, bar(T0 + 2 * TEN, "100.80", "101.50"), LONG_CLOUDS, position=LONG_POS)
        assert d is not None and d.kind is ScaleInAction.ADD

    def test_no_touch_keeps_waiting(self, planner):
        p = plan()
        assert (
            planner.on_bar(p, bar(T0 + TEN, "101.01", "103"), LONG_CLOUDS, position=LONG_POS)
            is None
        )
        assert planner.bars_seen(p) == 1

    def test_bars_closed_before_the_plan_are_ignored(self, planner):
        p = plan()
        hold = ("100.50", "102")
        assert planner.on_bar(p, bar(T0 - TEN, *hold), LONG_CLOUDS, position=LONG_POS) is None
        # the bar that closed as the plan started is not a pullback after the entry either
        assert planner.on_bar(p, bar(T0, *hold), LONG_CLOUDS, position=LONG_POS) is None
        assert planner.bars_seen(p) == 0
        assert planner.on_bar(p, bar(T0 + TEN, *hold), LONG_CLOUDS, position=LONG_POS) is not None

    def test_a_bar_seen_twice_counts_once(self, planner):
        p = plan()
        b = bar(T0 + TEN, "102", "103")
        assert planner.on_bar(p, b, LONG_CLOUDS, position=LONG_POS) is None
        assert planner.on_bar(p, replace(b, low=D("100.5")), LONG_CLOUDS, position=LONG_POS) is None
        assert planner.bars_seen(p) == 1

    def test_macro_break_cancels(self, planner):
        p = plan()
        d = planner.on_bar(p, bar(T0 + TEN, "95.20", "95.50"), LONG_CLOUDS, position=LONG_POS)
        assert d is not None and d.kind is ScaleInAction.CANCEL and d.kind == "cancel"
        assert d.reason == "close 95.50 below the macro cloud bottom 96.00"
        assert planner.bars_seen(p) == 0  # decided plans are forgotten

    def test_close_through_the_stop_cancels(self, planner):
        clouds = {**LONG_CLOUDS, "macro": None}  # macro not warmed up
        d = planner.on_bar(plan(), bar(T0 + TEN, "94", "95"), clouds, position=LONG_POS)
        assert d is not None and d.kind is ScaleInAction.CANCEL
        assert d.reason == "close 95 at or below the stop 95"

    def test_without_a_pullback_cloud_nothing_is_added(self, planner):
        clouds = {"fast": None, "pullback": None, "macro": None}
        assert (
            planner.on_bar(plan(), bar(T0 + TEN, "100.5", "102"), clouds, position=LONG_POS) is None
        )

    @pytest.mark.parametrize(
        "position", [None, Position("AAPL", D(0), D(100)), Position("AAPL", D(-5), D(100))]
    )
    def test_no_long_position_cancels(self, planner, position):
        d = planner.on_bar(plan(), bar(T0 + TEN, "100.5", "102"), LONG_CLOUDS, position=position)
        assert d is not None and d.kind is ScaleInAction.CANCEL
        assert d.reason == "no buy position in AAPL to add to"

    def test_a_bar_of_another_symbol_is_an_error(self, planner):
        with pytest.raises(ValueError, match="bar of MSFT"):
            planner.on_bar(
                plan(), bar(T0 + TEN, "100", "102", symbol="MSFT"), LONG_CLOUDS, position=LONG_POS
            )


class TestShort:
    POS = Position("AAPL", D(-5), D(98))

    def short(self) -> ScaleInPlan:
        return plan(direction=Direction.SHORT, stop=D(105))

    def test_touch_and_hold_adds(self, planner):
        d = planner.on_bar(
            self.short(), bar(T0 + TEN, "97", "98", high="99.50"), SHORT_CLOUDS, position=self.POS
        )
        assert d is not None and d.kind is ScaleInAction.ADD
        assert "held below its top 100.00" in d.reason

    def test_touch_and_close_through_does_not_add(self, planner):
        b = bar(T0 + TEN, "99", "100.50", high="101")
        assert planner.on_bar(self.short(), b, SHORT_CLOUDS, position=self.POS) is None

    def test_macro_break_cancels(self, planner):
        d = planner.on_bar(
            self.short(), bar(T0 + TEN, "103", "104.50"), SHORT_CLOUDS, position=self.POS
        )
        assert d is not None and d.kind is ScaleInAction.CANCEL
        assert d.reason == "close 104.50 above the macro cloud top 104.00"

    def test_a_long_position_is_not_the_short_to_add_to(self, planner):
        d = planner.on_bar(
            self.short(), bar(T0 + TEN, "97", "98", high="99.5"), SHORT_CLOUDS, position=LONG_POS
        )
        assert d is not None and d.kind is ScaleInAction.CANCEL


class TestExpiry:
    CUTOFF = datetime(2026, 3, 2, 20, 55, tzinfo=UTC)  # 15:55 ET

    def test_day_plan_expires_at_the_eod_cutoff(self, planner):
        p = plan()
        assert planner.deadline(p) == self.CUTOFF
        hold = ("100.50", "102")
        d = planner.on_bar(p, bar(self.CUTOFF, *hold), LONG_CLOUDS, position=LONG_POS)
        assert d is not None and d.kind is ScaleInAction.CANCEL
        assert (
            d.reason
            == "expired: no pullback that held before the day cutoff 15:55 ET on 2026-03-02"
        )
        # just before the cutoff the pullback still adds
        d = planner.on_bar(
            p, bar(self.CUTOFF - timedelta(minutes=5), *hold), LONG_CLOUDS, position=LONG_POS
        )
        assert d is not None and d.kind is ScaleInAction.ADD

    def test_check_expiry_without_bars(self, planner):
        p = plan(trade_type=TradeType.SCALP, timeframe="1Min")
        assert planner.check_expiry(p, self.CUTOFF - timedelta(seconds=1)) is None
        d = planner.check_expiry(p, self.CUTOFF)
        assert d is not None and d.kind is ScaleInAction.CANCEL and d.at == self.CUTOFF
        assert "scalp cutoff" in d.reason

    def test_plan_made_before_the_open_belongs_to_that_session(self, planner):
        p = plan(created_at=datetime(2026, 3, 2, 12, 0, tzinfo=UTC))
        assert planner.deadline(p) == self.CUTOFF

    def test_early_close(self, planner):
        # 2026-11-27 closes at 13:00 ET (18:00 UTC): cutoff 12:55 ET
        p = plan(created_at=datetime(2026, 11, 27, 15, 0, tzinfo=UTC))
        assert planner.deadline(p) == datetime(2026, 11, 27, 17, 55, tzinfo=UTC)

    def test_eod_lead_is_configurable(self):
        planner = ScaleInPlanner(eod_lead=timedelta(0))
        assert planner.deadline(plan()) == datetime(2026, 3, 2, 21, 0, tzinfo=UTC)

    def test_swing_plan_expires_after_max_bars(self):
        planner = ScaleInPlanner(swing_max_bars=3)
        p = plan(trade_type=TradeType.SWING, timeframe="1Hour")
        hour = timedelta(hours=1)
        assert planner.deadline(p) is None and planner.check_expiry(p, T0 + 100 * hour) is None
        clouds = LONG_CLOUDS
        assert planner.on_bar(p, bar(T0 + hour, "102", "103"), clouds, position=LONG_POS) is None
        assert (
            planner.on_bar(p, bar(T0 + 2 * hour, "102", "103"), clouds, position=LONG_POS) is None
        )
        d = planner.on_bar(p, bar(T0 + 3 * hour, "102", "103"), clouds, position=LONG_POS)
        assert d is not None and d.kind is ScaleInAction.CANCEL
        assert d.reason == "expired: no pullback that held in 3 1Hour bars"

    def test_swing_pullback_on_the_last_bar_still_adds(self):
        planner = ScaleInPlanner(swing_max_bars=2)
        p = plan(trade_type=TradeType.SWING, timeframe="1Hour")
        hour = timedelta(hours=1)
        assert (
            planner.on_bar(p, bar(T0 + hour, "102", "103"), LONG_CLOUDS, position=LONG_POS) is None
        )
        d = planner.on_bar(p, bar(T0 + 2 * hour, "100.5", "102"), LONG_CLOUDS, position=LONG_POS)
        assert d is not None and d.kind is ScaleInAction.ADD

    @pytest.mark.parametrize("bad", [0, -1, True])
    def test_bad_max_bars(self, bad):
        with pytest.raises(ValidationError):
            ScaleInPlanner(swing_max_bars=bad)


class TestPlan:
    def test_validation(self):
        with pytest.raises(ValidationError):
            plan(remaining_qty=D(0))
        with pytest.raises(ValueError, match="naive"):
            plan(created_at=datetime(2026, 3, 2, 15, 0))
        assert plan(direction="short", stop=D(105)).entry_side is Side.SELL

    def _draft(self, remaining: str, routed: bool) -> OrderDraft:
        s = Signal(
            "QQQ",
            Direction.SHORT,
            D(500),
            D(505),
            T0,
            conviction=60,
            trade_type=TradeType.DAY,
            timeframe="10Min",
            id=9,
        )
        if not routed:
            return OrderDraft(
                s, "QQQ", qty=D(5), side=Side.SELL, notes={"scale_in_remaining": remaining}
            )
        return OrderDraft(
            s,
            "SQQQ",
            qty=D(5),
            side=Side.BUY,
            instrument_type=InstrumentType.LEVERAGED_ETF,
            leverage=D(3),
            price=D(21),
            stop=D("20.37"),
            notes={"scale_in_remaining": remaining},
        )

    def test_from_a_routed_draft_watches_the_underlying_and_buys_the_fund(self):
        p = plan_from_draft(self._draft("6", routed=True), T0)
        assert p is not None
        assert (p.symbol, p.chart_symbol, p.watch_symbol) == ("SQQQ", "QQQ", "QQQ")
        assert (p.direction, p.entry_side, p.stop) == (Direction.SHORT, Side.BUY, D(505))
        assert (p.remaining_qty, p.signal_id, p.instrument_type) == (
            D(6),
            9,
            InstrumentType.LEVERAGED_ETF,
        )
        assert (p.trade_type, p.timeframe, p.created_at) == (TradeType.DAY, "10Min", T0)
        # the underlying's bars decide, the fund position is the one added to
        planner = ScaleInPlanner()
        qqq = bar(T0 + TEN, "497", "498", high="499.5", symbol="QQQ")
        clouds = {
            "fast": None,
            "pullback": CloudState(499.0, 500.0),
            "macro": CloudState(503.0, 504.0),
        }
        d = planner.on_bar(p, qqq, clouds, position=Position("SQQQ", D(5), D(21)))
        assert d is not None and d.kind is ScaleInAction.ADD
        req = add_request(d.plan, client_order_id_for_add(9), D("20.80"))
        assert (req.symbol, req.side, req.qty) == ("SQQQ", Side.BUY, D(6))
        with pytest.raises(ValueError):
            planner.on_bar(p, replace(qqq, symbol="SQQQ"), clouds, position=None)

    def test_from_a_stock_draft(self):
        p = plan_from_draft(self._draft("4", routed=False), T0)
        assert p is not None and p.chart_symbol is None and p.watch_symbol == "QQQ"
        assert p.entry_side is Side.SELL

    @pytest.mark.parametrize("remaining", ["0", None])
    def test_nothing_left_no_plan(self, remaining):
        draft = self._draft("0", routed=False)
        if remaining is None:
            draft = replace(draft, notes={})
        assert plan_from_draft(draft, T0) is None


class TestAddRequest:
    def test_client_order_id(self):
        assert client_order_id_for_add(42) == "ax-s42-add"

    def test_fields(self):
        p = plan(remaining_qty=D(7), instrument_type=InstrumentType.STOCK)
        req = add_request(p, client_order_id_for_add(7), D("101.50"))
        assert req.client_order_id == "ax-s7-add"
        assert (req.symbol, req.side, req.qty) == ("AAPL", Side.BUY, D(7))
        assert (req.order_type, req.time_in_force) == (OrderType.MARKET, TimeInForce.DAY)
        assert (req.signal_id, req.instrument_type, req.reduce_only) == (
            7,
            InstrumentType.STOCK,
            False,
        )
        assert req.limit_price is None and req.stop_price is None

    def test_short_add_sells(self):
        p = plan(direction=Direction.SHORT, stop=D(105))
        assert add_request(p, "ax-s7-add", D(99)).side is Side.SELL

    def test_needs_a_price(self):
        with pytest.raises(ValidationError):
            add_request(plan(), "ax-s7-add", D(0))


def test_with_the_exit_monitor_clouds():
    """Fed through ExitMonitor.on_bar, a dip into the lagging pullback cloud that closes back up
    adds; the same dip closing well below it does not."""
    monitor = ExitMonitor()
    start = datetime(2026, 3, 2, 14, 30, tzinfo=UTC)
    minute = timedelta(minutes=1)
    bars = []
    for i in range(60):  # a steady rise of 0.20 a bar
        close = D(100) + D("0.20") * i
        end = start + (i + 1) * minute
        bars.append(
            Bar(
                "AAPL", end - minute, end, close, close + D("0.1"), close - D("0.1"), close, D(1000)
            )
        )
    monitor.on_bars("AAPL", bars, "1Min")
    last = bars[-1]
    p = plan(trade_type=TradeType.SCALP, timeframe="1Min", stop=D(105), created_at=last.end)
    planner = ScaleInPlanner()
    pos = Position("AAPL", D(5), last.close)

    nxt = last.end + minute
    dip = Bar("AAPL", last.end, nxt, last.close, last.close, last.close - 2, last.close, D(1000))
    trial = ExitMonitor()
    trial.on_bars("AAPL", [*bars, dip], "1Min")
    clouds = trial.clouds("AAPL", "1Min")
    assert clouds["pullback"] is not None and float(dip.low) < clouds["pullback"].bottom
    d = planner.on_bar(p, dip, clouds, position=pos)
    assert d is not None and d.kind is ScaleInAction.ADD

    crash = replace(dip, close=last.close - 2)
    monitor.on_bar("AAPL", crash, "1Min")
    clouds = monitor.clouds("AAPL", "1Min")
    assert float(crash.close) < clouds["pullback"].bottom
    assert planner.on_bar(p, crash, clouds, position=pos) is None
