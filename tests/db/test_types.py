"""Exact money, UTC time and JSON documents survive a round trip on both engines."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import insert, inspect, select, text
from sqlalchemy.exc import StatementError

from core.domain import Direction, Position, Signal, utcnow
from db.store import SqlStore
from db.tables import POSITIONS, RECONCILIATION
from db.types import dumps_json

EXACT_VALUES = [
    Decimal("0.1"),
    Decimal("0.01"),
    Decimal("123456789012.123456789"),
    Decimal(1) / Decimal(3),  # 28 significant digits
    Decimal(2) / Decimal(3),
    Decimal("-98765.4321"),
    Decimal("1E-20"),
    Decimal("1E+25"),
    Decimal("1.10"),
    Decimal("99999999999999999999999999999.999999999999"),
]


def _position(symbol: str, qty: Decimal, price: Decimal) -> Position:
    return Position(
        symbol, qty, price, current_price=price, realized_pnl=-price, opened_at=utcnow()
    )


def _round_trip(store: SqlStore, value: Decimal) -> Position:
    with store.unit_of_work() as uow:
        uow.positions.upsert(_position("X", value, value))
        stored = uow.positions.get("X")
    assert stored is not None
    return stored


@pytest.mark.parametrize("value", EXACT_VALUES, ids=str)
def test_money_round_trips_exactly(store: SqlStore, value: Decimal) -> None:
    stored = _round_trip(store, value)
    assert stored.qty == value
    assert stored.avg_entry_price == value
    assert stored.current_price == value
    assert stored.realized_pnl == -value
    assert isinstance(stored.qty, Decimal)


def test_long_computed_average_keeps_every_digit(store: SqlStore) -> None:
    average = (Decimal("100.01") * 3 + Decimal("100.02") * 7) / Decimal(10) / Decimal(3)
    stored = _round_trip(store, average)
    assert stored.avg_entry_price == average
    assert str(stored.avg_entry_price) == str(average)


def test_sqlite_stores_text_and_postgres_unconstrained_numeric(store: SqlStore) -> None:
    with store.unit_of_work() as uow:
        uow.positions.upsert(_position("X", Decimal("0.1"), Decimal(1)))
        uow.commit()
    with store.engine.connect() as conn:
        if conn.dialect.name == "sqlite":
            kind, raw = conn.execute(text("SELECT typeof(qty), qty FROM positions")).one()
            assert (kind, raw) == ("text", "0.1")
        else:
            column = next(c for c in inspect(conn).get_columns("positions") if c["name"] == "qty")
            assert str(column["type"]) == "NUMERIC"
            assert column["type"].precision is None and column["type"].scale is None


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    value=st.decimals(allow_nan=False, allow_infinity=False, min_value=-(10**15), max_value=10**15)
    | st.decimals(allow_nan=False, allow_infinity=False, places=12).filter(
        lambda d: abs(d) < 10**20
    )
)
def test_any_finite_decimal_round_trips(store: SqlStore, value: Decimal) -> None:
    with store.unit_of_work() as uow:
        uow.positions.upsert(_position("H", value if value != 0 else Decimal(1), value))
        stored = uow.positions.get("H")
    assert stored is not None
    assert stored.avg_entry_price == value
    assert stored.realized_pnl == -value


@pytest.mark.parametrize(
    "bad", [0.1, 1.0, float("nan"), Decimal("NaN"), Decimal("Infinity"), Decimal("-Infinity")]
)
def test_floats_and_non_finite_values_are_refused(store: SqlStore, bad: object) -> None:
    # Once through the repositories' prepared statements, once through plain Core.
    with store.unit_of_work() as uow, pytest.raises(StatementError) as info:
        uow.positions.upsert(_position("F", bad, Decimal(1)))  # type: ignore[arg-type]
    assert isinstance(info.value.orig, TypeError | ValueError)
    row = {
        "symbol": "F",
        "qty": bad,
        "avg_entry_price": Decimal(1),
        "instrument_type": "stock",
        "realized_pnl": Decimal(0),
        "updated_at": utcnow(),
    }
    with store.engine.connect() as conn, pytest.raises(StatementError):
        conn.execute(insert(POSITIONS), row)


def test_booleans_are_not_money(store: SqlStore) -> None:
    with store.unit_of_work() as uow, pytest.raises(StatementError):
        uow.positions.upsert(_position("B", True, Decimal(1)))  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------
# UTC
# ---------------------------------------------------------------------------------------------


def test_aware_in_aware_utc_out(store: SqlStore) -> None:
    india = timezone(timedelta(hours=5, minutes=30))
    local = datetime(2024, 3, 8, 20, 45, 1, 123456, tzinfo=india)
    with store.unit_of_work() as uow:
        signal_id = uow.signals.add(
            Signal("AAPL", Direction.LONG, Decimal(10), Decimal(9), created_at=local)
        )
        uow.signals.mark_rejected(signal_id, "test", local + timedelta(minutes=1))
        stored = uow.signals.get(signal_id)
    assert stored is not None
    assert stored.created_at == local
    assert stored.created_at.tzinfo is UTC
    assert stored.created_at == datetime(2024, 3, 8, 15, 15, 1, 123456, tzinfo=UTC)


def test_naive_datetimes_are_refused(store: SqlStore) -> None:
    naive = datetime(2024, 1, 2, 3, 4, 5)
    with store.unit_of_work() as uow:
        with pytest.raises(StatementError) as info:
            uow.signals.add(Signal("AAPL", Direction.LONG, Decimal(10), Decimal(9), naive))
        assert isinstance(info.value.orig, ValueError)
        signal_id = uow.signals.add(
            Signal("AAPL", Direction.LONG, Decimal(10), Decimal(9), utcnow())
        )
        with pytest.raises(StatementError):  # the prepared-statement path
            uow.signals.mark_routed(signal_id, "x", naive)


def test_time_ordering_follows_instants_across_offsets(store: SqlStore) -> None:
    base = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)
    # Wall-clock text of these sorts differently from the instants they stand for.
    times = [
        base.astimezone(timezone(timedelta(hours=-9))),
        (base + timedelta(microseconds=1)).astimezone(timezone(timedelta(hours=9))),
        base - timedelta(seconds=1),
        (base + timedelta(days=1)).astimezone(timezone(timedelta(hours=-12))),
    ]
    with store.engine.begin() as conn:
        for i, at in enumerate(times):
            conn.execute(
                insert(RECONCILIATION),
                {"kind": "k", "key": str(i), "ours": None, "theirs": None, "broker": "b", "at": at},
            )
        keys = conn.execute(select(RECONCILIATION.c.key).order_by(RECONCILIATION.c.at)).scalars()
        assert list(keys) == ["2", "0", "1", "3"]
        later = conn.execute(
            select(RECONCILIATION.c.key).where(RECONCILIATION.c.at > base).order_by("key")
        ).scalars()
        assert list(later) == ["1", "3"]


# ---------------------------------------------------------------------------------------------
# JSON documents
# ---------------------------------------------------------------------------------------------


def test_json_documents_store_decimals_as_strings(store: SqlStore) -> None:
    metadata = {
        "risk": Decimal("0.05"),
        "levels": [Decimal("1.10"), 2, 3.5, None, True],
        "at": datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC),
        "direction": Direction.SHORT,
        "nested": {"x": (1, 2)},
    }
    with store.unit_of_work() as uow:
        signal_id = uow.signals.add(
            Signal("AAPL", Direction.LONG, Decimal(10), Decimal(9), utcnow(), metadata=metadata)
        )
        stored = uow.signals.get(signal_id)
    assert stored is not None
    assert stored.metadata == {
        "risk": "0.05",
        "levels": ["1.10", 2, 3.5, None, True],
        "at": "2024-01-02T03:04:05+00:00",
        "direction": "short",
        "nested": {"x": [1, 2]},
    }


def test_json_encoding_rules() -> None:
    assert (
        dumps_json({"a": Decimal("1.10"), "s": {3}, "t": (1, 2)})
        == '{"a":"1.10","s":[3],"t":[1,2]}'
    )
    assert dumps_json(None) == "null"
    with pytest.raises(ValueError):
        dumps_json({"x": float("nan")})
    with pytest.raises(ValueError):
        dumps_json([Decimal("Infinity")])
    with pytest.raises(TypeError):
        dumps_json({"x": object()})


@pytest.mark.parametrize("bad", [float("inf"), Decimal("NaN"), object()])
def test_json_columns_refuse_what_json_cannot_hold(store: SqlStore, bad: object) -> None:
    with store.unit_of_work() as uow, pytest.raises(StatementError):
        uow.settings.put("k", {"x": bad}, "me", utcnow())
    with store.unit_of_work() as uow, pytest.raises(StatementError):  # prepared-statement path
        uow.lease.try_acquire("l", "me", utcnow(), timedelta(seconds=1), {"x": bad})
