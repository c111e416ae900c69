"""KillSwitch (seed 001 TestKillSwitch): each trigger at its boundary, the latch, release."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal as D

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.domain import KillSwitchState, TradeType, ValidationError
from core.risk import (
    AGGRESSIVE,
    CONSERVATIVE,
    KillSwitch,
    KillSwitchConfig,
    KillSwitchInputs,
    Trigger,
)
from tests.core.risk.support import NOON, clock


def inputs(**kw) -> KillSwitchInputs:
    base = {"equity": D(100_000), "starting_equity": D(100_000)}
    return KillSwitchInputs(**(base | kw))


def check(**kw) -> str | None:
    return KillSwitch().check(inputs(**kw), NOON)


class TestTriggers:
    def test_nothing_holds(self):
        assert check() is None
        assert KillSwitch().triggers(inputs(), NOON) == []

    def test_daily_loss_exactly_ten_percent_trips(self):
        assert check(daily_pnl=D("-10000.00")) == (
            "daily loss 10,000.00 reached 10% of starting equity 100,000.00 (limit 10,000.00)"
        )

    def test_daily_loss_one_cent_short_does_not(self):
        assert check(daily_pnl=D("-9999.99")) is None

    def test_daily_loss_defaults_to_equity_against_the_start(self):
        assert check(equity=D(90_000)) is not None
        assert check(equity=D("90000.01")) is None

    def test_manual_halt(self):
        assert check(manual_request="news pending") == "manual halt: news pending"
        assert check(manual_request="") == "manual halt: no reason"

    def test_broker_disconnected_for_exactly_60_s_does_not_trip(self):
        assert check(disconnected_since=NOON - timedelta(seconds=60)) is None

    def test_broker_disconnected_past_60_s_trips(self):
        since = NOON - timedelta(seconds=60, microseconds=1)
        assert check(disconnected_since=since) == (
            "broker connection lost for 60.000001 s (limit 60 s)"
        )
        assert check(disconnected_since=NOON - timedelta(seconds=61)) == (
            "broker connection lost for 61 s (limit 60 s)"
        )

    def test_equity_at_25000_does_not_trip(self):
        assert check(equity=D("25000.00"), starting_equity=D(25_000)) is None

    def test_equity_one_cent_below_25000_trips(self):
        assert check(equity=D("24999.99"), starting_equity=D(25_000)) == (
            "equity 24,999.99 fell below 25,000.00 (PDT)"
        )

    def test_three_losses_each_over_3_percent_trip(self):
        returns = [D("-0.0301"), D("-0.04"), D("-0.05")]
        assert check(recent_trade_returns=returns) == (
            "3 consecutive losing trades each lost more than 3%: -3.01%, -4%, -5%"
        )

    @pytest.mark.parametrize(
        "returns",
        [
            ["-0.03", "-0.04", "-0.05"],  # exactly 3 % is not more than 3 %
            ["-0.04", "-0.05"],  # only two
            ["-0.04", "-0.05", "-0.06", "0.01"],  # the last trade won
            ["-0.04", "0", "-0.05", "-0.06"],  # break-even breaks the run
        ],
    )
    def test_no_run_of_three(self, returns):
        assert check(recent_trade_returns=[D(r) for r in returns]) is None

    def test_only_the_latest_trades_matter(self):
        returns = [D("0.02"), D("-0.04"), D("-0.05"), D("-0.031")]
        assert check(recent_trade_returns=returns) is not None

    def test_drawdown_trigger_is_optional(self):
        ks = KillSwitch(KillSwitchConfig(max_drawdown=D("0.20")))
        assert ks.check(inputs(peak_equity=D(125_000)), NOON) == (
            "equity 100,000.00 is 20% below its peak 125,000.00 (limit 20%)"
        )
        assert ks.check(inputs(equity=D("100000.01"), peak_equity=D(125_000)), NOON) is None
        assert KillSwitch().check(inputs(peak_equity=D(1_000_000)), NOON) is None

    def test_first_trigger_in_seed_order_gives_the_reason(self):
        ks = KillSwitch()
        state = inputs(
            equity=D(20_000),
            starting_equity=D(30_000),
            manual_request="stop",
            disconnected_since=NOON - timedelta(minutes=5),
        )
        assert [t for t, _ in ks.triggers(state, NOON)] == [
            Trigger.DAILY_LOSS,
            Trigger.MANUAL,
            Trigger.BROKER_DISCONNECTED,
            Trigger.MIN_EQUITY,
        ]
        assert ks.check(state, NOON) == ks.triggers(state, NOON)[0][1]


class TestConfig:
    def test_seed_defaults(self):
        c = KillSwitchConfig()
        assert (c.daily_loss_limit, c.min_equity, c.consecutive_losses) == (
            D("0.10"),
            D(25_000),
            3,
        )
        assert (c.consecutive_loss_pct, c.disconnect_timeout) == (
            D("0.03"),
            timedelta(seconds=60),
        )
        assert c.max_drawdown is None

    def test_from_profile(self):
        c = KillSwitchConfig.from_profile(AGGRESSIVE)
        assert (c.daily_loss_limit, c.min_equity, c.max_drawdown) == (
            D("0.10"),
            D(25_000),
            D("0.20"),
        )
        c = KillSwitchConfig.from_profile(CONSERVATIVE, drawdown=False)
        assert (c.daily_loss_limit, c.max_drawdown) == (D("0.03"), None)

    @pytest.mark.parametrize(
        ("kw", "message"),
        [
            ({"daily_loss_limit": D(0)}, "daily_loss_limit must be above 0"),
            ({"consecutive_losses": 0}, "consecutive_losses must be an integer"),
            ({"disconnect_timeout": timedelta(0)}, "disconnect_timeout must be a positive"),
            ({"max_drawdown": D("1.5")}, "max_drawdown must be above 0 and at most 1"),
            ({"min_equity": D(-1)}, "min_equity must not be negative"),
        ],
    )
    def test_validation(self, kw, message):
        with pytest.raises(ValidationError, match=message):
            KillSwitchConfig(**kw)


class TestActivateDeactivate:
    def test_activation_latches_with_actions(self):
        c = clock()
        ks = KillSwitch()
        act = ks.activate("daily loss 10,000.00", c.now(), by="system")
        assert act.state == KillSwitchState(True, "daily loss 10,000.00", c.now(), "system")
        assert act.newly_active and ks.active and ks.state is act.state
        actions = act.actions
        assert actions.cancel_entry_orders and actions.keep_protective_orders
        assert actions.block_new_entries
        assert actions.close_trade_types == {TradeType.DAY, TradeType.SCALP}
        assert actions.alert == "kill switch on: daily loss 10,000.00"
        held = {"AAPL": TradeType.DAY, "MSFT": TradeType.SWING, "SPY261120C": TradeType.SCALP}
        assert actions.positions_to_close(held) == ["AAPL", "SPY261120C"]
        assert actions.describe() == [
            "block new entries",
            "cancel open entry orders",
            "keep stop and target orders of positions left open",
            "close day/scalp positions",
            "alert: kill switch on: daily loss 10,000.00",
        ]

    def test_a_second_activation_keeps_the_first_reason(self):
        c = clock()
        ks = KillSwitch()
        first = ks.activate("broker connection lost", c.now())
        c.advance(30)
        again = ks.activate("manual halt: go home", c.now(), by="alice")
        assert not again.newly_active
        assert again.state == first.state

    def test_the_switch_stays_on_when_the_condition_clears(self):
        c = clock()
        ks = KillSwitch()
        act = ks.evaluate(inputs(daily_pnl=D(-10_000)), c.now())
        assert act is not None and act.state.by == "system"
        c.advance(timedelta(hours=1))
        assert ks.evaluate(inputs(daily_pnl=D(500)), c.now()) is None
        assert ks.active
        assert ks.state.reason is not None and ks.state.reason.startswith("daily loss")

    def test_only_a_named_person_releases_it(self):
        c = clock()
        ks = KillSwitch()
        ks.activate("daily loss", c.now())
        for who in ("", "  ", "system"):
            with pytest.raises(ValidationError, match="only a named person"):
                ks.deactivate(who, "reviewed", c.now())
        with pytest.raises(ValidationError, match="needs a reason"):
            ks.deactivate("alice", "", c.now())
        assert ks.active
        c.advance(60)
        state = ks.deactivate("alice", "reviewed the losses", c.now())
        assert state == KillSwitchState(False, "reviewed the losses", c.now(), "alice")
        assert not ks.active

    def test_the_engine_cannot_release_it_under_its_name_in_another_case(self):
        ks = KillSwitch()
        ks.activate("daily loss", NOON)
        for who in ("System", "SYSTEM", " sYsTeM "):
            with pytest.raises(ValidationError, match="only a named person"):
                ks.deactivate(who, "reviewed", NOON)
        assert ks.active

    def test_releasing_an_inactive_switch_is_refused(self):
        with pytest.raises(ValidationError, match="not on"):
            KillSwitch().deactivate("alice", "why not", NOON)

    def test_resumes_from_a_persisted_state(self):
        ks = KillSwitch(state=KillSwitchState(True, "manual halt: lunch", NOON, "bob"))
        assert ks.active
        assert ks.activate("daily loss", NOON).state.reason == "manual halt: lunch"

    def test_activation_needs_a_reason_and_an_actor(self):
        with pytest.raises(ValidationError, match="needs a reason"):
            KillSwitch().activate(" ", NOON)
        with pytest.raises(ValidationError, match="who"):
            KillSwitch().activate("x", NOON, by="")


money = st.decimals(min_value=D(1000), max_value=D(500_000), places=2)
trade_return = st.decimals(min_value=D("-0.2"), max_value=D("0.2"), places=4)


@settings(max_examples=300, deadline=None)
@given(
    equity=money,
    start=money,
    peak_extra=st.one_of(st.none(), st.decimals(min_value=D(0), max_value=D(300_000), places=2)),
    pnl_shift=st.one_of(st.none(), st.decimals(min_value=D(-5000), max_value=D(5000), places=2)),
    offline=st.one_of(st.none(), st.integers(0, 180)),
    returns=st.lists(trade_return, max_size=6),
    manual=st.one_of(st.none(), st.text(max_size=10)),
    drawdown=st.one_of(st.none(), st.decimals(min_value=D("0.05"), max_value=D("0.5"), places=2)),
)
def test_check_returns_a_reason_exactly_when_a_condition_holds(
    equity, start, peak_extra, pnl_shift, offline, returns, manual, drawdown
):
    """An independent reading of each trigger against ``check`` and ``triggers``."""
    config = KillSwitchConfig(max_drawdown=drawdown)
    pnl = None if pnl_shift is None else equity - start + pnl_shift
    peak = None if peak_extra is None else equity + peak_extra
    since = None if offline is None else NOON - timedelta(seconds=offline)
    state = KillSwitchInputs(equity, start, pnl, since, returns, peak, manual)
    effective_pnl = equity - start if pnl is None else pnl
    expected = [
        (Trigger.DAILY_LOSS, -effective_pnl >= start / 10),
        (Trigger.MANUAL, manual is not None),
        (Trigger.BROKER_DISCONNECTED, offline is not None and offline > 60),
        (Trigger.MIN_EQUITY, equity < 25_000),
        (
            Trigger.CONSECUTIVE_LOSSES,
            len(returns) >= 3 and all(r < D("-0.03") for r in returns[-3:]),
        ),
        (
            Trigger.DRAWDOWN,
            drawdown is not None and peak is not None and (peak - equity) >= drawdown * peak,
        ),
    ]
    holding = [t for t, holds in expected if holds]
    ks = KillSwitch(config)
    assert [t for t, _ in ks.triggers(state, NOON)] == holding
    reason = ks.check(state, NOON)
    if holding:
        assert reason is not None and reason == ks.triggers(state, NOON)[0][1]
        activation = ks.evaluate(state, NOON)
        assert activation is not None and activation.state.active
    else:
        assert reason is None
