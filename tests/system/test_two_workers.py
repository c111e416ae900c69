"""Two workers on one database: exactly one trades; the other takes over when it is killed."""

from __future__ import annotations

import re

import pytest

from tests.system.support import (
    Worker,
    check_no_loss_no_duplicates,
    insert_signals,
    pending_signal_count,
    store_for,
    wait_for,
)

pytestmark = pytest.mark.slow


def _lease_holder(store) -> str | None:
    with store.unit_of_work() as uow:
        lease = uow.lease.get("executor:paper-default")
    return lease.holder if lease else None


def _orders_reported(output: str) -> int:
    found = re.findall(r"status role=\w+ .*? orders=(\d+)", output)
    return int(found[-1]) if found else 0


def test_one_leader_and_takeover_after_kill(tmp_path, pg_or_sqlite_url):
    url = pg_or_sqlite_url
    store = store_for(url)
    args = ("--tick-ms", "20", "--lease-ttl", "2", "--pipeline", "pass_through")
    a = Worker(url, tmp_path / "a.log", *args)
    b = None
    try:
        wait_for(
            lambda: (_lease_holder(store) or "").split(":")[1:2] == [str(a.pid)], 30, "A to lead"
        )
        b = Worker(url, tmp_path / "b.log", *args)
        wait_for(lambda: "role=standby" in b.output(), 30, "B to report standby")
        insert_signals(store, 30)
        wait_for(lambda: pending_signal_count(store) == 0, 30, "A to handle the signals")
        wait_for(lambda: _orders_reported(a.output()) == 30, 10, "A to report its orders")
        assert _orders_reported(b.output()) == 0
        assert "became leader" not in b.output()

        a.kill()
        insert_signals(store, 10)
        wait_for(
            lambda: (_lease_holder(store) or "").split(":")[1:2] == [str(b.pid)],
            30,
            "B to take over",
        )
        wait_for(lambda: pending_signal_count(store) == 0, 30, "B to handle the new signals")
        wait_for(lambda: _orders_reported(b.output()) == 10, 10, "B to report its orders")
        assert "became leader" in b.output()
        assert b.terminate() == 0
        figures = check_no_loss_no_duplicates(store)
        assert figures["orders"] == 40
    finally:
        a.kill()
        if b is not None:
            b.kill()
