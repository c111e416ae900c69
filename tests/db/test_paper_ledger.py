"""The paper broker's own books: account state, orders and fills as JSON documents."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy.exc import StatementError

from core.ports import PaperLedger
from db.store import SqlStore

T0 = datetime(2024, 5, 6, 13, 30, tzinfo=UTC)


def test_empty_ledger_loads_empty(store: SqlStore) -> None:
    snapshot = store.paper_ledger("demo").load()
    assert (snapshot.account, snapshot.orders, snapshot.fills) == (None, [], [])


def test_save_and_load_round_trip(store: SqlStore) -> None:
    ledger: PaperLedger = store.paper_ledger("demo")
    account = {"cash": Decimal("99000.125"), "day_trades": [T0.isoformat()], "pdt": False}
    order = {"client_order_id": "ax-s1-entry", "status": "accepted", "qty": Decimal("10")}
    fill = {"fill_id": "p-1", "client_order_id": "ax-s1-entry", "price": "187.31", "at": T0}
    ledger.save(account, [order], [fill])
    snapshot = ledger.load()
    assert snapshot.account == {"cash": "99000.125", "day_trades": [T0.isoformat()], "pdt": False}
    assert snapshot.orders == [
        {"client_order_id": "ax-s1-entry", "status": "accepted", "qty": "10"}
    ]
    assert snapshot.fills == [{**fill, "at": T0.isoformat()}]


def test_save_upserts_orders_and_inserts_fills_once(store: SqlStore) -> None:
    ledger = store.paper_ledger("demo")
    ledger.save({"cash": "1"}, [{"client_order_id": "a", "status": "accepted"}])
    later = (T0 + timedelta(seconds=1)).isoformat()
    ledger.save(
        None,  # the account state is left as it is
        [{"client_order_id": "a", "status": "filled"}, {"client_order_id": "b", "status": "new"}],
        [{"fill_id": "f2", "at": later}, {"fill_id": "f1", "at": T0.isoformat()}],
    )
    ledger.save(fills=[{"fill_id": "f1", "at": T0.isoformat(), "changed": True}])
    snapshot = ledger.load()
    assert snapshot.account == {"cash": "1"}
    assert sorted(snapshot.orders, key=lambda o: o["client_order_id"]) == [
        {"client_order_id": "a", "status": "filled"},
        {"client_order_id": "b", "status": "new"},
    ]
    assert [f["fill_id"] for f in snapshot.fills] == ["f1", "f2"]  # in execution order
    assert "changed" not in snapshot.fills[0]


def test_accounts_are_separate(store: SqlStore) -> None:
    store.paper_ledger("a").save({"cash": "1"}, [{"client_order_id": "x"}], [{"fill_id": "f"}])
    store.paper_ledger("b").save({"cash": "2"})
    assert store.paper_ledger("b").load().orders == []
    assert store.paper_ledger("b").load().account == {"cash": "2"}
    assert store.paper_ledger("a").load().fills == [{"fill_id": "f"}]


def test_save_is_atomic(store: SqlStore) -> None:
    ledger = store.paper_ledger("demo")
    ledger.save({"cash": "1"})
    with pytest.raises(StatementError):  # JSON has no NaN
        ledger.save({"cash": "2"}, fills=[{"fill_id": "bad", "price": float("nan")}])
    assert ledger.load().account == {"cash": "1"}
