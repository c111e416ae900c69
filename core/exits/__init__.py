"""Exit monitoring for open positions (seed 001 "Exit Strategies").

:class:`ExitMonitor` decides, for a :class:`TrackedPosition`, which of the exits fires first:
stop loss, momentum exhaustion, cloud flip, profit target, time stop, end-of-day close, trailing
stop (the seed's seven, in its priority order) and the leveraged-ETF maximum holding period.
See :mod:`core.exits.monitor` for the exact rules and the incremental API.
"""

from core.exits.model import PRIORITY, ExitConfig, ExitDecision, ExitReason, TrackedPosition
from core.exits.monitor import ExitMonitor
from core.exits.state import BarFacts, CloudTracker, facts_from_bars

__all__ = [
    "PRIORITY",
    "BarFacts",
    "CloudTracker",
    "ExitConfig",
    "ExitDecision",
    "ExitMonitor",
    "ExitReason",
    "TrackedPosition",
    "facts_from_bars",
]
