"""Listed options: which expiries and strikes an underlying has, and its modelled chain.

Expiries
--------
* Underlyings in :data:`DAILY_EXPIRY_UNDERLYINGS` (SPY, QQQ, IWM) list an expiry on every
  session.
* Every other underlying lists weekly expiries on Fridays. When the Friday is not a session
  (Good Friday, a holiday observed on a Friday) the expiry moves to the last session before it
  in the same week -- usually the Thursday. A week without any session Monday to Friday has no
  expiry.

Sessions come from the exchange calendar (exchange_calendars data), so holidays are never
hard-coded here.

Strikes
-------
:func:`strike_increment`: $1 for SPY, QQQ and IWM at any price; for other underlyings by spot,
$0.50 below $25, $1 below $200, $2.50 below $500 and $5 from $500. :func:`strikes` lists the
strike nearest spot (halves round up) and ``n_each_side`` strikes on each side of it, all on
that one increment's grid, positive strikes only.

Open interest and volume (modelled, deterministic)
--------------------------------------------------
A bell in log-moneyness that widens with time, falling off for far expiries::

    width  = 2 % * sqrt(1 + dte)
    OI     = base * exp(-(ln(K/S) / width)^2 / 2) / (1 + dte / 7)
    volume = OI * 0.5 / (1 + dte / 2)

with ``base`` 50,000 contracts for the daily-expiry underlyings and 10,000 for the others, and
``dte`` the calendar days from the session to the expiry. Both are rounded to whole contracts.
"""

from __future__ import annotations

import math
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import TYPE_CHECKING

from core.domain import ValidationError, positive, utc
from core.options.occ import OptionContract, Right
from core.options.pricing import DEFAULT_OPTION_MODEL, OptionModelConfig, OptionQuote, option_quote
from core.ports import UnknownSymbol

if TYPE_CHECKING:
    from collections.abc import Iterable

    from core.marketdata.calendar import ExchangeCalendar

#: Underlyings with an expiry every session.
DAILY_EXPIRY_UNDERLYINGS: frozenset[str] = frozenset({"SPY", "QQQ", "IWM"})
#: Underlyings with $1 strikes at every price.
DOLLAR_STRIKE_UNDERLYINGS: frozenset[str] = frozenset({"SPY", "QQQ", "IWM"})
#: Strike increments of other underlyings: (spot below, increment); $5 above the last.
_STRIKE_STEPS: tuple[tuple[Decimal, Decimal], ...] = (
    (Decimal(25), Decimal("0.5")),
    (Decimal(200), Decimal(1)),
    (Decimal(500), Decimal("2.5")),
)
_TOP_STEP = Decimal(5)
_FRIDAY = 4
_DAILY_BASE_OI = 50_000
_WEEKLY_BASE_OI = 10_000
_OI_WIDTH = 0.02
#: How far ahead :func:`option_chain` looks for the nearest expiry (covers any week).
_NEAREST_EXPIRY_HORIZON = 14


class ExpiredContract(UnknownSymbol, ValidationError):
    """The contract (or expiry) is past its expiry close: no longer quoted. It is both an
    :class:`UnknownSymbol` (the market no longer has it) and a :class:`ValidationError`."""


def normalize_underlying(underlying: str) -> str:
    if not isinstance(underlying, str) or not underlying.strip():
        raise ValidationError(f"an underlying is a non-empty symbol, got {underlying!r}")
    return underlying.strip().upper()


def _session_date(value: date, name: str) -> date:
    if isinstance(value, datetime) or not isinstance(value, date):
        raise ValidationError(f"{name} must be a date, got {value!r}")
    return value


def lists_daily(
    underlying: str, daily_underlyings: Iterable[str] = DAILY_EXPIRY_UNDERLYINGS
) -> bool:
    """True if ``underlying`` lists an expiry on every session."""
    return normalize_underlying(underlying) in daily_underlyings


def weekly_expiry(day: date, calendar: ExchangeCalendar) -> date | None:
    """The weekly expiry of the Monday-to-Sunday week containing ``day``: its Friday, or the
    last session before the Friday in that week when the Friday is not a session; ``None`` if
    the week has no session Monday to Friday."""
    day = _session_date(day, "day")
    friday = day + timedelta(days=_FRIDAY - day.weekday())
    for back in range(_FRIDAY + 1):
        candidate = friday - timedelta(days=back)
        if calendar.is_session(candidate):
            return candidate
    return None


def is_listed_expiry(
    underlying: str,
    day: date,
    calendar: ExchangeCalendar,
    daily_underlyings: Iterable[str] = DAILY_EXPIRY_UNDERLYINGS,
) -> bool:
    """True if ``underlying`` has options expiring on ``day``."""
    day = _session_date(day, "expiry")
    if not calendar.is_session(day):
        return False
    if lists_daily(underlying, daily_underlyings):
        return True
    return weekly_expiry(day, calendar) == day


def expiries(
    underlying: str,
    session: date,
    calendar: ExchangeCalendar,
    horizon_days: int = 10,
    daily_underlyings: Iterable[str] = DAILY_EXPIRY_UNDERLYINGS,
) -> list[date]:
    """Listed expiries of ``underlying`` from ``session`` (included) to ``horizon_days``
    calendar days after it, oldest first."""
    session = _session_date(session, "session")
    if isinstance(horizon_days, bool) or not isinstance(horizon_days, int) or horizon_days < 0:
        raise ValidationError(f"horizon_days must be a whole number >= 0, got {horizon_days!r}")
    last = session + timedelta(days=horizon_days)
    days = (session + timedelta(days=i) for i in range(horizon_days + 1))
    if lists_daily(underlying, daily_underlyings):
        return [d for d in days if calendar.is_session(d)]
    out: list[date] = []
    # One look per week; the week of ``last`` is included, its expiry may fall before ``last``.
    week = session - timedelta(days=session.weekday())
    while week <= last:
        expiry = weekly_expiry(week, calendar)
        if expiry is not None and session <= expiry <= last:
            out.append(expiry)
        week += timedelta(days=7)
    return out


# ---------------------------------------------------------------------------------------------
# Strikes
# ---------------------------------------------------------------------------------------------


def strike_increment(underlying: str, spot: Decimal) -> Decimal:
    """Distance between listed strikes (module docstring)."""
    if normalize_underlying(underlying) in DOLLAR_STRIKE_UNDERLYINGS:
        return Decimal(1)
    price = positive(spot, "spot")
    for below, step in _STRIKE_STEPS:
        if price < below:
            return step
    return _TOP_STEP


def strikes(underlying: str, spot: Decimal, n_each_side: int = 10) -> list[Decimal]:
    """The strike nearest ``spot`` and ``n_each_side`` strikes below and above it, ascending
    (strikes at or below zero are left out)."""
    if isinstance(n_each_side, bool) or not isinstance(n_each_side, int) or n_each_side < 0:
        raise ValidationError(f"n_each_side must be a whole number >= 0, got {n_each_side!r}")
    price = positive(spot, "spot")
    step = strike_increment(underlying, price)
    centre = (price / step).to_integral_value(ROUND_HALF_UP)
    grid = ((centre + i) * step for i in range(-n_each_side, n_each_side + 1))
    return [k for k in grid if k > 0]


# ---------------------------------------------------------------------------------------------
# Modelled liquidity
# ---------------------------------------------------------------------------------------------


def modelled_open_interest(underlying: str, strike: Decimal, spot: Decimal, dte: int) -> int:
    """Open interest in contracts (module docstring): highest at the money, falling off with
    distance from it and for far expiries."""
    base = _DAILY_BASE_OI if lists_daily(underlying) else _WEEKLY_BASE_OI
    days = max(dte, 0)
    width = _OI_WIDTH * math.sqrt(1 + days)
    m = math.log(float(strike) / float(spot)) / width
    return round(base * math.exp(-0.5 * m * m) / (1 + days / 7))


def modelled_volume(underlying: str, strike: Decimal, spot: Decimal, dte: int) -> int:
    """Contracts traded today: half the open interest at 0DTE, less for later expiries."""
    days = max(dte, 0)
    return round(modelled_open_interest(underlying, strike, spot, dte) * 0.5 / (1 + days / 2))


# ---------------------------------------------------------------------------------------------
# The chain
# ---------------------------------------------------------------------------------------------


def nearest_expiry(
    underlying: str, session: date, now: datetime, calendar: ExchangeCalendar
) -> date:
    """The first listed expiry from ``session`` on whose close is after ``now``."""
    now = utc(now)
    for expiry in expiries(underlying, session, calendar, _NEAREST_EXPIRY_HORIZON):
        if calendar.session_close(expiry) > now:
            return expiry
    raise ValidationError(
        f"{normalize_underlying(underlying)} lists no expiry in the "
        f"{_NEAREST_EXPIRY_HORIZON} days from {session}"
    )


def check_expiry(underlying: str, expiry: date, now: datetime, calendar: ExchangeCalendar) -> None:
    """:class:`ValidationError` unless ``underlying`` lists ``expiry``, and
    :class:`ExpiredContract` if it has expired at ``now`` (at the close of the expiry
    session)."""
    name = normalize_underlying(underlying)
    if not is_listed_expiry(name, expiry, calendar):
        kind = "every session" if lists_daily(name) else "weekly (Friday, or the session before)"
        raise ValidationError(f"{name} lists no options expiring {expiry}: it lists {kind}")
    close = calendar.session_close(expiry)
    if close <= utc(now):
        raise ExpiredContract(
            f"{name} options expiring {expiry} expired at the close, {close:%Y-%m-%d %H:%M} UTC"
        )


def option_chain(
    underlying: str,
    spot: Decimal,
    session: date,
    now: datetime,
    realized_vol: float | None,
    calendar: ExchangeCalendar,
    config: OptionModelConfig = DEFAULT_OPTION_MODEL,
    n_strikes: int = 10,
    expiry: date | None = None,
) -> list[OptionQuote]:
    """Quotes of the calls and puts of one expiry: ``n_strikes`` strikes each side of the
    strike nearest ``spot`` (:func:`strikes`), by strike, call before put, with modelled open
    interest and volume.

    ``expiry`` defaults to :func:`nearest_expiry`; an expiry the underlying does not list, or
    one that has expired at ``now``, raises :class:`ValidationError`.
    """
    name = normalize_underlying(underlying)
    session = _session_date(session, "session")
    spot_d = positive(spot, "spot")
    now = utc(now)
    if expiry is None:
        expiry = nearest_expiry(name, session, now, calendar)
    else:
        check_expiry(name, _session_date(expiry, "expiry"), now, calendar)
    dte = (expiry - session).days
    out: list[OptionQuote] = []
    for strike in strikes(name, spot_d, n_strikes):
        oi = modelled_open_interest(name, strike, spot_d, dte)
        volume = modelled_volume(name, strike, spot_d, dte)
        for right in (Right.CALL, Right.PUT):
            contract = OptionContract(name, expiry, strike, right)
            out.append(
                option_quote(
                    contract,
                    spot_d,
                    now,
                    realized_vol,
                    calendar,
                    config,
                    open_interest=oi,
                    volume=volume,
                )
            )
    return out


__all__ = [
    "DAILY_EXPIRY_UNDERLYINGS",
    "DOLLAR_STRIKE_UNDERLYINGS",
    "ExpiredContract",
    "check_expiry",
    "expiries",
    "is_listed_expiry",
    "lists_daily",
    "modelled_open_interest",
    "modelled_volume",
    "nearest_expiry",
    "option_chain",
    "strike_increment",
    "strikes",
    "weekly_expiry",
]
