"""The Risk Dashboard's read views over a real store: exposure, concurrent positions, realized P&L
by day and by minute (exact sums), daily rows, and the kill switch's history."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from core.domain import (
    Command,
    CommandStatus,
    CommandType,
    DailyPnl,
    Direction,
    InstrumentType,
    Order,
    OrderRequest,
    OrderStatus,
    Position,
    Side,
    TradeExecution,
    TradeStatus,
    TradeType,
)
from core.settings_keys import KILL_SWITCH_KEY
from db.queries.risk import (
    DAILY_PNL_COLUMNS,
    EXPOSURE_COLUMNS,
    REALIZED_DAY_COLUMNS,
    REALIZED_MINUTE_COLUMNS,
    RiskQueries,
)
from db.store import SqlStore

T0 = datetime(2024, 5, 6, 13, 30, tzinfo=UTC)


def _trade(
    ticker: str,
    pnl: str | None,
    exit_time: datetime | None,
    status: TradeStatus = TradeStatus.CLOSED,
) -> TradeExecution:
    return TradeExecution(
        ticker=ticker,
        direction=Direction.LONG,
        trade_type=TradeType.DAY,
        entry_price=Decimal("100"),
        shares=Decimal("10"),
        entry_time=T0 - timedelta(hours=1),
        status=status,
        exit_price=None if exit_time is None else Decimal("101"),
        exit_time=exit_time,
        pnl=None if pnl is None else Decimal(pnl),
    )


def _add_trades(store: SqlStore, *trades: TradeExecution) -> None:
    with store.unit_of_work() as uow:
        for trade in trades:
            uow.journal.open_trade(trade)
        uow.commit()


def _order(coid: str, symbol: str, status: OrderStatus, reduce_only: bool = False) -> Order:
    request = OrderRequest(coid, symbol, Side.BUY, Decimal("5"), reduce_only=reduce_only)
    order = Order(request, broker="paper", created_at=T0, updated_at=T0)
    order.transition(OrderStatus.PENDING_SUBMIT, T0, "written ahead")
    if status is not OrderStatus.PENDING_SUBMIT:
        order.transition(OrderStatus.SUBMITTED, T0, "sent")
    if status not in (OrderStatus.PENDING_SUBMIT, OrderStatus.SUBMITTED):
        order.transition(status, T0, None)
    return order


def test_empty_store_gives_empty_frames_with_their_columns(store: SqlStore) -> None:
    q = RiskQueries(store)
    assert list(q.exposure().columns) == EXPOSURE_COLUMNS and q.exposure().empty
    assert list(q.realized_by_day().columns) == REALIZED_DAY_COLUMNS
    assert list(q.realized_by_minute(T0).columns) == REALIZED_MINUTE_COLUMNS
    assert list(q.daily_pnl().columns) == DAILY_PNL_COLUMNS
    assert q.kill_switch_history().empty and q.kill_switch_commands().empty
    held = q.concurrent_positions()
    assert held.count == 0 and held.held == () and held.pending == ()


def test_exposure_values_positions_at_their_last_mark(store: SqlStore) -> None:
    with store.unit_of_work() as uow:
        uow.positions.upsert(
            Position("NVDA", Decimal("20"), Decimal("100.50"), Decimal("110.25"), opened_at=T0)
        )
        uow.positions.upsert(Position("AAPL", Decimal("-10"), Decimal("190"), Decimal("185.5")))
        uow.positions.upsert(Position("SPXL", Decimal("7"), Decimal("150")))  # never marked
        uow.positions.upsert(
            Position(
                "SPY240621C00500000",
                Decimal("2"),
                Decimal("3.10"),
                Decimal("3.60"),
                InstrumentType.OPTION,
            )
        )
        uow.commit()
    frame = RiskQueries(store).exposure()
    by = frame.set_index("symbol")
    assert list(frame["symbol"]) == ["NVDA", "AAPL", "SPXL", "SPY240621C00500000"]
    assert by.loc["NVDA", "market_value"] == Decimal("2205.00")
    assert by.loc["NVDA", "unrealized_pnl"] == Decimal("195.00")
    assert by.loc["NVDA", "sector"] == "semiconductors"
    assert by.loc["AAPL", "market_value"] == Decimal("-1855.0")
    assert by.loc["AAPL", "gross_value"] == Decimal("1855.0")
    assert by.loc["AAPL", "unrealized_pnl"] == Decimal("45.0")  # a short that fell
    assert by.loc["AAPL", "sector"] == "technology"
    assert by.loc["SPXL", "price"] == Decimal("150")
    assert by.loc["SPXL", "unrealized_pnl"] == 0
    assert by.loc["SPXL", "sector"] == "unclassified"
    # an option counts its 100-share contract multiplier
    assert by.loc["SPY240621C00500000", "market_value"] == Decimal("720.00")
    assert by.loc["SPY240621C00500000", "unrealized_pnl"] == Decimal("100.00")
    assert all(isinstance(v, Decimal) for v in frame["gross_value"])


def test_exposure_takes_a_sector_map(store: SqlStore) -> None:
    with store.unit_of_work() as uow:
        uow.positions.upsert(Position("XYZ", Decimal("1"), Decimal("10"), Decimal("12")))
        uow.commit()
    frame = RiskQueries(store, sector_of=lambda s: "custom").exposure()
    assert list(frame["sector"]) == ["custom"]


def test_concurrent_positions_count_held_and_working_entries(store: SqlStore) -> None:
    with store.unit_of_work() as uow:
        uow.positions.upsert(Position("NVDA", Decimal("20"), Decimal("100")))
        uow.positions.upsert(Position("AAPL", Decimal("-10"), Decimal("190")))
        uow.orders.add(_order("e-msft", "MSFT", OrderStatus.ACCEPTED))
        uow.orders.add(_order("e-nvda", "NVDA", OrderStatus.PARTIALLY_FILLED))  # held already
        uow.orders.add(_order("e-amd", "AMD", OrderStatus.PENDING_SUBMIT))
        uow.orders.add(_order("x-aapl", "AAPL", OrderStatus.ACCEPTED, reduce_only=True))
        uow.orders.add(_order("x-tsla", "TSLA", OrderStatus.ACCEPTED, reduce_only=True))
        uow.orders.add(_order("f-meta", "META", OrderStatus.FILLED))
        uow.orders.add(_order("c-goog", "GOOG", OrderStatus.CANCELLED))
        uow.commit()
    held = RiskQueries(store).concurrent_positions()
    assert held.held == ("AAPL", "NVDA")
    assert held.pending == ("AMD", "MSFT")
    assert held.count == 4


def test_realized_by_day_sums_exactly_and_counts_wins_and_losses(store: SqlStore) -> None:
    day1, day2 = T0, T0 + timedelta(days=1)
    _add_trades(
        store,
        _trade("AAPL", "0.1", day1 + timedelta(minutes=5)),
        _trade("MSFT", "0.2", day1 + timedelta(minutes=6)),
        _trade("NVDA", "-1234.567891", day1 + timedelta(hours=7)),
        _trade("AMD", "0", day1 + timedelta(hours=8)),
        _trade("TSLA", "250.75", day2 + timedelta(minutes=1)),
        _trade("META", "-50.25", day2 + timedelta(minutes=2)),
        _trade("GOOG", None, None, status=TradeStatus.OPEN),
        _trade("IBM", "999", None, status=TradeStatus.CANCELLED),
    )
    frame = RiskQueries(store).realized_by_day()
    assert list(frame["day"]) == [date(2024, 5, 6), date(2024, 5, 7)]
    assert list(frame["trades"]) == [4, 2]
    assert list(frame["wins"]) == [2, 1]
    assert list(frame["losses"]) == [1, 1]
    # 0.1 + 0.2 stays 0.3: sums are exact, not float
    assert frame["realized"].iloc[0] == Decimal("0.3") - Decimal("1234.567891")
    assert frame["realized"].iloc[1] == Decimal("200.50")
    assert all(isinstance(v, Decimal) for v in frame["realized"])

    only_second = RiskQueries(store).realized_by_day(since=date(2024, 5, 7))
    assert list(only_second["day"]) == [date(2024, 5, 7)]
    only_first = RiskQueries(store).realized_by_day(until=date(2024, 5, 6))
    assert list(only_first["day"]) == [date(2024, 5, 6)]


def test_realized_by_minute_buckets_exits_in_the_window(store: SqlStore) -> None:
    _add_trades(
        store,
        _trade("AAPL", "10.10", T0 + timedelta(seconds=5)),
        _trade("MSFT", "-2.05", T0 + timedelta(seconds=59, microseconds=999)),
        _trade("NVDA", "7", T0 + timedelta(minutes=3, seconds=1)),
        _trade("AMD", "100", T0 - timedelta(seconds=1)),  # before the window
        _trade("TSLA", "100", T0 + timedelta(hours=1)),  # at its end: excluded
    )
    frame = RiskQueries(store).realized_by_minute(T0, T0 + timedelta(hours=1))
    assert list(frame["at"]) == [T0, T0 + timedelta(minutes=3)]
    assert list(frame["trades"]) == [2, 1]
    assert list(frame["realized"]) == [Decimal("8.05"), Decimal("7")]
    assert frame["at"].iloc[0].tzinfo is not None
    open_ended = RiskQueries(store).realized_by_minute(T0)
    assert open_ended["realized"].sum() == Decimal("115.05")


def test_realized_gives_days_and_todays_minutes_in_one_pass(store: SqlStore) -> None:
    today = T0 + timedelta(days=3)  # 13:30 UTC
    _add_trades(
        store,
        _trade("AAPL", "100", T0 - timedelta(days=2)),  # before ``since``
        _trade("MSFT", "40.5", T0),
        _trade("NVDA", "-10.25", today - timedelta(hours=3)),  # today, before minutes_from
        _trade("AMD", "7.5", today + timedelta(seconds=30)),
        _trade("TSLA", "-2.5", today + timedelta(seconds=45)),
        _trade("META", "3", today + timedelta(minutes=90)),
    )
    found = RiskQueries(store).realized(since=T0.date(), minutes_from=today)
    assert list(found.by_day.columns) == REALIZED_DAY_COLUMNS
    assert list(found.by_day["day"]) == [T0.date(), today.date()]
    assert list(found.by_day["trades"]) == [1, 4]
    assert list(found.by_day["wins"]) == [1, 2]
    assert list(found.by_day["losses"]) == [0, 2]
    assert list(found.by_day["realized"]) == [Decimal("40.5"), Decimal("-2.25")]
    assert list(found.by_minute.columns) == REALIZED_MINUTE_COLUMNS
    assert list(found.by_minute["at"]) == [today, today + timedelta(minutes=90)]
    assert list(found.by_minute["trades"]) == [2, 1]
    assert list(found.by_minute["realized"]) == [Decimal("5.0"), Decimal("3")]
    # the same figures as the two separate views
    by_minute = RiskQueries(store).realized_by_minute(today)
    assert list(by_minute["realized"]) == list(found.by_minute["realized"])
    by_day = RiskQueries(store).realized_by_day(since=T0.date())
    assert list(by_day["realized"]) == list(found.by_day["realized"])


def test_daily_pnl_rows_oldest_first_with_the_equity_change(store: SqlStore) -> None:
    with store.unit_of_work() as uow:
        for i, (start, end) in enumerate(
            [("100000", "101250.50"), ("101250.50", "99800"), ("99800", "99900.25")]
        ):
            uow.journal.upsert_daily_pnl(
                DailyPnl(
                    date=date(2024, 5, 6) + timedelta(days=i),
                    starting_equity=Decimal(start),
                    ending_equity=Decimal(end),
                    realized_pnl=Decimal("12.5") * i,
                    unrealized_pnl=Decimal("-3"),
                    total_trades=i,
                    max_drawdown=Decimal("0.01"),
                    kill_switch_triggered=i == 1,
                )
            )
        uow.commit()
    frame = RiskQueries(store).daily_pnl()
    assert list(frame["day"]) == [date(2024, 5, 6), date(2024, 5, 7), date(2024, 5, 8)]
    assert list(frame["equity_change"]) == [
        Decimal("1250.50"),
        Decimal("-1450.50"),
        Decimal("100.25"),
    ]
    assert list(frame["realized"]) == [Decimal("0"), Decimal("12.5"), Decimal("25.0")]
    assert list(frame["kill_switch_triggered"]) == [False, True, False]
    latest_two = RiskQueries(store).daily_pnl(days=2)
    assert list(latest_two["day"]) == [date(2024, 5, 7), date(2024, 5, 8)]


def test_kill_switch_history_and_its_commands_newest_first(store: SqlStore) -> None:
    on_at, off_at = T0, T0 + timedelta(minutes=20)
    with store.unit_of_work() as uow:
        uow.settings.put(
            KILL_SWITCH_KEY,
            {"active": True, "reason": "daily loss", "at": on_at.isoformat(), "by": "system"},
            "system",
            on_at,
        )
        uow.settings.put(
            KILL_SWITCH_KEY,
            {"active": False, "reason": "reviewed", "at": off_at.isoformat(), "by": "trader"},
            "trader",
            off_at,
        )
        uow.settings.put("risk.profile", "aggressive", "admin", T0)
        cid = uow.commands.add(
            Command(CommandType.KILL_SWITCH_OFF.value, {"reason": "reviewed"}, "trader", off_at)
        )
        uow.commands.mark(cid, CommandStatus.APPLIED, "kill switch off", off_at)
        uow.commands.add(Command(CommandType.CANCEL_ALL.value, {}, "trader", off_at))
        uow.commit()
    q = RiskQueries(store)
    history = q.kill_switch_history()
    assert list(history["active"]) == [False, True]
    assert list(history["reason"]) == ["reviewed", "daily loss"]
    assert list(history["by"]) == ["trader", "system"]
    assert list(history["at"]) == [off_at, on_at]
    assert len(q.kill_switch_history(limit=1)) == 1
    commands = q.kill_switch_commands()
    assert list(commands["type"]) == ["kill_switch_off"]
    assert commands["reason"].iloc[0] == "reviewed"
    assert commands["created_by"].iloc[0] == "trader"
    assert commands["status"].iloc[0] == "applied"
