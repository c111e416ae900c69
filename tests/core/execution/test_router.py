"""The smart order router in the executor's tick, on the SQLite store, the paper broker and a
market whose prices the test sets, with simulated time: TWAP and VWAP children over time, the
progress stored on the parent, limit-chase up to its bound, a child cancelled by a person, and
the session close.

AAA trades at 100 (bid 99.99, ask 100.01) in 1-minute bars of 100,000 shares, with an average
daily volume of 10,000 shares, so 600 shares are 6% of ADV (sliced) and 200 shares are 2%
(estimated cost 1 bp of half-spread + 20 bps of impact: a passive limit).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from core.domain import CommandStatus, Order, OrderStatus, Side
from core.execution.config import ExecutionConfig
from core.execution.parent import ParentOrder, ParentStatus
from core.execution.schedule import DEFAULT_U_PROFILE
from tests.core.brokers.fixed_market import ONE_MINUTE, at, minute_bars
from tests.core.rebalance.test_runner import Desk
from tests.core.test_kill_switch_executor import run

D = Decimal
TEN_SECONDS = timedelta(seconds=10)


@pytest.fixture
def make_desk(tmp_path: Path) -> Iterator[Any]:
    made: list[Desk] = []

    def make(execution: ExecutionConfig | None = None) -> Desk:
        d = Desk(tmp_path, adv={"AAA": 10_000}, execution=execution)
        d.tick()
        made.append(d)
        return d

    yield make
    for d in made:
        d.store.engine.dispose()


def start(d: Desk, parent_id: str, side: Side, qty: int) -> ParentOrder:
    assert d.ex.rebalancer is not None
    return run(d.ex.rebalancer.router.start(parent_id, "AAA", side, D(qty), d.clock.now()))


def parent(d: Desk, parent_id: str) -> ParentOrder:
    with d.store.unit_of_work(read_only=True) as uow:
        p = uow.algos.get(parent_id)
    assert p is not None
    return p


def children(d: Desk, parent_id: str) -> list[Order]:
    return sorted(d.children(parent_id), key=lambda o: int(o.client_order_id.rsplit("-", 1)[1]))


def tick_at(d: Desk, when: Any) -> None:
    d.clock.set(when)
    d.tick()


# ------------------------------------------------------------------------------- TWAP
def test_a_large_order_goes_twap_and_its_children_add_up_to_the_parent(make_desk):
    d = make_desk()
    t0 = d.clock.now()
    p = start(d, "big", Side.BUY, 600)
    assert p.algorithm == "twap"
    assert p.reason == "order is 6% of ADV (threshold 5%): TWAP over 10 slices every 60s"
    assert [(s.index, s.at, s.qty) for s in p.schedule] == [
        (i, t0 + i * ONE_MINUTE, D(60)) for i in range(10)
    ]
    # half-spread 1 bp + impact 60 bps / 10 slices
    assert (p.arrival_price, p.expected_cost_bps) == (D(100), D("7.00"))
    d.tick()  # slice 0 is due
    assert [c.client_order_id for c in children(d, "big")] == ["big-1"]

    d.step(3)
    # each child (60 shares, 0.6% of ADV: 6 bps of impact) fills at the ask 100.01 + 6 bps =
    # 100.070006 -> 100.07, inside its limit of 100.10
    p = parent(d, "big")
    assert p.status is ParentStatus.WORKING
    assert (p.slices_done, p.slices_total, p.slices_sent) == (3, 10, 4)
    assert (p.filled_qty, p.avg_price, p.slippage_bps) == (D(180), D("100.07"), D("7.00"))
    assert p.progress == D("0.3")

    d.step(7)
    p = parent(d, "big")
    assert p.status is ParentStatus.FILLED
    assert (p.slices_done, p.filled_qty, p.avg_price) == (10, D(600), D("100.07"))
    kids = children(d, "big")
    assert [c.client_order_id for c in kids] == [f"big-{n}" for n in range(1, 11)]
    assert all(c.parent_id == "big" for c in kids)
    assert [c.created_at for c in kids] == [s.at for s in p.schedule]
    assert [(c.request.qty, c.request.limit_price, c.status) for c in kids] == [
        (D(60), D("100.10"), OrderStatus.FILLED)
    ] * 10
    assert sum(c.filled_qty for c in kids) == p.qty == D(600)
    assert d.position_qty("AAA") == 600
    d.step(3)
    assert len(children(d, "big")) == 10  # nothing more once it is filled


def test_a_slice_due_while_a_child_works_takes_over_its_remainder(make_desk):
    d = make_desk()
    t0 = d.clock.now()
    # thin trading: the minute before t0 traded 300 shares (30 for us), the next two none
    d.market.add_bars(
        "AAA",
        minute_bars("AAA", t0 - ONE_MINUTE, [("100", "100", "100", "100", 300)])
        + minute_bars("AAA", t0, [("100", "100", "100", "100", 0)] * 2),
    )
    start(d, "big", Side.BUY, 600)
    d.tick()
    tick_at(d, t0 + timedelta(seconds=30))  # marketable already: nothing to chase
    (first,) = children(d, "big")
    assert (first.request.qty, first.filled_qty) == (D(60), D(30))  # 30 of 60 at submit
    assert first.status is OrderStatus.PARTIALLY_FILLED
    tick_at(d, t0 + ONE_MINUTE)  # slice 1 is due: the working child is cancelled ...
    tick_at(d, t0 + timedelta(seconds=90))  # ... and its 30 ride on slice 1's 60
    first, second = children(d, "big")
    assert (first.status, first.filled_qty) == (OrderStatus.CANCELLED, D(30))
    assert (second.client_order_id, second.request.qty) == ("big-2", D(90))
    tick_at(d, t0 + 3 * ONE_MINUTE)  # volume is back: the 90 fill on the bar at 100
    p = parent(d, "big")
    assert (p.filled_qty, p.slices_done, p.status) == (D(120), 2, ParentStatus.WORKING)


# ------------------------------------------------------------------------------- VWAP
def test_vwap_children_follow_the_volume_profile_of_the_rest_of_the_session(make_desk):
    d = make_desk(ExecutionConfig(slice_algorithm="vwap"))
    t0 = at(20, 19, 0)  # 14:00 New York: four half-hour buckets are left
    tick_at(d, t0)
    p = start(d, "vw", Side.BUY, 600)
    assert p.algorithm == "vwap"
    assert p.reason == (
        "order is 6% of ADV (threshold 5%): VWAP over 10 slices following the volume profile"
    )
    # 14:00, 14:30, 15:00 and 15:30 weigh 0.060, 0.070, 0.090 and 0.160 of 0.380: 94.74,
    # 110.53, 142.11 and 252.63 shares; the two largest remainders get the two shares left
    weights = DEFAULT_U_PROFILE[9:]
    assert weights == (D("0.060"), D("0.070"), D("0.090"), D("0.160"))
    half_hour = timedelta(minutes=30)
    assert [(s.at, s.qty) for s in p.schedule] == [
        (t0, D(95)),
        (t0 + half_hour, D(110)),
        (t0 + 2 * half_hour, D(142)),
        (t0 + 3 * half_hour, D(253)),
    ]
    for s, w in zip(p.schedule, weights, strict=True):
        assert abs(s.qty - 600 * w / sum(weights)) < 1

    for k in range(4):
        tick_at(d, t0 + k * half_hour)  # the slice goes out at its time
        tick_at(d, t0 + k * half_hour + ONE_MINUTE)  # and its fill is in
        p = parent(d, "vw")
        assert (p.slices_done, p.slices_total) == (k + 1, 4)
        assert p.filled_qty == sum(s.qty for s in p.schedule[: k + 1])
        tick_at(d, t0 + k * half_hour + 29 * ONE_MINUTE)  # nothing in between
        assert len(children(d, "vw")) == k + 1
    kids = children(d, "vw")
    assert [(c.client_order_id, c.created_at, c.request.qty) for c in kids] == [
        (f"vw-{n + 1}", s.at, s.qty) for n, s in enumerate(p.schedule)
    ]
    assert all(c.parent_id == "vw" and c.status is OrderStatus.FILLED for c in kids)
    assert p.status is ParentStatus.FILLED and p.filled_qty == 600


# ------------------------------------------------------------------------------- limit chase
def test_a_passive_limit_is_chased_a_step_per_interval_and_rests_at_its_bound(make_desk):
    d = make_desk(ExecutionConfig(chase_step_bps=D(20)))  # steps of 0.20, bound 50 bps
    t0 = d.clock.now()
    p = start(d, "slow", Side.BUY, 200)
    assert p.algorithm == "limit"
    assert p.bound_price == D("100.50")  # 100 + 50 bps
    d.tick()  # rests at the bid
    # the market runs away to 101 and stays there
    d.market.set_quote("AAA", "100.99", "101.01", "101")
    d.price("AAA", "101")
    for _ in range(30):  # five minutes, a tick every 10 seconds
        d.clock.advance(TEN_SECONDS)
        d.tick()
    kids = children(d, "slow")
    # a step every chase interval (30 s), once the cancel of the last price is confirmed (the
    # next tick), up to the bound: 99.99, 100.19, 100.39, then 100.50 and no further
    assert [(c.client_order_id, c.request.limit_price, c.created_at - t0) for c in kids] == [
        ("slow-1", D("99.99"), timedelta(0)),
        ("slow-2", D("100.19"), timedelta(seconds=40)),
        ("slow-3", D("100.39"), timedelta(seconds=80)),
        ("slow-4", D("100.50"), timedelta(seconds=120)),
    ]
    assert [c.status for c in kids] == [OrderStatus.CANCELLED] * 3 + [OrderStatus.ACCEPTED]
    assert all(c.request.qty == 200 and c.parent_id == "slow" for c in kids)
    p = parent(d, "slow")
    assert (p.status, p.filled_qty, p.limit_price) == (ParentStatus.WORKING, 0, D("99.99"))

    # the price comes back to 100.40: the resting child fills at the bar's open
    d.market.clear_quote("AAA")
    d.price("AAA", "100.40")
    d.step()
    p = parent(d, "slow")
    assert (p.status, p.filled_qty, p.avg_price) == (ParentStatus.FILLED, D(200), D("100.40"))
    assert p.slippage_bps == D("40.00")
    assert len(children(d, "slow")) == 4


# ------------------------------------------------------------------------------- endings
def test_a_child_cancelled_by_a_person_stops_its_parent(make_desk):
    d = make_desk()
    start(d, "slow", Side.BUY, 200)
    d.tick()
    cancel = d.command("cancel_order", {"client_order_id": "slow-1"}, by="alice")
    d.step()
    assert d.get_command(cancel).status is CommandStatus.APPLIED
    p = parent(d, "slow")
    assert (p.status, p.filled_qty) == (ParentStatus.CANCELLED, 0)
    assert p.reason == "child slow-1 was cancelled outside the router"
    d.step(3)
    assert [c.client_order_id for c in children(d, "slow")] == ["slow-1"]


class LateNews:
    """The paper broker, reporting its order events only when allowed (as a real broker's
    stream can lag), and recording the cancels asked of it."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self.hold = False
        self.cancels: list[str] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    async def updates(self) -> list:
        return [] if self.hold else await self._inner.updates()

    async def cancel_order(self, client_order_id: str) -> bool:
        self.cancels.append(client_order_id)
        return await self._inner.cancel_order(client_order_id)


def late_partial_fill(d: Desk) -> None:
    """A buy of 200 resting at the bid (99.99) from 15:50 New York, 100 shares of which fill at
    15:52 when the price touches the bid on thin volume (10% of 1,000 shares)."""
    tick_at(d, at(20, 20, 50))
    start(d, "late", Side.BUY, 200)
    d.tick()
    d.market.add_bars(
        "AAA", minute_bars("AAA", at(20, 20, 52), [("100", "100", "99.99", "100", 1_000)])
    )
    tick_at(d, at(20, 20, 53))
    p = parent(d, "late")
    assert (p.status, p.filled_qty, p.avg_price) == (ParentStatus.WORKING, D(100), D("99.99"))
    (child,) = children(d, "late")
    assert child.status is OrderStatus.PARTIALLY_FILLED
    tick_at(d, at(20, 20, 59, 50))
    assert parent(d, "late").status is ParentStatus.WORKING


NO_CHASE = ExecutionConfig(chase_interval=timedelta(hours=1))


def test_at_the_close_the_parent_of_a_working_child_ends_partially_filled(make_desk):
    d = make_desk(NO_CHASE)
    late_partial_fill(d)
    tick_at(d, at(20, 21, 0))  # the close: the paper broker expires the day child
    (child,) = children(d, "late")
    assert (child.status, child.filled_qty) == (OrderStatus.EXPIRED, D(100))
    p = parent(d, "late")
    assert (p.status, p.filled_qty, p.avg_price) == (ParentStatus.PARTIALLY_FILLED, 100, D("99.99"))
    assert p.reason == "the session closed before the order completed"
    assert (p.slices_done, p.slices_total) == (0, 1)
    tick_at(d, at(23, 14, 31))  # the next session: nothing more is sent
    assert len(children(d, "late")) == 1


def test_at_the_close_the_router_cancels_a_child_the_broker_still_reports_working(make_desk):
    d = make_desk(NO_CHASE)
    broker = d.ex.broker = LateNews(d.ex.broker)
    late_partial_fill(d)
    broker.hold = True  # the broker's end-of-day news is late
    tick_at(d, at(20, 21, 0))
    assert broker.cancels == ["late-1"]
    assert parent(d, "late").status is ParentStatus.WORKING  # until the cancel is confirmed
    broker.hold = False
    tick_at(d, at(20, 21, 1))
    p = parent(d, "late")
    assert (p.status, p.filled_qty) == (ParentStatus.PARTIALLY_FILLED, D(100))
    assert p.reason == "the session closed before the order completed"
    assert children(d, "late")[0].status.is_terminal
    assert broker.cancels == ["late-1"]
