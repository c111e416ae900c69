"""ExecutorThread: the executor on its own thread and loop; a command written by another thread
is applied as soon as the thread is woken, and stop() shuts it down cleanly."""

from __future__ import annotations

import time
from datetime import timedelta

from core.config import ExecutorConfig
from core.domain import CommandStatus
from core.executor import ExecutorThread
from tests.core.test_executor import Rig


def test_thread_applies_a_command_when_woken_and_stops(tmp_path):
    rig = Rig(f"sqlite:///{tmp_path / 'x.db'}")

    def make():
        ex = rig.make_executor("thread")
        ex.config = ExecutorConfig(account="test", tick_interval=timedelta(seconds=30))
        return ex

    thread = ExecutorThread(make)
    thread.start()
    assert thread.ready.wait(10)
    deadline = time.monotonic() + 10
    while not (thread.executor and thread.executor.is_leader) and time.monotonic() < deadline:
        time.sleep(0.02)
    cid = rig.command("kill_switch_on", {"reason": "from the dashboard"})
    started = time.monotonic()
    thread.wake()  # without it the next tick would be 30 s away
    while rig.get_command(cid).status is CommandStatus.PENDING and time.monotonic() - started < 5:
        time.sleep(0.02)
    assert rig.get_command(cid).status is CommandStatus.APPLIED
    assert time.monotonic() - started < 5
    thread.stop()
    assert not thread.is_alive()
    with rig.store.unit_of_work() as uow:
        lease = uow.lease.get("executor:test")
    assert lease is not None and lease.expires_at.year == 1970
