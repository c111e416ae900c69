"""Execution algorithms and transaction cost analysis (seed 000 R2.2, R3.1, R6.2).

Pure functions and frozen values, no I/O: the executor asks :func:`choose_algorithm` how to work an
order, builds child orders from :func:`twap_schedule` / :func:`vwap_schedule`, moves resting
limits with :class:`LimitChase`, and measures the result with :func:`order_tca` and
:func:`aggregate_tca`. Exits are not routed through here (see :mod:`core.execution.impact`).
"""

from core.execution.chase import LimitChase
from core.execution.config import SLICE_ALGORITHMS, ExecutionConfig
from core.execution.impact import (
    AlgoChoice,
    Algorithm,
    CostEstimate,
    choose_algorithm,
    estimate_cost,
    half_spread_bps,
    impact_bps,
    limit_price,
    participation_pct,
    passive_price,
    round_to_tick,
    tick_size,
)
from core.execution.schedule import (
    DEFAULT_U_PROFILE,
    QTY_STEP,
    WEIGHT_STEP,
    Slice,
    profile_window,
    split_evenly,
    twap_schedule,
    volume_profile,
    volume_profile_from_bars,
    vwap_schedule,
)
from core.execution.tca import (
    TCA_GROUP_KEYS,
    ExecutionRecord,
    FillRecord,
    OrderTca,
    ParentProgress,
    TcaGroup,
    aggregate_children,
    aggregate_tca,
    order_tca,
    signed_bps,
)

__all__ = [
    "DEFAULT_U_PROFILE",
    "QTY_STEP",
    "SLICE_ALGORITHMS",
    "TCA_GROUP_KEYS",
    "WEIGHT_STEP",
    "AlgoChoice",
    "Algorithm",
    "CostEstimate",
    "ExecutionConfig",
    "ExecutionRecord",
    "FillRecord",
    "LimitChase",
    "OrderTca",
    "ParentProgress",
    "Slice",
    "TcaGroup",
    "aggregate_children",
    "aggregate_tca",
    "choose_algorithm",
    "estimate_cost",
    "half_spread_bps",
    "impact_bps",
    "limit_price",
    "order_tca",
    "participation_pct",
    "passive_price",
    "profile_window",
    "round_to_tick",
    "signed_bps",
    "split_evenly",
    "tick_size",
    "twap_schedule",
    "volume_profile",
    "volume_profile_from_bars",
    "vwap_schedule",
]
