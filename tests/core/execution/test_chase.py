"""A resting limit chases the market by steps of arrival bps, never past its bound nor the far
touch, and stops at the bound; both sides."""

from __future__ import annotations

from decimal import Decimal as D
from itertools import pairwise

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.domain import Side, ValidationError
from core.execution import ExecutionConfig, LimitChase, tick_size


def run(chase: LimitChase, bid: D | None, ask: D | None, limit: int = 1_000) -> list[D]:
    """Every resting price from the start until the chase stops or holds."""
    prices = [chase.start_price]
    for _ in range(limit):
        nxt = chase.next_price(prices[-1], bid, ask)
        if nxt is None or nxt == prices[-1]:
            break
        prices.append(nxt)
    return prices


def test_buy_steps_up_and_stops_at_its_bound() -> None:
    # arrival 100, step 5 bps = $0.05, bound 50 bps = 100.50; the ask is far away
    chase = LimitChase(Side.BUY, D(100), D("99.95"), D(5), D(50))
    assert chase.bound_price == D("100.50")
    assert chase.step == D("0.05")
    prices = run(chase, bid=D("99.95"), ask=D("101.00"))
    assert prices == [D("99.95") + D("0.05") * i for i in range(12)]  # 99.95 ... 100.50
    assert chase.next_price(D("100.50"), D("99.95"), D("101.00")) is None  # the chase is over
    assert chase.next_price(D("100.47"), None, None) == D("100.50")  # the last step is cut short


def test_sell_steps_down_and_stops_at_its_bound() -> None:
    chase = LimitChase(Side.SELL, D(100), D("100.05"), D(5), D(50))
    assert chase.bound_price == D("99.50")
    prices = run(chase, bid=D("99.00"), ask=D("100.05"))
    assert prices == [D("100.05") - D("0.05") * i for i in range(12)]  # 100.05 ... 99.50
    assert chase.next_price(D("99.50"), D("99.00"), None) is None
    assert chase.next_price(D("99.53"), None, None) == D("99.50")


def test_buy_never_goes_past_the_ask() -> None:
    chase = LimitChase(Side.BUY, D(100), D("99.95"), D(5), D(50))
    assert chase.next_price(D("100.05"), D("100.00"), D("100.08")) == D("100.08")
    # at the ask the order is marketable: the price holds, the chase is not over
    assert chase.next_price(D("100.08"), D("100.00"), D("100.08")) == D("100.08")
    # the market came down through the limit: never move the price back
    assert chase.next_price(D("100.08"), D("99.90"), D("99.95")) == D("100.08")


def test_sell_never_goes_past_the_bid() -> None:
    chase = LimitChase(Side.SELL, D(100), D("100.05"), D(5), D(50))
    assert chase.next_price(D("99.95"), D("99.92"), D("100.00")) == D("99.92")
    assert chase.next_price(D("99.92"), D("99.92"), D("100.00")) == D("99.92")


def test_bound_is_rounded_toward_arrival() -> None:
    # 10.003 x 1.005 = 10.053015 -> 10.05 for a buy; 10.003 x 0.995 = 9.952985 -> 9.96 for a sell
    assert LimitChase(Side.BUY, D("10.003"), D(10), D(5), D(50)).bound_price == D("10.05")
    assert LimitChase(Side.SELL, D("10.003"), D("10.01"), D(5), D(50)).bound_price == D("9.96")
    # below $1 the tick is $0.0001: 0.5 x 1.005 = 0.5025
    assert LimitChase(Side.BUY, D("0.5"), D("0.5"), D(5), D(50)).bound_price == D("0.5025")


def test_a_step_below_one_tick_still_moves_one_tick() -> None:
    # $10 stock: 5 bps = $0.005, half a cent; every step moves at least a cent
    chase = LimitChase(Side.BUY, D(10), D("9.99"), D(5), D(20))
    assert chase.bound_price == D("10.02")
    assert run(chase, None, None) == [D("9.99"), D("10.00"), D("10.01"), D("10.02")]


def test_zero_bound_stops_at_once() -> None:
    chase = LimitChase(Side.BUY, D(100), D(100), D(5), D(0))
    assert chase.next_price(D(100), D("99.99"), D("100.01")) is None


def test_from_config() -> None:
    cfg = ExecutionConfig(chase_step_bps=D(2), chase_bound_bps=D(20))
    chase = LimitChase.from_config(Side.SELL, D(50), D("50.01"), cfg)
    assert (chase.step_bps, chase.bound_bps) == (D(2), D(20))
    assert chase.bound_price == D("49.90")
    assert chase.next_price(D("50.01"), None, None) == D("50.00")  # 50.01 - 0.01


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((Side.BUY, D(100), D("100.60"), D(5), D(50)), "is above the chase bound 100.50"),
        ((Side.SELL, D(100), D("99.40"), D(5), D(50)), "is below the chase bound 99.50"),
        ((Side.BUY, D(100), D(100), D(0), D(50)), "step_bps must be positive"),
        ((Side.BUY, D(100), D(100), D(5), D(-1)), "bound_bps must be at least 0"),
        ((Side.BUY, D(0), D(100), D(5), D(50)), "arrival must be positive"),
    ],
)
def test_bad_chases_are_refused(args: tuple, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        LimitChase(*args)


@given(
    side=st.sampled_from(list(Side)),
    arrival=st.decimals(min_value=D("0.5"), max_value=D(2_000), places=2),
    step=st.decimals(min_value=D("0.5"), max_value=D(50), places=1),
    bound=st.decimals(min_value=D(0), max_value=D(300), places=1),
    touch_bps=st.integers(min_value=-100, max_value=400),
)
def test_chase_properties(side: Side, arrival: D, step: D, bound: D, touch_bps: int) -> None:
    start = arrival  # arrival is on the tick: resting there is never past the bound
    chase = LimitChase(side, arrival, start, step, bound)
    far = (arrival * (1 + side.sign * D(touch_bps) / 10_000)).quantize(tick_size(arrival))
    bid, ask = (None, far) if side is Side.BUY else (far, None)
    prices = run(chase, bid, ask)
    for before, after in pairwise(prices):
        assert side.sign * (after - before) > 0  # always toward the market
    for p in prices[1:]:
        assert side.sign * (p - chase.bound_price) <= 0  # never past the bound
        assert side.sign * (p - far) <= 0  # never past the far touch
        assert p == p.quantize(tick_size(p))
    last = prices[-1]
    # it ends at the bound (and stops) or at the far touch (and holds)
    assert last == chase.bound_price or last == far or prices == [start]
    if last == chase.bound_price:
        assert chase.next_price(last, bid, ask) is None
