"""The frame every page shares: the header (account, PAPER/LIVE, executor, kill switch,
banners), the navigation per role, and a sent command followed to applied or rejected."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from streamlit.testing.v1 import AppTest

from app import state
from core.domain import CommandStatus, CommandType, utcnow
from tests.app.conftest import texts


def test_seeded_trading_makes_orders_fills_and_positions(dashboard):
    dashboard.seed_trading()
    with dashboard.store.unit_of_work(read_only=True) as uow:
        assert uow.fills.count() >= 3
        assert {p.symbol for p in uow.positions.all() if p.qty} >= {"SPY", "QQQ", "NVDA"}
        assert any(
            o.status.value in ("accepted", "submitted", "new") for o in uow.orders.open_orders()
        )


def test_header_before_any_executor_says_it_is_down(dashboard):
    at = dashboard.app("positions").run()
    assert not at.exception
    shown = texts(at)
    assert "PAPER" in shown
    assert "Executor down" in shown and "no executor has started" in shown


def test_header_shows_the_account_the_leader_and_the_kill_switch(dashboard):
    dashboard.seed_trading()
    at = dashboard.app("positions").run()
    shown = texts(at)
    assert "Executor down" not in shown
    assert "leader `test-executor`" in shown
    assert "Equity $" in shown and "Buying power $" in shown and "Day trades left" in shown
    dashboard.command(CommandType.KILL_SWITCH_ON, {"reason": "desk test"})
    dashboard.apply()
    at.run()
    assert "Kill switch ON" in texts(at) and "desk test" in texts(at)


def _send_as_viewer() -> None:
    from app.components.common import send_command
    from app.state import dashboard_runtime
    from core.domain import CommandType
    from core.user_admin import UserAdmin

    rt = dashboard_runtime()
    viewer = UserAdmin(rt.store, rt.market.clock).get("viewer")
    send_command(rt, viewer, CommandType.CANCEL_ALL, {}, "Cancel all")


def test_a_viewer_cannot_send_commands_even_from_a_page_that_offers_one(dashboard):
    at = dashboard.app("positions", user="viewer").run()
    assert not at.exception and at.session_state[state.USER].role.value == "viewer"
    probe = AppTest.from_function(_send_as_viewer).run()
    assert "needs the trader role" in texts(probe)
    assert dashboard.commands() == []


def test_a_sent_command_is_followed_from_pending_to_applied(dashboard):
    at = dashboard.app("positions", user="trader").run()
    cid = dashboard.runtime.service().send_command("trader", CommandType.CANCEL_ALL, {})
    at.session_state[state.SENT] = [(cid, "Cancel all")]
    at.run()
    assert "pending" in texts(at) and "Cancel all" in texts(at)
    assert dashboard.apply().status is CommandStatus.APPLIED
    at.run()
    assert "applied" in texts(at)


def test_new_fills_are_announced_with_their_count(dashboard):
    dashboard.seed_trading()
    at = dashboard.app("positions").run()  # the header notes the newest fill it has seen
    assert dashboard.runtime.queries.status.fills_after(0) >= 3
    for symbol in ("SPY", "QQQ"):
        dashboard.command(CommandType.MANUAL_ORDER, {"symbol": symbol, "side": "buy", "qty": "1"})
    dashboard.tick(3)
    at.run()
    assert "2 new fills" in [t.value for t in at.toast]


def _publish(dashboard, info: dict[str, Any]) -> None:
    """The executor's lease info as an executor on another process would publish it."""
    with dashboard.store.unit_of_work() as uow:
        assert uow.lease.try_acquire(
            dashboard.runtime.config.lease_name, "probe", utcnow(), timedelta(seconds=30), info
        )
        uow.commit()


def test_the_header_shows_live_and_live_locked_banners(dashboard):
    at = dashboard.app("journal", user="viewer").run()
    shown = texts(at)
    assert "LIVE TRADING —" not in shown and "Live account, locked" not in shown
    _publish(dashboard, {"ticks": 3, "broker": "alpaca", "live_account": True, "live": False})
    at.run()
    assert [e.value for e in at.warning if "Live account, locked" in e.value] == [
        "Live account, locked: new-risk orders are refused until an admin switches live "
        "trading on; exits still go out"
    ]
    assert "LIVE TRADING —" not in texts(at)
    _publish(dashboard, {"ticks": 4, "broker": "alpaca", "live_account": True, "live": True})
    at.run()
    assert "LIVE TRADING — orders on this account use real money" in [e.value for e in at.error]
    assert "Live account, locked" not in texts(at)
