"""Pre-trade risk: profiles, the risk gate and the kill switch."""

from core.risk.config import (
    AGGRESSIVE,
    CONSERVATIVE,
    PROFILES,
    RiskProfile,
    profile_named,
    validate_profile_setting,
)
from core.risk.gate import RiskGate
from core.risk.kill_switch import (
    Activation,
    KillSwitch,
    KillSwitchActions,
    KillSwitchConfig,
    KillSwitchInputs,
    Trigger,
)
from core.risk.model import (
    CheckName,
    CheckResult,
    OrderFingerprint,
    RiskDecision,
    RiskSnapshot,
    TradeIntent,
    WorkingOrder,
)

__all__ = [
    "AGGRESSIVE",
    "CONSERVATIVE",
    "PROFILES",
    "Activation",
    "CheckName",
    "CheckResult",
    "KillSwitch",
    "KillSwitchActions",
    "KillSwitchConfig",
    "KillSwitchInputs",
    "OrderFingerprint",
    "RiskDecision",
    "RiskGate",
    "RiskProfile",
    "RiskSnapshot",
    "TradeIntent",
    "Trigger",
    "WorkingOrder",
    "profile_named",
    "validate_profile_setting",
]
