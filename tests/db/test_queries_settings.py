"""The Settings page's read views: reconciliation differences with what resolved them, the
current settings and their history, and the command audit with its filters."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from core.domain import Command, CommandStatus, ReconciliationDiff
from core.reconcile import ORPHAN_CANCELLED, POSITION_ADOPTED
from db.queries.settings import (
    COMMAND_COLUMNS,
    DIFF_COLUMNS,
    SETTING_COLUMNS,
    SettingsQueries,
)
from db.store import SqlStore

T0 = datetime(2024, 3, 20, 15, 0, tzinfo=UTC)


def _diffs(store: SqlStore, *rows: tuple[str, str, str | None, str | None]) -> None:
    with store.unit_of_work() as uow:
        for i, (kind, key, ours, theirs) in enumerate(rows):
            uow.reconciliation.add(
                ReconciliationDiff(kind, key, ours, theirs, T0 + timedelta(seconds=i), "paper")
            )
        uow.commit()


def test_empty_store_gives_empty_views_with_their_columns(store: SqlStore):
    q = SettingsQueries(store)
    assert list(q.reconciliation().columns) == DIFF_COLUMNS and q.reconciliation().empty
    assert list(q.commands().columns) == COMMAND_COLUMNS and q.commands().empty
    assert list(q.settings().columns) == SETTING_COLUMNS and q.settings().empty
    assert list(q.history().columns) == SETTING_COLUMNS
    assert q.open_position_mismatches() == [] and q.open_orphan_orders() == []
    assert q.current() == {} and q.current([]) == {} and q.command_authors() == []


def test_a_resolution_row_resolves_only_the_earlier_differences_of_its_key(store: SqlStore):
    _diffs(
        store,
        ("position_mismatch", "AAA", "10", "12"),  # 1: resolved by 4
        ("position_mismatch", "BBB", "5", None),  # 2: open
        ("unknown_at_broker", "orphan-1", None, "accepted"),  # 3: resolved by 6
        (POSITION_ADOPTED, "AAA", "10", "12"),  # 4
        ("position_mismatch", "AAA", "12", "10"),  # 5: a new difference, open
        (ORPHAN_CANCELLED, "orphan-1", None, "cancelled"),  # 6
        ("unknown_at_broker", "orphan-2", None, "accepted"),  # 7: open
        ("order_status", "ax-c1-manual", "accepted", None),  # 8: open, no action for it
    )
    q = SettingsQueries(store)
    df = q.reconciliation()
    assert list(df["id"]) == [8, 7, 6, 5, 4, 3, 2, 1]
    by_id = df.set_index("id")
    assert by_id.loc[1, "status"] == "resolved" and by_id.loc[1, "resolved_by"] == 4
    assert by_id.loc[3, "status"] == "resolved" and by_id.loc[3, "resolved_by"] == 6
    assert by_id.loc[4, "status"] == "resolution" and by_id.loc[6, "status"] == "resolution"
    assert {i for i in by_id.index if by_id.loc[i, "status"] == "open"} == {2, 5, 7, 8}

    mismatches = q.open_position_mismatches()
    assert [(d.id, d.key, d.ours, d.theirs) for d in mismatches] == [
        (5, "AAA", "12", "10"),
        (2, "BBB", "5", None),
    ]
    assert mismatches[1].label == "BBB: ours 5, paper none"
    orphans = q.open_orphan_orders()
    assert [d.key for d in orphans] == ["orphan-2"]
    assert orphans[0].label == "orphan-2 (paper: accepted)"
    assert len(q.reconciliation(limit=3)) == 3


def test_open_differences_show_the_newest_of_each_key(store: SqlStore):
    _diffs(
        store,
        ("position_mismatch", "AAA", "10", "12"),
        ("position_mismatch", "AAA", "10", "14"),
    )
    [only] = SettingsQueries(store).open_position_mismatches()
    assert (only.id, only.theirs) == (2, "14")


def test_current_settings_and_history(store: SqlStore):
    with store.unit_of_work() as uow:
        uow.settings.put("paper.latency_ms", 0, "alice", T0)
        uow.settings.put("paper.latency_ms", 250, "bob", T0 + timedelta(minutes=1))
        uow.settings.put("paper.commission", {"kind": "zero"}, "alice", T0 + timedelta(minutes=2))
        uow.commit()
    q = SettingsQueries(store)
    current = q.current()
    assert current["paper.latency_ms"].value == 250 and current["paper.latency_ms"].version == 2
    assert set(q.current(["paper.latency_ms", "nope"])) == {"paper.latency_ms"}
    df = q.settings()
    assert list(df["key"]) == ["paper.commission", "paper.latency_ms"]
    assert list(df["value"]) == ['{"kind": "zero"}', "250"]
    hist = q.history(["paper.latency_ms"])
    assert list(hist["version"]) == [2, 1] and list(hist["updated_by"]) == ["bob", "alice"]
    assert len(q.history()) == 3
    assert df["updated_at"].iloc[0] == T0 + timedelta(minutes=2)


def test_command_audit_newest_first_with_filters(store: SqlStore):
    with store.unit_of_work() as uow:
        a = uow.commands.add(Command("cancel_all", {}, "alice", T0))
        b = uow.commands.add(
            Command("update_setting", {"key": "paper.latency_ms", "value": 5}, "bob", T0)
        )
        c = uow.commands.add(Command("adopt_broker_position", {"symbol": "AAA"}, "alice", T0))
        uow.commands.mark(a, CommandStatus.APPLIED, "0 cancel requests sent", T0)
        uow.commands.mark(c, CommandStatus.REJECTED, "neither holds AAA", T0)
        uow.commit()
    q = SettingsQueries(store)
    df = q.commands()
    assert list(df["id"]) == [c, b, a]
    assert df.iloc[1]["payload"] == '{"key": "paper.latency_ms", "value": 5}'
    assert df.iloc[0]["status"] == "rejected" and df.iloc[0]["result"] == "neither holds AAA"
    assert list(q.commands(created_by="alice")["id"]) == [c, a]
    assert list(q.commands(types=["update_setting"])["id"]) == [b]
    assert list(q.commands(status="pending")["id"]) == [b]
    assert list(q.commands(limit=1)["id"]) == [c]
    assert q.command_authors() == ["alice", "bob"]
