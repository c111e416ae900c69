"""Paper before live: live trading stays off until the account has a paper track record.

An admin configures how much paper history is needed (:class:`LiveGateConfig`, by default 5
paper sessions and 20 closed paper trades). :func:`check_live_gate` says whether the history
is enough and, if not, what is missing in words a trader reads ("3 of 5 paper sessions").
:func:`request_go_live` is the switch itself: it also needs an explicit confirmation and a named
person, and returns the :class:`GoLiveRecord` to store, so every switch to live is on record.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from core.domain import ValidationError, utc


def _count(value: Any, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError(f"{name} must be a whole number, got {value!r}")
    if value < minimum:
        raise ValidationError(f"{name} must be at least {minimum}, got {value}")
    return value


@dataclass(frozen=True, slots=True)
class LiveGateConfig:
    """How much paper history live trading needs. Both minimums are at least 1: paper trading
    is a mandatory first step, so the gate cannot be configured away."""

    min_paper_sessions: int = 5
    min_closed_trades: int = 20

    def __post_init__(self) -> None:
        _count(self.min_paper_sessions, "min_paper_sessions", 1)
        _count(self.min_closed_trades, "min_closed_trades", 1)

    def to_dict(self) -> dict[str, int]:
        return {
            "min_paper_sessions": self.min_paper_sessions,
            "min_closed_trades": self.min_closed_trades,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LiveGateConfig:
        unknown = set(data) - {"min_paper_sessions", "min_closed_trades"}
        if unknown:
            raise ValidationError(f"unknown live gate settings: {', '.join(sorted(unknown))}")
        return cls(**data)


@dataclass(frozen=True, slots=True)
class PaperHistory:
    """The account's paper record: sessions traded on paper and paper trades closed."""

    sessions: int
    closed_trades: int

    def __post_init__(self) -> None:
        _count(self.sessions, "paper sessions", 0)
        _count(self.closed_trades, "closed paper trades", 0)


@dataclass(frozen=True, slots=True)
class GateDecision:
    """Whether live trading may be switched on; ``reasons`` lists what is still missing
    (empty when allowed)."""

    allowed: bool
    reasons: list[str] = field(default_factory=list)

    @property
    def message(self) -> str:
        if self.allowed:
            return "the paper history is sufficient for live trading"
        return "live trading needs more paper history: " + ", ".join(self.reasons)


def check_live_gate(history: PaperHistory, config: LiveGateConfig | None = None) -> GateDecision:
    """Compare the paper history with the configured minimums."""
    config = config or LiveGateConfig()
    reasons = []
    if history.sessions < config.min_paper_sessions:
        reasons.append(f"{history.sessions} of {config.min_paper_sessions} paper sessions")
    if history.closed_trades < config.min_closed_trades:
        reasons.append(f"{history.closed_trades} of {config.min_closed_trades} closed paper trades")
    return GateDecision(allowed=not reasons, reasons=reasons)


@dataclass(frozen=True, slots=True)
class GoLiveRecord:
    """Who switched to live trading, when, and on what paper history (stored for audit)."""

    by: str
    at: datetime
    paper_sessions: int
    closed_paper_trades: int
    config: LiveGateConfig

    def to_dict(self) -> dict[str, Any]:
        return {
            "by": self.by,
            "at": self.at.isoformat(),
            "paper_sessions": self.paper_sessions,
            "closed_paper_trades": self.closed_paper_trades,
            "config": self.config.to_dict(),
        }


def request_go_live(
    history: PaperHistory,
    config: LiveGateConfig | None = None,
    *,
    confirmed: bool,
    by: str,
    at: datetime,
) -> GoLiveRecord:
    """Switch to live trading, or raise :class:`ValidationError` saying why not.

    Refused when the paper history is short of the minimums, when ``confirmed`` is not exactly
    ``True`` (a truthy value from a form is not a confirmation), or when no named person asks
    (an empty name or ``system``: going live is never automatic).
    """
    config = config or LiveGateConfig()
    decision = check_live_gate(history, config)
    if not decision.allowed:
        raise ValidationError(decision.message)
    name = by.strip() if isinstance(by, str) else ""
    if not name or name.lower() == "system":
        raise ValidationError("switching to live trading must be requested by a named person")
    if confirmed is not True:
        raise ValidationError("switching to live trading needs an explicit confirmation")
    return GoLiveRecord(
        by=name,
        at=utc(at),
        paper_sessions=history.sessions,
        closed_paper_trades=history.closed_trades,
        config=config,
    )


__all__ = [
    "GateDecision",
    "GoLiveRecord",
    "LiveGateConfig",
    "PaperHistory",
    "check_live_gate",
    "request_go_live",
]
