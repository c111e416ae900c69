"""Keys of the versioned ``settings`` table that the engine itself owns."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from core.domain import KillSwitchState
from core.ports import SettingValue

KILL_SWITCH_KEY = "kill_switch"
#: Whether a live account trades live: ``{"live": bool, "by", "at", ...}`` (the go-live record
#: when switched on). Written only by the ``go_live`` / ``go_paper`` commands.
LIVE_KEY = "broker.live"


def kill_switch_value(state: KillSwitchState) -> dict[str, Any]:
    return {
        "active": state.active,
        "reason": state.reason,
        "at": state.at.isoformat() if state.at else None,
        "by": state.by,
    }


def kill_switch_from_value(setting: SettingValue | None) -> KillSwitchState:
    """The latched kill switch as stored; off when it was never set."""
    if setting is None or not isinstance(setting.value, dict):
        return KillSwitchState(active=False)
    v = setting.value
    at = datetime.fromisoformat(v["at"]) if v.get("at") else None
    return KillSwitchState(bool(v.get("active")), v.get("reason"), at, v.get("by"))


def live_from_value(setting: SettingValue | None) -> bool:
    """Whether live trading was switched on (off when never set)."""
    if setting is None:
        return False
    value = setting.value
    if isinstance(value, dict):
        return value.get("live") is True
    return value is True
