"""The paper-before-live gate."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from core.domain import ValidationError
from core.live_gate import (
    GateDecision,
    LiveGateConfig,
    PaperHistory,
    check_live_gate,
    request_go_live,
)

AT = datetime(2026, 11, 20, 15, tzinfo=UTC)
ENOUGH = PaperHistory(sessions=5, closed_trades=20)


def test_defaults_are_five_sessions_and_twenty_trades() -> None:
    config = LiveGateConfig()
    assert (config.min_paper_sessions, config.min_closed_trades) == (5, 20)


def test_short_history_is_refused_with_readable_reasons() -> None:
    decision = check_live_gate(PaperHistory(sessions=3, closed_trades=12))
    assert decision == GateDecision(
        allowed=False, reasons=["3 of 5 paper sessions", "12 of 20 closed paper trades"]
    )
    assert "3 of 5 paper sessions, 12 of 20 closed paper trades" in decision.message


@pytest.mark.parametrize(
    ("sessions", "trades", "reasons"),
    [
        (4, 20, ["4 of 5 paper sessions"]),
        (5, 19, ["19 of 20 closed paper trades"]),
        (0, 0, ["0 of 5 paper sessions", "0 of 20 closed paper trades"]),
    ],
)
def test_each_minimum_counts_on_its_own(sessions: int, trades: int, reasons: list[str]) -> None:
    decision = check_live_gate(PaperHistory(sessions, trades), LiveGateConfig())
    assert not decision.allowed and decision.reasons == reasons


def test_enough_history_is_allowed() -> None:
    assert check_live_gate(ENOUGH) == GateDecision(True, [])
    assert check_live_gate(PaperHistory(40, 300)).allowed


def test_the_minimums_are_configurable() -> None:
    config = LiveGateConfig(min_paper_sessions=10, min_closed_trades=50)
    decision = check_live_gate(ENOUGH, config)
    assert decision.reasons == ["5 of 10 paper sessions", "20 of 50 closed paper trades"]
    assert check_live_gate(PaperHistory(1, 1), LiveGateConfig(1, 1)).allowed
    assert LiveGateConfig.from_dict(config.to_dict()) == config


@pytest.mark.parametrize(
    "kwargs",
    [
        {"min_paper_sessions": 0},
        {"min_closed_trades": 0},
        {"min_paper_sessions": -1},
        {"min_paper_sessions": 2.5},
        {"min_closed_trades": True},
        {"min_closed_trades": "20"},
    ],
)
def test_config_is_validated(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        LiveGateConfig(**kwargs)


def test_config_refuses_unknown_settings() -> None:
    with pytest.raises(ValidationError, match="unknown"):
        LiveGateConfig.from_dict({"min_sessions": 3})


@pytest.mark.parametrize(("sessions", "trades"), [(-1, 0), (0, -1), (1.5, 0), (None, 0)])
def test_history_is_validated(sessions: Any, trades: Any) -> None:
    with pytest.raises(ValidationError):
        PaperHistory(sessions, trades)


def test_go_live_returns_the_record_to_store() -> None:
    est = timezone(timedelta(hours=-5))
    record = request_go_live(ENOUGH, confirmed=True, by=" alice ", at=AT.astimezone(est))
    assert record.by == "alice" and record.at == AT and record.at.tzinfo is UTC
    assert record.to_dict() == {
        "by": "alice",
        "at": "2026-11-20T15:00:00+00:00",
        "paper_sessions": 5,
        "closed_paper_trades": 20,
        "config": {"min_paper_sessions": 5, "min_closed_trades": 20},
    }


def test_go_live_is_refused_without_the_paper_history() -> None:
    with pytest.raises(ValidationError, match="3 of 5 paper sessions"):
        request_go_live(PaperHistory(3, 25), confirmed=True, by="alice", at=AT)


@pytest.mark.parametrize("confirmed", [False, None, "yes", 1])
def test_go_live_needs_an_explicit_confirmation(confirmed: Any) -> None:
    with pytest.raises(ValidationError, match="explicit confirmation"):
        request_go_live(ENOUGH, confirmed=confirmed, by="alice", at=AT)


@pytest.mark.parametrize("by", ["", "   ", "system", "SYSTEM", " System "])
def test_go_live_needs_a_named_person(by: str) -> None:
    with pytest.raises(ValidationError, match="named person"):
        request_go_live(ENOUGH, confirmed=True, by=by, at=AT)


def test_go_live_refuses_naive_times() -> None:
    with pytest.raises(ValueError, match="naive"):
        request_go_live(ENOUGH, confirmed=True, by="alice", at=datetime(2026, 11, 20, 15))
