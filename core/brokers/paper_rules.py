"""Order admission rules of the paper broker that need no market data: quantities, price
increments, order-type and time-in-force combinations, option orders, and position arithmetic."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

from core.brokers.paper_config import PaperConfig
from core.domain import (
    CENT,
    PRICE_QUANTUM,
    ZERO,
    InstrumentType,
    OrderRequest,
    OrderType,
    Side,
    TimeInForce,
)
from core.options.occ import is_occ
from core.options.orders import option_contract
from core.ports import OrderRejected

_ONE_MINUTE = timedelta(minutes=1)
_PRICE_FIELDS = (
    "limit_price",
    "stop_price",
    "trail_price",
    "take_profit_price",
    "stop_loss_price",
)


def floor_minute(ts: datetime) -> datetime:
    return ts.replace(second=0, microsecond=0)


def ceil_minute(ts: datetime) -> datetime:
    """``ts`` rounded up to a whole minute (unchanged when already whole)."""
    floor = floor_minute(ts)
    return floor if floor == ts else floor + _ONE_MINUTE


def check_request(request: OrderRequest, config: PaperConfig) -> None:
    """Refuse quantities, prices and type/time-in-force combinations the paper broker does not
    take. Raises :class:`OrderRejected` with the reason.

    A notional order's ``qty`` is only the caller's estimate and is not checked; a dollar
    amount buys fractional shares, so it needs ``config.fractional``. Option orders follow
    :func:`check_option_request` instead of the share rules for quantity and type."""
    if request.instrument_type == InstrumentType.OPTION or is_occ(request.symbol):
        check_option_request(request)
    qty = request.qty
    if request.notional is not None:
        if not config.fractional:
            raise OrderRejected(
                f"notional (dollar amount) order of ${request.notional}: fractional shares are "
                "disabled, send a whole-number quantity",
                "bad_quantity",
            )
    elif not config.fractional and qty != qty.to_integral_value():
        raise OrderRejected(
            f"bad quantity {qty}: fractional shares are disabled, use a whole number",
            "bad_quantity",
        )
    elif qty.as_tuple().exponent < -9:  # type: ignore[operator]
        raise OrderRejected(f"bad quantity {qty}: at most 9 decimal places", "bad_quantity")
    for name in _PRICE_FIELDS:
        price = getattr(request, name)
        if price is None:
            continue
        step = CENT if price >= 1 else PRICE_QUANTUM
        if price != price.quantize(step):
            raise OrderRejected(
                f"bad price: {name} {price} is not a multiple of {step} "
                f"(prices of $1.00 and above trade in whole cents, below $1.00 in $0.0001)",
                "bad_price",
            )
    t, tif = request.order_type, request.time_in_force
    if tif is TimeInForce.IOC and t not in (OrderType.MARKET, OrderType.LIMIT):
        raise OrderRejected(
            f"time in force 'ioc' is only for market and limit orders, not {t.value}", "bad_tif"
        )
    if t is OrderType.BRACKET and tif not in (TimeInForce.DAY, TimeInForce.GTC):
        raise OrderRejected("bracket orders use time in force 'day' or 'gtc'", "bad_tif")


def check_option_request(request: OrderRequest) -> None:
    """An option order names a contract by its compact OCC symbol with ``instrument_type``
    option, in whole contracts, as a market or limit order with time in force ``day`` (no
    notional amount). Raises :class:`OrderRejected` otherwise (the paper broker checks the
    expiry itself, against its own clock)."""
    option_contract(request, check_expiry=False)


def opening_quantity(position_qty: Decimal, side: Side, qty: Decimal) -> Decimal:
    """The part of an order of ``side`` and ``qty`` that opens or increases exposure; the rest
    reduces the existing position."""
    reduces = (position_qty > 0 and side is Side.SELL) or (position_qty < 0 and side is Side.BUY)
    if not reduces:
        return qty
    return max(ZERO, qty - abs(position_qty))


def reference_price(request: OrderRequest, touch: Decimal) -> Decimal:
    """Price used to size what an order commits: its limit, else its stop, else the touch."""
    if request.order_type in (OrderType.LIMIT, OrderType.STOP_LIMIT):
        assert request.limit_price is not None
        return request.limit_price
    if request.order_type is OrderType.BRACKET and request.limit_price is not None:
        return request.limit_price
    if request.order_type is OrderType.STOP:
        assert request.stop_price is not None
        return request.stop_price
    return touch


def expected_price(request: OrderRequest, touch: Decimal) -> Decimal | None:
    """The price a fill's slippage is measured against: the arrival touch for market and
    on-close orders, the limit for limit orders, the stop for stops. Trailing stops use the
    stop level at the trigger (None here)."""
    t = request.order_type
    if t is OrderType.TRAILING_STOP:
        return None
    if t is OrderType.STOP:
        return request.stop_price
    if request.limit_price is not None and t is not OrderType.MARKET_ON_CLOSE:
        return request.limit_price
    return touch if touch > 0 else None
