"""Exchange sessions from exchange_calendars (XNYS by default) and the clocks built on them.

exchange_calendars knows holidays and early closes; we read its schedule once into plain
datetimes so the executor's hot path does a bisect instead of pandas work.
"""

from __future__ import annotations

import bisect
import threading
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

import exchange_calendars as xcals
import pandas as pd

from core.domain import utc

EASTERN = ZoneInfo("America/New_York")


@lru_cache(maxsize=4)
def _schedule(code: str, start: str, end: str) -> tuple[list[date], list[datetime], list[datetime]]:
    cal = xcals.get_calendar(code, start=start, end=end)
    sched = cal.schedule
    sessions = [ts.date() for ts in sched.index]
    opens = [ts.to_pydatetime().astimezone(UTC) for ts in sched["open"]]
    closes = [ts.to_pydatetime().astimezone(UTC) for ts in sched["close"]]
    return sessions, opens, closes


class ExchangeCalendar:
    """Implements ``core.ports.MarketCalendar`` for one exchange (default XNYS)."""

    def __init__(self, code: str = "XNYS", start: str = "2015-01-01", end: str | None = None):
        if end is None:
            end = (pd.Timestamp.now(tz="UTC") + pd.Timedelta(days=365)).strftime("%Y-%m-%d")
        self.code = code
        self._sessions, self._opens, self._closes = _schedule(code, start, end)
        self._index = {s: i for i, s in enumerate(self._sessions)}

    # -- lookups ---------------------------------------------------------------------------
    def _last_open_index(self, ts: datetime) -> int:
        """Index of the last session whose open is <= ts (-1 if none)."""
        return bisect.bisect_right(self._opens, utc(ts)) - 1

    def is_session(self, day: date) -> bool:
        return day in self._index

    def sessions(self) -> list[date]:
        return list(self._sessions)

    def is_open(self, ts: datetime) -> bool:
        i = self._last_open_index(ts)
        return i >= 0 and utc(ts) < self._closes[i]

    def session_date(self, ts: datetime) -> date | None:
        i = self._last_open_index(ts)
        if i >= 0 and utc(ts) < self._closes[i]:
            return self._sessions[i]
        return None

    def session_open(self, session: date) -> datetime:
        return self._opens[self._require(session)]

    def session_close(self, session: date) -> datetime:
        return self._closes[self._require(session)]

    def is_early_close(self, session: date) -> bool:
        close_et = self.session_close(session).astimezone(EASTERN)
        return (close_et.hour, close_et.minute) < (16, 0)

    def next_open(self, ts: datetime) -> datetime:
        i = bisect.bisect_right(self._opens, utc(ts))
        if i >= len(self._opens):
            raise ValueError(f"{ts} is past the end of the {self.code} calendar")
        return self._opens[i]

    def previous_session(self, ts: datetime) -> date:
        i = self._last_open_index(ts)
        if i < 0:
            raise ValueError(f"{ts} is before the start of the {self.code} calendar")
        return self._sessions[i]

    def next_session(self, session: date) -> date:
        i = self._require(session)
        if i + 1 >= len(self._sessions):
            raise ValueError(f"no session after {session} in the {self.code} calendar")
        return self._sessions[i + 1]

    def previous_session_of(self, session: date) -> date:
        i = self._require(session)
        if i == 0:
            raise ValueError(f"no session before {session} in the {self.code} calendar")
        return self._sessions[i - 1]

    def _require(self, session: date) -> int:
        try:
            return self._index[session]
        except KeyError:
            raise ValueError(f"{session} is not a {self.code} session") from None


@lru_cache(maxsize=1)
def default_calendar() -> ExchangeCalendar:
    return ExchangeCalendar("XNYS")


# ---------------------------------------------------------------------------------------------
# Clocks
# ---------------------------------------------------------------------------------------------


class WallClock:
    """Real UTC time."""

    def now(self) -> datetime:
        return datetime.now(UTC)


class ManualClock:
    """A clock tests move by hand."""

    def __init__(self, start: datetime):
        self._now = utc(start)
        self._lock = threading.Lock()

    def now(self) -> datetime:
        return self._now

    def set(self, ts: datetime) -> None:
        with self._lock:
            self._now = utc(ts)

    def advance(self, delta: timedelta | float) -> datetime:
        if not isinstance(delta, timedelta):
            delta = timedelta(seconds=delta)
        with self._lock:
            self._now += delta
            return self._now


class SessionClock:
    """Simulated session time: runs ``speed`` times faster than the wall clock and only inside
    sessions, so a demo started at night or on a weekend shows a trading session.

    It starts at ``start`` if that is inside a session, otherwise at the open of the most recent
    session (``start_at_open=True`` always starts at that session's open). When simulated time
    reaches a session's close it continues at the next session's open.
    """

    def __init__(
        self,
        calendar: ExchangeCalendar,
        speed: float = 1.0,
        start: datetime | None = None,
        wall: WallClock | ManualClock | None = None,
        start_at_open: bool = False,
    ):
        if speed <= 0:
            raise ValueError("speed must be positive")
        self.calendar = calendar
        self.speed = speed
        self._wall = wall or WallClock()
        start = utc(start) if start is not None else self._wall.now()
        session = calendar.session_date(start)
        if session is None or start_at_open:
            session = calendar.previous_session(start)
            start = calendar.session_open(session)
        self._origin_sim = start
        self._origin_wall = self._wall.now()
        self._lock = threading.Lock()

    def now(self) -> datetime:
        elapsed = (self._wall.now() - self._origin_wall).total_seconds() * self.speed
        with self._lock:
            return self._advance_within_sessions(self._origin_sim, elapsed)

    def _advance_within_sessions(self, start: datetime, seconds: float) -> datetime:
        t = start
        remaining = timedelta(seconds=seconds)
        for _ in range(100_000):
            session = self.calendar.session_date(t)
            if session is None:
                t = self.calendar.next_open(t)
                continue
            close = self.calendar.session_close(session)
            left = close - t
            if remaining < left:
                return t + remaining
            remaining -= left
            t = self.calendar.next_open(close)
            # rebase, so later calls do not walk the same sessions again
            self._origin_sim = t
            self._origin_wall = self._wall.now() - timedelta(
                seconds=(remaining.total_seconds()) / self.speed
            )
            start = t
        raise RuntimeError("session clock ran past the calendar")
