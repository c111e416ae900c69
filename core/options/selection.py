"""Which contract a scalp signal buys.

Rules (:func:`select_contract`):

1. **Right.** Calls for a bullish signal, puts for a bearish one (long options only).
2. **Session.** The session ``now`` falls in; outside sessions, the next one.
3. **Expiries considered**, nearest first: the listed expiries (:func:`core.options.chain.expiries`)
   from the session up to ``max_dte`` calendar days after it whose close is still ahead.
   The session's own expiry (0DTE) is skipped when ``now`` is closer to that session's close
   than ``zero_dte_cutoff`` -- measured against the real close, so on an early-close day
   (13:00 New York) the cutoff runs from 13:00. The next listed expiry is then the session after
   for the daily-expiry underlyings (SPY, QQQ, IWM) and the weekly Friday (or the Thursday
   before a Friday holiday) for the others.
4. **Liquidity.** A contract is kept when its open interest is at least ``min_open_interest``,
   its volume at least ``min_volume`` and its spread at most ``max_spread_pct`` of its mid.
   Missing data (``open_interest`` / ``volume`` of ``None``) is not filtered; a contract with
   no mid (bid and ask 0) is. When an expiry has no liquid contract of the right, the next
   expiry is tried, and the reason says so.
5. **Strike.** With no ``target_delta``, the at-the-money contract: the liquid strike nearest
   spot; a tie goes to the cheaper contract (lower ask -- the higher strike for calls, the
   lower for puts). With a ``target_delta``, the liquid contract whose ``|delta|`` is nearest
   it; ties again to the cheaper one.

``dte`` and the expiry kind (``"0DTE"``, ``"1DTE"``, ``"{n}DTE"``) count calendar days from the
session to the expiry, as :meth:`OptionContract.days_to_expiry` does: on a Friday, SPY's Monday
expiry is ``"3DTE"``.

Nothing suitable raises :class:`NoContract` (a :class:`ValidationError`) whose message lists
every expiry considered and why it was passed over.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING

from core.domain import ValidationError, positive, to_decimal, to_duration, to_int, utc
from core.marketdata.calendar import EASTERN
from core.options.chain import DAILY_EXPIRY_UNDERLYINGS, expiries, normalize_underlying
from core.options.occ import OptionContract, Right
from core.options.pricing import OptionQuote

if TYPE_CHECKING:
    from core.marketdata.calendar import ExchangeCalendar

#: Quotes of one expiry of the underlying being selected (both rights may be included).
QuotesForExpiry = Callable[[date], Sequence[OptionQuote]]


class NoContract(ValidationError):
    """No contract can be traded for the signal; the message says why."""


@dataclass(frozen=True, slots=True)
class ContractSelectionConfig:
    """How :func:`select_contract` chooses (module docstring).

    * ``target_delta`` (None) -- wanted ``|delta|`` in (0, 1); ``None`` buys at the money.
    * ``min_open_interest`` (100) -- contracts; 0 turns the filter off.
    * ``min_volume`` (0) -- contracts traded today; 0 turns the filter off.
    * ``max_spread_pct`` (0.10) -- widest spread as a fraction of mid.
    * ``zero_dte_cutoff`` (30 minutes) -- no 0DTE when the expiry session's close is nearer.
    * ``max_dte`` (7) -- furthest expiry considered, in calendar days.
    """

    target_delta: Decimal | None = None
    min_open_interest: int = 100
    min_volume: int = 0
    max_spread_pct: Decimal = Decimal("0.10")
    zero_dte_cutoff: timedelta = timedelta(minutes=30)
    max_dte: int = 7

    def __post_init__(self) -> None:
        if self.target_delta is not None:
            target = to_decimal(self.target_delta, "target_delta")
            if not 0 < target < 1:
                raise ValidationError(
                    f"target_delta is an absolute delta between 0 and 1, got {target}"
                )
            object.__setattr__(self, "target_delta", target)
        for name in ("min_open_interest", "min_volume", "max_dte"):
            value = to_int(getattr(self, name), name)
            if value < 0:
                raise ValidationError(f"{name} must not be negative, got {value}")
            object.__setattr__(self, name, value)
        pct = positive(self.max_spread_pct, "max_spread_pct")
        object.__setattr__(self, "max_spread_pct", pct)
        cutoff = to_duration(self.zero_dte_cutoff, "zero_dte_cutoff", allow_zero=True)
        if cutoff < timedelta(0):
            raise ValidationError(f"zero_dte_cutoff must not be negative, got {cutoff}")
        object.__setattr__(self, "zero_dte_cutoff", cutoff)


DEFAULT_SELECTION = ContractSelectionConfig()


@dataclass(frozen=True, slots=True)
class Selection:
    """The chosen contract's quote, how far its expiry is (``dte`` calendar days, ``expiry_kind``
    ``"0DTE"`` / ``"1DTE"`` / ``"{n}DTE"``), whether a nearer expiry was passed over
    (``fell_back``) and a ``reason`` listing what was considered and filtered."""

    quote: OptionQuote
    expiry_kind: str
    dte: int
    fell_back: bool
    reason: str

    @property
    def contract(self) -> OptionContract:
        return self.quote.contract


def trading_session(now: datetime, calendar: ExchangeCalendar) -> date:
    """The session ``now`` is in, or the next session when the market is closed."""
    now = utc(now)
    session = calendar.session_date(now)
    if session is None:
        session = calendar.session_date(calendar.next_open(now))
    if session is None:  # pragma: no cover - an open is always inside its session
        raise NoContract(f"no session at or after {now:%Y-%m-%d %H:%M} UTC")
    return session


def _money(value: Decimal) -> str:
    return f"${value:,.2f}"


def _pct(value: Decimal) -> str:
    return f"{(value * 100).normalize():f}%"


def _duration(value: timedelta) -> str:
    minutes = int(value.total_seconds() // 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes} min"


def _liquidity(
    quotes: Sequence[OptionQuote], config: ContractSelectionConfig
) -> tuple[list[OptionQuote], list[str]]:
    """The liquid quotes and what the filters removed (phrases for the reason)."""
    liquid: list[OptionQuote] = []
    low_oi = low_volume = wide = no_market = 0
    for q in quotes:
        if q.open_interest is not None and q.open_interest < config.min_open_interest:
            low_oi += 1
        elif q.volume is not None and q.volume < config.min_volume:
            low_volume += 1
        elif q.spread_pct is None:
            no_market += 1
        elif q.spread_pct > config.max_spread_pct:
            wide += 1
        else:
            liquid.append(q)
    removed = []
    if low_oi:
        removed.append(f"{low_oi} below open interest {config.min_open_interest}")
    if low_volume:
        removed.append(f"{low_volume} below volume {config.min_volume}")
    if wide:
        removed.append(f"{wide} with a spread above {_pct(config.max_spread_pct)} of mid")
    if no_market:
        removed.append(f"{no_market} with no bid or ask")
    return liquid, removed


def _cheaper_key(q: OptionQuote) -> tuple[Decimal, Decimal]:
    # Equal asks: the further out-of-the-money strike (higher for calls, lower for puts).
    strike = q.contract.strike
    return q.ask, -strike if q.contract.right is Right.CALL else strike


def _pick(
    liquid: list[OptionQuote], spot: Decimal, config: ContractSelectionConfig
) -> tuple[OptionQuote, str]:
    if config.target_delta is None:
        best = min(liquid, key=lambda q: (abs(q.contract.strike - spot), *_cheaper_key(q)))
        return best, f"at the money (spot {_money(spot)})"
    target = float(config.target_delta)
    best = min(liquid, key=lambda q: (abs(abs(q.greeks.delta) - target), *_cheaper_key(q)))
    return best, f"|delta| {abs(best.greeks.delta):.2f} nearest the target {config.target_delta}"


def select_contract(
    underlying: str,
    bullish: bool,
    spot: Decimal,
    now: datetime,
    calendar: ExchangeCalendar,
    quotes_for_expiry: QuotesForExpiry,
    config: ContractSelectionConfig = DEFAULT_SELECTION,
) -> Selection:
    """The contract a scalp signal on ``underlying`` buys (module docstring), or
    :class:`NoContract` with the reason."""
    if not isinstance(bullish, bool):
        raise ValidationError(f"bullish must be true or false, got {bullish!r}")
    name = normalize_underlying(underlying)
    spot_d = positive(spot, "spot")
    now = utc(now)
    right = Right.CALL if bullish else Right.PUT
    session = trading_session(now, calendar)
    view = "bullish" if bullish else "bearish"
    notes: list[str] = [f"{name} {view}: buying {right.value}s, spot {_money(spot_d)}"]

    listed = expiries(name, session, calendar, config.max_dte)
    candidates = [e for e in listed if calendar.session_close(e) > now]
    if not candidates:
        kind = "every session" if name in DAILY_EXPIRY_UNDERLYINGS else "weekly"
        notes.append(
            f"no {name} expiry ({kind}) open between {session} and {config.max_dte} days later"
        )
        raise NoContract("; ".join(notes))

    passed_over = examined = False
    for expiry in candidates:
        dte = (expiry - session).days
        kind = f"{dte}DTE"
        close = calendar.session_close(expiry)
        if expiry == session:
            left = close - now
            if left < config.zero_dte_cutoff:
                close_et = close.astimezone(EASTERN)
                notes.append(
                    f"0DTE {expiry} skipped: {_duration(left)} to the "
                    f"{close_et:%H:%M} ET close is inside the "
                    f"{_duration(config.zero_dte_cutoff)} cutoff"
                )
                passed_over = True
                continue
        examined = True
        quotes = [
            q
            for q in quotes_for_expiry(expiry)
            if q.contract.right is right
            and q.contract.expiry == expiry
            and q.contract.underlying == name
        ]
        if not quotes:
            notes.append(f"{kind} {expiry}: no {right.value}s quoted; trying the next expiry")
            passed_over = True
            continue
        liquid, removed = _liquidity(quotes, config)
        if not liquid:
            notes.append(
                f"{kind} {expiry}: none of {len(quotes)} {right.value}s liquid "
                f"({', '.join(removed)}); trying the next expiry"
            )
            passed_over = True
            continue
        chosen, why = _pick(liquid, spot_d, config)
        filtered = f", {', '.join(removed)} filtered out" if removed else ""
        fallback = " (fallback)" if passed_over else ""
        notes.append(
            f"{kind}{fallback} {expiry}: {len(quotes)} {right.value}s{filtered}; chose "
            f"{chosen.contract} {why}, bid {_money(chosen.bid)} ask {_money(chosen.ask)}"
        )
        return Selection(chosen, kind, dte, passed_over, "; ".join(notes))
    if examined:
        notes.append(f"no liquid {right.value} within {config.max_dte} days")
    else:
        notes.append(f"no later {name} expiry within {config.max_dte} days")
    raise NoContract("; ".join(notes))


def quotes_by_expiry(quotes: Sequence[OptionQuote]) -> QuotesForExpiry:
    """A :data:`QuotesForExpiry` over a fixed list of quotes (tests, recorded chains)."""
    by_expiry: dict[date, list[OptionQuote]] = {}
    for q in quotes:
        by_expiry.setdefault(q.contract.expiry, []).append(q)

    def lookup(expiry: date) -> list[OptionQuote]:
        return list(by_expiry.get(expiry, ()))

    return lookup


__all__ = [
    "DEFAULT_SELECTION",
    "ContractSelectionConfig",
    "NoContract",
    "QuotesForExpiry",
    "Selection",
    "quotes_by_expiry",
    "select_contract",
    "trading_session",
]
