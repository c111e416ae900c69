"""The Active Positions and Order Book read views on a real store: filters and limits in SQL,
exact money in the frames."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import insert

from core.domain import (
    Direction,
    Fill,
    InstrumentType,
    Order,
    OrderRequest,
    OrderStatus,
    OrderType,
    Position,
    Side,
    StatusChange,
    TradeExecution,
    TradeStatus,
    TradeType,
)
from core.execution.parent import ParentOrder, ParentStatus
from core.execution.schedule import Slice
from db.queries.orders import HISTORY_LIMIT, ORDER_STATUSES, OrderQueries
from db.queries.positions import POSITION_COLUMNS, PositionQueries, PositionTotals, mark_positions
from db.store import SqlStore
from db.tables import ORDERS

T0 = datetime(2025, 3, 3, 14, 30, tzinfo=UTC)
S = OrderStatus
# The path each final status is reached by, as the executor records it.
PATHS = {
    S.NEW: [S.NEW],
    S.SUBMITTED: [S.NEW, S.PENDING_SUBMIT, S.SUBMITTED],
    S.ACCEPTED: [S.NEW, S.PENDING_SUBMIT, S.SUBMITTED, S.ACCEPTED],
    S.PARTIALLY_FILLED: [S.NEW, S.PENDING_SUBMIT, S.SUBMITTED, S.ACCEPTED, S.PARTIALLY_FILLED],
    S.FILLED: [S.NEW, S.PENDING_SUBMIT, S.SUBMITTED, S.ACCEPTED, S.FILLED],
    S.CANCELLED: [S.NEW, S.PENDING_SUBMIT, S.SUBMITTED, S.ACCEPTED, S.CANCELLED],
    S.REJECTED: [S.NEW, S.PENDING_SUBMIT, S.REJECTED],
}


def _order(
    coid: str,
    symbol: str,
    status: OrderStatus,
    at: datetime,
    *,
    broker: str | None = "paper",
    side: Side = Side.BUY,
    qty: str = "10",
    filled: str = "0",
    limit: str | None = None,
    reduce_only: bool = False,
    parent_id: str | None = None,
    instrument_type: InstrumentType = InstrumentType.STOCK,
) -> Order:
    request = OrderRequest(
        client_order_id=coid,
        symbol=symbol,
        side=side,
        qty=Decimal(qty),
        order_type=OrderType.LIMIT if limit else OrderType.MARKET,
        limit_price=Decimal(limit) if limit else None,
        reduce_only=reduce_only,
        instrument_type=instrument_type,
    )
    path = PATHS[status]
    history = [
        StatusChange(
            prev,
            to,
            at + timedelta(seconds=i),
            "broker says no" if to is S.REJECTED else None,
        )
        for i, (prev, to) in enumerate(zip([None, *path[:-1]], path, strict=True))
    ]
    return Order(
        request=request,
        status=status,
        broker=broker,
        filled_qty=Decimal(filled),
        avg_fill_price=Decimal("100.25") if filled != "0" else None,
        created_at=at,
        updated_at=at,
        history=history,
        parent_id=parent_id,
    )


def _add(store: SqlStore, *items: object) -> None:
    with store.unit_of_work() as uow:
        for item in items:
            if isinstance(item, Order):
                uow.orders.add(item)
            elif isinstance(item, Fill):
                uow.fills.add(item)
            elif isinstance(item, Position):
                uow.positions.upsert(item)
            elif isinstance(item, TradeExecution):
                uow.journal.open_trade(item)
            elif isinstance(item, ParentOrder):
                uow.algos.add(item)
        uow.commit()


def _trade(ticker: str, entry: str, at: datetime, **kw: object) -> TradeExecution:
    return TradeExecution(
        ticker=ticker,
        direction=kw.pop("direction", Direction.LONG),  # type: ignore[arg-type]
        trade_type=kw.pop("trade_type", TradeType.SWING),  # type: ignore[arg-type]
        entry_price=Decimal(entry),
        shares=Decimal(kw.pop("shares", "10")),  # type: ignore[arg-type]
        entry_time=at,
        **kw,  # type: ignore[arg-type]
    )


# ---------------------------------------------------------------------------------- positions
@pytest.fixture
def book(store: SqlStore) -> SqlStore:
    """SPY long 10 (marked), TSLA short 5 (marked, a close working), AAPL long 3 (unmarked)."""
    _add(
        store,
        Position("SPY", Decimal("10"), Decimal("100.00"), Decimal("101.50"), opened_at=T0),
        Position(
            "TSLA",
            Decimal("-5"),
            Decimal("200"),
            Decimal("190.00"),
            realized_pnl=Decimal("12.34"),
            opened_at=T0,
        ),
        Position(
            "AAPL",
            Decimal("3"),
            Decimal("50"),
            instrument_type=InstrumentType.OPTION,
            opened_at=T0 + timedelta(hours=1),
        ),
        # an old round trip in SPY, closed: its stop must not show
        _trade(
            "SPY",
            "90",
            T0 - timedelta(days=3),
            stop_loss=Decimal("80"),
            status=TradeStatus.CLOSED,
            exit_price=Decimal("95"),
        ),
        _trade(
            "SPY",
            "100.00",
            T0,
            stop_loss=Decimal("95"),
            target_price=Decimal("110"),
            strategy="ema_cloud",
        ),
        _trade(
            "TSLA",
            "200",
            T0 + timedelta(minutes=5),
            direction=Direction.SHORT,
            trade_type=TradeType.DAY,
            stop_loss=Decimal("210"),
            trigger="manual",
        ),
        # a trade in a symbol no longer held
        _trade("MSFT", "300", T0),
        _order("close-tsla", "TSLA", S.ACCEPTED, T0, side=Side.BUY, qty="5", reduce_only=True),
        _order("old-close", "SPY", S.FILLED, T0, side=Side.SELL, qty="3", reduce_only=True),
        _order("entry", "SPY", S.ACCEPTED, T0, qty="4", limit="90"),
    )
    return store


def test_no_positions_is_an_empty_frame_with_every_column(store):
    frame = PositionQueries(store).open_positions()
    assert frame.empty and list(frame.columns) == list(POSITION_COLUMNS)
    assert PositionQueries(store).totals() == PositionTotals(
        0, Decimal(0), Decimal(0), Decimal(0), Decimal(0), 0
    )


def test_positions_carry_exact_pnl_and_the_open_trade(book):
    now = T0 + timedelta(hours=2, minutes=3)
    frame = PositionQueries(book).open_positions(now).set_index("symbol")
    assert list(frame.index) == ["AAPL", "SPY", "TSLA"]

    spy = frame.loc["SPY"]
    assert spy["side"] == "long" and spy["qty"] == Decimal("10")
    assert spy["mark"] == Decimal("101.50")
    assert spy["market_value"] == Decimal("1015.00")
    assert spy["unrealized_pnl"] == Decimal("15.00")
    assert spy["unrealized_pnl_pct"] == Decimal("0.015000")
    assert (spy["entry_price"], spy["stop_loss"], spy["target_price"]) == (
        Decimal("100.00"),
        Decimal("95"),
        Decimal("110"),
    )
    assert spy["trade_type"] == "swing" and spy["strategy"] == "ema_cloud"
    assert spy["time_in_trade"] == timedelta(hours=2, minutes=3)
    assert spy["closing_qty"] == 0

    tsla = frame.loc["TSLA"]
    assert tsla["side"] == "short" and tsla["qty"] == Decimal("-5")
    assert tsla["unrealized_pnl"] == Decimal("50.00")  # short from 200, marked at 190
    assert tsla["market_value"] == Decimal("-950.00")
    assert tsla["realized_pnl"] == Decimal("12.34")
    assert tsla["strategy"] == "manual" and tsla["trade_type"] == "day"
    assert tsla["time_in_trade"] == timedelta(hours=1, minutes=58)
    assert tsla["closing_qty"] == Decimal("5")  # the working reduce-only buy

    aapl = frame.loc["AAPL"]
    assert aapl["instrument_type"] == "option"
    assert aapl["mark"] is None and aapl["unrealized_pnl"] is None
    # an option counts 100 shares per contract: 3 contracts at $50 a share, at cost until marked
    assert aapl["market_value"] == Decimal("15000")
    # a symbol that is not an OCC symbol names no contract
    assert [aapl[c] for c in ("underlying", "expiry", "strike", "right")] == [None] * 4
    assert aapl["entry_price"] is None  # no journal trade behind it
    assert aapl["time_in_trade"] == timedelta(hours=1, minutes=3)  # from the position's opening
    assert all(isinstance(v, Decimal) for v in frame["unrealized_pnl"].dropna())


def test_marking_fills_in_unmarked_positions_and_totals_stay_exact(book):
    frame = PositionQueries(book).open_positions(T0)
    assert PositionTotals.of(frame).unmarked == 1
    marked = mark_positions(frame, {"AAPL": Decimal("55.10")}).set_index("symbol")
    # AAPL is an option: 3 contracts x 100 shares
    assert marked.loc["AAPL", "unrealized_pnl"] == Decimal("1530.00")
    assert marked.loc["AAPL", "market_value"] == Decimal("16530.00")
    assert marked.loc["AAPL", "unrealized_pnl_pct"] == Decimal("0.102000")
    assert marked.loc["AAPL", "mark"] == Decimal("55.10")
    assert marked.loc["SPY", "unrealized_pnl"] == Decimal("15.00")  # untouched
    totals = PositionTotals.of(marked.reset_index())
    assert totals == PositionTotals(
        count=3,
        market_value=Decimal("1015.00") - Decimal("950.00") + Decimal("16530.00"),
        gross_exposure=Decimal("1015.00") + Decimal("950.00") + Decimal("16530.00"),
        unrealized_pnl=Decimal("15.00") + Decimal("50.00") + Decimal("1530.00"),
        realized_pnl=Decimal("12.34"),
        unmarked=0,
    )


# ---------------------------------------------------------------------------------- options
CALL = "SPY261120C00600000"
PUT = "QQQ261120P00500500"


def test_option_positions_count_100_shares_per_contract_and_name_their_contract(store):
    _add(
        store,
        Position("SPY", Decimal("10"), Decimal("100.00"), Decimal("101.50"), opened_at=T0),
        Position(
            CALL,
            Decimal("2"),
            Decimal("4.10"),
            Decimal("5.25"),
            instrument_type=InstrumentType.OPTION,
            opened_at=T0,
            realized_pnl=Decimal("0.30"),  # kept per share, like the prices
        ),
        Position(
            PUT,
            Decimal("-1"),
            Decimal("3.00"),
            Decimal("2.50"),
            instrument_type=InstrumentType.OPTION,
            opened_at=T0,
        ),
        _trade(
            CALL,
            "4.10",
            T0,
            shares="2",
            instrument_type=InstrumentType.OPTION,
            original_ticker="SPY",
            stop_loss=Decimal("2.05"),
        ),
    )
    frame = PositionQueries(store).open_positions(T0 + timedelta(minutes=5)).set_index("symbol")
    assert list(frame.index) == [PUT, "SPY", CALL]

    call = frame.loc[CALL]
    assert call["instrument_type"] == "option"
    assert (call["underlying"], call["expiry"], call["strike"], call["right"]) == (
        "SPY",
        date(2026, 11, 20),
        Decimal("600"),
        "C",
    )
    assert call["mark"] == Decimal("5.25") and call["avg_entry_price"] == Decimal("4.10")
    assert call["market_value"] == Decimal("1050.00")  # 2 x 5.25 x 100
    assert call["unrealized_pnl"] == Decimal("230.00")  # (5.25 - 4.10) x 2 x 100
    assert call["unrealized_pnl_pct"] == Decimal("0.280488")  # of the 820.00 paid
    assert call["realized_pnl"] == Decimal("30.00")
    assert call["entry_price"] == Decimal("4.10") and call["stop_loss"] == Decimal("2.05")

    put = frame.loc[PUT]
    assert (put["underlying"], put["expiry"], put["strike"], put["right"]) == (
        "QQQ",
        date(2026, 11, 20),
        Decimal("500.5"),
        "P",
    )
    assert put["side"] == "short"
    assert put["market_value"] == Decimal("-250.00")
    assert put["unrealized_pnl"] == Decimal("50.00")  # sold at 3.00, marked at 2.50

    spy = frame.loc["SPY"]
    assert [spy[c] for c in ("underlying", "expiry", "strike", "right")] == [None] * 4
    assert spy["market_value"] == Decimal("1015.00")  # a stock counts once

    totals = PositionQueries(store).totals(T0)
    assert totals.market_value == Decimal("1015.00") + Decimal("1050.00") - Decimal("250.00")
    assert totals.gross_exposure == Decimal("1015.00") + Decimal("1050.00") + Decimal("250.00")
    assert totals.unrealized_pnl == Decimal("15.00") + Decimal("230.00") + Decimal("50.00")
    assert totals.realized_pnl == Decimal("30.00")


def test_an_unmarked_option_is_marked_per_contract(store):
    _add(
        store,
        Position(CALL, Decimal("3"), Decimal("2.00"), instrument_type=InstrumentType.OPTION),
    )
    frame = PositionQueries(store).open_positions(T0)
    assert frame["market_value"].iloc[0] == Decimal("600.00")  # at cost: 3 x 2.00 x 100
    marked = mark_positions(frame, {CALL: Decimal("2.35")}).iloc[0]
    assert marked["mark"] == Decimal("2.35")
    assert marked["market_value"] == Decimal("705.00")
    assert marked["unrealized_pnl"] == Decimal("105.00")
    assert PositionTotals.of(mark_positions(frame, {CALL: Decimal("2.35")})).unrealized_pnl == (
        Decimal("105.00")
    )


def test_option_orders_and_fills_name_their_contract(store):
    _add(
        store,
        _order("stock", "SPY", S.FILLED, T0, filled="10"),
        _order(
            "opt-entry",
            CALL,
            S.FILLED,
            T0 + timedelta(minutes=1),
            qty="2",
            filled="2",
            instrument_type=InstrumentType.OPTION,
        ),
        _order(
            "opt-exit",
            CALL,
            S.ACCEPTED,
            T0 + timedelta(minutes=2),
            side=Side.SELL,
            qty="2",
            limit="6.10",
            reduce_only=True,
            instrument_type=InstrumentType.OPTION,
        ),
        Fill("f-opt", "opt-entry", CALL, Side.BUY, Decimal("2"), Decimal("4.10"), T0, "paper"),
    )
    q = OrderQueries(store)
    working = q.open_orders()
    assert _ids(working) == ["opt-exit"]
    assert list(working.columns[:4]) == ["client_order_id", "created_at", "symbol", "contract"]
    assert working["contract"].iloc[0] == "SPY 2026-11-20 600 C"
    assert working["instrument_type"].iloc[0] == "option"
    assert working["limit_price"].iloc[0] == Decimal("6.10")  # per share of premium
    history = q.history().set_index("client_order_id")
    assert history.loc["opt-entry", "contract"] == "SPY 2026-11-20 600 C"
    assert history.loc["stock", "contract"] is None
    assert list(q.history(symbols=[CALL])["client_order_id"]) == ["opt-exit", "opt-entry"]
    assert q.recent_fills()["contract"].iloc[0] == "SPY 2026-11-20 600 C"
    assert "contract" in q.history(symbols=["TSLA"]).columns  # an empty page keeps the column


# ---------------------------------------------------------------------------------- orders
@pytest.fixture
def orders(store: SqlStore) -> SqlStore:
    """Eight orders over three days on two brokers, with fills."""
    day = timedelta(days=1)
    _add(
        store,
        _order("o1", "SPY", S.FILLED, T0, filled="10"),
        _order("o2", "QQQ", S.REJECTED, T0 + timedelta(hours=1), broker="alpaca"),
        _order("o3", "SPY", S.ACCEPTED, T0 + day, limit="90.50"),
        _order("o4", "NVDA", S.CANCELLED, T0 + day + timedelta(hours=1), broker="alpaca"),
        _order("o5", "NVDA", S.PARTIALLY_FILLED, T0 + 2 * day, filled="4", limit="120"),
        _order("o6", "QQQ", S.SUBMITTED, T0 + 2 * day + timedelta(hours=1), broker="alpaca"),
        _order("o7", "SPY", S.NEW, T0 + 2 * day + timedelta(hours=2), broker=None),
        _order("o8", "SPY", S.FILLED, T0 + 2 * day + timedelta(hours=3), filled="10"),
        Fill("f1", "o1", "SPY", Side.BUY, Decimal("10"), Decimal("100.25"), T0, "paper"),
        Fill(
            "f2",
            "o5",
            "NVDA",
            Side.BUY,
            Decimal("4"),
            Decimal("119.99"),
            T0 + 2 * day,
            "paper",
            expected_price=Decimal("119.90"),
            commission=Decimal("0.0040"),
        ),
        Fill("f3", "o8", "SPY", Side.BUY, Decimal("10"), Decimal("101"), T0 + 2 * day, "paper"),
    )
    return store


def _ids(frame) -> list[str]:
    return list(frame["client_order_id"])


def test_open_orders_are_the_working_ones_newest_first(orders):
    frame = OrderQueries(orders).open_orders()
    assert _ids(frame) == ["o6", "o5", "o3"]  # not new, filled, cancelled or rejected
    o5 = frame.set_index("client_order_id").loc["o5"]
    assert (o5["qty"], o5["filled_qty"], o5["limit_price"]) == (
        Decimal("10"),
        Decimal("4"),
        Decimal("120"),
    )
    assert _ids(OrderQueries(orders).open_orders(limit=2)) == ["o6", "o5"]


def test_history_is_newest_first_and_every_filter_narrows_it_in_sql(orders):
    q = OrderQueries(orders)
    assert _ids(q.history()) == ["o8", "o7", "o6", "o5", "o4", "o3", "o2", "o1"]
    assert _ids(q.history(limit=3)) == ["o8", "o7", "o6"]
    assert _ids(q.history(statuses=["filled", "rejected"])) == ["o8", "o2", "o1"]
    assert _ids(q.history(statuses="cancelled")) == ["o4"]
    assert _ids(q.history(symbols=["NVDA", "QQQ"])) == ["o6", "o5", "o4", "o2"]
    assert _ids(q.history(brokers=["alpaca"])) == ["o6", "o4", "o2"]
    # dates are whole UTC days, the end day included
    day2 = (T0 + timedelta(days=1)).date()
    assert _ids(q.history(start=day2, end=day2)) == ["o4", "o3"]
    assert _ids(q.history(start=day2)) == ["o8", "o7", "o6", "o5", "o4", "o3"]
    assert _ids(q.history(end=T0.date())) == ["o2", "o1"]
    # datetimes are instants, the end excluded
    assert _ids(q.history(start=T0 + timedelta(minutes=30), end=T0 + timedelta(days=1))) == ["o2"]
    combined = q.history(statuses=["filled"], symbols=["SPY"], brokers=["paper"], start=day2)
    assert _ids(combined) == ["o8"]
    assert q.history(symbols=["TSLA"]).empty
    assert q.history(start=date(2030, 1, 1)).empty


def test_history_is_limited_to_the_newest_500_by_default(store):
    rows = [
        {
            **{c.name: None for c in ORDERS.columns},
            "client_order_id": f"bulk-{i:04d}",
            "symbol": "SPY",
            "side": "buy",
            "qty": Decimal(1),
            "order_type": "market",
            "time_in_force": "day",
            "reduce_only": False,
            "instrument_type": "stock",
            "status": "filled",
            "filled_qty": Decimal(1),
            "created_at": T0 + timedelta(seconds=i),
            "updated_at": T0 + timedelta(seconds=i),
        }
        for i in range(HISTORY_LIMIT + 20)
    ]
    with store.unit_of_work() as uow:
        uow.connection.execute(insert(ORDERS), rows)
        uow.commit()
    frame = OrderQueries(store).history()
    assert len(frame) == HISTORY_LIMIT == 500
    assert frame["client_order_id"].iloc[0] == f"bulk-{HISTORY_LIMIT + 19:04d}"
    assert frame["client_order_id"].iloc[-1] == "bulk-0020"


def test_recent_fills_are_newest_first_with_exact_money(orders):
    q = OrderQueries(orders)
    frame = q.recent_fills()
    assert list(frame["fill_id"]) == ["f3", "f2", "f1"]
    f2 = frame.set_index("fill_id").loc["f2"]
    assert (f2["price"], f2["expected_price"], f2["commission"]) == (
        Decimal("119.99"),
        Decimal("119.90"),
        Decimal("0.0040"),
    )
    assert f2["slippage_bps"] == Decimal("7.5063")
    assert list(q.recent_fills(limit=1)["fill_id"]) == ["f3"]
    assert list(q.recent_fills(symbol="SPY")["fill_id"]) == ["f3", "f1"]


def test_status_history_lists_each_change_in_order(orders):
    q = OrderQueries(orders)
    frame = q.status_history("o2")
    assert list(zip(frame["from_status"].fillna("-"), frame["to_status"], strict=True)) == [
        ("-", "new"),
        ("new", "pending_submit"),
        ("pending_submit", "rejected"),
    ]
    assert frame["reason"].iloc[-1] == "broker says no"
    assert list(frame["at"]) == [T0 + timedelta(hours=1, seconds=i) for i in range(3)]
    assert q.status_history("nope").empty


def test_filter_options_come_from_the_order_book(orders, store):
    options = OrderQueries(orders).filter_options()
    assert options.symbols == ("NVDA", "QQQ", "SPY")
    assert options.brokers == ("alpaca", "paper")  # o7 has no broker yet
    assert options.statuses == ORDER_STATUSES and "partially_filled" in options.statuses


def _parent(pid: str, status: ParentStatus, at: datetime, done: int, filled: str) -> ParentOrder:
    schedule = [Slice(i, at + timedelta(minutes=i), Decimal("10")) for i in range(4)]
    return ParentOrder(
        parent_id=pid,
        symbol="SPY",
        side=Side.BUY,
        qty=Decimal("40"),
        algorithm="twap" if pid != "p2" else "vwap",
        arrival_price=Decimal("100"),
        created_at=at,
        schedule=schedule,
        status=status,
        slices_sent=done,
        slices_done=done,
        filled_qty=Decimal(filled),
        avg_price=Decimal("100.05") if filled != "0" else None,
    )


def test_algo_parents_working_first_then_the_most_recent(store):
    _add(
        store,
        _parent("p1", ParentStatus.WORKING, T0, 1, "10"),
        _parent("p2", ParentStatus.FILLED, T0 + timedelta(hours=2), 4, "40"),
        _parent("p3", ParentStatus.CANCELLED, T0 + timedelta(hours=1), 2, "20"),
        _parent("p4", ParentStatus.WORKING, T0 + timedelta(minutes=30), 0, "0"),
    )
    q = OrderQueries(store)
    frame = q.algo_parents()
    assert list(frame["parent_id"]) == ["p4", "p1", "p2", "p3"]
    p1 = frame.set_index("parent_id").loc["p1"]
    assert (p1["slices_done"], p1["slices_total"], p1["filled_qty"], p1["qty"]) == (
        1,
        4,
        Decimal("10"),
        Decimal("40"),
    )
    assert list(q.algo_parents(limit=3)["parent_id"]) == ["p4", "p1", "p2"]
    assert OrderQueries(store).algo_parents(limit=0).empty
