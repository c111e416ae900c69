"""Waiting helpers for the asynchronous broker tests: poll until a condition holds, or until
the broker's updates show what a test waits for."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from core.brokers.ibkr import IBKRBroker
from core.domain import BrokerEvent


async def until(condition: Callable[[], bool], what: str, timeout: float = 3.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.005)


async def events_until(
    broker: IBKRBroker, done: Callable[[list[BrokerEvent]], bool], timeout: float = 3.0
) -> list[BrokerEvent]:
    """Poll ``updates()`` until ``done(events)``."""
    events: list[BrokerEvent] = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        events.extend(await broker.updates())
        if done(events):
            return events
        if loop.time() > deadline:
            raise AssertionError(f"timed out; events so far: {events}")
        await asyncio.sleep(0.005)
