"""The Instrument Mode page's pure parts: the routing table (seed 001) computed from the
router's rules, the tables of a setting's versions and of the risk profile, and the profile
form's values; nothing here calls Streamlit (:mod:`app.components.mode` lays them out).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import fields
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import pandas as pd

from core.domain import InstrumentType, TradeType
from core.instruments.config import InstrumentConfig
from core.instruments.modes import InstrumentMode, route_kind
from core.ports import SettingValue
from core.risk.config import RiskProfile, validate_profile_setting
from core.signals.ema_cloud import EmaCloudConfig

MODE_LABELS = {
    InstrumentMode.OPTIONS: "Options",
    InstrumentMode.LEVERAGED_ETF: "Leveraged ETF",
    InstrumentMode.BOTH: "Both",
}
#: What each risk-profile parameter means (the form's help and the viewer's table).
PROFILE_HELP: dict[str, str] = {
    "max_risk_per_trade": "loss at the stop a position is sized for, share of equity",
    "max_concurrent_positions": "distinct symbols held or with a working entry",
    "daily_loss_limit": "no new risk once the day's loss reaches this share of equity",
    "max_single_exposure": "largest position in one symbol, share of equity",
    "max_sector_exposure": "largest exposure to one sector, share of equity",
    "min_account_equity": "no new risk below this equity (dollars)",
    "slippage_buffer": "added to the price when estimating an order's cost",
    "min_position_value": "orders worth less than this are rejected (dollars)",
    "cash_buffer": "share of equity always left unspent",
    "leverage_limit": "gross positions may reach this multiple of equity",
    "max_drawdown": "no new risk once equity is this far below its peak",
    "duplicate_window": "the same order is refused again within this many seconds",
    "pdt_max_day_trades": "day trades in five sessions while under the PDT threshold",
    "pdt_equity_threshold": "equity under which the pattern-day-trader limit applies",
    "reject_outside_hours": "reject entries outside regular hours (else warn)",
    "allow_add_to_winner": "allow a second entry in a symbol already held in profit",
}


def when(at: datetime | None) -> str:
    return "—" if at is None else at.strftime("%Y-%m-%d %H:%M:%S UTC")


def _timeframe(tf: str) -> str:
    """``1Min`` -> ``1-min``, ``1Hour`` -> ``1-hour``, ``1Day`` -> ``daily``."""
    if tf == "1Day":
        return "daily"
    for unit in ("Min", "Hour"):
        if tf.endswith(unit):
            return f"{tf[: -len(unit)]}-{unit.lower()}"
    return tf


def _kind_label(kind: InstrumentType, trade_type: TradeType, config: InstrumentConfig) -> str:
    if kind is InstrumentType.OPTION:
        return "0DTE/1DTE options (calls for bull, puts for bear; premium at risk)"
    if kind is InstrumentType.STOCK:
        return "stock"
    if trade_type is not TradeType.SWING and config.prefer_3x_for_day_trades:
        return "3x leveraged ETF"
    return "2x leveraged ETF (3x where no 2x fund exists)"


def routing_table(
    config: InstrumentConfig | None = None,
    timeframes: Sequence[tuple[str, TradeType]] | None = None,
) -> pd.DataFrame:
    """Seed 001's mode table, computed from the router's rules (:func:`route_kind`): what each
    mode trades for scalp, day and swing signals."""
    config = config or InstrumentConfig()
    frames = dict((tt, tf) for tf, tt in (timeframes or EmaCloudConfig().timeframes))
    threshold = config.both_mode_etf_min_conviction
    rows = []
    for mode in InstrumentMode:
        row: dict[str, str] = {"Mode": MODE_LABELS[mode]}
        for trade_type in TradeType:
            high = route_kind(mode, trade_type, 100, etf_min_conviction=threshold)
            low = route_kind(mode, trade_type, 0, etf_min_conviction=threshold)
            text = _kind_label(high, trade_type, config)
            if low is not high:
                text = (
                    f"{text} if conviction ≥ {threshold}, "
                    f"else {_kind_label(low, trade_type, config)}"
                )
            tf = frames.get(trade_type)
            when_seen = f" ({_timeframe(tf)})" if tf else ""
            row[f"{trade_type.value.title()} signals{when_seen}"] = text
        rows.append(row)
    return pd.DataFrame(rows)


def setting_frame(
    history: Sequence[SettingValue], show: Callable[[Any], str] = str
) -> pd.DataFrame:
    """A setting's versions, newest first: version, value, by, at."""
    rows = [
        {"Version": h.version, "Value": show(h.value), "By": h.updated_by, "At": when(h.updated_at)}
        for h in reversed(history)
    ]
    return pd.DataFrame(rows, columns=["Version", "Value", "By", "At"])


def profile_changes(before: Mapping[str, Any] | None, after: Mapping[str, Any]) -> str:
    """``max_risk_per_trade 0.05 → 0.03, …`` between two stored profiles."""
    if before is None:
        return f"{after.get('name', '?')} (first version)"
    changed = [f"{k} {before.get(k)} → {v}" for k, v in after.items() if before.get(k) != v]
    return ", ".join(changed) or "no change"


def profile_history_frame(history: Sequence[SettingValue]) -> pd.DataFrame:
    rows = []
    previous: Mapping[str, Any] | None = None
    for h in history:
        value = h.value if isinstance(h.value, Mapping) else {}
        rows.append(
            {
                "Version": h.version,
                "Profile": value.get("name", "?"),
                "Changes": profile_changes(previous, value),
                "By": h.updated_by,
                "At": when(h.updated_at),
            }
        )
        previous = value
    return pd.DataFrame(rows[::-1], columns=["Version", "Profile", "Changes", "By", "At"])


def profile_form_values(profile: RiskProfile) -> dict[str, Any]:
    """The form's starting values: Decimals as text (exact), the window in seconds."""
    out: dict[str, Any] = {}
    for f in fields(RiskProfile):
        value = getattr(profile, f.name)
        if f.name == "name":
            continue
        if isinstance(value, Decimal):
            out[f.name] = str(value)
        elif isinstance(value, timedelta):
            out[f.name] = int(value.total_seconds())
        else:
            out[f.name] = value
    return out


def edited_profile(name: str, values: Mapping[str, Any]) -> dict[str, Any]:
    """The profile to store (as the executor will validate it); :class:`ValidationError` names
    the field that is wrong."""
    return validate_profile_setting({"name": name, **values})


def profile_frame(profile: RiskProfile) -> pd.DataFrame:
    values = profile_form_values(profile)
    rows = [
        {"Parameter": k, "Value": str(v), "Meaning": PROFILE_HELP.get(k, "")}
        for k, v in values.items()
    ]
    return pd.DataFrame(rows, columns=["Parameter", "Value", "Meaning"])


__all__ = [
    "MODE_LABELS",
    "PROFILE_HELP",
    "edited_profile",
    "profile_changes",
    "profile_form_values",
    "profile_frame",
    "profile_history_frame",
    "routing_table",
    "setting_frame",
    "when",
]
