"""Helpers for the instrument tests: signals and average-daily-dollar-volume tables."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from decimal import Decimal as D

from core.domain import Direction, Signal, TradeType
from core.instruments.catalog import EtfCatalog

T0 = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
LIQUID = D(500_000_000)


def signal(
    symbol: str = "AAPL",
    direction: Direction | str = Direction.LONG,
    trade_type: TradeType | str = TradeType.DAY,
    conviction: int = 80,
    entry: str = "100",
    stop: str | None = None,
) -> Signal:
    direction = Direction(direction)
    if stop is None:
        stop = "98" if direction is Direction.LONG else "102"
    return Signal(
        symbol=symbol,
        direction=direction,
        entry=D(entry),
        stop=D(stop),
        created_at=T0,
        conviction=conviction,
        trade_type=TradeType(trade_type),
    )


def adv(table: Mapping[str, D | None], default: D | None = None) -> Callable[[str], D | None]:
    """A lookup answering from ``table``, else ``default``; it records what was asked."""
    asked: list[str] = []

    def lookup(ticker: str) -> D | None:
        asked.append(ticker)
        return table.get(ticker, default)

    lookup.asked = asked  # type: ignore[attr-defined]
    return lookup


def all_liquid(catalog: EtfCatalog) -> Callable[[str], D | None]:
    return adv(dict.fromkeys(catalog.tickers, LIQUID))
