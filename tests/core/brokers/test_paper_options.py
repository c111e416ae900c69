"""Options on the paper broker: whole contracts at the touch, money times 100, and settlement
at the close of the expiry session."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import date, timedelta
from decimal import Decimal as D
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from core.brokers.commission import CommissionSchedule
from core.brokers.paper import MemoryPaperLedger, PaperConfig
from core.brokers.paper_config import COMMISSION_KEY
from core.domain import (
    Bar,
    BrokerEvent,
    EventKind,
    InstrumentType,
    OrderStatus,
    OrderType,
    Side,
)
from core.ports import OrderRejected
from db.engine import make_engine, migrate
from db.store import SqlStore
from tests.core.brokers.fixed_market import Row, at, session_bars
from tests.core.brokers.harness import Harness

FRI = date(2026, 11, 20)
MON = date(2026, 11, 23)
EARLY = date(2026, 11, 27)  # the day after Thanksgiving: the market closes at 13:00 ET
ET = ZoneInfo("America/New_York")

CALL = "SPY261120C00590000"  # expires Friday 20 Nov 2026, strike 590
PUT = "SPY261120P00610000"
OTM_CALL = "SPY261120C00620000"
OTM_PUT = "SPY261120P00580000"
LATER = "SPY261218C00590000"  # expires in December
EARLY_CALL = "SPY261127C00590000"

OPTION = InstrumentType.OPTION
FEES = PaperConfig(
    initial_cash=D(100_000),
    commission=CommissionSchedule.zero().with_option_rate("0.65"),
)


def keyed(day: date, moves: Mapping[str, Row] | None) -> dict:
    return {
        at(day.day, int(k[:2]), int(k[2:]), month=day.month): v for k, v in (moves or {}).items()
    }


def option_bars(
    symbol: str,
    day: date = FRI,
    price: str = "5.00",
    moves: Mapping[str, Row] | None = None,
) -> list[Bar]:
    """A thin contract: flat ``price`` with 1 contract per minute; ``moves`` keyed ``"HHMM"``."""
    return session_bars(symbol, day, price, 1, keyed(day, moves))


def spy_bars(day: date = FRI, close: str = "600.25") -> list[Bar]:
    """SPY flat at 600 through ``day``'s session, its last minute closing at ``close``."""
    bars = session_bars("SPY", day, "600", 500_000)
    last = bars[-1]
    bars[-1] = Bar("SPY", last.start, last.end, D(600), D(close), D(close), D(close), last.volume)
    return bars


def harness(
    options: dict[str, list[Bar]],
    *,
    config: PaperConfig = FEES,
    start: Any = None,
    ledger: Any = None,
    spy: list[Bar] | None = None,
) -> Harness:
    """A market with SPY and the given contracts, quoted 0.10 wide (bid = close - 0.05)."""
    bars = {"SPY": spy if spy is not None else spy_bars(), **options}
    adv = {symbol: 40 for symbol in options}  # a few dozen contracts a day
    return Harness(bars, config=config, adv=adv, spread="0.10", start=start, ledger=ledger)


def buy(h: Harness, coid: str, qty: Any, symbol: str = CALL, **kw: Any) -> Any:
    return h.submit(coid, "buy", qty, symbol, instrument_type=OPTION, **kw)


def sell(h: Harness, coid: str, qty: Any, symbol: str = CALL, **kw: Any) -> Any:
    return h.submit(coid, "sell", qty, symbol, instrument_type=OPTION, **kw)


def refused(h: Harness, side: str, qty: Any, symbol: str = CALL, **kw: Any) -> OrderRejected:
    kw.setdefault("instrument_type", OPTION)
    with pytest.raises(OrderRejected) as info:
        h.submit("bad", side, qty, symbol, **kw)
    return info.value


def fills_of(events: list[BrokerEvent]) -> list[tuple[str, D, D]]:
    return [(e.client_order_id, e.fill.qty, e.fill.price) for e in events if e.fill is not None]


# --- fills and money --------------------------------------------------------------------------


def test_buying_two_calls_pays_the_ask_times_100_plus_the_per_contract_commission() -> None:
    h = harness({CALL: option_bars(CALL, moves={"1510": ("6", "6", "6", "6", 1)})})
    buy(h, "b1", 2)
    [event] = h.updates()
    fill = event.fill
    assert fill is not None and event.status is OrderStatus.FILLED
    # in full, though a bar trades one contract; at the ask with no impact
    assert (fill.qty, fill.price, fill.commission) == (D(2), D("5.05"), D("1.30"))
    account = h.account()
    assert account.cash == D(100_000) - (D("5.05") * 200 + D("1.30"))  # 98,988.70
    position = h.positions()[CALL]
    assert position.instrument_type is OPTION
    assert (position.qty, position.avg_entry_price) == (D(2), D("5.05"))
    assert account.long_market_value == D("5.00") * 2 * 100
    assert account.equity == account.cash + D(1_000)

    h.at(at(20, 15, 11))  # the premium marks at 6.00
    position = h.positions()[CALL]
    assert position.current_price == D(6)
    # prices stay per share: the position's P&L is per share times contracts, x100 in money
    assert position.unrealized_pnl * 100 == (D(6) - D("5.05")) * 2 * 100 == D(190)
    account = h.account()
    assert account.long_market_value == D(1_200)
    assert account.equity == D("98988.70") + D(1_200)
    assert account.daily_pnl == account.equity - D(100_000)


def test_selling_to_close_realizes_the_pnl_times_100_at_the_bid() -> None:
    up = {f"15{m:02d}": ("6", "6", "6", "6", 1) for m in range(10, 30)}
    h = harness({CALL: option_bars(CALL, moves=up)})
    buy(h, "b1", 2)
    h.at(at(20, 15, 15))
    sell(h, "s1", 2, reduce_only=True)
    [event] = h.updates()
    assert event.fill is not None
    assert (event.fill.qty, event.fill.price, event.fill.commission) == (D(2), D("5.95"), D("1.30"))
    assert h.positions() == {}
    assert h.broker.realized_pnl == (D("5.95") - D("5.05")) * 2 * 100 == D(180)
    assert h.broker.total_commissions == D("2.60")
    account = h.account()
    assert account.cash == D("98988.70") + D("5.95") * 200 - D("1.30")
    assert account.equity == account.cash == D(100_000) + D(180) - D("2.60")


def test_a_working_market_order_fills_whole_at_the_bar_close_plus_half_spread() -> None:
    config = PaperConfig(initial_cash=D(100_000), latency=timedelta(seconds=30))
    h = harness(
        {CALL: option_bars(CALL, moves={"1501": ("5.20", "5.30", "5.10", "5.20", 0)})},
        config=config,
    )
    buy(h, "b1", 7)  # eligible from 15:00:30: the 15:01 bar is its first
    [event] = h.at(at(20, 15, 2))
    assert fills_of([event]) == [("b1", D(7), D("5.25"))]  # close 5.20 + half spread 0.05


def test_buying_power_counts_the_premium_times_100_and_options_are_paid_in_cash() -> None:
    h = harness({CALL: option_bars(CALL)}, config=PaperConfig(initial_cash=D(1_000)))
    rejection = refused(h, "buy", 2)
    assert rejection.code == "buying_power"
    assert "needs 1,010.00" in rejection.reason
    buy(h, "b1", 1)
    assert h.account().cash == D(1_000) - D(505)

    margin = PaperConfig(initial_cash=D(1_000), leverage_limit=D(2))
    h = harness({CALL: option_bars(CALL)}, config=margin)
    assert h.account().buying_power == D(2_000)
    rejection = refused(h, "buy", 2)
    assert rejection.code == "buying_power"
    assert "options are paid in full from cash 1,000.00" in rejection.reason


def test_a_working_option_buy_holds_its_premium_times_100() -> None:
    h = harness({CALL: option_bars(CALL)}, config=PaperConfig(initial_cash=D(1_000)))
    buy(h, "l1", 1, order_type="limit", limit_price="4.00")  # holds 400
    assert refused(h, "buy", 2, order_type="limit", limit_price="4.00").code == "buying_power"
    buy(h, "l2", 1, order_type="limit", limit_price="4.00")


def test_fractional_contracts_are_refused() -> None:
    h = harness({CALL: option_bars(CALL)})
    rejection = refused(h, "buy", "1.5")
    assert rejection.code == "bad_quantity"
    assert "whole contracts" in rejection.reason


def test_selling_options_to_open_is_refused() -> None:
    h = harness({CALL: option_bars(CALL)})
    rejection = refused(h, "sell", 1)
    assert rejection.code == "short_disabled"
    assert rejection.reason.startswith("selling options to open is not supported")
    buy(h, "b1", 2)
    assert refused(h, "sell", 3).reason.startswith("selling options to open is not supported")
    sell(h, "s1", 1, order_type="limit", limit_price="9.00")  # rests
    # the working sell already covers one of the two contracts
    covered = refused(h, "sell", 2, reduce_only=True)
    assert covered.reason.startswith("selling options to open is not supported")
    assert "1 of it already covered by working sells" in covered.reason
    sell(h, "s2", 1)
    assert h.positions()[CALL].qty == 1


def test_option_orders_are_market_or_limit_day_orders_on_an_occ_symbol() -> None:
    h = harness({CALL: option_bars(CALL)})
    assert refused(h, "buy", 1, order_type="stop", stop_price="6").code == "bad_type"
    assert refused(h, "buy", 1, time_in_force="gtc").code == "bad_tif"
    assert refused(h, "buy", 1, time_in_force="ioc").code == "bad_tif"
    assert refused(h, "buy", 1, instrument_type=InstrumentType.STOCK).code == "bad_instrument"
    assert refused(h, "buy", 1, symbol="SPY").code == "unknown_symbol"
    assert refused(h, "buy", 1, symbol=LATER).code == "unknown_symbol"  # not quoted


def test_a_buy_limit_rests_and_fills_in_full_when_the_ask_reaches_it() -> None:
    moves = {
        "1510": ("4.60", "4.60", "4.48", "4.50", 1),  # ask low 4.53: above the limit
        "1520": ("4.60", "4.60", "4.40", "4.45", 1),  # ask low 4.45: fills
    }
    h = harness({CALL: option_bars(CALL, moves=moves)})
    order = buy(h, "l1", 3, order_type=OrderType.LIMIT, limit_price="4.50")
    assert order.status is OrderStatus.ACCEPTED
    assert h.at(at(20, 15, 15)) == []
    [event] = h.at(at(20, 15, 30))
    assert fills_of([event]) == [("l1", D(3), D("4.50"))]
    assert event.fill is not None and event.fill.at == at(20, 15, 21)
    assert h.account().cash == D(100_000) - D("4.50") * 300 - D("1.95")


def test_a_sell_limit_fills_when_the_bid_reaches_it() -> None:
    moves = {
        "1510": ("5.40", "5.52", "5.40", "5.50", 1),  # bid high 5.47
        "1520": ("5.70", "5.70", "5.60", "5.60", 1),  # bid opens at 5.65
    }
    h = harness({CALL: option_bars(CALL, moves=moves)})
    buy(h, "b1", 2)
    sell(h, "l1", 2, order_type="limit", limit_price="5.50", reduce_only=True)
    assert fills_of(h.at(at(20, 15, 15))) == [("b1", D(2), D("5.05"))]
    assert fills_of(h.at(at(20, 15, 30))) == [("l1", D(2), D("5.65"))]
    assert h.broker.realized_pnl == (D("5.65") - D("5.05")) * 200


def test_a_marketable_limit_fills_at_the_touch() -> None:
    h = harness({CALL: option_bars(CALL)})
    buy(h, "l1", 4, order_type="limit", limit_price="5.50")
    assert fills_of(h.updates()) == [("l1", D(4), D("5.05"))]


def test_the_commission_setting_carries_the_per_contract_rate() -> None:
    config = PaperConfig().with_fill_settings(
        {COMMISSION_KEY: {"kind": "per_share", "rate": "0.005", "per_contract": "0.65"}}
    )
    assert config.commission == CommissionSchedule.per_share("0.005").with_option_rate("0.65")
    assert config.fill_settings()[COMMISSION_KEY]["per_contract"] == "0.65"
    assert CommissionSchedule.from_dict(config.commission.to_dict()) == config.commission
    assert "per_contract" not in CommissionSchedule.per_share("0.005").to_dict()
    assert config.commission.for_option_fill(D(3)) == D("1.95")
    assert config.commission.for_fill(D(100), D(50), first_fill=True) == D("0.50")  # shares


# --- expiry -----------------------------------------------------------------------------------


def expiry_harness(**kw: Any) -> Harness:
    contracts = (CALL, PUT, OTM_CALL, OTM_PUT)
    return harness({symbol: option_bars(symbol) for symbol in contracts}, **kw)


def test_calls_and_puts_in_the_money_settle_at_intrinsic_value_at_the_close() -> None:
    h = expiry_harness()
    buy(h, "c", 2, CALL)
    buy(h, "p", 1, PUT)
    h.updates()
    cash = h.account().cash
    assert h.at(at(20, 20, 59)) == []
    events = h.at(at(20, 21, 5))
    close = at(20, 21)
    assert [(e.kind, e.status, e.at) for e in events] == [
        (EventKind.FILL, OrderStatus.FILLED, close),
        (EventKind.FILL, OrderStatus.FILLED, close),
    ]
    by_symbol = {e.fill.symbol: e for e in events if e.fill is not None}
    call, put = by_symbol[CALL], by_symbol[PUT]
    assert call.client_order_id == "ax-x-SPY261120C00590000-20261120"
    assert call.fill is not None and put.fill is not None
    assert call.fill.fill_id == "expiry-SPY261120C00590000-20261120"
    # SPY's last bar closes at 600.25: the 590 call is worth 10.25, the 610 put 9.75
    assert (call.fill.side, call.fill.qty, call.fill.price) == (Side.SELL, D(2), D("10.25"))
    assert (put.fill.side, put.fill.qty, put.fill.price) == (Side.SELL, D(1), D("9.75"))
    assert call.fill.commission == put.fill.commission == 0
    assert call.fill.at == close and call.broker_order_id == call.fill.broker_order_id
    assert call.reason is not None and call.reason.startswith("expired in the money")
    assert "SPY closed at 600.25" in call.reason
    assert h.positions() == {}
    assert h.account().cash == cash + D("10.25") * 200 + D("9.75") * 100
    assert h.broker.realized_pnl == (D("10.25") - D("5.05")) * 200 + (D("9.75") - D("5.05")) * 100
    order = h.order(call.client_order_id)
    assert order is not None
    assert (order.status, order.filled_qty, order.avg_fill_price) == (
        OrderStatus.FILLED,
        D(2),
        D("10.25"),
    )
    assert order.reason == call.reason
    assert [f.fill_id for f in h.broker.settled_expiries()] == [
        "expiry-SPY261120C00590000-20261120",
        "expiry-SPY261120P00610000-20261120",
    ]
    assert h.account().day_trade_count == 0  # an expiry is not a day trade


def test_out_of_the_money_options_expire_worthless() -> None:
    h = expiry_harness()
    buy(h, "c", 1, OTM_CALL)
    buy(h, "p", 3, OTM_PUT)
    h.updates()
    cash = h.account().cash
    events = h.at(at(23, 15))  # Monday: settled as of Friday's close
    assert [(e.client_order_id, e.at) for e in events] == [
        ("ax-x-SPY261120C00620000-20261120", at(20, 21)),
        ("ax-x-SPY261120P00580000-20261120", at(20, 21)),
    ]
    assert [(f.qty, f.price, f.commission) for f in h.broker.settled_expiries()] == [
        (D(1), D(0), D(0)),
        (D(3), D(0), D(0)),
    ]
    assert all(e.reason is not None and e.reason.startswith("expired worthless") for e in events)
    assert h.positions() == {}
    assert h.account().cash == cash
    assert h.broker.realized_pnl == -D("5.05") * 400


def test_without_the_underlying_an_option_settles_at_its_own_last_price() -> None:
    qqq = "QQQ261120C00500000"  # the market has no QQQ
    moves = {"2059": ("7.00", "7.40", "7.00", "7.40", 1)}
    h = harness({qqq: option_bars(qqq, moves=moves)})
    buy(h, "b1", 1, qqq)
    events = h.at(at(20, 21, 1))
    assert fills_of(events) == [("b1", D(1), D("5.05")), (f"ax-x-{qqq}-20261120", D(1), D("7.40"))]
    assert events[-1].reason is not None and "no price for QQQ" in events[-1].reason


def test_an_expired_contract_cannot_be_traded() -> None:
    h = expiry_harness(start=at(20, 21, 30))
    assert refused(h, "buy", 1, order_type="limit", limit_price="1").code == "expired"
    h = expiry_harness(start=at(20, 13))  # before Friday's open: still tradable
    buy(h, "l1", 1, order_type="limit", limit_price="1")
    later = expiry_harness(start=at(21, 12))  # Saturday: a day limit would work on Monday
    assert refused(later, "buy", 1, order_type="limit", limit_price="1").code == "expired"


def test_working_option_orders_expire_at_the_close_before_the_settlement() -> None:
    h = expiry_harness()
    buy(h, "b1", 2)
    buy(h, "l1", 1, PUT, order_type="limit", limit_price="1.00")
    sell(h, "s1", 2, order_type="limit", limit_price="50.00")
    h.updates()
    events = h.at(at(20, 21, 1))
    assert [(e.client_order_id, e.kind, e.status) for e in events] == [
        ("l1", EventKind.EXPIRED, OrderStatus.EXPIRED),
        ("s1", EventKind.EXPIRED, OrderStatus.EXPIRED),
        ("ax-x-SPY261120C00590000-20261120", EventKind.FILL, OrderStatus.FILLED),
    ]
    assert all(e.at == at(20, 21) for e in events)
    assert events[0].reason is not None and events[0].reason.startswith("option expired")
    assert h.orders("open") == []


def test_a_later_expiry_is_held_over_the_weekend_and_marked_times_100() -> None:
    later = option_bars(LATER, price="12.00") + option_bars(LATER, MON, price="13.00")
    spy = spy_bars() + session_bars("SPY", MON, "600", 500_000)
    h = harness({LATER: later}, spy=spy)
    buy(h, "b1", 1, LATER)
    h.updates()
    assert h.at(at(23, 15)) == []
    account = h.account()
    assert h.positions()[LATER].qty == 1
    assert account.long_market_value == D(1_300)
    # Monday's P&L starts from Friday's last premium, times 100
    assert account.daily_pnl == D(100)


def settle_on_the_early_close(ledger: Any) -> None:
    early = {
        EARLY_CALL: option_bars(EARLY_CALL, EARLY, "3.00"),
    }
    h = harness(early, spy=spy_bars(EARLY, close="596"), start=at(27, 15), ledger=ledger)
    buy(h, "b1", 4, EARLY_CALL)
    h.updates()
    cash = h.account().cash
    assert h.at(at(27, 17, 59)) == []
    h.clock.set(at(27, 18, 30))
    h.restart()  # the close passed while the broker was down
    [event] = h.updates()
    assert event.at == at(27, 18)
    assert (event.at.astimezone(ET).hour, event.at.astimezone(ET).minute) == (13, 0)
    assert event.fill is not None and event.fill.price == D(6)
    assert event.fill.fill_id == "expiry-SPY261127C00590000-20261127"
    after = h.account().cash
    assert after == cash + D(6) * 400

    h.restart()
    assert h.updates() == []
    h.clock.set(at(30, 15))
    assert h.updates() == []
    assert h.account().cash == after
    assert [f.fill_id for f in h.broker.settled_expiries()] == [event.fill.fill_id]
    assert [f.client_order_id for f in h.fills()] == ["b1", event.client_order_id]
    assert h.positions() == {}


def test_an_expiry_on_an_early_close_settles_at_13_00_et_once_across_restarts() -> None:
    settle_on_the_early_close(MemoryPaperLedger())


@pytest.fixture
def sql_store(tmp_path: Path) -> Iterator[SqlStore]:
    engine = make_engine(f"sqlite:///{tmp_path / 'axion.db'}")
    try:
        migrate(engine)
        yield SqlStore(engine)
    finally:
        engine.dispose()


def test_the_settlement_survives_restarts_on_a_sqlite_ledger(sql_store: SqlStore) -> None:
    settle_on_the_early_close(sql_store.paper_ledger("demo"))


def test_an_option_position_survives_a_restart_with_its_type(sql_store: SqlStore) -> None:
    h = harness({CALL: option_bars(CALL)}, ledger=sql_store.paper_ledger("demo"))
    buy(h, "b1", 2)
    sell(h, "s1", 1, order_type="limit", limit_price="9.00")
    h.updates()
    before = (h.account(), h.positions(), h.orders("all"), h.fills())
    h.restart()
    assert (h.account(), h.positions(), h.orders("all"), h.fills()) == before
    assert h.positions()[CALL].instrument_type is OPTION
    assert refused(h, "sell", 2).reason.startswith("selling options to open")
    assert h.at(at(20, 21, 1))[-1].client_order_id == "ax-x-SPY261120C00590000-20261120"


def test_settlement_ids_are_reserved() -> None:
    h = harness({CALL: option_bars(CALL)})
    with pytest.raises(OrderRejected) as info:
        h.submit("ax-x-SPY261120C00590000-20261120", "buy", 1, CALL, instrument_type=OPTION)
    assert info.value.code == "reserved_id"
