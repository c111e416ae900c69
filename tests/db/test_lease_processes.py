"""Two processes contending for one lease never hold it at the same time."""

from __future__ import annotations

import multiprocessing
import time
from datetime import datetime

import pytest

from tests.db.conftest import TestDatabase
from tests.db.lease_worker import contend

Intervals = list[tuple[datetime, datetime]]


def _overlaps(a: Intervals, b: Intervals) -> list[tuple[tuple[datetime, datetime], ...]]:
    return [(x, y) for x in a for y in b if x[0] <= y[1] and y[0] <= x[1]]


@pytest.mark.slow
def test_two_processes_never_hold_the_lease_together(database: TestDatabase, store: object) -> None:
    ctx = multiprocessing.get_context("spawn")
    start_at = time.time() + 1.0  # both children are imported and connected by then
    args = (database.url, database.engine_kwargs)
    timing = (start_at, 1.0, 0.05, 0.15)  # start, duration, ttl, hold before stalling
    with ctx.Pool(2) as pool:
        first = pool.apply_async(contend, (*args, "a", *timing))
        second = pool.apply_async(contend, (*args, "b", *timing))
        a, b = first.get(timeout=60), second.get(timeout=60)
    assert a and b, "both processes should have held the lease at some point"
    assert _overlaps(a, b) == []
