"""The README's run command on a fresh database: the demo's EMA-cloud signals go through the full
pipeline and show orders and fills within a minute, and SIGTERM/SIGINT stop it cleanly with
nothing half-written."""

from __future__ import annotations

import signal

import pytest

from core.domain import OrderStatus, SignalStatus
from tests.system.support import Worker, check_no_loss_no_duplicates, store_for, wait_for

pytestmark = pytest.mark.slow


def _fills(store) -> int:
    with store.unit_of_work(read_only=True) as uow:
        return uow.fills.count()


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT])
def test_demo_fills_within_a_minute_and_stops_cleanly(tmp_path, stop_signal):
    db = tmp_path / "fresh" / "axion.db"  # the folder does not exist yet
    url = f"sqlite:///{db}"
    w = Worker(url, tmp_path / "demo.log", "--demo")
    try:
        wait_for(lambda: db.exists() and _fills(store_for(url)) > 0, 60, "the first demo fill")
    finally:
        if w.proc.poll() is None:
            w.proc.send_signal(stop_signal)
        code = w.wait(30)
    out = w.output()
    assert code == 0, out
    assert "became leader" in out and "stopped cleanly" in out
    store = store_for(url)
    check_no_loss_no_duplicates(store)
    with store.unit_of_work(read_only=True) as uow:
        orders = uow.orders.recent(1000)
        lease = uow.lease.get("executor:paper-default")
        signals = uow.signals.recent(1000)
        decisions = {s.id: uow.decisions.for_signal(s.id) for s in signals}
    assert any(o.status is OrderStatus.FILLED for o in orders)
    assert lease is not None and lease.expires_at.year == 1970  # released on the way out
    # every signal is the EMA-cloud engine's, and every order made for one (entries, scale-in
    # adds) comes from a signal the router, the sizer and the risk gate approved
    assert signals and all(s.source == "ema_cloud" for s in signals)
    assert all(s.metadata.get("engine") == "ema_cloud" for s in signals)
    by_id = {s.id: s for s in signals}
    for_signals = [o for o in orders if o.request.signal_id is not None]
    assert any(o.parent_id is None for o in for_signals)
    for o in for_signals:
        assert by_id[o.request.signal_id].status is SignalStatus.ROUTED
        stages = {d.stage: d.approved for d in decisions[o.request.signal_id]}
        assert stages["instrument"] and stages["sizing"] and stages["risk"]
    assert "mode=leveraged_etf" in out
