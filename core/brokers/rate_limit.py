"""Order-rate limit: at most N new-risk orders per sliding window per account (default 10 per
60 s, seed 000 security).

Only orders that open or add risk count and can be throttled. Exits (``reduce_only`` orders,
including protective bracket legs) and kill-switch orders are never throttled and never use up
the allowance; cancels are not orders and never pass through here. Blocking an exit to respect
a rate limit would turn a safety rule into a risk.

What happens to a throttled entry: it is **rejected with its reason**, never dropped and never
queued. How it is meant to be used: call :meth:`OrderRateLimiter.check` before writing an entry
ahead of submit; when the decision says no, reject the signal with ``decision.reason`` (which
names the limit and when the next slot opens, also given as ``decision.retry_at``); after
writing an allowed entry, call :meth:`OrderRateLimiter.record` (or use :meth:`acquire` for
both). A rejected signal is visible with its reason; holding it instead would send a stale
entry at a price nobody chose.

:class:`ThrottledBroker` applies the same rule at the broker boundary for callers that do not
check first (it raises :class:`~core.ports.OrderRejected` with code ``rate_limited``, which the
executor records as the order's rejection reason). Use one of the two for a given account, not
both, or an entry is counted twice.

Everything is driven by the ``now`` passed in: no sleeps, no wall clock.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from core.domain import (
    AccountState,
    BrokerEvent,
    BrokerOrder,
    Fill,
    OrderRequest,
    Position,
    ValidationError,
    utc,
)
from core.ports import Broker, BrokerUnavailable, Clock, OrderRejected

#: Client order ids of kill-switch orders start with this (see core.kill_switch_monitor).
KILL_SWITCH_ORDER_PREFIX = "ax-k"
DEFAULT_ACCOUNT = "default"
RATE_LIMITED = "rate_limited"


@dataclass(frozen=True, slots=True)
class RateLimitConfig:
    """``max_orders`` new-risk orders per ``window`` per account; ``enabled=False`` lets every
    order through (orders are still counted, so switching back on reflects the real rate)."""

    max_orders: int = 10
    window: timedelta = timedelta(seconds=60)
    enabled: bool = True

    def __post_init__(self) -> None:
        if isinstance(self.max_orders, bool) or not isinstance(self.max_orders, int):
            raise ValidationError(f"max_orders must be a whole number, got {self.max_orders!r}")
        if self.max_orders < 1:
            raise ValidationError(f"max_orders must be at least 1, got {self.max_orders}")
        if not isinstance(self.window, timedelta) or self.window <= timedelta(0):
            raise ValidationError(f"window must be a positive duration, got {self.window!r}")
        if not isinstance(self.enabled, bool):
            raise ValidationError(f"enabled must be true or false, got {self.enabled!r}")

    def describe(self) -> str:
        return f"{self.max_orders} new-risk orders per {_seconds(self.window)} s"

    def to_dict(self) -> dict[str, Any]:
        return {
            "max_orders": self.max_orders,
            "window_seconds": self.window.total_seconds(),
            "enabled": self.enabled,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RateLimitConfig:
        unknown = set(data) - {"max_orders", "window_seconds", "enabled"}
        if unknown:
            raise ValidationError(f"unknown rate limit settings: {', '.join(sorted(unknown))}")
        kwargs: dict[str, Any] = {}
        if "max_orders" in data:
            kwargs["max_orders"] = data["max_orders"]
        if "enabled" in data:
            kwargs["enabled"] = data["enabled"]
        if "window_seconds" in data:
            seconds = data["window_seconds"]
            if isinstance(seconds, bool) or not isinstance(seconds, int | float):
                raise ValidationError(f"window_seconds must be a number, got {seconds!r}")
            kwargs["window"] = timedelta(seconds=seconds)
        return cls(**kwargs)


def _seconds(delta: timedelta) -> str:
    seconds = delta.total_seconds()
    return str(int(seconds)) if seconds == int(seconds) else f"{seconds:g}"


@dataclass(frozen=True, slots=True)
class RateDecision:
    """``allowed`` or not; ``retry_at`` is when the next slot opens (throttled only)."""

    allowed: bool
    retry_at: datetime | None
    reason: str


class OrderThrottled(Exception):
    """A new-risk order would exceed the order-rate limit; nothing was written. The caller
    holds it (an algorithm's next slice waits) or rejects what asked for it with ``reason``."""

    def __init__(self, decision: RateDecision):
        super().__init__(decision.reason)
        self.decision = decision
        self.reason = decision.reason
        self.retry_at = decision.retry_at


def is_kill_switch_order(request: OrderRequest) -> bool:
    return request.client_order_id.startswith(KILL_SWITCH_ORDER_PREFIX)


def is_exempt(request: OrderRequest) -> bool:
    """Exits and kill-switch orders: never throttled, never counted."""
    return request.reduce_only or is_kill_switch_order(request)


class OrderRateLimiter:
    """A sliding-window count of new-risk orders per account.

    An order recorded at ``t`` counts while ``now - t < window``; the window slides with
    ``now`` (no fixed minute buckets, so 10 orders at 12:00:59 and 10 at 12:01:01 are not both
    allowed).
    """

    def __init__(self, config: RateLimitConfig | None = None) -> None:
        self.config = config or RateLimitConfig()
        self._sent: dict[str, deque[datetime]] = {}

    def _window(self, account: str, now: datetime) -> deque[datetime]:
        sent = self._sent.setdefault(account, deque())
        horizon = now - self.config.window
        while sent and sent[0] <= horizon:
            sent.popleft()
        return sent

    def count(self, now: datetime, *, account: str = DEFAULT_ACCOUNT) -> int:
        """New-risk orders in the window ending at ``now``."""
        return len(self._window(account, utc(now)))

    def check(
        self,
        request: OrderRequest,
        now: datetime,
        *,
        account: str = DEFAULT_ACCOUNT,
        pending: int = 0,
    ) -> RateDecision:
        """May ``request`` go out at ``now``? Does not record it. ``pending`` counts new-risk
        orders of the same batch that go out before it (not recorded yet)."""
        now = utc(now)
        if request.reduce_only:
            return RateDecision(True, None, "exit orders are never throttled")
        if is_kill_switch_order(request):
            return RateDecision(True, None, "kill-switch orders are never throttled")
        config = self.config
        sent = self._window(account, now)
        if not config.enabled:
            return RateDecision(True, None, "order rate limit is off")
        used = len(sent) + pending
        if used < config.max_orders:
            return RateDecision(
                True,
                None,
                f"{used} of {config.max_orders} new-risk orders in the last "
                f"{_seconds(config.window)} s",
            )
        # the slot frees when the order that brings the count below the limit leaves the window
        index = used - config.max_orders
        retry_at = (sent[index] if index < len(sent) else now) + config.window
        wait = retry_at - now
        return RateDecision(
            False,
            retry_at,
            f"order rate limit: {used} new-risk orders in the last "
            f"{_seconds(config.window)} s (limit {config.describe()}); next slot in "
            f"{_seconds(wait)} s at {retry_at.strftime('%H:%M:%S')} UTC",
        )

    def record(
        self, request: OrderRequest, now: datetime, *, account: str = DEFAULT_ACCOUNT
    ) -> bool:
        """Count ``request`` as sent at ``now``; False (not counted) for exempt orders."""
        if is_exempt(request):
            return False
        now = utc(now)
        sent = self._window(account, now)
        if sent and now < sent[-1]:
            # keep the window sorted even if a caller's clock steps back
            ordered = sorted([*sent, now])
            sent.clear()
            sent.extend(ordered)
        else:
            sent.append(now)
        return True

    def acquire(
        self, request: OrderRequest, now: datetime, *, account: str = DEFAULT_ACCOUNT
    ) -> RateDecision:
        """:meth:`check` and, if allowed, :meth:`record` in one step."""
        decision = self.check(request, now, account=account)
        if decision.allowed:
            self.record(request, now, account=account)
        return decision


class ThrottledBroker:
    """A :class:`~core.ports.Broker` that applies an :class:`OrderRateLimiter` to new orders.

    A throttled entry raises ``OrderRejected(reason, "rate_limited")`` before reaching the
    broker; exits and kill-switch orders pass untouched. An entry counts once the broker
    acknowledged it or the outcome was ambiguous (it may have arrived); a business rejection
    does not use up the allowance. Everything else is passed through.
    """

    def __init__(
        self,
        inner: Broker,
        limiter: OrderRateLimiter,
        clock: Clock,
        *,
        account: str | None = None,
    ) -> None:
        self.inner = inner
        self.limiter = limiter
        self.clock = clock
        self.account = account or inner.name

    @property
    def name(self) -> str:
        """The inner broker's name, read each time (a router's changes with failover)."""
        return self.inner.name

    @property
    def connected(self) -> bool:
        return self.inner.connected

    async def connect(self) -> None:
        await self.inner.connect()

    async def close(self) -> None:
        await self.inner.close()

    async def get_account(self) -> AccountState:
        return await self.inner.get_account()

    async def get_positions(self) -> list[Position]:
        return await self.inner.get_positions()

    async def get_orders(self, status: str = "open") -> list[BrokerOrder]:
        return await self.inner.get_orders(status)

    async def get_order(self, client_order_id: str) -> BrokerOrder | None:
        return await self.inner.get_order(client_order_id)

    async def get_fills(
        self, client_order_id: str | None = None, since: datetime | None = None
    ) -> list[Fill]:
        return await self.inner.get_fills(client_order_id, since)

    async def submit_order(self, request: OrderRequest) -> BrokerOrder:
        now = self.clock.now()
        decision = self.limiter.check(request, now, account=self.account)
        if not decision.allowed:
            raise OrderRejected(decision.reason, RATE_LIMITED)
        try:
            ack = await self.inner.submit_order(request)
        except BrokerUnavailable:
            self.limiter.record(request, now, account=self.account)
            raise
        self.limiter.record(request, now, account=self.account)
        return ack

    async def cancel_order(self, client_order_id: str) -> bool:
        return await self.inner.cancel_order(client_order_id)

    async def cancel_all(self) -> int:
        return await self.inner.cancel_all()

    async def updates(self) -> list[BrokerEvent]:
        return await self.inner.updates()


__all__ = [
    "DEFAULT_ACCOUNT",
    "KILL_SWITCH_ORDER_PREFIX",
    "RATE_LIMITED",
    "OrderRateLimiter",
    "OrderThrottled",
    "RateDecision",
    "RateLimitConfig",
    "ThrottledBroker",
    "is_exempt",
    "is_kill_switch_order",
]
