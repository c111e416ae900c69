"""The kill switch (seed 001 "Kill Switch"): when to halt, what halting does, and the latch.

Pure logic. The executor calls :meth:`KillSwitch.check` after marking to market, applies the
:class:`KillSwitchActions` of an activation (cancel working entry orders, close day-trade and
scalp positions, alert) and persists the returned :class:`~core.domain.KillSwitchState`.

Triggers, checked in the seed's order (the first that holds gives the reason):

1. daily loss at or beyond ``daily_loss_limit`` of the day's starting equity;
2. a manual halt requested from the dashboard (its reason is passed in);
3. broker connectivity lost for more than ``disconnect_timeout``;
4. equity below ``min_equity`` (PDT);
5. the last ``consecutive_losses`` closed trades each lost more than ``consecutive_loss_pct`` of
   their cost (the trade's own return, as ``trade_executions.pnl_pct``);
6. optionally, equity ``max_drawdown`` or more below its peak.

Once active the switch stays active (latched) until a named person releases it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import NamedTuple

from core.domain import (
    KillSwitchState,
    TradeType,
    ValidationError,
    optional_positive,
    positive,
    to_decimal,
    utc,
)
from core.risk.config import RiskProfile
from core.risk.model import money, pct, seconds_text

#: ``by`` of activations the engine makes itself; it may never release the switch.
SYSTEM_ACTOR = "system"


class Trigger(StrEnum):
    DAILY_LOSS = "daily_loss"
    MANUAL = "manual"
    BROKER_DISCONNECTED = "broker_disconnected"
    MIN_EQUITY = "min_equity"
    CONSECUTIVE_LOSSES = "consecutive_losses"
    DRAWDOWN = "drawdown"


@dataclass(frozen=True, slots=True)
class KillSwitchConfig:
    """Trigger thresholds; defaults are seed 001's (``ExecutorConfig`` kill switch section)."""

    daily_loss_limit: Decimal = Decimal("0.10")
    disconnect_timeout: timedelta = timedelta(seconds=60)
    min_equity: Decimal = Decimal(25_000)
    consecutive_losses: int = 3
    consecutive_loss_pct: Decimal = Decimal("0.03")
    #: Drawdown from peak equity that halts trading; ``None`` turns the trigger off.
    max_drawdown: Decimal | None = None

    def __post_init__(self) -> None:
        for name in ("daily_loss_limit", "consecutive_loss_pct"):
            value = to_decimal(getattr(self, name), name)
            if not 0 < value <= 1:
                raise ValidationError(f"{name} must be above 0 and at most 1, got {value}")
            object.__setattr__(self, name, value)
        if self.max_drawdown is not None:
            dd = to_decimal(self.max_drawdown, "max_drawdown")
            if not 0 < dd <= 1:
                raise ValidationError(f"max_drawdown must be above 0 and at most 1, got {dd}")
            object.__setattr__(self, "max_drawdown", dd)
        minimum = to_decimal(self.min_equity, "min_equity")
        if minimum < 0:
            raise ValidationError(f"min_equity must not be negative, got {minimum}")
        object.__setattr__(self, "min_equity", minimum)
        if not isinstance(self.disconnect_timeout, timedelta) or self.disconnect_timeout <= (
            timedelta(0)
        ):
            raise ValidationError("disconnect_timeout must be a positive duration")
        n = self.consecutive_losses
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValidationError(f"consecutive_losses must be an integer of at least 1, got {n!r}")

    @classmethod
    def from_profile(cls, profile: RiskProfile, *, drawdown: bool = True) -> KillSwitchConfig:
        """Thresholds matching a risk profile (daily loss, minimum equity, optionally drawdown)."""
        return cls(
            daily_loss_limit=profile.daily_loss_limit,
            min_equity=profile.min_account_equity,
            max_drawdown=profile.max_drawdown if drawdown else None,
        )


@dataclass(frozen=True)
class KillSwitchInputs:
    """What the triggers look at, gathered by the executor after marking to market.

    ``daily_pnl`` is realized plus unrealized P&L of the session (``None``: equity minus starting
    equity). ``recent_trade_returns`` are closed trades' returns as fractions of their cost
    (``Decimal("-0.035")``), oldest first. ``manual_request`` is the reason a trader gave when
    asking to halt.
    """

    equity: Decimal
    starting_equity: Decimal
    daily_pnl: Decimal | None = None
    disconnected_since: datetime | None = None
    recent_trade_returns: Sequence[Decimal] = ()
    peak_equity: Decimal | None = None
    manual_request: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "equity", to_decimal(self.equity, "equity"))
        object.__setattr__(
            self, "starting_equity", positive(self.starting_equity, "starting_equity")
        )
        pnl = self.equity - self.starting_equity if self.daily_pnl is None else self.daily_pnl
        object.__setattr__(self, "daily_pnl", to_decimal(pnl, "daily_pnl"))
        if self.disconnected_since is not None:
            object.__setattr__(self, "disconnected_since", utc(self.disconnected_since))
        returns = tuple(to_decimal(r, "trade return") for r in self.recent_trade_returns)
        object.__setattr__(self, "recent_trade_returns", returns)
        object.__setattr__(self, "peak_equity", optional_positive(self.peak_equity, "peak_equity"))


@dataclass(frozen=True, slots=True)
class KillSwitchActions:
    """What the executor does when the switch trips.

    Working entry orders are cancelled; exit orders (stops, targets) of positions that stay open
    are kept, so swing positions stay protected. Positions of ``close_trade_types`` are closed.
    No new entries are taken until a person releases the switch.
    """

    alert: str
    cancel_entry_orders: bool = True
    keep_protective_orders: bool = True
    close_trade_types: frozenset[TradeType] = field(
        default_factory=lambda: frozenset({TradeType.DAY, TradeType.SCALP})
    )
    block_new_entries: bool = True

    def positions_to_close(self, trade_type_of: Mapping[str, TradeType]) -> list[str]:
        """Symbols (sorted) whose open trade is of a type the activation closes."""
        return sorted(s for s, t in trade_type_of.items() if t in self.close_trade_types)

    def describe(self) -> list[str]:
        """The actions in words, for the journal and the alert."""
        out: list[str] = []
        if self.block_new_entries:
            out.append("block new entries")
        if self.cancel_entry_orders:
            out.append("cancel open entry orders")
        if self.keep_protective_orders:
            out.append("keep stop and target orders of positions left open")
        kinds = "/".join(sorted(t.value for t in self.close_trade_types))
        if kinds:
            out.append(f"close {kinds} positions")
        out.append(f"alert: {self.alert}")
        return out


class Activation(NamedTuple):
    """The latched state to persist and the actions to apply."""

    state: KillSwitchState
    actions: KillSwitchActions
    #: False when the switch was already on (the first reason is kept).
    newly_active: bool


class KillSwitch:
    """Evaluates the triggers and keeps the latched state (seed 001 ``KillSwitch``)."""

    def __init__(
        self, config: KillSwitchConfig | None = None, state: KillSwitchState | None = None
    ):
        self.config = config or KillSwitchConfig()
        self._state = state or KillSwitchState(active=False)

    @property
    def state(self) -> KillSwitchState:
        return self._state

    @property
    def active(self) -> bool:
        return self._state.active

    def triggers(self, inputs: KillSwitchInputs, now: datetime) -> list[tuple[Trigger, str]]:
        """Every trigger that holds, in check order, each with its reason."""
        now = utc(now)
        c = self.config
        out: list[tuple[Trigger, str]] = []
        pnl = inputs.daily_pnl
        assert pnl is not None
        limit = c.daily_loss_limit * inputs.starting_equity
        if -pnl >= limit:
            out.append(
                (
                    Trigger.DAILY_LOSS,
                    f"daily loss {money(-pnl)} reached {pct(c.daily_loss_limit)} of starting "
                    f"equity {money(inputs.starting_equity)} (limit {money(limit)})",
                )
            )
        if inputs.manual_request is not None:
            out.append((Trigger.MANUAL, f"manual halt: {inputs.manual_request or 'no reason'}"))
        since = inputs.disconnected_since
        if since is not None and now - since > c.disconnect_timeout:
            out.append(
                (
                    Trigger.BROKER_DISCONNECTED,
                    f"broker connection lost for {seconds_text(now - since)} s "
                    f"(limit {seconds_text(c.disconnect_timeout)} s)",
                )
            )
        if inputs.equity < c.min_equity:
            out.append(
                (
                    Trigger.MIN_EQUITY,
                    f"equity {money(inputs.equity)} fell below {money(c.min_equity)} (PDT)",
                )
            )
        last = inputs.recent_trade_returns[-c.consecutive_losses :]
        if len(last) == c.consecutive_losses and all(r < -c.consecutive_loss_pct for r in last):
            out.append(
                (
                    Trigger.CONSECUTIVE_LOSSES,
                    f"{c.consecutive_losses} consecutive losing trades each lost more than "
                    f"{pct(c.consecutive_loss_pct)}: {', '.join(pct(r) for r in last)}",
                )
            )
        peak = inputs.peak_equity
        if c.max_drawdown is not None and peak is not None:
            dd = (peak - inputs.equity) / peak
            if peak - inputs.equity >= c.max_drawdown * peak:
                out.append(
                    (
                        Trigger.DRAWDOWN,
                        f"equity {money(inputs.equity)} is {pct(dd.quantize(Decimal('0.0001')))} "
                        f"below its peak {money(peak)} (limit {pct(c.max_drawdown)})",
                    )
                )
        return out

    def check(self, inputs: KillSwitchInputs, now: datetime) -> str | None:
        """The reason of the first trigger that holds, or ``None``."""
        found = self.triggers(inputs, now)
        return found[0][1] if found else None

    def activate(self, reason: str, now: datetime, by: str = SYSTEM_ACTOR) -> Activation:
        """Latch the switch on. Activating an active switch keeps its first reason and time."""
        if not reason or not reason.strip():
            raise ValidationError("the kill switch needs a reason to activate")
        if not by or not by.strip():
            raise ValidationError("the kill switch needs to know who activates it")
        newly = not self._state.active
        if newly:
            self._state = KillSwitchState(active=True, reason=reason, at=utc(now), by=by)
        actions = KillSwitchActions(alert=f"kill switch on: {self._state.reason}")
        return Activation(self._state, actions, newly)

    def evaluate(self, inputs: KillSwitchInputs, now: datetime) -> Activation | None:
        """Check the triggers and latch on the first that holds; ``None`` when none holds."""
        reason = self.check(inputs, now)
        return None if reason is None else self.activate(reason, now, SYSTEM_ACTOR)

    def deactivate(self, by: str, reason: str, now: datetime) -> KillSwitchState:
        """Release the switch. Only a named person may: the engine never releases it itself, under
        its own actor name in any letter case."""
        if not by or not by.strip() or by.strip().casefold() == SYSTEM_ACTOR:
            raise ValidationError("only a named person can release the kill switch")
        if not reason or not reason.strip():
            raise ValidationError("releasing the kill switch needs a reason")
        if not self._state.active:
            raise ValidationError("the kill switch is not on")
        self._state = KillSwitchState(active=False, reason=reason, at=utc(now), by=by)
        return self._state
