"""The running EMA-cloud scan follows the stored ``signals.watchlist`` setting: an
``update_setting`` command applied by the executor changes what the next scan looks at, without
a restart (SQLite store, paper broker, simulated market on a manual clock)."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta

import pytest

from app.runtime import Runtime, build_broker
from app.settings import AxionSettings
from core.config import ExecutorConfig
from core.domain import Command, CommandStatus, CommandType
from core.marketdata.calendar import ManualClock, default_calendar
from core.marketdata.simulated import SimulatedMarket
from core.signals.demo import DEMO_SCAN_EVERY, WATCHLIST_KEY, WatchlistScan, demo_signal_source
from db.engine import open_store


class World:
    def __init__(self, tmp_path, watchlist: list[str]):
        self.settings = AxionSettings(database_url=f"sqlite:///{tmp_path / 'w.db'}")
        calendar = default_calendar()
        session = calendar.previous_session(datetime(2026, 11, 21, tzinfo=UTC))
        self.clock = ManualClock(calendar.session_open(session) + timedelta(minutes=30))
        self.market = SimulatedMarket(self.clock, calendar, seed=self.settings.market_seed)
        self.store = open_store(self.settings.database_url)
        broker = build_broker(self.settings, self.store, self.market)
        self.source = demo_signal_source(self.market, watchlist)
        runtime = Runtime(
            self.settings, self.store, self.market, broker, ExecutorConfig(), [self.source]
        )
        self.executor = runtime.make_executor("watchlist-test")
        self.loop = asyncio.new_event_loop()
        #: The symbols of every scan the engine ran, in order.
        self.scans: list[list[str]] = []
        scan = self.source.engine.scan

        async def recording_scan(symbols, now):
            self.scans.append(list(symbols))
            return await scan(symbols, now)

        self.source.engine.scan = recording_scan  # type: ignore[method-assign]

    def tick(self, advance: timedelta = DEMO_SCAN_EVERY) -> None:
        self.loop.run_until_complete(self.executor.tick())
        self.clock.advance(advance)

    def command(self, payload: dict) -> Command:
        with self.store.unit_of_work() as uow:
            cid = uow.commands.add(
                Command(CommandType.UPDATE_SETTING, payload, "trader", self.clock.now())
            )
            uow.commit()
        self.tick()
        with self.store.unit_of_work(read_only=True) as uow:
            command = uow.commands.get(cid)
        assert command is not None
        return command

    def signal_symbols_since(self, since: datetime) -> set[str]:
        with self.store.unit_of_work(read_only=True) as uow:
            return {s.symbol for s in uow.signals.recent(1000) if s.created_at >= since}

    def close(self) -> None:
        self.loop.run_until_complete(self.executor.shutdown())
        self.loop.close()
        self.store.engine.dispose()


@pytest.fixture
def world(tmp_path, monkeypatch):
    monkeypatch.delenv("AXION_WATCHLIST", raising=False)
    w = World(tmp_path, ["SPY"])
    yield w
    w.close()


def test_the_demo_source_follows_the_stored_watchlist(world):
    assert isinstance(world.source, WatchlistScan)
    world.tick()
    assert world.scans == [["SPY"]]

    command = world.command({"key": WATCHLIST_KEY, "value": ["qqq", "NVDA"]})
    assert command.status is CommandStatus.APPLIED, command.result
    changed_at = world.clock.now()
    for _ in range(30):
        world.tick()

    # the scan in the command's own tick already used the new list; none scanned SPY since
    assert world.scans[1:] and all(scan == ["QQQ", "NVDA"] for scan in world.scans[1:])
    assert world.source.symbols == ["QQQ", "NVDA"] and world.source.watchlist_version == 1
    # and what it found was queued: signals on the new symbols only
    found = world.signal_symbols_since(changed_at)
    assert found and found <= {"QQQ", "NVDA"}


def test_a_second_change_is_followed_too_and_the_setting_is_read_only_when_a_scan_is_due(world):
    world.command({"key": WATCHLIST_KEY, "value": ["QQQ"]})
    reads = []
    follow = world.source.follow

    def counting_follow(store):
        reads.append(1)
        return follow(store)

    world.source.follow = counting_follow  # type: ignore[method-assign]
    for _ in range(4):  # four ticks within one scan interval: one scan, one read
        world.tick(DEMO_SCAN_EVERY / 4)
    assert len(reads) == 1
    world.command({"key": WATCHLIST_KEY, "value": "SOXL, TQQQ"})
    world.tick()
    assert world.scans[-1] == ["SOXL", "TQQQ"] and world.source.watchlist_version == 2


def test_symbols_the_market_does_not_know_are_skipped_with_a_warning(world, caplog):
    command = world.command({"key": WATCHLIST_KEY, "value": ["QQQ", "ZZZZ"]})
    assert command.status is CommandStatus.APPLIED
    with caplog.at_level(logging.WARNING, logger="axion.signals"):
        world.tick()
    assert world.scans[-1] == ["QQQ"]
    assert "ZZZZ" in caplog.text


def test_a_bad_watchlist_is_rejected_and_the_scan_keeps_its_symbols(world):
    command = world.command({"key": WATCHLIST_KEY, "value": []})
    assert command.status is CommandStatus.REJECTED and "at least one symbol" in command.result
    world.tick()
    assert world.scans[-1] == ["SPY"]


def test_without_a_stored_setting_the_configured_watchlist_is_scanned(world):
    world.tick()
    world.tick()
    assert world.scans == [["SPY"], ["SPY"]] and world.source.watchlist_version is None
