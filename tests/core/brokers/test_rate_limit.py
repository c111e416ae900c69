"""The order-rate limit: new-risk orders per sliding minute; exits never throttled."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal as D
from typing import Any

import pytest

from core.brokers.paper import MemoryPaperLedger, PaperBroker, PaperConfig
from core.brokers.rate_limit import (
    KILL_SWITCH_ORDER_PREFIX,
    RATE_LIMITED,
    OrderRateLimiter,
    RateLimitConfig,
    ThrottledBroker,
)
from core.domain import KillSwitchState, OrderRequest, OrderType, Position, Side, ValidationError
from core.kill_switch_monitor import close_client_order_id
from core.marketdata.calendar import ManualClock
from core.ports import OrderRejected
from tests.core.brokers.fixed_market import FixedMarket, at, session_bars
from tests.core.brokers.harness import run

T0 = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)


def entry(n: int, **kw: Any) -> OrderRequest:
    symbol, qty = kw.pop("symbol", "AAA"), kw.pop("qty", 10)
    return OrderRequest(f"ax-s{n}-entry", symbol, Side.BUY, qty, **kw)


def exit_order(n: int) -> OrderRequest:
    return OrderRequest(f"ax-x{n}-stop_loss-1", "AAA", Side.SELL, 10, reduce_only=True)


def kill_close(symbol: str = "AAA") -> OrderRequest:
    state = KillSwitchState(active=True, reason="daily loss", at=T0, by="system")
    return Position(symbol, D(10), D(100)).closing_request(close_client_order_id(state, symbol))


def fill_window(limiter: OrderRateLimiter, start: datetime, n: int = 10) -> None:
    for i in range(n):
        decision = limiter.acquire(entry(i), start + timedelta(seconds=i))
        assert decision.allowed, decision.reason


def test_the_eleventh_entry_within_a_minute_is_throttled_with_retry_at() -> None:
    limiter = OrderRateLimiter()
    fill_window(limiter, T0)
    now = T0 + timedelta(seconds=30)
    decision = limiter.check(entry(11), now)
    assert not decision.allowed
    assert decision.retry_at == T0 + timedelta(seconds=60)  # when the first one leaves
    assert "order rate limit" in decision.reason
    assert "10 new-risk orders per 60 s" in decision.reason
    assert "next slot in 30 s" in decision.reason
    assert limiter.count(now) == 10
    # a throttled decision records nothing
    assert not limiter.acquire(entry(11), now).allowed
    assert limiter.count(now) == 10


def test_the_window_slides() -> None:
    limiter = OrderRateLimiter()
    fill_window(limiter, T0)  # at T0, T0+1s, ..., T0+9s
    assert not limiter.check(entry(11), T0 + timedelta(seconds=59.999)).allowed
    first_free = limiter.check(entry(11), T0 + timedelta(seconds=60))
    assert first_free.allowed and first_free.retry_at is None
    limiter.record(entry(11), T0 + timedelta(seconds=60))
    # one slot opened and was used; the next opens when the order from T0+1s leaves
    again = limiter.check(entry(12), T0 + timedelta(seconds=60.5))
    assert not again.allowed and again.retry_at == T0 + timedelta(seconds=61)
    assert limiter.check(entry(12), T0 + timedelta(seconds=61)).allowed
    assert limiter.count(T0 + timedelta(seconds=200)) == 0


def test_no_fixed_minute_buckets() -> None:
    limiter = OrderRateLimiter()
    fill_window(limiter, T0 + timedelta(seconds=50), n=10)  # 12:00:50 .. 12:00:59
    # a new calendar minute does not reset the count
    assert not limiter.check(entry(11), T0 + timedelta(seconds=61)).allowed


def test_exits_and_kill_switch_closes_go_through_while_entries_are_throttled() -> None:
    limiter = OrderRateLimiter()
    fill_window(limiter, T0)
    now = T0 + timedelta(seconds=20)
    assert not limiter.check(entry(11), now).allowed
    for i in range(25):
        decision = limiter.acquire(exit_order(i), now)
        assert decision.allowed and "exit" in decision.reason
    close = kill_close()
    assert close.client_order_id.startswith(KILL_SWITCH_ORDER_PREFIX)
    assert limiter.acquire(close, now).allowed
    assert limiter.count(now) == 10  # they never use up the allowance
    assert not limiter.check(entry(11), now).allowed


def test_a_kill_switch_order_is_exempt_even_if_not_marked_reduce_only() -> None:
    limiter = OrderRateLimiter(RateLimitConfig(max_orders=1))
    limiter.acquire(entry(1), T0)
    request = OrderRequest(f"{KILL_SWITCH_ORDER_PREFIX}20261120-close-AAA", "AAA", Side.SELL, 1)
    decision = limiter.check(request, T0)
    assert decision.allowed and "kill-switch" in decision.reason
    assert not limiter.record(request, T0)


def test_limits_are_per_account() -> None:
    limiter = OrderRateLimiter(RateLimitConfig(max_orders=2))
    for i in range(2):
        assert limiter.acquire(entry(i), T0, account="alpaca").allowed
    assert not limiter.check(entry(3), T0, account="alpaca").allowed
    assert limiter.check(entry(3), T0, account="ibkr").allowed


def test_configurable_and_switchable() -> None:
    limiter = OrderRateLimiter(RateLimitConfig(max_orders=3, window=timedelta(seconds=10)))
    fill_window(limiter, T0, n=3)
    decision = limiter.check(entry(4), T0 + timedelta(seconds=5))
    assert not decision.allowed and decision.retry_at == T0 + timedelta(seconds=10)
    assert "3 new-risk orders per 10 s" in decision.reason
    limiter.config = RateLimitConfig(max_orders=3, window=timedelta(seconds=10), enabled=False)
    off = limiter.check(entry(4), T0 + timedelta(seconds=5))
    assert off.allowed and "off" in off.reason
    limiter.record(entry(4), T0 + timedelta(seconds=5))
    # orders were still counted while off, so switching it back on reflects the real rate
    limiter.config = RateLimitConfig(max_orders=3, window=timedelta(seconds=10))
    assert limiter.count(T0 + timedelta(seconds=5)) == 4


def test_records_out_of_order_keep_the_window_right() -> None:
    limiter = OrderRateLimiter(RateLimitConfig(max_orders=2))
    limiter.record(entry(1), T0 + timedelta(seconds=30))
    limiter.record(entry(2), T0)
    decision = limiter.check(entry(3), T0 + timedelta(seconds=31))
    assert decision.retry_at == T0 + timedelta(seconds=60)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_orders": 0},
        {"max_orders": True},
        {"max_orders": 2.5},
        {"window": timedelta(0)},
        {"window": 60},
        {"enabled": "yes"},
    ],
)
def test_config_is_validated(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        RateLimitConfig(**kwargs)


def test_config_dict_round_trip() -> None:
    config = RateLimitConfig(max_orders=5, window=timedelta(seconds=30), enabled=False)
    assert RateLimitConfig.from_dict(config.to_dict()) == config
    assert RateLimitConfig.from_dict({}) == RateLimitConfig()
    with pytest.raises(ValidationError, match="unknown"):
        RateLimitConfig.from_dict({"per_minute": 10})


def test_naive_times_are_refused() -> None:
    with pytest.raises(ValueError, match="naive"):
        OrderRateLimiter().check(entry(1), datetime(2026, 11, 20, 15))


# --- the broker wrapper ----------------------------------------------------------------------


def make_throttled(max_orders: int = 10) -> tuple[ThrottledBroker, PaperBroker, ManualClock]:
    clock = ManualClock(at(20, 15))
    market = FixedMarket(clock, {"AAA": session_bars("AAA", at(20, 15).date())})
    config = PaperConfig(impact_bps_per_pct_adv=D(0), initial_cash=D(1_000_000))
    inner = PaperBroker(market, MemoryPaperLedger(), config)
    run(inner.connect())
    limiter = OrderRateLimiter(RateLimitConfig(max_orders=max_orders))
    return ThrottledBroker(inner, limiter, clock), inner, clock


def test_throttled_broker_rejects_the_entry_with_its_reason_and_passes_exits() -> None:
    broker, inner, clock = make_throttled(max_orders=2)
    run(broker.submit_order(entry(1, qty=5)))
    run(broker.submit_order(entry(2, qty=5)))
    with pytest.raises(OrderRejected) as info:
        run(broker.submit_order(entry(3)))
    assert info.value.code == RATE_LIMITED and "order rate limit" in info.value.reason
    assert run(inner.get_order("ax-s3-entry")) is None  # it never reached the broker
    ack = run(broker.submit_order(exit_order(1)))  # sells the 10 bought
    assert ack.client_order_id == "ax-x1-stop_loss-1"
    clock.advance(timedelta(seconds=60))
    assert run(broker.submit_order(entry(3))).client_order_id == "ax-s3-entry"
    assert broker.name == inner.name and broker.connected


def test_a_business_rejection_does_not_use_up_the_allowance() -> None:
    broker, _, _ = make_throttled(max_orders=1)
    with pytest.raises(OrderRejected) as info:
        run(broker.submit_order(entry(1, symbol="ZZZ")))
    assert info.value.code != RATE_LIMITED
    assert run(broker.submit_order(entry(2))).client_order_id == "ax-s2-entry"


def test_cancels_are_never_throttled() -> None:
    broker, _, _ = make_throttled(max_orders=1)
    run(broker.submit_order(entry(1, order_type=OrderType.LIMIT, limit_price="90")))
    with pytest.raises(OrderRejected):
        run(broker.submit_order(entry(2)))
    assert run(broker.cancel_order("ax-s1-entry")) is True
    assert run(broker.cancel_all()) == 0
