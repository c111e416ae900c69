"""Instrument modes and the routing table (seed 001, "Instrument Mode").

The user picks a mode on the dashboard; together with a signal's trade type (and, in *both* mode,
its conviction) the mode decides which kind of instrument the signal trades:

================  ============  ==============================================  ============
Mode              Scalp         Day trade                                       Swing
================  ============  ==============================================  ============
options           option        stock                                           stock
leveraged_etf     leveraged ETF leveraged ETF                                   leveraged ETF
both              option        leveraged ETF if conviction >= threshold,       stock
                                else stock
================  ============  ==============================================  ============

The *both*-mode threshold is :data:`DEFAULT_BOTH_MODE_ETF_MIN_CONVICTION` (75, the seed's "high
conviction" band 75-100) unless configured otherwise
(:attr:`~core.instruments.config.InstrumentConfig.both_mode_etf_min_conviction`). Which leverage
an ETF trade uses (3x for scalps and day trades, 2x for swings where a 2x exists) is decided by the
router, see :mod:`core.instruments.router`.
"""

from __future__ import annotations

from enum import StrEnum

from core.domain import InstrumentType, TradeType, ValidationError

#: In *both* mode a day-trade signal with at least this conviction trades a leveraged ETF.
DEFAULT_BOTH_MODE_ETF_MIN_CONVICTION = 75


class InstrumentMode(StrEnum):
    OPTIONS = "options"  # scalps -> 0DTE/1DTE options, day and swing -> stock
    LEVERAGED_ETF = "leveraged_etf"  # every signal -> a leveraged ETF
    BOTH = "both"  # scalps -> options, day -> ETF or stock by conviction, swing -> stock


def route_kind(
    mode: InstrumentMode | str,
    trade_type: TradeType | str,
    conviction: int,
    *,
    etf_min_conviction: int = DEFAULT_BOTH_MODE_ETF_MIN_CONVICTION,
) -> InstrumentType:
    """The instrument kind the routing table gives a signal.

    ``conviction`` only matters for day trades in *both* mode: ``conviction >=
    etf_min_conviction`` trades a leveraged ETF, anything lower the stock. Unknown modes or trade
    types raise :class:`~core.domain.ValidationError`.
    """
    try:
        mode = InstrumentMode(mode)
    except ValueError:
        raise ValidationError(f"unknown instrument mode {mode!r}") from None
    try:
        trade_type = TradeType(trade_type)
    except ValueError:
        raise ValidationError(f"unknown trade type {trade_type!r}") from None
    if mode is InstrumentMode.OPTIONS:
        return InstrumentType.OPTION if trade_type is TradeType.SCALP else InstrumentType.STOCK
    if mode is InstrumentMode.LEVERAGED_ETF:
        return InstrumentType.LEVERAGED_ETF
    # both
    if trade_type is TradeType.SCALP:
        return InstrumentType.OPTION
    if trade_type is TradeType.DAY and conviction >= etf_min_conviction:
        return InstrumentType.LEVERAGED_ETF
    return InstrumentType.STOCK
