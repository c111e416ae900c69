"""Market data adapters for the ``core.ports.MarketData`` port.

* :mod:`core.marketdata.calendar` - exchange sessions and clocks.
* :mod:`core.marketdata.simulated` - :class:`SimulatedMarket`, a seeded simulation.
* :mod:`core.marketdata.replay` - :class:`ReplayMarket`, recorded bars from CSV or Parquet.
* :mod:`core.marketdata.bars` - timeframes, aggregation and quote pricing they share.

Import from the submodules; this package imports nothing so that using one adapter does not
load the others' dependencies.
"""
