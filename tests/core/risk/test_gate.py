"""RiskGate (seed 001 TestRiskGate): every check passing and failing at its boundary."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal as D
from typing import Any

import pytest

from core.domain import (
    Direction,
    InstrumentType,
    KillSwitchState,
    Side,
    Signal,
    TradeType,
    ValidationError,
)
from core.risk import (
    CONSERVATIVE,
    OrderFingerprint,
    RiskDecision,
    TradeIntent,
    WorkingOrder,
)
from tests.core.risk.support import (
    CLOSE,
    FLAT,
    HOLIDAY,
    NOON,
    OPEN,
    account,
    clock,
    gate,
    intent,
    position,
    snapshot,
)


def rejected(decision: RiskDecision, check: str) -> str:
    assert not decision.approved
    assert decision.qty is None
    assert decision.failed_checks[0].name == check
    assert decision.reason == decision.check(check).detail
    assert decision.reason is not None
    return decision.reason


def approved(decision: RiskDecision, qty: int | str | None = None) -> RiskDecision:
    assert decision.approved, decision.reason
    assert decision.reason is None
    assert not decision.failed_checks
    if qty is not None:
        assert decision.qty == D(str(qty))
    return decision


class TestApprovalAndAuditTrail:
    def test_a_plain_entry_passes_every_check_in_order(self):
        d = approved(gate().validate(intent(), snapshot(), clock().now()), 100)
        assert d.adjustments == {}
        assert [c.name for c in d.checks] == [
            "kill_switch",
            "daily_loss_limit",
            "drawdown",
            "min_equity",
            "market_hours",
            "pdt_day_trades",
            "duplicate_order",
            "conflicting_position",
            "existing_position",
            "max_positions",
            "min_position_value",
            "single_exposure",
            "sector_exposure",
            "leverage",
            "buying_power",
        ]

    def test_decision_serialises_for_the_audit_table(self):
        d = gate().validate(intent(qty=151), snapshot(), NOON)
        data = json.loads(json.dumps(d.to_dict()))
        assert data["approved"] is True
        assert data["qty"] == "150"
        assert data["adjustments"]["from"] == "151"
        assert data["adjustments"]["by"] == ["single_exposure"]
        assert ["kill_switch", True, "kill switch is off"] in data["checks"]

    def test_every_check_runs_and_the_first_failure_is_the_reason(self):
        d = gate().validate(intent(), snapshot(daily_pnl=D(-20_000)), HOLIDAY)
        assert rejected(d, "daily_loss_limit").startswith("daily loss limit reached")
        assert [c.name for c in d.failed_checks] == ["daily_loss_limit", "market_hours"]
        assert len(d.checks) == 15

    def test_naive_time_is_refused(self):
        with pytest.raises(ValueError, match="naive"):
            gate().validate(intent(), snapshot(), datetime(2026, 11, 20, 17, 0))

    def test_intent_validates_its_numbers(self):
        with pytest.raises(ValidationError, match="qty must be positive"):
            intent(qty=0)
        with pytest.raises(ValidationError, match="price must be positive"):
            intent(price=-1)

    def test_intent_from_signal(self):
        signal = Signal(
            "AAPL", Direction.SHORT, D(100), D(104), NOON, trade_type=TradeType.SWING, id=7
        )
        i = TradeIntent.from_signal(signal, D(20))
        assert (i.symbol, i.side, i.qty, i.price, i.stop, i.signal_id) == (
            "AAPL",
            Side.SELL,
            D(20),
            D(100),
            D(104),
            7,
        )
        routed = TradeIntent.from_signal(signal, D(5), symbol="SQQQ", price=D(30))
        assert (routed.symbol, routed.price, routed.stop) == ("SQQQ", D(30), None)


class TestKillSwitchCheck:
    @pytest.mark.parametrize(
        "i",
        [
            intent(),
            intent("XOM", 1, 150, Direction.SHORT),
            intent("SPY", 2, "3.10", instrument_type=InstrumentType.OPTION),
            intent("TQQQ", 10, 60, trade_type=TradeType.SWING),
        ],
    )
    def test_an_active_kill_switch_rejects_every_entry(self, i):
        ks = KillSwitchState(True, "daily loss 10,000.00", NOON, "system")
        d = gate().validate(i, snapshot(kill_switch=ks), NOON)
        assert rejected(d, "kill_switch") == "kill switch is on: daily loss 10,000.00"

    def test_kill_switch_off_passes(self):
        d = gate().validate(intent(), snapshot(kill_switch=KillSwitchState(False)), NOON)
        assert approved(d).check("kill_switch").passed


class TestReduceOnly:
    def test_exits_pass_whatever_else_is_wrong(self):
        ks = KillSwitchState(True, "manual", NOON, "alice")
        snap = snapshot(
            equity="1000.00",
            buying_power=0,
            starting_equity=100_000,
            peak_equity=D(200_000),
            kill_switch=ks,
            positions=[position("AAPL", 500, 120, 100)],
            recent_orders=[OrderFingerprint("AAPL", Side.SELL, D(500), HOLIDAY)],
            day_trade_count=9,
        )
        exit_ = intent(qty=500, reduce_only=True)
        assert exit_.side is Side.SELL
        d = approved(gate().validate(exit_, snap, HOLIDAY), 500)
        assert [c.name for c in d.checks] == ["reduce_only"]
        assert d.adjustments == {}

    def test_a_short_cover_is_a_buy(self):
        cover = intent(qty=10, direction=Direction.SHORT, reduce_only=True)
        assert cover.side is Side.BUY
        approved(gate().validate(cover, snapshot(), HOLIDAY), 10)


class TestDailyLossLimit:
    def test_exactly_at_the_limit_rejects(self):
        d = gate().validate(intent(), snapshot(daily_pnl=D("-10000.00")), NOON)
        assert rejected(d, "daily_loss_limit") == (
            "daily loss limit reached: daily P&L -10,000.00 against a limit of -10,000.00 "
            "(10% of starting equity 100,000.00)"
        )

    def test_one_cent_short_of_the_limit_passes(self):
        approved(gate().validate(intent(), snapshot(daily_pnl=D("-9999.99")), NOON))

    def test_daily_pnl_defaults_to_equity_against_the_start(self):
        snap = snapshot(equity=90_000, starting_equity=100_000)
        assert snap.daily_pnl == D(-10_000)
        rejected(gate().validate(intent(), snap, NOON), "daily_loss_limit")
        snap = snapshot(equity="90000.01", starting_equity=100_000)
        approved(gate().validate(intent(), snap, NOON))


class TestDrawdown:
    def test_reaching_the_max_drawdown_rejects(self):
        d = gate().validate(intent(), snapshot(peak_equity=D(125_000)), NOON)
        assert rejected(d, "drawdown") == (
            "max drawdown reached: equity 100,000.00 is 20% below its peak 125,000.00; limit 20%"
        )

    def test_one_cent_above_passes(self):
        snap = snapshot(equity="100000.01", peak_equity=D(125_000))
        assert approved(gate().validate(intent(), snap, NOON)).check("drawdown").passed

    def test_without_a_peak_it_is_not_checked(self):
        d = approved(gate().validate(intent(), snapshot(), NOON))
        assert d.check("drawdown").detail == "no peak equity known; not checked"


class TestMinimumEquity:
    def test_exactly_the_minimum_passes(self):
        d = approved(gate().validate(intent(qty=30), snapshot(equity="25000.00"), NOON))
        assert d.check("min_equity").detail == "account equity 25,000.00 is at least 25,000.00"

    def test_one_cent_below_rejects(self):
        d = gate().validate(intent(qty=30), snapshot(equity="24999.99"), NOON)
        assert rejected(d, "min_equity") == (
            "account equity 24,999.99 is below the minimum 25,000.00"
        )


class TestMarketHours:
    @pytest.mark.parametrize(
        "at",
        [OPEN, CLOSE - timedelta(seconds=1), datetime(2026, 11, 27, 17, 59, 59, tzinfo=UTC)],
    )
    def test_inside_the_session(self, at):
        d = approved(gate().validate(intent(), snapshot(), at))
        assert d.check("market_hours").detail.startswith("market open (session 2026-11-")

    @pytest.mark.parametrize(
        ("at", "reason"),
        [
            (
                OPEN - timedelta(seconds=1),
                "market is closed at 2026-11-20 14:29:59 UTC; next open 2026-11-20 14:30:00 UTC",
            ),
            (
                CLOSE,
                "market is closed at 2026-11-20 21:00:00 UTC; next open 2026-11-23 14:30:00 UTC",
            ),
            (
                HOLIDAY,
                "market is closed at 2026-11-26 15:00:00 UTC; next open 2026-11-27 14:30:00 UTC",
            ),
            (  # the day after Thanksgiving closes at 13:00 ET
                datetime(2026, 11, 27, 18, 0, tzinfo=UTC),
                "market is closed at 2026-11-27 18:00:00 UTC; next open 2026-11-30 14:30:00 UTC",
            ),
        ],
    )
    def test_outside_the_session(self, at, reason):
        assert rejected(gate().validate(intent(), snapshot(), at), "market_hours") == reason

    def test_a_profile_may_only_warn(self):
        warn = replace(FLAT, reject_outside_hours=False)
        d = approved(gate(warn).validate(intent(), snapshot(), HOLIDAY))
        assert d.check("market_hours").detail.startswith("warning: market is closed")


class TestPatternDayTrader:
    """Conservative accounts under $25,000 keep to three day trades in five sessions."""

    def snap(self, equity: str, count: int):
        return snapshot(equity=equity, buying_power=equity, day_trade_count=count)

    def test_third_day_trade_passes(self):
        d = gate(CONSERVATIVE).validate(intent(qty=30), self.snap("24999.99", 2), NOON)
        assert approved(d).check("pdt_day_trades").detail == (
            "2 day trades in the last 5 sessions with equity 24,999.99 under 25,000.00; "
            "this would be number 3, 3 allowed"
        )

    def test_fourth_day_trade_rejects(self):
        d = gate(CONSERVATIVE).validate(intent(qty=30), self.snap("24999.99", 3), NOON)
        assert rejected(d, "pdt_day_trades") == (
            "day-trade limit (PDT): 3 day trades in the last 5 sessions with equity 24,999.99 "
            "under 25,000.00; this would be number 4, 3 allowed"
        )

    def test_scalps_count_as_day_trades(self):
        i = intent(qty=30, trade_type=TradeType.SCALP)
        rejected(gate(CONSERVATIVE).validate(i, self.snap("20000", 3), NOON), "pdt_day_trades")

    def test_at_25000_the_limit_does_not_apply(self):
        approved(gate(CONSERVATIVE).validate(intent(qty=30), self.snap("25000.00", 3), NOON))

    def test_swing_trades_are_not_day_trades(self):
        i = intent(qty=30, trade_type=TradeType.SWING)
        d = approved(gate(CONSERVATIVE).validate(i, self.snap("20000", 5), NOON))
        assert d.check("pdt_day_trades").detail == "swing trade is not a day trade"

    def test_count_defaults_to_the_account(self):
        snap = snapshot(equity=20_000)
        snap = replace(snap, account=account(20_000, day_trade_count=3), day_trade_count=None)
        assert snap.day_trade_count == 3


class TestDuplicateOrder:
    def fp(self, age: timedelta, **kw: Any) -> OrderFingerprint:
        base: dict[str, Any] = {"symbol": "AAPL", "side": Side.BUY, "qty": D(100), "at": NOON - age}
        return OrderFingerprint(**(base | kw))

    def test_identical_order_within_the_window_rejects(self):
        snap = snapshot(recent_orders=[self.fp(timedelta(seconds=59, microseconds=999_999))])
        assert rejected(gate().validate(intent(), snap, NOON), "duplicate_order") == (
            "duplicate order: buy 100 AAPL was sent 59.999999 s ago (window 60 s)"
        )

    def test_once_the_window_has_passed_it_may_be_sent_again(self):
        snap = snapshot(recent_orders=[self.fp(timedelta(seconds=60))])
        approved(gate().validate(intent(), snap, NOON))

    @pytest.mark.parametrize(
        "kw", [{"qty": D(101)}, {"side": Side.SELL}, {"symbol": "MSFT"}], ids=str
    )
    def test_a_different_symbol_side_or_qty_is_not_a_duplicate(self, kw):
        snap = snapshot(recent_orders=[self.fp(timedelta(seconds=1), **kw)])
        approved(gate().validate(intent(), snap, NOON))

    def test_fingerprint_of_an_intent(self):
        assert intent().fingerprint(NOON) == OrderFingerprint("AAPL", Side.BUY, D(100), NOON)


class TestConflictingAndExistingPositions:
    def test_opposite_position_rejects(self):
        snap = snapshot(positions=[position("AAPL", -50, 100)])
        assert rejected(gate().validate(intent(), snap, NOON), "conflicting_position") == (
            "conflicting position: holding short -50 AAPL; a long entry is refused"
        )

    def test_opposite_working_order_rejects(self):
        working = [WorkingOrder("AAPL", Side.BUY, D(10), D(100))]
        i = intent(direction=Direction.SHORT)
        d = gate().validate(i, snapshot(working_orders=working), NOON)
        assert rejected(d, "conflicting_position") == (
            "conflicting order: an opposite entry order for AAPL is working; "
            "a short entry is refused"
        )

    def test_flat_position_is_no_position(self):
        approved(gate().validate(intent(), snapshot(positions=[position("AAPL", 0, 90)]), NOON))

    def test_adding_to_a_loser_or_break_even_rejects(self):
        snap = snapshot(positions=[position("AAPL", 50, 100, 100)])
        assert rejected(gate().validate(intent(qty=10), snap, NOON), "existing_position") == (
            "existing position: already holding 50 AAPL (unrealized P&L 0.00); "
            "only winners may be added to"
        )

    def test_adding_to_a_winner_one_cent_up_passes(self):
        snap = snapshot(positions=[position("AAPL", 50, "100.00", "100.01")])
        d = approved(gate().validate(intent(qty=10), snap, NOON), 10)
        assert d.check("existing_position").detail == (
            "adding to a winner: 50 AAPL (unrealized P&L 0.50)"
        )

    def test_adding_to_a_winning_short(self):
        snap = snapshot(positions=[position("AAPL", -50, 100, 99)])
        approved(gate().validate(intent(qty=10, direction=Direction.SHORT), snap, NOON), 10)

    def test_a_profile_may_forbid_adding(self):
        snap = snapshot(positions=[position("AAPL", 50, 100, 110)])
        no_adds = replace(FLAT, allow_add_to_winner=False)
        rejected(gate(no_adds).validate(intent(qty=10), snap, NOON), "existing_position")

    def test_a_working_entry_counts_as_existing(self):
        working = [WorkingOrder("AAPL", Side.BUY, D(10), D(100))]
        d = gate().validate(intent(qty=20), snapshot(working_orders=working), NOON)
        assert rejected(d, "existing_position") == (
            "existing order: an entry order for AAPL is already working"
        )


class TestBatch:
    """Orders approved earlier in a batch count for the intents after them."""

    def test_a_sent_order_is_working_and_recent(self):
        g, snap = gate(), snapshot()
        first = intent(qty=151)
        d = approved(g.validate(first, snap, NOON), 150)
        assert d.qty is not None
        after = snap.with_sent(first, d.qty, NOON)
        assert snap.working_orders == () and len(after.working_orders) == 1
        assert rejected(g.validate(first, after, NOON), "duplicate_order") == (
            "duplicate order: buy 151 AAPL was sent 0 s ago (window 60 s)"
        )
        rejected(g.validate(intent(qty=20), after, NOON), "existing_position")
        d = approved(g.validate(intent("JPM", 120), after, NOON), 120)
        assert d.check("max_positions").detail == "1 open; this makes 2 of 10"

    def test_sent_exits_add_no_exposure(self):
        exit_ = intent(qty=10, reduce_only=True)
        after = snapshot().with_sent(exit_, D(10), NOON)
        assert approved(gate().validate(intent("MSFT"), after, NOON)).check(
            "max_positions"
        ).detail == ("0 open; this makes 1 of 10")


class TestMaxConcurrentPositions:
    symbols = ["S0", "S1", "S2", "S3", "S4", "S5", "S6", "S7", "S8", "S9"]

    def held(self, n: int):
        return [position(s, 10, 100, 101) for s in self.symbols[:n]]

    def test_the_tenth_position_passes(self):
        d = gate().validate(intent("NEW"), snapshot(positions=self.held(9)), NOON)
        assert approved(d).check("max_positions").detail == "9 open; this makes 10 of 10"

    def test_an_eleventh_rejects(self):
        d = gate().validate(intent("NEW"), snapshot(positions=self.held(10)), NOON)
        assert rejected(d, "max_positions") == (
            "max concurrent positions reached: 10 open, limit 10"
        )

    def test_adding_to_a_held_winner_at_the_cap_passes(self):
        approved(gate().validate(intent("S3", 10), snapshot(positions=self.held(10)), NOON))

    def test_working_entries_count(self):
        working = [WorkingOrder("W", Side.SELL, D(5), D(100))]
        snap = snapshot(positions=self.held(9), working_orders=working)
        rejected(gate().validate(intent("NEW"), snap, NOON), "max_positions")
        reduce = [WorkingOrder("W", Side.SELL, D(5), D(100), reduce_only=True)]
        snap = snapshot(positions=self.held(9), working_orders=reduce)
        approved(gate().validate(intent("NEW"), snap, NOON))


class TestMinimumPositionValue:
    def test_exactly_the_minimum_passes(self):
        approved(gate().validate(intent(qty=1, price="100.00"), snapshot(), NOON), 1)

    def test_one_cent_below_rejects(self):
        d = gate().validate(intent(qty=1, price="99.99"), snapshot(), NOON)
        assert rejected(d, "min_position_value") == (
            "order value 99.99 is below the minimum position value 100.00"
        )

    def test_options_are_worth_100_shares_a_contract(self):
        i = intent("SPY", 1, "1.00", instrument_type=InstrumentType.OPTION)
        assert i.notional == D(100)
        approved(gate().validate(i, snapshot(), NOON), 1)
        i = intent("SPY", 151, "1.00", instrument_type=InstrumentType.OPTION)
        d = approved(gate().validate(i, snapshot(), NOON), 150)
        assert d.adjustments["by"] == ["single_exposure"]
