"""The order-rate limit and the paper-before-live gate in the running executor (real store,
real paper broker): throttled entries are rejected with their reason while exits, cancels and
the kill switch's orders go through; the count survives a restart; live trading is switched on
only behind the gate, by an admin, with a confirmation, on record."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from core.brokers.rate_limit import RateLimitConfig
from core.config import ExecutorConfig
from core.domain import CommandStatus, CommandType, OrderStatus, Side, SignalStatus, TradeStatus
from core.executor import TradeExecutor
from core.marketdata.calendar import ManualClock
from core.service import TradingService
from core.settings_keys import LIVE_KEY, live_from_value
from core.user_admin import UserAdmin
from core.users import PermissionDenied, Role
from db.queries.status import StatusQueries
from tests.core.test_executor import OPEN, Rig, run

D = Decimal


def executor(rig: Rig, holder: str, **config) -> TradeExecutor:
    wall = ManualClock(OPEN)
    ex = TradeExecutor(
        rig.store,
        rig.broker,
        rig.market,
        ExecutorConfig(account="test", reconcile_every_ticks=1000, **config),
        clock=rig.clock,
        wall_clock=wall,
        holder_id=holder,
    )
    ex._test_wall = wall  # type: ignore[attr-defined]
    return ex


def restart(rig: Rig, holder: str, **config) -> None:
    """Stop the running executor cleanly and start another on the same store."""
    run(rig.executor.shutdown())
    rig.executor = executor(rig, holder, **config)


@pytest.fixture
def rig(tmp_path):
    r = Rig(f"sqlite:///{tmp_path / 'axion.db'}")
    r.executor = executor(r, "first", order_rate=RateLimitConfig(max_orders=3))
    yield r
    r.store.engine.dispose()


def decisions(rig: Rig, sid: int):
    with rig.store.unit_of_work(read_only=True) as uow:
        return uow.decisions.for_signal(sid)


# ---------------------------------------------------------------------------- order-rate limit
def test_entries_past_the_limit_are_rejected_with_the_reason_and_exits_still_go_out(rig: Rig):
    sids = [rig.signal("AAA", qty=D(10 + i)) for i in range(5)]
    rig.tick(2)
    statuses = [rig.get_signal(s).status for s in sids]
    assert statuses == [SignalStatus.ROUTED] * 3 + [SignalStatus.REJECTED] * 2
    throttled = rig.get_signal(sids[3])
    assert "order rate limit" in (throttled.reason or "")
    assert "3 new-risk orders per 60 s" in (throttled.reason or "")
    assert rig.order(f"ax-s{sids[3]}-entry") is None  # nothing written, nothing sent
    trail = decisions(rig, sids[3])
    assert trail[-1].stage == "rate_limit" and not trail[-1].approved
    assert "retry_at" in trail[-1].details
    held = rig.positions()["AAA"].qty
    assert held == D(10 + 11 + 12)

    # the window is full: an exit goes out, a manual entry is refused with the reason
    exit_cid = rig.command(
        "manual_order", {"symbol": "AAA", "side": "sell", "qty": "5", "reduce_only": True}
    )
    entry_cid = rig.command("manual_order", {"symbol": "BBB", "side": "buy", "qty": "5"})
    rig.tick(2)
    assert rig.get_command(exit_cid).status is CommandStatus.APPLIED
    entry = rig.get_command(entry_cid)
    assert entry.status is CommandStatus.REJECTED and "order rate limit" in (entry.result or "")
    assert rig.positions()["AAA"].qty == held - 5
    assert "BBB" not in rig.positions()

    # cancels are never throttled either
    cancel = rig.command("cancel_all")
    rig.tick()
    assert rig.get_command(cancel).status is CommandStatus.APPLIED

    # once the first entries leave the 60 s window, entries go out again
    rig.clock.advance(timedelta(seconds=61))
    later = rig.signal("BBB")
    rig.tick(2)
    assert rig.get_signal(later).status is SignalStatus.ROUTED


def test_the_kill_switch_flatten_is_never_throttled(rig: Rig):
    for i in range(3):
        rig.signal("AAA", qty=D(10 + i))
    rig.signal("BBB")  # the fourth entry: throttled
    rig.tick(2)
    assert "BBB" not in rig.positions() and rig.positions()["AAA"].qty == D(33)
    cid = rig.command("kill_switch_on", {"reason": "test", "flatten": True})
    rig.tick(2)
    assert rig.get_command(cid).status is CommandStatus.APPLIED
    assert rig.positions() == {}


def test_the_count_survives_a_restart(rig: Rig):
    for i in range(3):
        rig.signal("AAA", qty=D(10 + i))
    rig.tick(2)
    restart(rig, "second", order_rate=RateLimitConfig(max_orders=3))
    sid = rig.signal("BBB")
    rig.tick(2)
    signal = rig.get_signal(sid)
    assert signal.status is SignalStatus.REJECTED
    assert "order rate limit" in (signal.reason or "")


def test_the_limit_is_a_setting_an_admin_changes(rig: Rig):
    cid = rig.command(
        "update_setting", {"key": "orders.rate_limit", "value": {"max_orders": 1}}, by="root"
    )
    bad = rig.command(
        "update_setting", {"key": "orders.rate_limit", "value": {"max_orders": 0}}, by="root"
    )
    rig.tick()
    assert rig.get_command(cid).status is CommandStatus.APPLIED
    rejected = rig.get_command(bad)
    assert rejected.status is CommandStatus.REJECTED and "at least 1" in (rejected.result or "")
    first, second = rig.signal("AAA"), rig.signal("BBB")
    rig.tick(2)
    assert rig.get_signal(first).status is SignalStatus.ROUTED
    assert rig.get_signal(second).status is SignalStatus.REJECTED


def test_an_algorithm_slice_is_held_with_its_reason_until_a_slot_opens(rig: Rig):
    from core.rebalance.runner import use_rebalancing

    use_rebalancing(rig.executor)
    for i in range(3):
        rig.signal("AAA", qty=D(10 + i))
    rig.tick(2)
    router = rig.executor.rebalancer.router  # type: ignore[union-attr]
    parent = run(router.start("algo-1", "BBB", Side.BUY, D(20), rig.clock.now()))
    chosen = parent.reason
    rig.tick()
    with rig.store.unit_of_work(read_only=True) as uow:
        (held,) = [p for p in uow.algos.working() if p.parent_id == "algo-1"]
        assert uow.orders.children("algo-1") == []
    assert held.reason is not None and "; held: order rate limit" in held.reason
    assert held.reason.startswith(chosen or "")
    rig.clock.advance(timedelta(seconds=61))
    rig.tick(3)
    with rig.store.unit_of_work(read_only=True) as uow:
        (child,) = uow.orders.children("algo-1")
    assert child.filled_qty == D(20)
    assert rig.positions()["BBB"].qty == D(20)


# ---------------------------------------------------------------------------- live gate
def close_a_trade(rig: Rig, n: int) -> None:
    """Open and close ``n`` trades (paper history), marking the session."""
    for i in range(n):
        rig.signal("AAA", qty=D(10 + i))
        rig.tick(2)
        rig.command(
            "manual_order",
            {"symbol": "AAA", "side": "sell", "qty": str(10 + i), "reduce_only": True},
        )
        rig.clock.advance(timedelta(seconds=30))
        rig.tick(2)
    rig.clock.advance(timedelta(seconds=61))
    run(rig.executor.mark_to_market(force=True))


def test_go_live_is_refused_on_a_paper_account(rig: Rig):
    cid = rig.command("go_live", {"confirm": True}, by="root")
    rig.tick()
    command = rig.get_command(cid)
    assert command.status is CommandStatus.REJECTED
    assert "paper account" in (command.result or "")
    assert "AXION_ALPACA_LIVE" in (command.result or "")


def test_live_account_trades_only_behind_the_gate(rig: Rig):
    close_a_trade(rig, 2)  # paper history on this store: 1 session, 2 closed trades
    with rig.store.unit_of_work(read_only=True) as uow:
        assert uow.journal.track_record() == (1, 2)
        assert all(t.status is TradeStatus.CLOSED for t in uow.journal.trades())
    restart(rig, "live", live_account=True)

    # a live account before go-live: entries refused with the reason, exits allowed
    rig.signal("BBB")
    rig.tick(2)
    sid = rig.signal("AAA")
    rig.tick(2)
    refused = rig.get_signal(sid)
    assert refused.status is SignalStatus.REJECTED
    assert "live trading is not switched on" in (refused.reason or "")
    status = StatusQueries(rig.store, "executor:test").executor(rig.executor.wall.now())
    assert status.trading_mode == "LIVE LOCKED" and not status.live

    # the default gate: 5 sessions and 20 trades
    short = rig.command("go_live", {"confirm": True}, by="root")
    rig.tick()
    result = rig.get_command(short).result or ""
    assert rig.get_command(short).status is CommandStatus.REJECTED
    assert "1 of 5 paper sessions" in result and "2 of 20 closed paper trades" in result

    # an admin lowers the gate (never below 1); a confirmation is still required
    gate = rig.command(
        "update_setting",
        {"key": "live.gate", "value": {"min_paper_sessions": 1, "min_closed_trades": 2}},
        by="root",
    )
    zero = rig.command(
        "update_setting",
        {"key": "live.gate", "value": {"min_paper_sessions": 0, "min_closed_trades": 0}},
        by="root",
    )
    unconfirmed = rig.command("go_live", {"confirm": "yes"}, by="root")
    rig.tick()
    assert rig.get_command(gate).status is CommandStatus.APPLIED
    assert rig.get_command(zero).status is CommandStatus.REJECTED
    assert "explicit confirmation" in (rig.get_command(unconfirmed).result or "")
    assert rig.get_command(unconfirmed).status is CommandStatus.REJECTED

    go = rig.command("go_live", {"confirm": True}, by="root")
    rig.tick()
    assert rig.get_command(go).status is CommandStatus.APPLIED
    with rig.store.unit_of_work(read_only=True) as uow:
        setting = uow.settings.get(LIVE_KEY)
        alerts = uow.alerts.recent(10)
    assert live_from_value(setting)
    assert setting.value["by"] == "root" and setting.value["closed_paper_trades"] == 2
    assert any("LIVE trading switched on by root" in a.message for a in alerts)
    live = rig.signal("AAA", qty=D(7))
    rig.tick(2)
    assert rig.get_signal(live).status is SignalStatus.ROUTED
    status = StatusQueries(rig.store, "executor:test").executor(rig.executor.wall.now())
    assert status.trading_mode == "LIVE"

    # live trading survives a restart, and going back to paper locks entries again
    restart(rig, "live-2", live_account=True)
    rig.tick()
    assert rig.executor.live_trading
    off = rig.command("go_paper", {"reason": "end of the trial"}, by="root")
    rig.tick()
    assert rig.get_command(off).status is CommandStatus.APPLIED
    again = rig.signal("BBB", qty=D(3))
    rig.tick(2)
    assert rig.get_signal(again).status is SignalStatus.REJECTED
    exit_cid = rig.command(
        "manual_order", {"symbol": "AAA", "side": "sell", "qty": "7", "reduce_only": True}
    )
    rig.tick(2)
    assert rig.get_command(exit_cid).status is CommandStatus.APPLIED


def test_only_an_admin_may_go_live_or_change_the_limits(rig: Rig):
    admin = UserAdmin(rig.store, clock=rig.clock)
    admin.create_first_admin("root", "Root", "root@example.com", "correct horse battery")
    admin.add_user("root", "tina", "Tina", "tina@example.com", Role.TRADER, "correct horse battery")
    service = TradingService(rig.store, rig.market, clock=rig.clock)
    with pytest.raises(PermissionDenied):
        service.send_command("tina", CommandType.GO_LIVE, {"confirm": True})
    for key in ("orders.rate_limit", "live.gate"):
        with pytest.raises(PermissionDenied):
            service.send_command(
                "tina", CommandType.UPDATE_SETTING, {"key": key, "value": {"max_orders": 5}}
            )
    # a trader still changes the ordinary settings
    assert service.send_command(
        "tina", CommandType.UPDATE_SETTING, {"key": "executor.default_qty", "value": "5"}
    )
    assert service.send_command("root", CommandType.GO_LIVE, {"confirm": True})


# ---------------------------------------------------------------------------- notional orders
def test_a_notional_manual_order_is_sized_filled_and_stored_with_its_amount(rig: Rig):
    cid = rig.command(
        "manual_order", {"symbol": "BBB", "side": "buy", "notional": "1000.50"}, by="tina"
    )
    bad = rig.command(
        "manual_order",
        {"symbol": "BBB", "side": "buy", "notional": "100", "time_in_force": "gtc"},
        by="tina",
    )
    rig.tick(2)
    assert rig.get_command(cid).status is CommandStatus.APPLIED
    rejected = rig.get_command(bad)
    assert rejected.status is CommandStatus.REJECTED and "day" in (rejected.result or "")
    order = rig.order(f"ax-c{cid}-manual")
    assert order.request.notional == D("1000.50")  # read back from the store
    assert order.status is OrderStatus.FILLED
    with rig.store.unit_of_work(read_only=True) as uow:
        (fill,) = uow.fills.for_order(order.client_order_id)
    # the broker filled the dollar amount: quantity = amount / fill price, to 9 places
    assert fill.qty == (D("1000.50") / fill.price).quantize(D("0.000000001"), rounding="ROUND_DOWN")
    assert rig.positions()["BBB"].qty == fill.qty
