"""The demo's composition: EMA-cloud signals over the watchlist, the demo's instrument mode, and
(in process, on a manual clock) signals that pass the full pipeline and fill within the first
minutes of a session."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from app.runtime import Runtime, build_broker, build_runtime
from app.settings import AxionSettings
from core.config import ExecutorConfig
from core.domain import InstrumentType
from core.instruments.modes import InstrumentMode
from core.marketdata.calendar import ManualClock, default_calendar
from core.marketdata.simulated import SimulatedMarket
from core.signals.demo import DEMO_EMA_CLOUD_CONFIG, DEMO_SCAN_EVERY, demo_signal_source
from core.signals.ema_cloud import SOURCE, EmaCloudSource
from db.engine import open_store


@pytest.fixture
def settings(tmp_path, monkeypatch) -> AxionSettings:
    for name in ("AXION_INSTRUMENT_MODE", "AXION_WATCHLIST", "AXION_PIPELINE"):
        monkeypatch.delenv(name, raising=False)
    return AxionSettings(database_url=f"sqlite:///{tmp_path / 'demo.db'}")


def test_demo_runtime_scans_the_watchlist_with_the_ema_cloud_engine(settings):
    runtime = build_runtime(settings, demo=True)
    try:
        [source] = runtime.signal_sources
        assert isinstance(source, EmaCloudSource)
        assert source.symbols == settings.watchlist_symbols
        assert source.engine.config == DEMO_EMA_CLOUD_CONFIG and source.every == DEMO_SCAN_EVERY
        assert runtime.instrument_mode is InstrumentMode.LEVERAGED_ETF
        assert runtime.make_executor("t").instrument_mode is InstrumentMode.LEVERAGED_ETF
    finally:
        runtime.store.engine.dispose()


def test_without_the_demo_there_are_no_sources_and_the_mode_is_both(settings):
    runtime = build_runtime(settings)
    try:
        assert runtime.signal_sources == []
        assert runtime.make_executor("t").instrument_mode is InstrumentMode.BOTH
    finally:
        runtime.store.engine.dispose()


def test_a_configured_mode_wins_over_the_demo_default(settings, monkeypatch):
    monkeypatch.setenv("AXION_INSTRUMENT_MODE", "options")
    assert AxionSettings().mode_for(demo=True) == "options"
    assert settings.model_copy(update={"instrument_mode": "both"}).mode_for(True) == "both"


def test_the_watchlist_is_checked_against_the_market(settings):
    market = SimulatedMarket.demo(seed=settings.market_seed)
    with pytest.raises(ValueError, match="ZZZZ"):
        demo_signal_source(market, ["SPY", "ZZZZ"])
    with pytest.raises(ValueError, match="at least one symbol"):
        demo_signal_source(market, [])


def test_demo_signals_pass_the_full_pipeline_and_fill(settings):
    """A session from its open, ticking every 15 market seconds (the worker's 250 ms ticks at
    the default speed): EMA-cloud signals, routed to leveraged ETFs, sized, approved and
    filled within the first half hour of market time (half a minute of the demo's real time)."""
    calendar = default_calendar()
    session = calendar.previous_session(datetime(2026, 11, 21, tzinfo=UTC))
    clock = ManualClock(calendar.session_open(session))
    market = SimulatedMarket(clock, calendar, seed=settings.market_seed)
    store = open_store(settings.database_url)
    broker = build_broker(settings, store, market)
    source = demo_signal_source(market, settings.watchlist_symbols)
    runtime = Runtime(settings, store, market, broker, ExecutorConfig(), [source], demo=True)
    executor = runtime.make_executor("demo-test")

    def fills() -> int:
        with store.unit_of_work(read_only=True) as uow:
            return uow.fills.count()

    try:
        for _ in range(4 * 30):
            asyncio.run(executor.tick())
            clock.advance(timedelta(seconds=15))
            if fills():
                break
        assert fills() > 0
        with store.unit_of_work(read_only=True) as uow:
            signals = uow.signals.recent(1000)
            orders = [o for o in uow.orders.recent(1000) if o.request.signal_id is not None]
            decisions = {s.id: uow.decisions.for_signal(s.id) for s in signals}
        assert signals and all(s.source == SOURCE for s in signals)
        assert orders
        for order in orders:
            stages = {d.stage: d.approved for d in decisions[order.request.signal_id]}
            assert stages["instrument"] and stages["sizing"] and stages["risk"]
            assert order.request.instrument_type is InstrumentType.LEVERAGED_ETF
    finally:
        store.engine.dispose()
