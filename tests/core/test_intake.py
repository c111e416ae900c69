"""Signals from outside enter through intake: bad ones are stored rejected with the reason and
the raw input, good ones queue as pending, and the executor then handles them."""

from __future__ import annotations

import asyncio

import pytest

from core.domain import SignalStatus
from core.signals.intake import submit_signal, submit_signals
from db.engine import open_store
from tests.core.brokers.fixed_market import at


@pytest.fixture
def store(pg_or_sqlite_url):
    s = open_store(pg_or_sqlite_url)
    yield s
    s.engine.dispose()


NOW = at(20, 15, 0)
GOOD = {"symbol": "aapl", "direction": "long", "entry": "100.5", "stop": "99", "qty": "10"}


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"qty": "NaN"}, "qty must be a finite number"),
        ({"qty": float("nan")}, "qty must be a finite number"),
        ({"entry": "inf"}, "entry must be a finite number"),
        ({"qty": "-5"}, "qty must be positive"),
        ({"direction": "sideways"}, "direction must be long or short"),
        ({"stop": "101"}, "stop 101 must be below entry 100.5"),
        ({"entry": None}, "entry is required"),
        ({"conviction": "high"}, "conviction must be a number"),
        ({"colour": "red"}, "unknown fields: colour"),
        ({"order_type": "teleport"}, "order_type must be one of"),
    ],
)
def test_bad_signal_is_stored_rejected_with_reason_and_raw_input(store, change, reason):
    sid, why = submit_signal(store, {**GOOD, **change}, "api", NOW)
    assert why is not None and reason in why
    with store.unit_of_work() as uow:
        s = uow.signals.get(sid)
        assert uow.signals.pending() == []
    assert s.status is SignalStatus.REJECTED and reason in s.reason
    assert s.metadata["raw"]["symbol"] == "aapl"


def test_good_signals_queue_and_a_batch_keeps_each_verdict(store):
    result = submit_signals(store, [GOOD, {**GOOD, "qty": "NaN"}, "not a signal", GOOD], "csv", NOW)
    assert len(result.accepted) == 2
    assert [(i, r.split(",")[0]) for i, _, r in result.rejected] == [
        (1, "qty must be a finite number"),
        (2, "a signal must be an object"),
    ]
    with store.unit_of_work() as uow:
        pending = uow.signals.pending()
    assert [p.id for p in pending] == result.accepted
    assert pending[0].symbol == "AAPL" and str(pending[0].entry) == "100.5"


def test_executor_keeps_running_after_rejected_intake(store):
    from tests.core.test_executor import Rig

    rig = Rig.__new__(Rig)
    Rig.__init__(rig, str(store.engine.url.render_as_string(hide_password=False)))
    bad, _ = submit_signal(rig.store, {**GOOD, "symbol": "AAA", "qty": "NaN"}, "api", NOW)
    good, why = submit_signal(
        rig.store, {**GOOD, "symbol": "AAA", "entry": "100", "stop": "99"}, "api", NOW
    )
    assert why is None
    asyncio.run(rig.executor.tick())
    assert rig.get_signal(good).status is SignalStatus.ROUTED
    assert rig.get_signal(bad).status is SignalStatus.REJECTED
