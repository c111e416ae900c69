"""Properties of the paper broker over random order flow."""

from __future__ import annotations

import contextlib
from datetime import date, timedelta
from decimal import Decimal as D

from hypothesis import given, settings
from hypothesis import strategies as st

from core.brokers.paper import PaperConfig
from core.ports import OrderRejected
from tests.core.brokers.fixed_market import at, minute_bars, session_bars
from tests.core.brokers.harness import Harness

FRI = date(2026, 11, 20)


def wavy_bars() -> list:
    """A deterministic zig-zag around 100 with varying volume, for the whole session."""
    rows = []
    for i in range(390):
        close = D(100) + D((i * 7) % 11 - 5) / 10
        rows.append((close, close + D("0.3"), close - D("0.3"), close, 2_000 + (i % 5) * 1_000))
    return minute_bars("AAA", at(20, 14, 30), rows)


op = st.tuples(
    st.sampled_from(["market", "limit", "stop", "trail", "cancel", "wait"]),
    st.sampled_from(["buy", "sell"]),
    st.integers(1, 400),
    st.integers(-8, 8),
)


def play(ops: list, restart_at: int | None) -> tuple:
    config = PaperConfig(initial_cash=D(200_000), leverage_limit=D(2))
    h = Harness({"AAA": wavy_bars()}, config=config, start=at(20, 15))
    for i, (kind, side, qty, offset) in enumerate(ops):
        if i == restart_at:
            h.restart()
        price = str(D(100) + D(offset) / 4)
        kw: dict = {}
        if kind == "limit":
            kw = {"order_type": "limit", "limit_price": price, "time_in_force": "gtc"}
        elif kind == "stop":
            kw = {"order_type": "stop", "stop_price": price, "time_in_force": "gtc"}
        elif kind == "trail":
            kw = {"order_type": "trailing_stop", "trail_price": "0.5"}
        if kind == "wait":
            h.clock.advance(timedelta(minutes=qty % 30))
            h.updates()
        elif kind == "cancel":
            if f"o{qty % max(i, 1)}" in {o.client_order_id for o in h.orders("all")}:
                h.cancel(f"o{qty % max(i, 1)}")
        else:
            with contextlib.suppress(OrderRejected):
                h.submit(f"o{i}", side, qty, **kw)
    h.clock.advance(timedelta(minutes=45))
    h.updates()
    return h.account(), h.positions(), h.orders("all"), h.fills()


@settings(max_examples=40, deadline=None)
@given(ops=st.lists(op, max_size=14), restart_at=st.integers(0, 14))
def test_a_restart_anywhere_changes_nothing(ops: list, restart_at: int) -> None:
    plain = play(ops, None)
    restarted = play(ops, restart_at)
    assert plain == restarted


@settings(max_examples=40, deadline=None)
@given(ops=st.lists(op, max_size=14))
def test_books_balance(ops: list) -> None:
    account, positions, orders, fills = play(ops, None)
    cash = D(200_000)
    qty: dict[str, D] = {}
    for f in fills:
        cash -= f.qty * f.price * f.side.sign + f.commission
        qty[f.symbol] = qty.get(f.symbol, D(0)) + f.qty * f.side.sign
    assert account.cash == cash
    assert {s: p.qty for s, p in positions.items()} == {s: q for s, q in qty.items() if q != 0}
    by_order: dict[str, D] = {}
    for f in fills:
        by_order[f.client_order_id] = by_order.get(f.client_order_id, D(0)) + f.qty
    for o in orders:
        assert o.filled_qty == by_order.get(o.client_order_id, D(0)) <= o.qty
    assert account.equity == account.cash + account.long_market_value + account.short_market_value


def test_flat_market_round_trips_cost_the_half_spread() -> None:
    h = Harness({"AAA": session_bars("AAA", FRI)}, config=PaperConfig(impact_bps_per_pct_adv=D(0)))
    traded = 0
    for i, (side, qty) in enumerate([("buy", 30), ("sell", 50), ("buy", 20), ("sell", 7)]):
        h.submit(f"o{i}", side, qty)
        traded += qty
    assert h.account().equity == D(100_000) - D("0.01") * traded
