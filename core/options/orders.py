"""What every broker checks of an option order before anything is sent: the product trades
options as whole contracts named by their compact OCC symbol, with market or limit orders good
for the day. One checker, so the paper broker, Alpaca and IB refuse the same orders with the
same codes."""

from __future__ import annotations

from datetime import date, datetime

from core.domain import InstrumentType, OrderRequest, OrderType, TimeInForce
from core.marketdata.calendar import EASTERN
from core.options.occ import OptionContract, is_occ, parse_occ
from core.ports import OrderRejected


def option_contract(
    request: OrderRequest, today: date | None = None, *, check_expiry: bool = True
) -> OptionContract | None:
    """The contract of an option order, None for any other instrument (an OCC symbol or
    ``instrument_type`` option makes an order an option order). Raises :class:`OrderRejected`
    for: the OCC symbol sent as another instrument type (``bad_instrument``), a symbol that is
    not a compact OCC symbol or (with ``check_expiry``) a contract past its expiry date
    (``today`` in New York; ``unknown_symbol``), a notional amount or a fractional quantity
    (``bad_quantity``), an order type other than market or limit (``bad_type``) and a time in
    force other than ``day`` (``bad_tif``)."""
    symbol = request.symbol
    if request.instrument_type != InstrumentType.OPTION and not is_occ(symbol):
        return None
    if request.instrument_type != InstrumentType.OPTION:
        raise OrderRejected(
            f"{symbol} is an option contract: send it with instrument_type 'option'",
            "bad_instrument",
        )
    if not is_occ(symbol) or symbol != symbol.strip().upper() or " " in symbol:
        raise OrderRejected(
            f"bad option symbol {symbol!r}: use the compact OCC symbol (root + YYMMDD + C/P + "
            "8-digit strike, e.g. SPY261120C00590000)",
            "unknown_symbol",
        )
    contract = parse_occ(symbol)
    if request.notional is not None:
        raise OrderRejected(
            "options trade in whole contracts: a notional (dollar amount) order is not "
            f"supported ({symbol})",
            "bad_quantity",
        )
    if request.qty != request.qty.to_integral_value():
        raise OrderRejected(
            f"bad quantity {request.qty}: options trade in whole contracts, fractional "
            f"contracts are not supported ({symbol})",
            "bad_quantity",
        )
    kind = request.order_type
    if kind in (OrderType.BRACKET, OrderType.TRAILING_STOP):
        raise OrderRejected(
            f"{kind.value.replace('_', ' ')} orders are not supported for options ({symbol})",
            "bad_type",
        )
    if kind not in (OrderType.MARKET, OrderType.LIMIT):
        raise OrderRejected(
            f"option orders are market or limit orders, not {kind.value} ({symbol})", "bad_type"
        )
    if request.time_in_force is not TimeInForce.DAY:
        raise OrderRejected(
            f"option orders use time in force 'day', not '{request.time_in_force.value}' "
            f"({symbol})",
            "bad_tif",
        )
    if check_expiry:
        session = today or datetime.now(EASTERN).date()
        if contract.expiry < session:
            raise OrderRejected(
                f"option {symbol} ({contract}) expired on {contract.expiry.isoformat()}: it no "
                "longer trades",
                "unknown_symbol",
            )
    return contract


__all__ = ["option_contract"]
