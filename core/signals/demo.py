"""The demo strategy: the EMA-cloud engine (seed 001) scanning the watchlist on a schedule, so that
a fresh install shows signals, orders and fills within a minute.

Every demo signal is an EMA-cloud signal (source ``"ema_cloud"``); nothing here makes signals up.
The demo only chooses how the engine is run:

* **Scan every minute of market time.** The scalp timeframe (1-minute bars) gets a new bar every
  minute, so a scan per minute sees every bar once. At the default market speed (60 simulated
  seconds per real second) that is one scan per real second.
* **Seed thresholds.** The engine keeps the seed's clouds, timeframes and conviction bands
  (:class:`~core.signals.ema_cloud.EmaCloudConfig` defaults): on the default simulated market and
  watchlist the 1-minute timeframe alone gives a setup every few market minutes, which is a few
  seconds of real time at the default speed.
* **History.** The simulated market serves 20 sessions of intraday bars before the clock's start,
  so every timeframe has its warm-up from the first scan; at a session's open the previous
  session's bars are too old to act on and the first signals follow the first completed bars.
* **The watchlist follows the stored setting.** Before each scan the source reads the
  ``signals.watchlist`` setting through the executor's store (the dashboard changes it with an
  ``update_setting`` command), so a new list is scanned from the next scan on, without a restart.
  Until the setting is stored the configured watchlist is scanned. Symbols the market does not
  know are skipped with a warning (the setting only checks that they look like symbols).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime, timedelta

from core.ports import MarketData, Store
from core.signals.ema_cloud import EmaCloudConfig, EmaCloudEngine, EmaCloudSource

log = logging.getLogger("axion.signals")

#: Engine settings of the demo: the seed 001 defaults (see the module docstring).
DEMO_EMA_CLOUD_CONFIG = EmaCloudConfig()
#: Market time between scans of the watchlist.
DEMO_SCAN_EVERY = timedelta(minutes=1)
#: The run-time setting holding the symbols to scan (a list, validated by ``core.config``).
WATCHLIST_KEY = "signals.watchlist"


class WatchlistScan(EmaCloudSource):
    """An :class:`EmaCloudSource` whose symbols follow the stored ``signals.watchlist``.

    The setting is read only when a scan is due (market open, ``every`` elapsed), so idle ticks
    cost no query; a version already applied is not parsed again."""

    def __init__(
        self,
        engine: EmaCloudEngine,
        symbols: Sequence[str],
        every: timedelta = DEMO_SCAN_EVERY,
    ) -> None:
        super().__init__(engine, symbols, every)
        #: The setting version the symbols come from (None: the configured watchlist).
        self.watchlist_version: int | None = None

    def _due(self, now: datetime) -> bool:
        market = self.engine.market
        assert market is not None
        return market.calendar.is_open(now) and (self._next_at is None or now >= self._next_at)

    def follow(self, store: Store) -> list[str]:
        """Take the stored watchlist if it changed since the last scan; returns the symbols."""
        with store.unit_of_work(read_only=True) as uow:
            stored = uow.settings.get(WATCHLIST_KEY)
        if stored is None or stored.version == self.watchlist_version:
            return self.symbols
        self.watchlist_version = stored.version
        value = stored.value if isinstance(stored.value, list) else []
        known = self.engine.market.symbols() if self.engine.market is not None else frozenset()
        symbols = [s for s in (str(v).strip().upper() for v in value) if s in known]
        skipped = [str(v) for v in value if str(v).strip().upper() not in known]
        if skipped:
            log.warning(
                "watchlist version %s: the market has no data for %s; not scanned",
                stored.version,
                ", ".join(skipped),
            )
        if symbols:
            log.info("scanning watchlist version %s: %s", stored.version, ", ".join(symbols))
        else:
            log.warning("watchlist version %s has no symbol the market knows", stored.version)
        self.symbols = symbols
        return symbols

    async def emit(self, store: Store, now: datetime) -> int:
        if self._due(now):
            self.follow(store)
        return await super().emit(store, now)


def demo_signal_source(
    market: MarketData,
    watchlist: Sequence[str],
    config: EmaCloudConfig = DEMO_EMA_CLOUD_CONFIG,
    every: timedelta = DEMO_SCAN_EVERY,
) -> WatchlistScan:
    """The demo's signal source: EMA-cloud scans of ``watchlist`` every ``every`` of market time,
    following the stored ``signals.watchlist`` setting once there is one.

    Raises ``ValueError`` for an empty watchlist or symbols the market does not know."""
    if not watchlist:
        raise ValueError("the demo needs at least one symbol")
    unknown = sorted(set(watchlist) - set(market.symbols()))
    if unknown:
        raise ValueError(f"watchlist has symbols the market does not know: {', '.join(unknown)}")
    return WatchlistScan(EmaCloudEngine(market, config), list(watchlist), every=every)


__all__ = [
    "DEMO_EMA_CLOUD_CONFIG",
    "DEMO_SCAN_EVERY",
    "WATCHLIST_KEY",
    "WatchlistScan",
    "demo_signal_source",
]
