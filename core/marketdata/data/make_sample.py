"""Regenerate ``sample_bars.csv``: one regular session of 1-minute bars for a few symbols.

The bars come from :class:`core.marketdata.simulated.SimulatedMarket` with a fixed seed, so the
file is reproducible and shaped like a real tape (GBM prices, U-shaped volume). Run from the
repository root::

    python -m core.marketdata.data.make_sample
"""

from __future__ import annotations

import csv
from datetime import date
from pathlib import Path

from core.marketdata.calendar import ManualClock, default_calendar
from core.marketdata.simulated import DEFAULT_UNIVERSE, SimulatedMarket

SESSION = date(2026, 11, 20)
SYMBOLS = ("AAPL", "SPY", "TQQQ")
SEED = 20261120
OUTPUT = Path(__file__).with_name("sample_bars.csv")


def main(output: Path = OUTPUT) -> int:
    """Write the sample file and return the number of bars written."""
    calendar = default_calendar()
    close = calendar.session_close(SESSION)
    universe = [spec for spec in DEFAULT_UNIVERSE if spec.symbol in SYMBOLS]
    market = SimulatedMarket(ManualClock(close), calendar, universe, seed=SEED)
    start = calendar.session_open(SESSION)
    bars = [bar for symbol in SYMBOLS for bar in market.bars_sync(symbol, "1Min", start=start)]
    # Interleaved by time, as a recorded feed would be.
    bars.sort(key=lambda b: (b.start, b.symbol))
    with output.open("w", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(["timestamp", "symbol", "open", "high", "low", "close", "volume"])
        for bar in bars:
            writer.writerow(
                [
                    bar.start.strftime("%Y-%m-%dT%H:%M:%SZ"),
                    bar.symbol,
                    bar.open,
                    bar.high,
                    bar.low,
                    bar.close,
                    bar.volume,
                ]
            )
    return len(bars)


if __name__ == "__main__":
    print(f"wrote {main()} bars to {OUTPUT}")
