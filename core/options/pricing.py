"""Option pricing: Black-Scholes-Merton for European calls and puts, the Greeks, implied
volatility, and the quote model of the simulated options market.

Maths
-----
Black-Scholes-Merton with a continuous dividend yield ``q``::

    d1 = (ln(S/K) + (r - q + vol^2/2) t) / (vol sqrt(t)),   d2 = d1 - vol sqrt(t)
    call = S e^(-qt) N(d1) - K e^(-rt) N(d2)
    put  = K e^(-rt) N(-d2) - S e^(-qt) N(-d1)

``t`` is in years, ``rate``, ``q`` and ``vol`` are annualised decimals (0.04 = 4 %). The maths
runs in floats; money crosses the API boundary as :class:`~decimal.Decimal` (:class:`OptionQuote`).
At ``t <= 0`` a price is the intrinsic value ``max(S - K, 0)`` (``max(K - S, 0)`` for puts).
With ``t > 0`` and ``vol <= 0`` the price is the zero-volatility limit of the formula, the
intrinsic value of the forward, discounted: ``max(S e^(-qt) - K e^(-rt), 0)`` for calls
(``max(K e^(-rt) - S e^(-qt), 0)`` for puts). It equals the plain intrinsic value when
``r = q = 0`` and keeps put-call parity exact.

Greek units (:class:`Greeks`), all per share (multiply by 100 for a contract):

* ``delta`` -- price change per $1 of the underlying.
* ``gamma`` -- delta change per $1 of the underlying.
* ``theta`` -- price change per *calendar day* that passes (``theta_annual / 365``); negative for
  a long option in the usual case. ``theta_annual`` is the same per year.
* ``vega`` -- price change per 1 volatility point (vol + 0.01).
* ``rho`` -- price change per 1 percentage point of the rate (rate + 0.01).

Quote model (:class:`OptionModelConfig`, :func:`option_quote`)
--------------------------------------------------------------
* Implied volatility: ``iv = max(vol_floor, realized_vol + vol_premium + skew * |ln(K/S)|)`` --
  the underlying's realized volatility plus a premium, raised symmetrically away from the money
  (a smile). Without a realized volatility, ``fallback_vol`` stands in for it.
* Time: :func:`time_to_expiry`, ACT/365 calendar time to the close of the expiry session
  (16:00 New York, or the early close), 0 at or after it.
* Theoretical value ``theo`` = Black-Scholes-Merton at that iv, ``rate`` and ``dividend_yield``.
* Spread: ``half_spread = max(min_half_spread, spread_pct_of_premium * theo / 2)``; the bid is
  ``theo - half_spread`` rounded *down* to the tick and never below 0 (a worthless contract is
  bid 0), the ask ``theo + half_spread`` rounded *up* to the tick and at least one tick ($0.01).
  The bid is therefore always strictly below the ask, and theo lies between them.
* Ticks (:func:`tick_size`): $0.01 below $3.00 and $0.05 at or above $3.00; underlyings in
  ``penny_underlyings`` (SPY, QQQ, IWM, as in the penny pilot) trade in $0.01 at all prices.
* ``mid`` = (bid + ask) / 2 (may be half a tick), ``last`` = mid.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from itertools import pairwise
from typing import TYPE_CHECKING, Any

from core.domain import ZERO, ValidationError, round_price, to_decimal, utc
from core.options.occ import OptionContract, Right

if TYPE_CHECKING:
    from core.marketdata.calendar import ExchangeCalendar

#: ACT/365: seconds in the year of :func:`time_to_expiry`.
SECONDS_PER_YEAR = 365 * 24 * 60 * 60
#: Calendar days per year used to turn annual theta into theta per day.
DAYS_PER_YEAR = 365
#: Underlyings quoted in $0.01 at every price (penny pilot style).
PENNY_UNDERLYINGS: frozenset[str] = frozenset({"SPY", "QQQ", "IWM"})
PENNY = Decimal("0.01")
NICKEL = Decimal("0.05")
#: Premium from which non-penny underlyings are quoted in $0.05.
NICKEL_FROM = Decimal(3)
#: Bounds of the implied volatility search (annualised).
IV_MAX = 64.0

_SQRT2 = math.sqrt(2.0)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
_POINT = 0.01


def norm_cdf(x: float) -> float:
    """Standard normal CDF; ``erfc`` keeps both tails accurate."""
    return 0.5 * math.erfc(-x / _SQRT2)


def norm_pdf(x: float) -> float:
    return _INV_SQRT_2PI * math.exp(-0.5 * x * x)


# ---------------------------------------------------------------------------------------------
# Black-Scholes-Merton
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Greeks:
    """Sensitivities per share; see the module docstring for units (theta per calendar day,
    vega per vol point, rho per rate point)."""

    delta: float
    gamma: float
    theta: float
    vega: float
    rho: float

    @property
    def theta_annual(self) -> float:
        """Theta per year (``theta * 365``)."""
        return self.theta * DAYS_PER_YEAR


def _number(value: Any, name: str) -> float:
    if isinstance(value, bool):
        raise ValidationError(f"{name} must be a number, got a boolean")
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise ValidationError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(x):
        raise ValidationError(f"{name} must be finite, got {value!r}")
    return x


def _right(value: Any) -> Right:
    if isinstance(value, Right):
        return value
    if isinstance(value, str):
        try:
            return Right(value.strip().lower())
        except ValueError:
            return Right.from_letter(value.strip())
    raise ValidationError(f"an option right is call or put, got {value!r}")


def _inputs(
    spot: Any, strike: Any, t: Any, rate: Any, vol: Any, right: Any, q: Any
) -> tuple[float, float, float, float, float, Right, float]:
    s = _number(spot, "spot")
    k = _number(strike, "strike")
    if s <= 0:
        raise ValidationError(f"spot must be positive, got {spot}")
    if k <= 0:
        raise ValidationError(f"strike must be positive, got {strike}")
    return (
        s,
        k,
        _number(t, "time to expiry"),
        _number(rate, "rate"),
        _number(vol, "volatility"),
        _right(right),
        _number(q, "dividend yield"),
    )


def _terms(
    s: float, k: float, t: float, r: float, vol: float, q: float
) -> tuple[float, float, float, float, float, float, float]:
    """``(N(d1), N(d2), N(-d1), N(-d2), n(d1), e^-qt, e^-rt)`` for ``t > 0``. ``N(-d)`` is
    computed directly, not as ``1 - N(d)``, so deep tails keep their precision. ``vol <= 0``
    gives the limit: ``N`` an indicator of the forward being in the money, ``n`` zero."""
    dq, dr = math.exp(-q * t), math.exp(-r * t)
    if vol <= 0:
        itm = 1.0 if s * dq > k * dr else 0.0
        otm = 1.0 if s * dq < k * dr else 0.0
        return itm, itm, otm, otm, 0.0, dq, dr
    sd = vol * math.sqrt(t)
    d1 = (math.log(s / k) + (r - q + 0.5 * vol * vol) * t) / sd
    d2 = d1 - sd
    return norm_cdf(d1), norm_cdf(d2), norm_cdf(-d1), norm_cdf(-d2), norm_pdf(d1), dq, dr


def black_scholes(
    spot: float | Decimal,
    strike: float | Decimal,
    t: float,
    rate: float,
    vol: float,
    right: Right | str,
    q: float = 0.0,
) -> float:
    """Black-Scholes-Merton value per share of a European option (see the module docstring;
    intrinsic value at ``t <= 0``, the zero-volatility limit at ``vol <= 0``)."""
    s, k, t, r, vol, right, q = _inputs(spot, strike, t, rate, vol, right, q)
    if t <= 0:
        return max(s - k, 0.0) if right is Right.CALL else max(k - s, 0.0)
    nd1, nd2, nmd1, nmd2, _, dq, dr = _terms(s, k, t, r, vol, q)
    call = s * dq * nd1 - k * dr * nd2
    put = k * dr * nmd2 - s * dq * nmd1
    return max(call if right is Right.CALL else put, 0.0)


def bs_greeks(
    spot: float | Decimal,
    strike: float | Decimal,
    t: float,
    rate: float,
    vol: float,
    right: Right | str,
    q: float = 0.0,
) -> Greeks:
    """The Greeks of :func:`black_scholes` (units in the module docstring).

    At ``t <= 0`` delta is the intrinsic value's slope (1 / -1 in the money, 0 otherwise) and
    the other Greeks are 0; at ``vol <= 0`` they are the zero-volatility limits.
    """
    s, k, t, r, vol, right, q = _inputs(spot, strike, t, rate, vol, right, q)
    call = right is Right.CALL
    if t <= 0:
        if call:
            return Greeks(1.0 if s > k else 0.0, 0.0, 0.0, 0.0, 0.0)
        return Greeks(-1.0 if s < k else 0.0, 0.0, 0.0, 0.0, 0.0)
    nd1, nd2, nmd1, nmd2, pdf, dq, dr = _terms(s, k, t, r, vol, q)
    sqrt_t = math.sqrt(t)
    gamma = dq * pdf / (s * vol * sqrt_t) if vol > 0 else 0.0
    vega = s * dq * pdf * sqrt_t
    decay = -s * dq * pdf * vol / (2.0 * sqrt_t)
    if call:
        delta = dq * nd1
        theta = decay - r * k * dr * nd2 + q * s * dq * nd1
        rho = k * t * dr * nd2
    else:
        delta = -dq * nmd1
        theta = decay + r * k * dr * nmd2 - q * s * dq * nmd1
        rho = -k * t * dr * nmd2
    return Greeks(
        delta=delta,
        gamma=gamma,
        theta=theta / DAYS_PER_YEAR,
        vega=vega * _POINT,
        rho=rho * _POINT,
    )


def _no_arbitrage_bounds(
    s: float, k: float, t: float, r: float, right: Right, q: float
) -> tuple[float, float]:
    lower = black_scholes(s, k, t, r, 0.0, right, q)
    upper = s * math.exp(-q * t) if right is Right.CALL else k * math.exp(-r * t)
    return lower, upper


def implied_volatility(
    price: float | Decimal,
    spot: float | Decimal,
    strike: float | Decimal,
    t: float,
    rate: float,
    right: Right | str,
    q: float = 0.0,
) -> float:
    """The volatility at which :func:`black_scholes` gives ``price``.

    Newton steps kept inside a bisection bracket ``[0, 64]`` (6400 %). Raises
    :class:`ValidationError` when no volatility fits: ``t <= 0``, or a price at or below the
    zero-volatility value (the discounted forward intrinsic) or at or above the no-arbitrage
    ceiling (``S e^-qt`` for a call, ``K e^-rt`` for a put).
    """
    p = _number(price, "price")
    s, k, t, r, _, right, q = _inputs(spot, strike, t, rate, 0.0, right, q)
    if t <= 0:
        raise ValidationError("no implied volatility at or after expiry: the price is intrinsic")
    lower, upper = _no_arbitrage_bounds(s, k, t, r, right, q)
    if not lower < p < upper:
        raise ValidationError(
            f"no volatility fits a {right.value} price of {p:.6g} (spot {s:.6g}, strike {k:.6g}, "
            f"{t:.6g} years): it must lie strictly between {lower:.6g} and {upper:.6g}"
        )
    lo, hi = 0.0, 1.0
    while black_scholes(s, k, t, r, hi, right, q) < p:
        lo, hi = hi, hi * 2.0
        if hi > IV_MAX:
            raise ValidationError(
                f"no volatility up to {IV_MAX:g} reaches a {right.value} price of {p:.6g}"
            )
    tolerance = 1e-13 * max(1.0, s, k)
    x = 0.5 * (lo + hi)
    for _ in range(200):
        diff = black_scholes(s, k, t, r, x, right, q) - p
        if abs(diff) <= tolerance:
            return x
        if diff > 0:
            hi = x
        else:
            lo = x
        if hi - lo <= 1e-15 * max(1.0, hi):
            break
        vega = bs_greeks(s, k, t, r, x, right, q).vega / _POINT
        step = x - diff / vega if vega > 0 else math.nan
        x = step if lo < step < hi else 0.5 * (lo + hi)
    return 0.5 * (lo + hi)


# ---------------------------------------------------------------------------------------------
# Inputs of the quote model
# ---------------------------------------------------------------------------------------------


def realized_volatility(
    closes: Sequence[Decimal | float], periods_per_year: float = 252
) -> float | None:
    """Annualised realized volatility: the sample standard deviation of the log returns of
    ``closes`` (oldest first) times ``sqrt(periods_per_year)`` (252 for daily closes).

    Needs at least 3 closes (2 returns); with fewer it returns ``None`` (no estimate), and
    :func:`option_quote` then uses the model's ``fallback_vol``.
    """
    ppy = _number(periods_per_year, "periods_per_year")
    if ppy <= 0:
        raise ValidationError(f"periods_per_year must be positive, got {periods_per_year}")
    prices = [_number(c, "close") for c in closes]
    if any(c <= 0 for c in prices):
        raise ValidationError("closes must be positive to take log returns")
    if len(prices) < 3:
        return None
    returns = [math.log(b / a) for a, b in pairwise(prices)]
    mean = math.fsum(returns) / len(returns)
    var = math.fsum((x - mean) ** 2 for x in returns) / (len(returns) - 1)
    return math.sqrt(var * ppy)


def time_to_expiry(now: datetime, expiry: date, calendar: ExchangeCalendar) -> float:
    """Years (ACT/365, calendar time) from ``now`` to the close of the ``expiry`` session --
    16:00 New York, or the early close (``calendar.session_close``); 0 at or after it.

    Raises :class:`ValidationError` if ``expiry`` is not a session of the calendar (no contract
    expires on a holiday or a weekend).
    """
    now = utc(now)
    if not calendar.is_session(expiry):
        raise ValidationError(f"{expiry} is not a {calendar.code} session: nothing expires then")
    seconds = (calendar.session_close(expiry) - now).total_seconds()
    return max(seconds, 0.0) / SECONDS_PER_YEAR


def tick_size(underlying: str, price: Decimal, penny_underlyings: Iterable[str]) -> Decimal:
    """Quote increment at ``price``: $0.01 below $3 and $0.05 from $3, or $0.01 at every price
    for ``penny_underlyings``."""
    if underlying in penny_underlyings or price < NICKEL_FROM:
        return PENNY
    return NICKEL


def _floor_to_tick(underlying: str, price: Decimal, penny: frozenset[str]) -> Decimal:
    tick = tick_size(underlying, price, penny)
    return ((price / tick).to_integral_value(ROUND_FLOOR) * tick).quantize(PENNY)


def _ceil_to_tick(underlying: str, price: Decimal, penny: frozenset[str]) -> Decimal:
    tick = tick_size(underlying, price, penny)
    return ((price / tick).to_integral_value(ROUND_CEILING) * tick).quantize(PENNY)


# ---------------------------------------------------------------------------------------------
# Quote model
# ---------------------------------------------------------------------------------------------


def _float_setting(value: Any, name: str, *, low: float | None = None) -> float:
    x = float(to_decimal(value, name))
    if low is not None and x < low:
        raise ValidationError(f"{name} must be at least {low:g}, got {value}")
    return x


@dataclass(frozen=True, slots=True)
class OptionModelConfig:
    """How the simulated options market prices and quotes contracts (module docstring).

    * ``rate`` (0.04) -- risk-free rate, annualised, continuous.
    * ``dividend_yield`` (0) -- the underlying's continuous dividend yield.
    * ``vol_floor`` (0.05) -- lowest implied volatility quoted.
    * ``vol_premium`` (0) -- implied minus realized volatility at the money (0.02 = 2 points).
    * ``skew`` (0.10) -- extra implied volatility per unit of ``|ln(K/S)|``: a strike 10 %
      away from spot gets about +1 vol point.
    * ``fallback_vol`` (0.30) -- stands in for the realized volatility when there is none.
    * ``min_half_spread`` ($0.01) -- narrowest half spread.
    * ``spread_pct_of_premium`` (0.025) -- full spread as a fraction of the theoretical value.
    * ``penny_underlyings`` (SPY, QQQ, IWM) -- quoted in $0.01 at every price.
    """

    rate: float = 0.04
    dividend_yield: float = 0.0
    vol_floor: float = 0.05
    vol_premium: float = 0.0
    skew: float = 0.10
    fallback_vol: float = 0.30
    min_half_spread: Decimal = PENNY
    spread_pct_of_premium: Decimal = Decimal("0.025")
    penny_underlyings: frozenset[str] = PENNY_UNDERLYINGS

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "rate", _float_setting(self.rate, "rate", low=-1.0))
        set_(self, "dividend_yield", _float_setting(self.dividend_yield, "dividend_yield", low=0))
        set_(self, "vol_floor", _float_setting(self.vol_floor, "vol_floor", low=0.001))
        set_(self, "vol_premium", _float_setting(self.vol_premium, "vol_premium", low=-1.0))
        set_(self, "skew", _float_setting(self.skew, "skew", low=0))
        set_(self, "fallback_vol", _float_setting(self.fallback_vol, "fallback_vol", low=0.001))
        half = to_decimal(self.min_half_spread, "min_half_spread")
        if half < PENNY:
            raise ValidationError(f"min_half_spread must be at least $0.01, got {half}")
        pct = to_decimal(self.spread_pct_of_premium, "spread_pct_of_premium")
        if not 0 <= pct < 2:
            raise ValidationError(
                f"spread_pct_of_premium is a fraction of the premium in [0, 2), got {pct}"
            )
        set_(self, "min_half_spread", half)
        set_(self, "spread_pct_of_premium", pct)
        penny = self.penny_underlyings
        if isinstance(penny, str) or not all(isinstance(u, str) for u in penny):
            raise ValidationError("penny_underlyings must be a collection of symbols")
        set_(self, "penny_underlyings", frozenset(u.strip().upper() for u in penny))

    def implied_vol(self, realized_vol: float | None, spot: float, strike: float) -> float:
        """``max(vol_floor, realized + vol_premium + skew * |ln(K/S)|)``."""
        base = self.fallback_vol if realized_vol is None else _number(realized_vol, "realized vol")
        if base < 0:
            raise ValidationError(f"realized volatility must not be negative, got {base}")
        smile = self.skew * abs(math.log(strike / spot))
        return max(self.vol_floor, base + self.vol_premium + smile)


DEFAULT_OPTION_MODEL = OptionModelConfig()


@dataclass(frozen=True, slots=True)
class OptionQuote:
    """A modelled quote of one contract. Money per share, as Decimal: ``bid``/``ask`` on ticks,
    ``mid`` = ``last`` = their average, ``theo`` the model value to $0.0001,
    ``underlying_price`` the spot used. ``iv`` is the annualised volatility priced in,
    ``greeks`` per share (:class:`Greeks`). ``open_interest`` and ``volume`` (contracts) are
    ``None`` when there is no data; ``at`` is the UTC time of the quote."""

    contract: OptionContract
    bid: Decimal
    ask: Decimal
    mid: Decimal
    last: Decimal
    theo: Decimal
    iv: float
    greeks: Greeks
    underlying_price: Decimal
    at: datetime
    open_interest: int | None = None
    volume: int | None = None

    @property
    def symbol(self) -> str:
        return self.contract.symbol

    @property
    def spread(self) -> Decimal:
        return self.ask - self.bid

    @property
    def spread_pct(self) -> Decimal | None:
        """Spread as a fraction of mid; ``None`` when mid is 0."""
        return None if self.mid <= 0 else self.spread / self.mid

    @property
    def delta(self) -> float:
        return self.greeks.delta


def option_quote(
    contract: OptionContract,
    spot: Decimal,
    now: datetime,
    realized_vol: float | None,
    calendar: ExchangeCalendar,
    config: OptionModelConfig = DEFAULT_OPTION_MODEL,
    *,
    open_interest: int | None = None,
    volume: int | None = None,
) -> OptionQuote:
    """Quote ``contract`` with the underlying at ``spot`` at ``now`` (module docstring).

    At or after the expiry close the contract is worth its intrinsic value (t = 0)."""
    spot_d = to_decimal(spot, "spot")
    if spot_d <= 0:
        raise ValidationError(f"spot must be positive, got {spot_d}")
    now = utc(now)
    s, k = float(spot_d), float(contract.strike)
    t = time_to_expiry(now, contract.expiry, calendar)
    iv = config.implied_vol(realized_vol, s, k)
    r, q = config.rate, config.dividend_yield
    value = black_scholes(s, k, t, r, iv, contract.right, q)
    greeks = bs_greeks(s, k, t, r, iv, contract.right, q)
    theo = round_price(Decimal(repr(value)))
    half = max(config.min_half_spread, config.spread_pct_of_premium * theo / 2)
    penny = config.penny_underlyings
    bid = max(_floor_to_tick(contract.underlying, theo - half, penny), ZERO)
    ask = max(_ceil_to_tick(contract.underlying, theo + half, penny), PENNY)
    mid = (bid + ask) / 2
    return OptionQuote(
        contract=contract,
        bid=bid,
        ask=ask,
        mid=mid,
        last=mid,
        theo=theo,
        iv=iv,
        greeks=greeks,
        underlying_price=spot_d,
        at=now,
        open_interest=open_interest,
        volume=volume,
    )


__all__ = [
    "DEFAULT_OPTION_MODEL",
    "Greeks",
    "OptionModelConfig",
    "OptionQuote",
    "black_scholes",
    "bs_greeks",
    "implied_volatility",
    "norm_cdf",
    "norm_pdf",
    "option_quote",
    "realized_volatility",
    "tick_size",
    "time_to_expiry",
]
