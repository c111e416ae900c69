"""Commissions, buying power and margin, PDT, marks and daily P&L of the paper account."""

from __future__ import annotations

from datetime import date
from decimal import Decimal as D

from core.brokers.commission import CommissionSchedule
from core.brokers.paper import PaperConfig
from tests.core.brokers.fixed_market import at, session_bars
from tests.core.brokers.harness import Harness

FRI = date(2026, 11, 20)


def bars(day: date = FRI, volume: int = 100_000, price: str = "100") -> list:
    return session_bars("AAA", day, price, volume)


def cfg(**kw: object) -> PaperConfig:
    kw.setdefault("impact_bps_per_pct_adv", D(0))
    return PaperConfig(**kw)  # type: ignore[arg-type]


# --- commissions -----------------------------------------------------------------------------


def test_zero_commission_by_default() -> None:
    h = Harness({"AAA": bars()}, config=cfg())
    h.submit("o1", "buy", 100)
    fill = h.updates()[0].fill
    assert fill is not None and fill.commission == 0
    assert h.account().cash == D(100_000) - D("10001")


def test_per_share_commission_with_a_minimum() -> None:
    commission = CommissionSchedule.per_share("0.005", minimum="1.00")
    h = Harness({"AAA": bars()}, config=cfg(commission=commission, initial_cash=D(1_000_000)))
    h.submit("small", "buy", 100)  # 0.50 -> the 1.00 minimum
    h.submit("big", "buy", 1_000)  # 5.00
    fills = [e.fill for e in h.updates() if e.fill is not None]
    assert [f.commission for f in fills] == [D("1.00"), D("5.00")]
    assert h.account().cash == D(1_000_000) - D("110011") - D("6.00")
    assert h.broker.total_commissions == D("6.00")


def test_per_share_minimum_is_charged_once_on_partial_fills() -> None:
    commission = CommissionSchedule.per_share("0.005", minimum="1.00")
    h = Harness({"AAA": bars(volume=1_000)}, config=cfg(commission=commission))
    h.submit("o1", "buy", 300)  # 100 shares per bar (10 % of 1,000)
    fills = [e.fill for e in h.at(at(20, 15, 3)) if e.fill is not None]
    assert [f.qty for f in fills] == [100, 100, 100]
    assert [f.commission for f in fills] == [D("1.00"), D("0.50"), D("0.50")]


def test_percentage_commission() -> None:
    commission = CommissionSchedule.percent_of_notional("0.1")
    h = Harness({"AAA": bars()}, config=cfg(commission=commission, initial_cash=D(1_000_000)))
    h.submit("o1", "buy", 1_000)
    fill = h.updates()[0].fill
    assert fill is not None and fill.commission == D("100.01")  # 0.1 % of 100,010
    assert h.account().cash == D(1_000_000) - D(100_010) - D("100.01")


# --- buying power and margin -----------------------------------------------------------------


def test_cash_account_buying_power_1x() -> None:
    h = Harness({"AAA": bars()}, config=cfg())
    h.submit("o1", "buy", 500)  # 500 * 100.01 = 50,005
    account = h.account()
    # equity = 49,995 cash + 500 * 100.00 mid = 99,995; gross 50,000
    assert account.cash == D(49_995)
    assert account.equity == D(99_995)
    assert account.long_market_value == D(50_000) and account.short_market_value == 0
    assert account.buying_power == D(49_995)
    assert account.margin_used == 0


def test_margin_account_2x_and_4x_intraday_then_2x_overnight() -> None:
    two = Harness({"AAA": bars()}, config=cfg(leverage_limit=D(2)))
    two.submit("o1", "buy", 500)
    assert two.account().buying_power == D(99_995) * 2 - D(50_000)

    four = Harness({"AAA": bars()}, config=cfg(leverage_limit=D(4)))
    four.submit("o1", "buy", 500)
    assert four.account().buying_power == D(99_995) * 4 - D(50_000)  # 349,980
    four.clock.set(at(20, 21, 30))  # after the close: overnight 2x
    assert four.account().buying_power == D(99_995) * 2 - D(50_000)


def test_margin_used_is_the_borrowed_gross_value() -> None:
    h = Harness({"AAA": bars()}, config=cfg(leverage_limit=D(4)))
    h.submit("o1", "buy", 1_500)  # 150,015 with 100,000 cash
    account = h.account()
    assert account.cash == D(-50_015)
    assert account.equity == D(99_985)
    assert account.margin_used == D(150_000) - D(99_985)
    assert account.buying_power == D(99_985) * 4 - D(150_000)


def test_small_account_gets_only_overnight_leverage_intraday() -> None:
    h = Harness({"AAA": bars()}, config=cfg(leverage_limit=D(4), initial_cash=D(20_000)))
    assert h.account().buying_power == D(40_000)


def test_insufficient_buying_power_is_rejected_with_the_numbers() -> None:
    h = Harness({"AAA": bars()}, config=cfg())
    reason = h.reject("o1", "buy", 1_000)
    assert reason.startswith("insufficient buying power")
    assert "needs 100,010.00 but 100,000.00 is available" in reason


def test_open_orders_hold_buying_power() -> None:
    h = Harness({"AAA": bars()}, config=cfg())
    h.submit("o1", "buy", 600, order_type="limit", limit_price="99")  # holds 59,400
    reason = h.reject("o2", "buy", 500, order_type="limit", limit_price="99")
    assert "needs 49,500.00 but 40,600.00 is available" in reason
    assert "59,400.00 of it held by open orders" in reason


def test_reducing_orders_are_never_blocked_by_buying_power() -> None:
    h = Harness({"AAA": bars()}, config=cfg())
    h.submit("o1", "buy", 999)  # 99,909.99
    assert h.account().buying_power == D("90.01")
    assert h.reject("flip", "sell", 1_500).startswith("insufficient buying power")  # 501 short
    assert h.submit("o2", "sell", 999).status.value == "accepted"
    h.updates()
    assert h.positions() == {}


def test_short_sale_uses_buying_power_and_marks_negative() -> None:
    h = Harness({"AAA": bars()}, config=cfg())
    h.submit("o1", "sell", 100)  # at the bid 99.99
    account = h.account()
    assert account.cash == D(100_000) + D(9_999)
    assert account.short_market_value == D(-10_000)
    assert account.equity == D(99_999)
    assert account.buying_power == D(99_999) - D(10_000)


# --- pattern day trading ---------------------------------------------------------------------


def round_trip(h: Harness, n: int) -> None:
    h.submit(f"b{n}", "buy", 10)
    h.submit(f"s{n}", "sell", 10)


def test_day_trades_are_counted_and_the_fourth_is_refused() -> None:
    h = Harness({"AAA": bars()}, config=cfg(initial_cash=D(20_000)))
    for n in range(3):
        round_trip(h, n)
    account = h.account()
    assert (account.day_trade_count, account.day_trades_remaining) == (3, 0)
    assert account.pattern_day_trader is False
    h.submit("b3", "buy", 10)  # opening is fine
    reason = h.reject("s3", "sell", 10)
    assert reason.startswith("pattern day trader protection")
    assert "day trade #4 within 5 sessions" in reason

    # the position is sold the next session: not a day trade
    h.clock.set(at(23, 15))
    assert h.submit("s3", "sell", 10).status.value == "accepted"
    # a round trip on Nov 27 still sees Nov 20 in its 5 sessions (20, 23, 24, 25, 27)
    h.clock.set(at(27, 15))
    h.submit("b4", "buy", 10)
    assert h.reject("s4", "sell", 10).startswith("pattern day trader protection")
    # Nov 30: the window is 23 ... 30 and the count is back to 0
    h.clock.set(at(30, 15))
    assert h.account().day_trade_count == 0
    assert h.submit("s5", "sell", 10).status.value == "accepted"


def test_partial_fills_of_one_closing_order_count_one_day_trade() -> None:
    h = Harness({"AAA": bars(volume=1_000)}, config=cfg(initial_cash=D(20_000)))
    h.submit("b", "buy", 100)  # 100 per bar
    h.submit("s", "sell", 100)
    h.submit("b2", "buy", 150)
    h.at(at(20, 15, 5))
    h.submit("s2", "sell", 150)  # fills over two bars: still one day trade
    h.at(at(20, 15, 10))
    assert len(h.fills("s2")) == 2
    assert h.positions() == {}
    assert h.account().day_trade_count == 2


def test_without_pdt_protection_a_fourth_day_trade_flags_the_account() -> None:
    h = Harness({"AAA": bars()}, config=cfg(initial_cash=D(20_000), pdt_protection=False))
    for n in range(4):
        round_trip(h, n)
    account = h.account()
    assert account.day_trade_count == 4
    assert account.day_trades_remaining == 0
    assert account.pattern_day_trader is True


def test_accounts_above_the_threshold_have_no_day_trade_limit() -> None:
    h = Harness({"AAA": bars()}, config=cfg())
    for n in range(4):
        round_trip(h, n)
    account = h.account()
    assert account.day_trade_count == 4 and account.day_trades_remaining is None


# --- marks and daily P&L ---------------------------------------------------------------------


def test_positions_are_marked_at_the_quote_mid_and_daily_pnl_from_the_open() -> None:
    monday = bars(date(2026, 11, 23), price="101")
    h = Harness({"AAA": bars() + monday}, config=cfg())
    h.submit("o1", "buy", 100)  # 100.01
    assert h.account().daily_pnl == D(-1)  # marked at 100.00
    h.clock.set(at(23, 16))
    pos = h.positions()["AAA"]
    assert pos.current_price == D(101) and pos.unrealized_pnl == D(99)
    # Monday opened with the position marked at Friday's close, 100.00
    assert h.account().daily_pnl == D(100)
