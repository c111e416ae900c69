"""Executor configuration: frozen, typed, validated, with the seeds' numbers as defaults.

Settings the dashboard may change at run time are listed in :data:`RUNTIME_SETTINGS` with their
validators; an ``update_setting`` command for any other key is rejected with a reason.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from typing import Any

from core.brokers.paper_config import (
    COMMISSION_KEY,
    IMPACT_KEY,
    LATENCY_KEY,
    PARTICIPATION_KEY,
    commission_from_setting,
)
from core.brokers.rate_limit import RateLimitConfig
from core.domain import ValidationError, positive, to_decimal
from core.exits.model import ExitConfig
from core.instruments.config import InstrumentConfig
from core.instruments.modes import InstrumentMode
from core.live_gate import LiveGateConfig
from core.options.stage import OptionsConfig
from core.rebalance.targets import TargetPortfolio
from core.rebalance.triggers import TriggerConfig
from core.risk.config import AGGRESSIVE, RiskProfile, validate_profile_setting
from core.risk.kill_switch import KillSwitchConfig


@dataclass(frozen=True, slots=True)
class ExecutorConfig:
    """How the executor runs. Risk limits and sizing arrive with the risk gate and sizer."""

    account: str = "paper-default"
    #: Pause between ticks when there is nothing to do; a command wakes the loop at once.
    tick_interval: timedelta = timedelta(milliseconds=250)
    #: At most this many pending signals are taken per tick (one write-ahead transaction).
    max_signals_per_tick: int = 200
    #: Quantity used when a signal carries none and no sizer is configured.
    default_qty: Decimal = Decimal(10)
    #: Leader lease: renewed every tick; a standby takes over once it has expired.
    lease_ttl: timedelta = timedelta(seconds=10)
    lease_renew_every: timedelta = timedelta(seconds=2)
    #: Reconcile positions and open orders with the broker every N leader ticks (and at start).
    reconcile_every_ticks: int = 240
    #: Mark to market (positions, daily P&L) at most this often.
    mark_interval: timedelta = timedelta(seconds=1)
    #: Store housekeeping (the SQLite WAL checkpoint) between ticks at most this often.
    checkpoint_interval: timedelta = timedelta(seconds=1)
    # -- the trading pipeline (seed 001 ExecutorConfig): every stage reads its parameters here
    #: What signals trade: options, leveraged ETFs or both (the seed's routing table).
    instrument_mode: InstrumentMode = InstrumentMode.BOTH
    #: Risk limits and sizing: the aggressive (seed 001) or conservative (seed 000) profile.
    risk: RiskProfile = AGGRESSIVE
    #: The ETF catalog choices: liquidity floor, leverage by trade type, sector overrides.
    instruments: InstrumentConfig = field(default_factory=InstrumentConfig)
    #: The exit rules: 2R target, time stop, EOD close, clouds, ETF holding limits.
    exits: ExitConfig = field(default_factory=ExitConfig)
    #: Options for scalps: contract selection, premium-at-risk sizing, premium stop and target.
    options: OptionsConfig = field(default_factory=OptionsConfig)
    #: Kill switch thresholds; ``None`` derives them from the risk profile.
    kill_switch: KillSwitchConfig | None = None
    #: Entries go in in two parts (the rest on the first pullback that holds).
    scale_in: bool = True
    scale_in_fraction: Decimal = Decimal("0.5")
    #: New-risk orders per minute per account (seed 000 security: 10); exits, cancels and the
    #: kill switch's orders are never throttled. The ``orders.rate_limit`` setting replaces it.
    order_rate: RateLimitConfig = field(default_factory=RateLimitConfig)
    #: The broker account trades real money (Alpaca's live endpoint, an IB live port). Until an
    #: admin switches it to live trading behind the paper-history gate, new-risk orders on it
    #: are refused with that reason (exits and the kill switch's orders still go out).
    live_account: bool = False

    def __post_init__(self) -> None:
        if not self.account or not self.account.replace("-", "").replace("_", "").isalnum():
            raise ValidationError("account must be a non-empty name of letters, digits, - and _")
        if self.tick_interval <= timedelta(0):
            raise ValidationError("tick_interval must be positive")
        if not 1 <= self.max_signals_per_tick <= 10_000:
            raise ValidationError("max_signals_per_tick must be between 1 and 10000")
        object.__setattr__(self, "default_qty", positive(self.default_qty, "default_qty"))
        if self.lease_ttl <= timedelta(0) or self.lease_renew_every <= timedelta(0):
            raise ValidationError("lease_ttl and lease_renew_every must be positive")
        if self.lease_renew_every * 2 > self.lease_ttl:
            raise ValidationError("lease_renew_every must be at most half of lease_ttl")
        if self.reconcile_every_ticks < 1:
            raise ValidationError("reconcile_every_ticks must be at least 1")
        object.__setattr__(self, "instrument_mode", InstrumentMode(self.instrument_mode))
        for name, kind in (
            ("risk", RiskProfile),
            ("instruments", InstrumentConfig),
            ("exits", ExitConfig),
        ):
            if not isinstance(getattr(self, name), kind):
                raise ValidationError(f"{name} must be a {kind.__name__}")
        if not isinstance(self.order_rate, RateLimitConfig):
            raise ValidationError("order_rate must be a RateLimitConfig")
        if self.kill_switch is not None and not isinstance(self.kill_switch, KillSwitchConfig):
            raise ValidationError("kill_switch must be a KillSwitchConfig or None")
        fraction = to_decimal(self.scale_in_fraction, "scale_in_fraction")
        if not 0 < fraction <= 1:
            raise ValidationError(
                f"scale_in_fraction must be above 0 and at most 1, got {fraction}"
            )
        object.__setattr__(self, "scale_in_fraction", fraction)

    @property
    def kill_switch_config(self) -> KillSwitchConfig:
        """The kill switch thresholds: as configured, else the risk profile's."""
        return self.kill_switch or KillSwitchConfig.from_profile(self.risk)

    @property
    def lease_name(self) -> str:
        return f"executor:{self.account}"


def _positive_decimal(value: Any) -> str:
    return str(positive(value, "value"))


def _int_between(lo: int, hi: int) -> Callable[[Any], int]:
    def check(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int | str):
            raise ValidationError(f"value must be an integer between {lo} and {hi}")
        try:
            n = int(value)
        except ValueError:
            raise ValidationError(f"value must be an integer between {lo} and {hi}") from None
        if not lo <= n <= hi:
            raise ValidationError(f"value must be between {lo} and {hi}, got {n}")
        return n

    return check


def _instrument_mode(value: Any) -> str:
    try:
        return InstrumentMode(value).value
    except (ValueError, TypeError):
        known = ", ".join(m.value for m in InstrumentMode)
        raise ValidationError(f"unknown instrument mode {value!r}; known modes: {known}") from None


#: Keys an ``update_setting`` command may change, each with a validator returning the stored value.
#: ``executor.instrument_mode`` and ``risk.profile`` take effect when the executor runs the full
#: pipeline; a profile is stored as its full field dict (given by name, or as an edited profile
#: whose missing fields come from the shipped profile it names, else the aggressive one).
def _boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValidationError(f"expected true or false, got {value!r}")
    return value


def _target_portfolio(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ValidationError("rebalance targets must be an object with kind and values")
    return TargetPortfolio.from_dict(value).to_dict()


def _trigger_config(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ValidationError("trigger settings must be an object")
    return TriggerConfig.from_dict(value).to_dict()


#: Most symbols a watchlist may hold (each is scanned every few market minutes).
MAX_WATCHLIST = 50
_SYMBOL = re.compile(r"^[A-Z][A-Z0-9.]{0,9}$")


def _watchlist(value: Any) -> list[str]:
    """Symbols as a list or a comma-separated string; upper-cased, de-duplicated, in order."""
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list | tuple):
        raise ValidationError("the watchlist must be a list of symbols")
    symbols: list[str] = []
    bad: list[str] = []
    for item in items:
        symbol = str(item).strip().upper()
        if not symbol:
            continue
        if not _SYMBOL.match(symbol):
            bad.append(repr(str(item)))
        elif symbol not in symbols:
            symbols.append(symbol)
    if bad:
        raise ValidationError(f"not a symbol: {', '.join(bad)}")
    if not symbols:
        raise ValidationError("the watchlist needs at least one symbol")
    if len(symbols) > MAX_WATCHLIST:
        raise ValidationError(f"the watchlist may hold at most {MAX_WATCHLIST} symbols")
    return symbols


#: Bounds of the paper broker's run-time fill settings (wide, but they catch typing slips).
MAX_IMPACT_BPS_PER_PCT_ADV = Decimal(1000)
MAX_PAPER_LATENCY_MS = 600_000


def _participation_rate(value: Any) -> str:
    """A fraction of each 1-minute bar's volume: above 0 (nothing would ever fill) up to 1."""
    d = to_decimal(value, "participation rate")
    if not 0 < d <= 1:
        raise ValidationError(f"participation rate must be above 0 and at most 1, got {d}")
    return str(d)


def _impact_bps(value: Any) -> str:
    d = to_decimal(value, "impact")
    if not 0 <= d <= MAX_IMPACT_BPS_PER_PCT_ADV:
        raise ValidationError(
            f"impact must be between 0 and {MAX_IMPACT_BPS_PER_PCT_ADV} bps per 1 % of ADV, got {d}"
        )
    return str(d)


def _latency_ms(value: Any) -> int:
    return _int_between(0, MAX_PAPER_LATENCY_MS)(value)


def _commission(value: Any) -> dict[str, Any]:
    return commission_from_setting(value).to_dict()


def _rate_limit(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ValidationError("the order rate limit must be an object (max_orders, ...)")
    return RateLimitConfig.from_dict(value).to_dict()


def _live_gate(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ValidationError("the live gate must be an object (min_paper_sessions, ...)")
    return LiveGateConfig.from_dict(value).to_dict()


#: Settings only an admin may change (the brokers, the live gate and the order-rate limit).
RATE_LIMIT_KEY = "orders.rate_limit"
LIVE_GATE_KEY = "live.gate"
ADMIN_SETTINGS = frozenset({RATE_LIMIT_KEY, LIVE_GATE_KEY})


RUNTIME_SETTINGS: dict[str, Callable[[Any], Any]] = {
    #: The symbols the signal scan watches (the demo's EMA-cloud source reads it every scan).
    "signals.watchlist": _watchlist,
    "executor.default_qty": _positive_decimal,
    "executor.max_signals_per_tick": _int_between(1, 10_000),
    "executor.instrument_mode": _instrument_mode,
    # The paper broker's fills, applied by the executor to the running paper broker (a command
    # for them is rejected on an executor whose broker does not take them).
    PARTICIPATION_KEY: _participation_rate,
    IMPACT_KEY: _impact_bps,
    LATENCY_KEY: _latency_ms,
    COMMISSION_KEY: _commission,
    "risk.profile": validate_profile_setting,
    #: Plans execute without a person's approval only while this is true (seed 000 security).
    "rebalance.autonomous": _boolean,
    "rebalance.targets": _target_portfolio,
    "rebalance.triggers": _trigger_config,
    #: New-risk orders per window (exits and kill-switch orders are never throttled).
    RATE_LIMIT_KEY: _rate_limit,
    #: The paper history live trading needs (at least one session and one trade: it cannot be
    #: configured away).
    LIVE_GATE_KEY: _live_gate,
}


@dataclass(frozen=True, slots=True)
class SettingChange:
    key: str
    value: Any = field(default=None)


def validate_setting(key: Any, value: Any) -> Any:
    """Return the value to store for ``key`` or raise :class:`ValidationError`."""
    if not isinstance(key, str) or key not in RUNTIME_SETTINGS:
        known = ", ".join(sorted(RUNTIME_SETTINGS))
        raise ValidationError(f"unknown setting {key!r}; known settings: {known}")
    return RUNTIME_SETTINGS[key](value)
