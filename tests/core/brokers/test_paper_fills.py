"""Fill prices of the paper broker, hand-checked: impact, participation, each order type."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, timedelta
from decimal import Decimal as D

from core.brokers.paper import PaperConfig
from core.domain import Bar, EventKind, OrderStatus
from tests.core.brokers.fixed_market import Row, at, session_bars
from tests.core.brokers.harness import Harness

FRI = date(2026, 11, 20)
MON = date(2026, 11, 23)
EARLY = date(2026, 11, 27)  # day after Thanksgiving: closes 18:00 UTC
NO_IMPACT = PaperConfig(impact_bps_per_pct_adv=D(0), initial_cash=D(1_000_000))


def bars(
    day: date = FRI, volume: int = 100_000, moves: Mapping[str, Row] | None = None
) -> list[Bar]:
    """Flat 100.00 bars; ``moves`` replaces bars keyed ``"HHMM"`` (bar start, UTC, on ``day``)."""
    keyed = {at(day.day, int(k[:2]), int(k[2:])): v for k, v in (moves or {}).items()}
    return session_bars("AAA", day, "100", volume, keyed)


# --- market orders ---------------------------------------------------------------------------


def test_market_buy_fills_at_ask_plus_linear_impact() -> None:
    # ADV 1,000,000, qty 10,000 = 1 % of ADV -> 10 bps; ask 100.00 -> 100.10
    h = Harness(
        {"AAA": bars()}, adv={"AAA": 1_000_000}, config=PaperConfig(initial_cash=D(2_000_000))
    )
    h.market.set_quote("AAA", "99.98", "100.00")
    ack = h.submit("o1", "buy", 10_000)
    assert ack.status is OrderStatus.ACCEPTED and ack.filled_qty == 0

    events = h.updates()
    assert [(e.kind, e.status) for e in events] == [(EventKind.FILL, OrderStatus.FILLED)]
    fill = events[0].fill
    assert fill is not None
    assert fill.price == D("100.1000")
    assert fill.expected_price == D("100.00")
    assert fill.slippage_bps == D("10.0000")
    assert fill.fill_id == "o1-1" and fill.at == at(20, 15)
    account = h.account()
    assert account.cash == D(2_000_000) - D(1_001_000)
    pos = h.positions()["AAA"]
    assert pos.qty == 10_000 and pos.avg_entry_price == D("100.10")
    assert h.updates() == []


def test_market_sell_fills_at_bid_minus_impact_and_realizes_pnl() -> None:
    h = Harness(
        {"AAA": bars()}, adv={"AAA": 1_000_000}, config=PaperConfig(initial_cash=D(2_000_000))
    )
    h.market.set_quote("AAA", "99.98", "100.00")
    h.submit("b", "buy", 10_000)
    h.submit("s", "sell", 10_000)
    fill = h.updates()[1].fill
    assert fill is not None
    assert fill.price == D("99.8800")  # 99.98 * (1 - 0.0010) = 99.88002
    assert h.broker.realized_pnl == (D("99.88") - D("100.10")) * 10_000
    assert h.positions() == {}
    assert h.account().cash == D(2_000_000) - D(1_001_000) + D(998_800)


def test_partial_fills_capped_by_participation_over_bars_with_vwap() -> None:
    # 10 % of 10,000 shares per bar = 1,000 shares per bar
    data = bars(
        volume=10_000,
        moves={
            "1500": ("100", "100.3", "100", "100.20", 10_000),  # the bar in progress at submit
            "1501": ("100.2", "100.5", "100.2", "100.49", 10_000),
            "1502": ("100.5", "101", "100.5", "100.99", 10_000),
        },
    )
    h = Harness({"AAA": data}, config=NO_IMPACT)
    h.submit("o1", "buy", 2_500)  # at 15:00:00, ask 100.01
    events = h.at(at(20, 15, 3))
    assert [(e.kind, e.status) for e in events] == [
        (EventKind.FILL, OrderStatus.PARTIALLY_FILLED),
        (EventKind.FILL, OrderStatus.PARTIALLY_FILLED),
        (EventKind.FILL, OrderStatus.FILLED),
    ]
    fills = [e.fill for e in events if e.fill is not None]
    assert [(f.qty, f.price, f.at) for f in fills] == [
        (D(1000), D("100.01"), at(20, 15, 0)),  # immediate, at the ask
        (D(1000), D("100.50"), at(20, 15, 2)),  # bar 15:01 close 100.49 + half spread 0.01
        (D(500), D("101.00"), at(20, 15, 3)),  # bar 15:02 close 100.99 + 0.01
    ]
    assert [f.fill_id for f in fills] == ["o1-1", "o1-2", "o1-3"]
    order = h.order("o1")
    assert order is not None and order.status is OrderStatus.FILLED
    assert order.avg_fill_price == D("100.404")  # 251,010 / 2,500


def test_working_market_remainder_pays_impact() -> None:
    # ADV 100,000: 1,500 shares = 1.5 % -> 15 bps on every fill of the order
    data = bars(volume=10_000, moves={"1501": ("100", "100", "100", "100.49", 10_000)})
    h = Harness({"AAA": data}, adv={"AAA": 100_000}, config=PaperConfig(initial_cash=D(10**6)))
    h.submit("o1", "buy", 1_500)
    events = h.at(at(20, 15, 2))
    prices = [e.fill.price for e in events if e.fill is not None]
    # 100.01 * 1.0015 = 100.160015; (100.49 + 0.01) * 1.0015 = 100.65075
    assert prices == [D("100.1600"), D("100.6508")]


# --- latency ---------------------------------------------------------------------------------


def test_latency_delays_the_first_fill() -> None:
    data = bars(moves={"1501": ("100", "100.4", "100", "100.30", 100_000)})
    config = PaperConfig(impact_bps_per_pct_adv=D(0), latency=timedelta(seconds=2))
    h = Harness({"AAA": data}, config=config)
    h.submit("o1", "buy", 100)  # 15:00:00, eligible at 15:00:02
    assert h.updates() == []
    assert h.at(at(20, 15, 1)) == []  # bar 15:00 began before the order was eligible
    events = h.at(at(20, 15, 2))
    fill = events[0].fill
    assert fill is not None
    assert fill.price == D("100.31") and fill.at == at(20, 15, 2)
    assert fill.at >= at(20, 15) + config.latency


# --- limit orders ----------------------------------------------------------------------------


def test_limit_buy_fills_at_limit_when_the_low_touches_it() -> None:
    data = bars(moves={"1505": ("99.90", "99.95", "99.40", "99.60", 100_000)})
    h = Harness({"AAA": data})
    h.submit("o1", "buy", 100, order_type="limit", limit_price="99.50")
    assert h.at(at(20, 15, 5)) == []
    events = h.at(at(20, 15, 10))
    fill = events[0].fill
    assert fill is not None
    assert (fill.price, fill.at, events[0].status) == (
        D("99.50"),
        at(20, 15, 6),
        OrderStatus.FILLED,
    )
    assert fill.slippage_bps == 0


def test_limit_sell_fills_at_limit_when_the_high_touches_it() -> None:
    data = bars(moves={"1505": ("100.20", "100.60", "100.10", "100.30", 100_000)})
    h = Harness({"AAA": data})
    h.submit("o1", "sell", 100, order_type="limit", limit_price="100.50")
    fill = h.at(at(20, 15, 10))[0].fill
    assert fill is not None and fill.price == D("100.50")


def test_limit_gapped_through_at_the_open_gets_the_better_open() -> None:
    monday = session_bars(
        "AAA",
        MON,
        "99.10",
        100_000,
        {at(23, 14, 30): ("99.00", "99.20", "98.90", "99.10", 100_000)},
    )
    h = Harness({"AAA": bars() + monday}, start=at(20, 22))  # Friday after the close
    h.submit("o1", "buy", 100, order_type="limit", limit_price="99.50", time_in_force="gtc")
    assert h.at(at(23, 14, 30)) == []
    fill = h.at(at(23, 14, 31))[0].fill
    assert fill is not None
    assert (fill.price, fill.at) == (D("99.00"), at(23, 14, 31))


# --- stops -----------------------------------------------------------------------------------


def test_stop_buy_triggers_and_fills_at_stop_plus_impact() -> None:
    # 2,000 of ADV 1,000,000 = 0.2 % -> 2 bps
    data = bars(moves={"1505": ("100.20", "100.60", "100.10", "100.55", 100_000)})
    h = Harness({"AAA": data}, config=PaperConfig(initial_cash=D(1_000_000)))
    h.submit("o1", "buy", 2_000, order_type="stop", stop_price="100.50")
    assert h.at(at(20, 15, 5)) == []
    fill = h.at(at(20, 15, 6))[0].fill
    assert fill is not None
    assert fill.price == D("100.5201")  # 100.50 * 1.0002
    assert fill.expected_price == D("100.50") and fill.slippage_bps == D("2.0000")


def test_stop_sell_gapped_through_fills_at_the_open_minus_impact() -> None:
    data = bars(moves={"1505": ("99.00", "99.10", "98.80", "99.05", 100_000)})
    h = Harness({"AAA": data}, config=PaperConfig(initial_cash=D(1_000_000)))
    h.submit("o1", "sell", 2_000, order_type="stop", stop_price="99.50")
    fill = h.at(at(20, 15, 6))[0].fill
    assert fill is not None
    assert fill.price == D("98.9802")  # min(99.50, open 99.00) * 0.9998
    assert h.positions()["AAA"].qty == -2_000


def test_stop_limit_fills_in_the_trigger_bar_when_marketable() -> None:
    data = bars(moves={"1505": ("100.20", "100.60", "100.10", "100.55", 100_000)})
    h = Harness({"AAA": data}, config=NO_IMPACT)
    h.submit("o1", "buy", 100, order_type="stop_limit", stop_price="100.50", limit_price="100.70")
    fill = h.at(at(20, 15, 6))[0].fill
    assert fill is not None and fill.price == D("100.50")


def test_stop_limit_gapped_over_its_limit_rests_until_a_later_bar() -> None:
    data = bars(
        moves={
            # opens above the limit: triggered, and although the bar later trades at 100.60 it
            # may have done so before the trigger, so it does not fill here
            "1505": ("100.90", "101.00", "100.60", "100.65", 100_000),
            "1506": ("100.80", "100.85", "100.60", "100.65", 100_000),
        }
    )
    h = Harness({"AAA": data}, config=NO_IMPACT)
    h.submit("o1", "buy", 100, order_type="stop_limit", stop_price="100.50", limit_price="100.70")
    assert h.at(at(20, 15, 6)) == []
    fill = h.at(at(20, 15, 7))[0].fill
    assert fill is not None
    assert (fill.price, fill.at) == (D("100.70"), at(20, 15, 7))


def test_trailing_stop_by_percent_follows_the_high_water_mark() -> None:
    data = bars(
        moves={
            "1501": ("100", "101", "99.50", "100.80", 100_000),  # stop 99.00: no; mark 101
            "1502": ("100.80", "101.50", "100.60", "101.40", 100_000),  # stop 99.99: no; mark 101.5
            # stop 100.485: no (low 100.70); the mark moves to 102 only after the check
            "1503": ("101.40", "102.00", "100.70", "101.00", 100_000),
            "1504": ("101.20", "101.30", "100.50", "100.60", 100_000),  # stop 100.98: hit
        }
    )
    h = Harness({"AAA": data}, config=NO_IMPACT)
    h.market.set_quote("AAA", "99.99", "100.01", "100.00")
    h.submit("long", "buy", 100)
    h.market.clear_quote("AAA")
    h.submit("trail", "sell", 100, order_type="trailing_stop", trail_percent="1")
    h.updates()
    assert h.at(at(20, 15, 4)) == []
    events = h.at(at(20, 15, 5))
    fill = events[0].fill
    assert fill is not None
    assert (fill.price, fill.at, fill.expected_price) == (D("100.98"), at(20, 15, 5), D("100.98"))
    assert h.positions() == {}


def test_trailing_stop_by_price_follows_the_low_water_mark() -> None:
    data = bars(
        moves={
            "1501": ("100", "100.40", "99.20", "99.40", 100_000),  # stop 100.50: no; mark 99.20
            "1502": ("99.50", "99.90", "99.40", "99.80", 100_000),  # stop 99.70: hit
        }
    )
    h = Harness({"AAA": data}, config=NO_IMPACT)
    h.submit("trail", "buy", 100, order_type="trailing_stop", trail_price="0.50")
    assert h.at(at(20, 15, 2)) == []
    fill = h.at(at(20, 15, 3))[0].fill
    assert fill is not None
    assert (fill.price, fill.at) == (D("99.70"), at(20, 15, 3))


# --- market on close -------------------------------------------------------------------------


def test_market_on_close_fills_at_the_last_bar_close() -> None:
    data = bars(moves={"2059": ("100", "101.3", "100", "101.23", 100_000)})
    h = Harness({"AAA": data}, start=at(20, 20))
    h.submit("moc", "buy", 100, order_type="market_on_close", time_in_force="cls")
    assert h.at(at(20, 20, 59, 30)) == []
    events = h.at(at(20, 21))
    fill = events[0].fill
    assert fill is not None
    assert (fill.price, fill.at, events[0].status) == (D("101.23"), at(20, 21), OrderStatus.FILLED)
    assert fill.expected_price == D("100.01")  # the ask at submission


def test_market_on_close_on_an_early_close_day() -> None:
    early = session_bars(
        "AAA", EARLY, "100", 100_000, {at(27, 17, 59): ("100", "100", "99.80", "99.87", 100_000)}
    )
    h = Harness({"AAA": early}, start=at(27, 17))
    h.submit("moc", "sell", 100, order_type="market_on_close", time_in_force="cls")
    fill = h.at(at(27, 18, 30))[0].fill
    assert fill is not None
    assert (fill.price, fill.at) == (D("99.87"), at(27, 18))


def test_market_on_close_is_refused_outside_a_session() -> None:
    h = Harness({"AAA": bars()}, start=at(26, 17))  # Thanksgiving
    kw = {"order_type": "market_on_close", "time_in_force": "cls"}
    assert "market closed" in h.reject("moc", "buy", 100, **kw)
    h.clock.set(at(27, 18, 30))  # after the early close
    assert "market closed" in h.reject("moc", "buy", 100, **kw)


def test_limit_on_close_expires_when_the_close_is_beyond_its_limit() -> None:
    data = bars(moves={"2059": ("100", "101.3", "100", "101.23", 100_000)})
    h = Harness({"AAA": data}, start=at(20, 20))
    h.submit("loc", "buy", 100, order_type="limit", limit_price="101", time_in_force="cls")
    events = h.at(at(20, 21))
    assert [(e.kind, e.status) for e in events] == [(EventKind.EXPIRED, OrderStatus.EXPIRED)]
