"""Child-process body for the two-process lease test (importable by the spawn start method)."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

from db.engine import make_engine
from db.store import SqlStore


def contend(
    url: str,
    engine_kwargs: dict[str, Any],
    holder: str,
    start_at: float,
    duration_s: float,
    ttl_s: float,
    hold_for_s: float,
) -> list[tuple[datetime, datetime]]:
    """Loop on ``try_acquire`` and return the intervals this holder was granted the lease.

    After holding it for ``hold_for_s`` the holder stops renewing for a while (a stalled
    leader), so the other process gets to take over once the lease has expired.
    """
    engine = make_engine(url, **engine_kwargs)
    store = SqlStore(engine)
    ttl = timedelta(seconds=ttl_s)
    granted: list[tuple[datetime, datetime]] = []
    held_since: float | None = None
    while time.time() < start_at:
        time.sleep(0.001)
    try:
        while time.time() < start_at + duration_s:
            with store.unit_of_work() as uow:
                now = datetime.now(UTC)
                ok = uow.lease.try_acquire("exec", holder, now, ttl, {"holder": holder})
                uow.commit()
            if ok:
                granted.append((now, now + ttl))
                held_since = held_since or time.monotonic()
                if time.monotonic() - held_since >= hold_for_s:
                    held_since = None
                    time.sleep(ttl_s * 2)
                    continue
            else:
                held_since = None
            time.sleep(0.002)
    finally:
        engine.dispose()
    return granted
