"""Commands, versioned settings, the executor lease, reconciliation diffs, the journal."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from core.domain import (
    Command,
    CommandStatus,
    CommandType,
    DailyPnl,
    Direction,
    InstrumentType,
    ReconciliationDiff,
    TradeExecution,
    TradeStatus,
    TradeType,
)
from db.errors import RowNotFoundError
from db.store import SqlStore

T0 = datetime(2024, 5, 6, 13, 30, tzinfo=UTC)
TTL = timedelta(seconds=10)

# ---------------------------------------------------------------------------------------------
# Commands
# ---------------------------------------------------------------------------------------------


def test_commands_pending_mark_and_audit_trail(store: SqlStore) -> None:
    kill = Command(CommandType.KILL_SWITCH_ON, {"reason": "drawdown"}, "alice", created_at=T0)
    cancel = Command(
        "cancel_order", {"client_order_id": "ax-s1-entry", "qty": Decimal("2.5")}, "bob", T0
    )
    with store.unit_of_work() as uow:
        first = uow.commands.add(kill)
        second = uow.commands.add(cancel)
        uow.commit()
    assert kill.id == first and cancel.id == second and first < second
    with store.unit_of_work() as uow:
        assert [c.id for c in uow.commands.pending()] == [first, second]
        assert [c.id for c in uow.commands.pending(1)] == [first]
        uow.commands.mark(first, CommandStatus.APPLIED, "kill switch on", T0 + timedelta(seconds=1))
        uow.commands.mark(
            second, CommandStatus.REJECTED, "unknown order", T0 + timedelta(seconds=2)
        )
        uow.commit()
    with store.unit_of_work() as uow:
        assert uow.commands.pending() == []
        applied = uow.commands.get(first)
        assert applied == replace(
            kill,
            type="kill_switch_on",
            status=CommandStatus.APPLIED,
            result="kill switch on",
            applied_at=T0 + timedelta(seconds=1),
        )
        rejected = uow.commands.get(second)
        assert rejected is not None
        assert rejected.payload == {"client_order_id": "ax-s1-entry", "qty": "2.5"}
        assert rejected.status is CommandStatus.REJECTED and rejected.result == "unknown order"
        assert [c.id for c in uow.commands.recent()] == [second, first]
        assert uow.commands.get(9999) is None
        with pytest.raises(RowNotFoundError):
            uow.commands.mark(9999, CommandStatus.APPLIED, "x", T0)


# ---------------------------------------------------------------------------------------------
# Settings
# ---------------------------------------------------------------------------------------------


def test_settings_are_versioned(store: SqlStore) -> None:
    with store.unit_of_work() as uow:
        assert uow.settings.get("risk.profile") is None
        assert uow.settings.history("risk.profile") == []
        assert uow.settings.put("risk.profile", "aggressive", "alice", T0) == 1
        assert uow.settings.put("risk.profile", "moderate", "bob", T0 + timedelta(1)) == 2
        assert uow.settings.put("other", {"a": [1, 2]}, "bob", T0) == 1
        assert uow.settings.put("risk.profile", {"max": Decimal("0.05")}, "carol", T0) == 3
        uow.commit()
    with store.unit_of_work() as uow:
        latest = uow.settings.get("risk.profile")
        assert latest is not None
        assert (latest.version, latest.value, latest.updated_by) == (3, {"max": "0.05"}, "carol")
        history = uow.settings.history("risk.profile")
        assert [(s.version, s.value) for s in history] == [
            (1, "aggressive"),
            (2, "moderate"),
            (3, {"max": "0.05"}),
        ]
        assert history[1].updated_at == T0 + timedelta(1)
        other = uow.settings.get("other")
        assert other is not None and other.value == {"a": [1, 2]}


@pytest.mark.parametrize("value", [None, 0, 12.5, True, "text", [1, "a"], {"nested": {"x": 1}}])
def test_settings_hold_any_json_value(store: SqlStore, value: object) -> None:
    with store.unit_of_work() as uow:
        uow.settings.put("k", value, "alice", T0)
        stored = uow.settings.get("k")
    assert stored is not None and stored.value == value


# ---------------------------------------------------------------------------------------------
# Lease
# ---------------------------------------------------------------------------------------------


def test_lease_two_holders_expiry_and_renewal(store: SqlStore) -> None:
    with store.unit_of_work() as uow:
        assert uow.lease.get("exec") is None
        assert uow.lease.try_acquire("exec", "a", T0, TTL, {"pid": 1}) is True
        uow.commit()
    with store.unit_of_work() as uow:
        # B cannot take an unexpired lease, even at the very instant it expires.
        assert uow.lease.try_acquire("exec", "b", T0 + timedelta(seconds=5), TTL) is False
        assert uow.lease.try_acquire("exec", "b", T0 + TTL, TTL) is False
        # A renews: the expiry moves, acquired_at stays, info is kept when not given.
        assert uow.lease.try_acquire("exec", "a", T0 + timedelta(seconds=8), TTL) is True
        lease = uow.lease.get("exec")
        assert lease is not None
        assert (lease.holder, lease.acquired_at, lease.expires_at, lease.heartbeat_at) == (
            "a",
            T0,
            T0 + timedelta(seconds=18),
            T0 + timedelta(seconds=8),
        )
        assert lease.info == {"pid": 1}
        assert uow.lease.try_acquire("exec", "b", T0 + timedelta(seconds=17), TTL) is False
        # After expiry B takes it over, with a fresh acquired_at.
        later = T0 + timedelta(seconds=18, microseconds=1)
        assert uow.lease.try_acquire("exec", "b", later, TTL, {"pid": 2}) is True
        lease = uow.lease.get("exec")
        assert lease is not None
        assert (lease.holder, lease.acquired_at, lease.info) == ("b", later, {"pid": 2})
        assert uow.lease.try_acquire("exec", "a", later, TTL) is False
        # Leases are per name.
        assert uow.lease.try_acquire("other", "a", later, TTL) is True
        uow.commit()


def test_lease_release_lets_another_holder_in_at_once(store: SqlStore) -> None:
    with store.unit_of_work() as uow:
        assert uow.lease.try_acquire("exec", "a", T0, TTL)
        uow.lease.release("exec", "b")  # not the holder: nothing happens
        assert not uow.lease.try_acquire("exec", "b", T0 + timedelta(seconds=1), TTL)
        uow.lease.release("exec", "a")
        assert uow.lease.try_acquire("exec", "b", T0 + timedelta(seconds=1), TTL)
        lease = uow.lease.get("exec")
        assert lease is not None and lease.holder == "b"
        uow.commit()


def test_lease_not_committed_is_not_held(store: SqlStore) -> None:
    with store.unit_of_work() as uow:
        assert uow.lease.try_acquire("exec", "a", T0, TTL)
    with store.unit_of_work() as uow:
        assert uow.lease.get("exec") is None
        assert uow.lease.try_acquire("exec", "b", T0, TTL)


# ---------------------------------------------------------------------------------------------
# Reconciliation
# ---------------------------------------------------------------------------------------------


def test_reconciliation_add_and_recent(store: SqlStore) -> None:
    diffs = [
        ReconciliationDiff("position_mismatch", "AAPL", "10", "12", T0, "paper"),
        ReconciliationDiff("missing_at_broker", "ax-s3-entry", "submitted", None, T0, "alpaca"),
        ReconciliationDiff("unknown_at_broker", "zz-1", None, "filled", T0, "alpaca"),
    ]
    with store.unit_of_work() as uow:
        for d in diffs:
            uow.reconciliation.add(d)
        uow.commit()
    with store.unit_of_work() as uow:
        assert uow.reconciliation.recent() == list(reversed(diffs))
        assert uow.reconciliation.recent(1) == [diffs[-1]]


# ---------------------------------------------------------------------------------------------
# Journal
# ---------------------------------------------------------------------------------------------


def _trade(**kw: object) -> TradeExecution:
    fields: dict = {
        "ticker": "TQQQ",
        "direction": Direction.LONG,
        "trade_type": TradeType.DAY,
        "entry_price": Decimal("61.2345"),
        "shares": Decimal("150"),
        "entry_time": T0,
        "signal_id": 7,
        "instrument_type": InstrumentType.LEVERAGED_ETF,
        "original_ticker": "QQQ",
        "leverage": Decimal("3"),
        "stop_loss": Decimal("59.9"),
        "target_price": Decimal("64"),
        "conviction": 80,
        "broker": "paper",
        "order_id": "ax-s7-entry",
        "metadata": {"cloud": "bull", "equity": Decimal("100000.00")},
    }
    fields.update(kw)
    return TradeExecution(**fields)


def test_journal_open_and_close_a_trade(store: SqlStore) -> None:
    trade = _trade()
    with store.unit_of_work() as uow:
        trade_id = uow.journal.open_trade(trade)
        uow.commit()
    assert trade.id == trade_id
    with store.unit_of_work() as uow:
        stored = uow.journal.open_trade_for("TQQQ")
        assert stored == replace(trade, metadata={"cloud": "bull", "equity": "100000.00"})
        assert uow.journal.open_trade_for("AAPL") is None
        assert stored is not None
        stored.exit_price = Decimal("63.1")
        stored.exit_time = T0 + timedelta(hours=2)
        stored.status = TradeStatus.CLOSED
        stored.exit_reason = "target"
        stored.pnl = (stored.exit_price - stored.entry_price) * stored.shares
        stored.pnl_pct = (stored.exit_price - stored.entry_price) / stored.entry_price
        uow.journal.update_trade(stored)
        uow.commit()
    with store.unit_of_work() as uow:
        assert uow.journal.open_trade_for("TQQQ") is None
        (closed,) = uow.journal.trades()
        assert closed == stored
        assert closed.pnl == Decimal("279.8250")
        assert closed.pnl_pct == Decimal("1.8655") / Decimal("61.2345")


def test_journal_trade_listing_and_update_errors(store: SqlStore) -> None:
    with store.unit_of_work() as uow:
        first = uow.journal.open_trade(_trade(ticker="AAPL", metadata={}))
        second = uow.journal.open_trade(_trade(ticker="MSFT"))
        third = uow.journal.open_trade(_trade(ticker="AAPL", direction=Direction.SHORT))
        assert [t.id for t in uow.journal.trades()] == [third, second, first]
        assert [t.id for t in uow.journal.trades(limit=1)] == [third]
        assert [t.id for t in uow.journal.trades(ticker="AAPL")] == [third, first]
        latest_open = uow.journal.open_trade_for("AAPL")
        assert latest_open is not None and latest_open.id == third
        with pytest.raises(RowNotFoundError):
            uow.journal.update_trade(_trade())
        with pytest.raises(RowNotFoundError):
            uow.journal.update_trade(_trade(id=99999))


def test_daily_pnl_upsert(store: SqlStore) -> None:
    day = date(2024, 5, 6)
    row = DailyPnl(
        date=day,
        starting_equity=Decimal("100000"),
        ending_equity=Decimal("100250.55"),
        realized_pnl=Decimal("200.5"),
        unrealized_pnl=Decimal("50.05"),
        total_trades=3,
        winning_trades=2,
        losing_trades=1,
        metadata={"note": "first"},
    )
    with store.unit_of_work() as uow:
        assert uow.journal.daily_pnl(day) is None
        uow.journal.upsert_daily_pnl(row)
        uow.commit()
    updated = replace(
        row,
        ending_equity=Decimal("98000.01"),
        max_drawdown=Decimal("-0.0200"),
        kill_switch_triggered=True,
        total_trades=4,
        metadata={"note": "second"},
    )
    with store.unit_of_work() as uow:
        assert uow.journal.daily_pnl(day) == row
        uow.journal.upsert_daily_pnl(updated)
        uow.journal.upsert_daily_pnl(replace(row, date=date(2024, 5, 7)))
        uow.commit()
    with store.unit_of_work() as uow:
        assert uow.journal.daily_pnl(day) == updated
        assert uow.journal.daily_pnl(date(2024, 5, 7)) is not None


def test_stage_decisions_are_stored_per_signal_in_order(store):
    from core.domain import Direction, Signal, StageDecision

    t = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)
    with store.unit_of_work() as uow:
        sid = uow.signals.add(Signal("AAPL", Direction.LONG, Decimal(100), Decimal(99), t))
        uow.decisions.add(StageDecision(sid, "instrument", True, t, None, {"ticker": "TQQQ"}))
        uow.decisions.add(
            StageDecision(sid, "risk", False, t, "max concurrent positions 10 reached", {"n": 10})
        )
        uow.commit()
    with store.unit_of_work(read_only=True) as uow:
        got = uow.decisions.for_signal(sid)
        recent = uow.decisions.recent(1)
    assert [(d.stage, d.approved) for d in got] == [("instrument", True), ("risk", False)]
    assert got[0].details == {"ticker": "TQQQ"} and got[1].reason.startswith("max concurrent")
    assert recent[0].stage == "risk"
