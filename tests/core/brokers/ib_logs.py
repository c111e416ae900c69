"""Strict ib_insync logging for the broker tests: any decoder error, any eventkit warning and
any ERROR a test did not declare fails the test."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager


class IbLogGuard(logging.Handler):
    """Collects ib_insync and eventkit log records and reports the ones that must fail a test."""

    LOGGERS = ("ib_insync", "eventkit")

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []
        self._allowed: list[re.Pattern[str]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def allow(self, *patterns: str) -> None:
        """Declare ERROR messages this test expects (TWS API errors, dropped sockets)."""
        self._allowed.extend(re.compile(p) for p in patterns)

    def problems(self) -> list[str]:
        found = []
        for record in self.records:
            message = record.getMessage()
            decoding = (
                record.name == "ib_insync.Decoder"
                or "Error handling fields" in message
                or message.startswith("Error for ")
            )
            if decoding or record.name.startswith("eventkit"):
                if record.levelno >= logging.WARNING:
                    found.append(f"{record.name} {record.levelname}: {message}")
                continue
            if record.levelno >= logging.ERROR and not any(
                p.search(message) for p in self._allowed
            ):
                found.append(f"{record.name} {record.levelname}: {message}")
        return found


@contextmanager
def guard_ib_logs() -> Iterator[IbLogGuard]:
    """Collect ib_insync's and eventkit's records while the block runs; fail on the problems."""
    guard = IbLogGuard()
    loggers = [logging.getLogger(name) for name in IbLogGuard.LOGGERS]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.addHandler(guard)
        lg.setLevel(logging.WARNING)
    try:
        yield guard
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.removeHandler(guard)
            lg.setLevel(level)
    problems = guard.problems()
    assert not problems, "ib_insync reported problems:\n" + "\n".join(problems)
