"""Rebalancing triggers (seed 000 R5.1): each fires on a crafted scenario and stays quiet at its
threshold; the calendar trigger runs on the real XNYS calendar."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from decimal import Decimal as D
from zoneinfo import ZoneInfo

import pytest

from core.domain import Position, ValidationError
from core.marketdata.calendar import ExchangeCalendar
from core.rebalance.triggers import (
    DEFAULT_CONFIG,
    HoldingSnapshot,
    TriggerConfig,
    TriggerEvent,
    TriggerKind,
    check_calendar,
    check_drift,
    check_new_top_decile,
    check_signal,
    check_stop_loss,
    evaluate_triggers,
    percentile_ranks,
)

#: Eleven names scored 0..10: name Nk has percentile 100 * k / 10, so N3 is exactly 30 and N9
#: exactly 90.
ELEVEN = {f"N{k}": D(k) for k in range(11)}


@pytest.fixture(scope="module")
def xnys() -> ExchangeCalendar:
    # an explicit end so the 2027 sessions exist whatever day the tests run
    return ExchangeCalendar("XNYS", end="2027-12-31")


def at(year: int, month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


# ---------------------------------------------------------------------------------------------
# Config, holdings, events
# ---------------------------------------------------------------------------------------------


def test_config_defaults_are_the_seed_thresholds() -> None:
    c = TriggerConfig()
    assert c == DEFAULT_CONFIG
    assert (c.calendar, c.drift_threshold, c.min_weight) == (True, D("0.05"), D("0.001"))
    assert (c.signal_percentile, c.stop_loss_pct, c.top_decile) == (D(30), D(15), D(90))


def test_config_round_trips_through_json() -> None:
    c = TriggerConfig(calendar=False, drift_threshold=D("0.1"), stop_loss_pct=D("7.5"))
    data = json.loads(json.dumps(c.to_dict()))
    assert data == {
        "calendar": False,
        "drift_threshold": "0.1",
        "min_weight": "0.001",
        "signal_percentile": "30",
        "stop_loss_pct": "7.5",
        "top_decile": "90",
    }
    assert TriggerConfig.from_dict(data) == c
    assert TriggerConfig.from_dict({"top_decile": 80}).top_decile == D(80)


def test_config_refuses_bad_values_all_at_once() -> None:
    with pytest.raises(ValidationError) as info:
        TriggerConfig(
            calendar="yes",  # type: ignore[arg-type]
            drift_threshold=D("-0.01"),
            signal_percentile=D(101),
            stop_loss_pct=D(0),
            top_decile="x",  # type: ignore[arg-type]
        )
    assert str(info.value) == (
        "calendar must be true or false, got 'yes'; "
        "drift_threshold must be at least 0, got -0.01; "
        "signal_percentile must be at most 100, got 101; "
        "stop_loss_pct must be above 0, got 0; "
        "top_decile must be a number, got 'x'"
    )
    with pytest.raises(ValidationError, match="unknown trigger fields: drift"):
        TriggerConfig.from_dict({"drift": "0.05"})


def test_return_pct_long_and_short() -> None:
    assert HoldingSnapshot("aapl", D(10), D(100), D(85)).return_pct == D(-15)
    assert HoldingSnapshot("AAPL", D(10), D(80), D(100)).return_pct == D(25)
    # a short gains when the price falls and loses when it rises
    short = HoldingSnapshot("TSLA", D(-5), D(100), D(80))
    assert short.is_short and short.return_pct == D(20)
    assert HoldingSnapshot("TSLA", D(-5), D(100), D(120)).return_pct == D(-20)
    assert HoldingSnapshot(" aapl ", D(1), D(1), D(1)).symbol == "AAPL"


def test_holding_snapshot_validation_and_from_position() -> None:
    with pytest.raises(ValidationError, match="entry price of AAPL must be above 0"):
        HoldingSnapshot("AAPL", D(1), D(0), D(1))
    with pytest.raises(ValidationError, match="price of AAPL must not be negative"):
        HoldingSnapshot("AAPL", D(1), D(1), D(-1))
    pos = Position("MSFT", D(3), D("200"), current_price=D("150"))
    h = HoldingSnapshot.from_position(pos)
    assert (h.symbol, h.qty, h.avg_entry_price, h.price) == ("MSFT", D(3), D(200), D(150))
    assert h.return_pct == D(-25)
    assert HoldingSnapshot.from_position(pos, price=D(220)).return_pct == D(10)
    with pytest.raises(ValidationError, match="no price for MSFT"):
        HoldingSnapshot.from_position(Position("MSFT", D(3), D(200)))


def test_event_is_json_able() -> None:
    e = TriggerEvent(TriggerKind.MANUAL, ("AAPL",), {"by": "ops"}, "manual rebalance")
    assert json.loads(json.dumps(e.to_dict())) == {
        "kind": "manual",
        "symbols": ["AAPL"],
        "detail": {"by": "ops"},
        "message": "manual rebalance",
    }
    with pytest.raises(ValidationError):
        TriggerEvent(TriggerKind.MANUAL, (), {"n": 1}, "x")  # type: ignore[dict-item]


# ---------------------------------------------------------------------------------------------
# Percentiles
# ---------------------------------------------------------------------------------------------


def test_percentile_ranks_by_hand() -> None:
    # n = 5, n - 1 = 4. A: nothing lower -> 0. B and C tie at 2: one lower (A) plus half of the
    # one other tied name -> 1.5 / 4 = 37.5. D: three lower -> 75. E: four lower -> 100.
    ranks = percentile_ranks({"A": D(1), "B": D(2), "C": D(2), "D": D(3), "E": D(4)})
    assert ranks == {"A": D(0), "B": D("37.5"), "C": D("37.5"), "D": D(75), "E": D(100)}


def test_percentile_ranks_edge_cases() -> None:
    assert percentile_ranks({}) == {}
    assert percentile_ranks({"A": D(7)}) == {"A": D(50)}
    assert percentile_ranks({"A": D(1), "B": D(1), "C": D(1)}) == dict.fromkeys("ABC", D(50))
    assert percentile_ranks(ELEVEN)["N3"] == D(30)
    assert percentile_ranks(ELEVEN)["N9"] == D(90)
    # negative scores rank like any other number
    assert percentile_ranks({"A": D(-2), "B": D("-0.5")}) == {"A": D(0), "B": D(100)}
    with pytest.raises(ValidationError):
        percentile_ranks({"A": D("NaN")})


# ---------------------------------------------------------------------------------------------
# Drift
# ---------------------------------------------------------------------------------------------


def test_drift_exactly_at_the_threshold_is_quiet() -> None:
    # |0.105 - 0.10| / 0.10 = 0.05 exactly, and the same below the target
    assert check_drift({"AAPL": D("0.105")}, {"AAPL": D("0.10")}) is None
    assert check_drift({"AAPL": D("0.095")}, {"AAPL": D("0.10")}) is None


def test_drift_just_past_the_threshold_fires() -> None:
    # |0.10501 - 0.10| / 0.10 = 0.0501 = 5.01%
    e = check_drift({"AAPL": D("0.10501")}, {"AAPL": D("0.10")})
    assert e is not None and e.kind is TriggerKind.DRIFT and e.symbols == ("AAPL",)
    assert e.detail["AAPL.drift"] == "0.0501"
    assert e.message == (
        "AAPL is 5.01% from its target weight (10.50% held vs 10.00% target), threshold 5%"
    )
    e = check_drift({"AAPL": D("0.09499")}, {"AAPL": D("0.10")})
    assert e is not None and e.detail["AAPL.drift"] == "0.0501"


def test_drift_message_and_detail() -> None:
    e = check_drift(
        {"AAPL": D("0.107"), "MSFT": D("0.2")},
        {"AAPL": D("0.10"), "MSFT": D("0.2")},
    )
    assert e is not None
    assert e.symbols == ("AAPL",)
    # (0.107 - 0.10) / 0.10 = 0.07
    assert e.message == (
        "AAPL is 7.00% from its target weight (10.70% held vs 10.00% target), threshold 5%"
    )
    assert e.detail == {
        "threshold": "0.05",
        "min_weight": "0.001",
        "AAPL.drift": "0.07",
        "AAPL.current": "0.107",
        "AAPL.target": "0.10",
    }


def test_drift_against_a_zero_target_uses_min_weight() -> None:
    # a zero target has no relative scale: a weight above min_weight (0.1%) is drift
    assert check_drift({"TSLA": D("0.001")}, {"TSLA": D(0)}) is None
    assert check_drift({"TSLA": D("0.001")}, {}) is None
    e = check_drift({"TSLA": D("0.0011")}, {})
    assert e is not None and e.symbols == ("TSLA",)
    assert e.message == ("TSLA holds 0.11% against a target of 0% (above the 0.1% minimum weight)")
    # a short leftover counts by its size
    e = check_drift({"TSLA": D("-0.002")}, {"TSLA": D(0)})
    assert e is not None and e.detail["TSLA.current"] == "-0.002"


def test_drift_for_a_target_not_yet_held_and_several_names() -> None:
    e = check_drift({"AAPL": D("0.2"), "GME": D("0.01")}, {"AAPL": D("0.2"), "MSFT": D("0.1")})
    assert e is not None
    assert e.symbols == ("GME", "MSFT")
    assert e.detail["MSFT.drift"] == "1"
    assert e.message.split("; ")[1] == (
        "MSFT is 100.00% from its target weight (0.00% held vs 10.00% target), threshold 5%"
    )


def test_drift_threshold_is_configurable_and_targets_must_not_be_negative() -> None:
    loose = TriggerConfig(drift_threshold=D("0.10"))
    assert check_drift({"AAPL": D("0.11")}, {"AAPL": D("0.10")}, loose) is None
    assert check_drift({"AAPL": D("0.1101")}, {"AAPL": D("0.10")}, loose) is not None
    with pytest.raises(ValidationError, match="must not be negative"):
        check_drift({}, {"AAPL": D("-0.1")})


# ---------------------------------------------------------------------------------------------
# Signal
# ---------------------------------------------------------------------------------------------


def test_signal_fires_below_the_30th_percentile_only() -> None:
    # N2 ranks 20 (exit), N3 exactly 30 (stays), N10 ranks 100 (stays)
    e = check_signal(ELEVEN, {"N2", "N3", "N10"})
    assert e is not None and e.kind is TriggerKind.SIGNAL
    assert e.symbols == ("N2",)
    assert e.detail == {"threshold": "30", "scored": "11", "N2.percentile": "20"}
    assert e.message == "N2 score ranks at percentile 20 of 11 names, below 30: exit"


def test_signal_quiet_at_exactly_the_threshold_and_for_unscored_or_unheld_names() -> None:
    assert check_signal(ELEVEN, {"N3"}) is None
    # N0 ranks 0 but is not held; XYZ is held but has no score
    assert check_signal(ELEVEN, {"XYZ", "N5"}) is None
    assert check_signal({}, {"N1"}) is None


# ---------------------------------------------------------------------------------------------
# Stop loss
# ---------------------------------------------------------------------------------------------


def test_stop_loss_exactly_fifteen_percent_down_is_quiet() -> None:
    assert check_stop_loss([HoldingSnapshot("AAPL", D(10), D(100), D(85))]) is None
    # a short 15% against: price up from 100 to 115
    assert check_stop_loss([HoldingSnapshot("TSLA", D(-10), D(100), D(115))]) is None


def test_stop_loss_just_past_fifteen_percent_fires() -> None:
    holdings = [
        HoldingSnapshot("MSFT", D(5), D(200), D(190)),  # -5%: fine
        HoldingSnapshot("AAPL", D(10), D(100), D("84.99")),  # -15.01%
        HoldingSnapshot("TSLA", D(-10), D(100), D("115.01")),  # short, -15.01%
    ]
    e = check_stop_loss(holdings)
    assert e is not None and e.kind is TriggerKind.STOP_LOSS
    assert e.symbols == ("AAPL", "TSLA")
    assert e.detail["AAPL.return_pct"] == "-15.01"
    assert e.detail["TSLA.return_pct"] == "-15.01"
    assert e.message == (
        "AAPL is down 15.01% from entry (entry 100, now 84.99), stop loss 15%: close; "
        "TSLA (short) is down 15.01% from entry (entry 100, now 115.01), stop loss 15%: close"
    )


def test_stop_loss_message_shows_a_tiny_excess_exactly() -> None:
    # -15.001% would round to 15.00 next to a 15% stop; the message keeps the extra digit
    e = check_stop_loss([HoldingSnapshot("AAPL", D(1), D(100), D("84.999"))])
    assert e is not None and "down 15.001% from entry" in e.message


def test_stop_loss_ignores_flat_holdings_and_refuses_duplicates() -> None:
    assert check_stop_loss([HoldingSnapshot("AAPL", D(0), D(100), D(50))]) is None
    tight = TriggerConfig(stop_loss_pct=D(5))
    assert check_stop_loss([HoldingSnapshot("AAPL", D(1), D(100), D(94))], tight) is not None
    with pytest.raises(ValidationError, match="AAPL is given twice"):
        check_stop_loss([HoldingSnapshot("AAPL", D(1), D(1), D(1))] * 2)


# ---------------------------------------------------------------------------------------------
# New top decile
# ---------------------------------------------------------------------------------------------


def test_new_top_decile_fires_for_an_unheld_name_entering_it() -> None:
    before = dict(ELEVEN, N9=D(8), N8=D(9))  # N9 was at percentile 80, N8 at 90
    e = check_new_top_decile(ELEVEN, before, held_symbols=set())
    assert e is not None and e.kind is TriggerKind.NEW_TOP_DECILE
    # N9 is now exactly 90 (top decile: at or above); N10 was already top
    assert e.symbols == ("N9",)
    assert e.detail == {
        "threshold": "90",
        "N9.percentile": "90",
        "N9.previous_percentile": "80",
    }
    assert e.message == (
        "N9 entered the top decile at percentile 90 (was 80, threshold 90): evaluate for addition"
    )


def test_new_top_decile_quiet_cases() -> None:
    before = dict(ELEVEN, N9=D(8), N8=D(9))
    # held already
    assert check_new_top_decile(ELEVEN, before, {"N9"}) is None
    # already in the top decile before
    assert check_new_top_decile(ELEVEN, ELEVEN, set()) is None
    # with the top decile at 90.01, N9's 90 is just below it (and N10 was already there)
    just_above = TriggerConfig(top_decile=D("90.01"))
    assert check_new_top_decile(ELEVEN, before, set(), just_above) is None


def test_new_top_decile_without_history() -> None:
    now = dict(ELEVEN, NEW=D(11))  # 12 names: NEW ranks 100, N10 ranks 100 * 10 / 11
    e = check_new_top_decile(now, ELEVEN, set())
    assert e is not None and e.symbols == ("NEW",)
    assert "(not scored before, threshold 90)" in e.message
    assert e.detail["NEW.previous_percentile"] == ""
    e = check_new_top_decile(ELEVEN, {}, {"N10"})
    assert e is not None and e.symbols == ("N9",)


# ---------------------------------------------------------------------------------------------
# Calendar (real XNYS sessions)
# ---------------------------------------------------------------------------------------------


def test_calendar_first_session_of_a_normal_month(xnys: ExchangeCalendar) -> None:
    # Monday 2026-06-01 opens 13:30 UTC (09:30 EDT)
    e = check_calendar(at(2026, 6, 1, 14), xnys, None)
    assert e is not None and e.kind is TriggerKind.CALENDAR and e.symbols == ()
    assert e.detail == {
        "session": "2026-06-01",
        "previous_session": "2026-05-29",
        "last_run": "",
    }
    assert e.message == "2026-06-01 is the first trading session of June 2026: full rebalance"
    # before the open, after the close and on the second session it stays quiet
    assert check_calendar(at(2026, 6, 1, 13, 29), xnys, None) is None
    assert check_calendar(at(2026, 6, 1, 20, 30), xnys, None) is None
    assert check_calendar(at(2026, 6, 2, 14), xnys, None) is None


def test_calendar_fires_once_per_session(xnys: ExchangeCalendar) -> None:
    now = at(2026, 6, 1, 18)
    assert check_calendar(now, xnys, date(2026, 6, 1)) is None
    e = check_calendar(now, xnys, date(2026, 5, 1))
    assert e is not None and e.detail["last_run"] == "2026-05-01"


def test_calendar_month_starting_on_a_holiday_and_a_weekend(xnys: ExchangeCalendar) -> None:
    # 2027-01-01 (Friday) is New Year's Day, the 2nd and 3rd a weekend: the first session is
    # Monday 2027-01-04, opening 14:30 UTC (09:30 EST)
    assert check_calendar(at(2027, 1, 1, 15), xnys, None) is None
    assert check_calendar(at(2027, 1, 4, 14), xnys, None) is None
    e = check_calendar(at(2027, 1, 4, 15), xnys, None)
    assert e is not None
    assert (e.detail["session"], e.detail["previous_session"]) == ("2027-01-04", "2026-12-31")
    assert "January 2027" in e.message
    assert check_calendar(at(2027, 1, 5, 15), xnys, date(2026, 12, 1)) is None


def test_calendar_month_starting_on_a_weekend(xnys: ExchangeCalendar) -> None:
    # 2026-08-01 is a Saturday: the first session is Monday 2026-08-03
    assert check_calendar(at(2026, 8, 1, 15), xnys, None) is None
    assert check_calendar(at(2026, 7, 31, 15), xnys, None) is None
    e = check_calendar(at(2026, 8, 3, 15), xnys, None)
    assert e is not None and e.detail["session"] == "2026-08-03"


def test_calendar_takes_any_timezone_but_not_naive_times(xnys: ExchangeCalendar) -> None:
    ny = datetime(2026, 6, 1, 10, 0, tzinfo=ZoneInfo("America/New_York"))
    assert check_calendar(ny, xnys, None) is not None
    with pytest.raises(ValueError, match="naive"):
        check_calendar(datetime(2026, 6, 1, 14), xnys, None)


# ---------------------------------------------------------------------------------------------
# All together
# ---------------------------------------------------------------------------------------------


def test_evaluate_triggers_in_fixed_order(xnys: ExchangeCalendar) -> None:
    holdings = [
        HoldingSnapshot("N1", D(10), D(100), D(80)),  # down 20%: stop loss; percentile 10: signal
        HoldingSnapshot("N5", D(10), D(100), D(101)),
    ]
    before = dict(ELEVEN, N10=D(0), N0=D(10))  # N10 was at the bottom
    events = evaluate_triggers(
        at(2026, 6, 1, 15),
        xnys,
        holdings=holdings,
        current_weights={"N1": D("0.08"), "N5": D("0.5")},
        target_weights={"N1": D("0.1"), "N5": D("0.5")},
        scores=ELEVEN,
        previous_scores=before,
        last_calendar_run=date(2026, 5, 1),
        config=DEFAULT_CONFIG,
    )
    assert [e.kind for e in events] == [
        TriggerKind.STOP_LOSS,
        TriggerKind.SIGNAL,
        TriggerKind.DRIFT,
        TriggerKind.NEW_TOP_DECILE,
        TriggerKind.CALENDAR,
    ]
    assert [e.symbols for e in events] == [("N1",), ("N1",), ("N1",), ("N10",), ()]


def test_evaluate_triggers_quiet_and_calendar_switched_off(xnys: ExchangeCalendar) -> None:
    kwargs = {
        "holdings": [HoldingSnapshot("N5", D(10), D(100), D(100))],
        "current_weights": {"N5": D("0.5")},
        "target_weights": {"N5": D("0.5")},
        "scores": ELEVEN,
        "previous_scores": ELEVEN,
        "last_calendar_run": None,
    }
    assert evaluate_triggers(at(2026, 6, 2, 15), xnys, **kwargs) == []
    first = at(2026, 6, 1, 15)
    assert [e.kind for e in evaluate_triggers(first, xnys, **kwargs)] == [TriggerKind.CALENDAR]
    off = TriggerConfig(calendar=False)
    assert evaluate_triggers(first, xnys, **kwargs, config=off) == []
