"""Position sizing: how many shares an entry gets."""

from core.sizing.position import (
    PositionSizer,
    SizeResult,
    conviction_multiplier,
    entry_order_type,
    scale_in_split,
)

__all__ = [
    "PositionSizer",
    "SizeResult",
    "conviction_multiplier",
    "entry_order_type",
    "scale_in_split",
]
