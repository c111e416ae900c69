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
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from core.ports import MarketData
from core.signals.ema_cloud import EmaCloudConfig, EmaCloudEngine, EmaCloudSource

#: Engine settings of the demo: the seed 001 defaults (see the module docstring).
DEMO_EMA_CLOUD_CONFIG = EmaCloudConfig()
#: Market time between scans of the watchlist.
DEMO_SCAN_EVERY = timedelta(minutes=1)


def demo_signal_source(
    market: MarketData,
    watchlist: Sequence[str],
    config: EmaCloudConfig = DEMO_EMA_CLOUD_CONFIG,
    every: timedelta = DEMO_SCAN_EVERY,
) -> EmaCloudSource:
    """The demo's signal source: EMA-cloud scans of ``watchlist`` every ``every`` of market time.

    Raises ``ValueError`` for an empty watchlist or symbols the market does not know."""
    if not watchlist:
        raise ValueError("the demo needs at least one symbol")
    unknown = sorted(set(watchlist) - set(market.symbols()))
    if unknown:
        raise ValueError(f"watchlist has symbols the market does not know: {', '.join(unknown)}")
    return EmaCloudSource(EmaCloudEngine(market, config), list(watchlist), every=every)


__all__ = ["DEMO_EMA_CLOUD_CONFIG", "DEMO_SCAN_EVERY", "demo_signal_source"]
