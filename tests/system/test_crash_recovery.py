"""Kill the real worker (SIGKILL) at exact points and at random, restart it, and check that no
order was duplicated and every broker fill reached the journal."""

from __future__ import annotations

import random
import time

import pytest

from tests.system.support import (
    Worker,
    check_no_loss_no_duplicates,
    in_flight_count,
    insert_signals,
    pending_signal_count,
    pending_submit_count,
    store_for,
    wait_for,
)

pytestmark = pytest.mark.slow

# These tests are about crash safety, so every signal should become an order: no risk gate.
FAST = ("--tick-ms", "20", "--lease-ttl", "1", "--pipeline", "pass_through")


def _settle(url: str, tmp_path, name: str, all_final: bool = True) -> None:
    """Run a clean worker until every signal is handled and every order has settled."""
    store = store_for(url)
    w = Worker(url, tmp_path / f"{name}.log", *FAST)
    try:
        wait_for(lambda: "role=leader" in w.output(), 60, "the restarted worker to lead")
        wait_for(lambda: pending_signal_count(store) == 0, 60, "all signals handled")
        if all_final:
            wait_for(lambda: in_flight_count(store) == 0, 60, "all orders settled")
        else:  # bracket legs keep working; only the write-ahead rows must be resolved
            wait_for(lambda: pending_submit_count(store) == 0, 60, "write-ahead rows resolved")
    finally:
        assert w.terminate() == 0, w.output()
    assert "stopped cleanly" in w.output()


@pytest.mark.parametrize(
    "point",
    [
        "after_write_ahead:1",  # orders committed, broker never called
        "after_broker_submit:3",  # broker took some of a batch, we recorded none of its answers
        "after_submit:1",  # broker took the whole batch, answers not recorded
        "after_updates_drained:1",  # fill events taken from the broker, not yet recorded
    ],
)
def test_sigkill_at_fail_point_loses_and_duplicates_nothing(tmp_path, point):
    url = f"sqlite:///{tmp_path / 'crash.db'}"
    store = store_for(url)
    insert_signals(store, 40)
    w = Worker(url, tmp_path / "crashing.log", *FAST, fail_points=point)
    code = w.wait(60)
    assert code == -9, f"worker should have died at {point}, exit {code}\n{w.output()}"
    _settle(url, tmp_path, "restart")
    figures = check_no_loss_no_duplicates(store)
    assert figures["orders"] == 40
    assert figures["filled"] + figures["rejected"] == 40
    if point.startswith("after_write_ahead"):
        assert figures["rejected"] >= 1  # written but never sent: marked failed, not re-sent
    else:
        assert figures["filled"] == figures["broker_orders"]


def test_random_sigkills_during_the_demo(tmp_path):
    url = f"sqlite:///{tmp_path / 'demo.db'}"
    store = store_for(url)
    rng = random.Random(20261121)
    for i in range(3):
        insert_signals(store, 15, symbol="QQQ")
        w = Worker(url, tmp_path / f"run{i}.log", "--demo", *FAST)
        time.sleep(rng.uniform(1.5, 3.5))
        w.kill()
    _settle(url, tmp_path, "final", all_final=False)
    figures = check_no_loss_no_duplicates(store)
    assert figures["fills"] > 0
