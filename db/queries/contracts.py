"""Option contracts in the read views: the underlying, expiry, strike and right an OCC symbol
names (``SPY261120C00600000`` reads as ``SPY 2026-11-20 600 C``), how far its expiry was from
a trade's entry (``0DTE``, ``1DTE``), and the money multiplier of an instrument type (100 for
an option, whose prices are per share of premium).

Everything here is tolerant: a symbol that is not an OCC symbol simply names no contract, and
an unknown instrument type counts its money once.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from core.domain import ONE, ValidationError, contract_multiplier
from core.options.occ import OptionContract, Right, parse_occ

#: The exchange's time zone: an option's days to expiry count New York sessions.
NEW_YORK = ZoneInfo("America/New_York")


def option_contract(symbol: Any) -> OptionContract | None:
    """The contract an OCC symbol names, or ``None`` for any other symbol."""
    if not isinstance(symbol, str):
        return None
    try:
        return parse_occ(symbol)
    except ValidationError:
        return None


def contract_from_notes(notes: Mapping[str, Any] | None) -> OptionContract | None:
    """The contract a journal trade's metadata describes (underlying, expiry, strike, right),
    or ``None`` when it does not describe a whole one."""
    if not notes:
        return None
    try:
        return OptionContract(
            str(notes["underlying"]),
            date.fromisoformat(str(notes["expiry"])),
            Decimal(str(notes["strike"])),
            Right.from_letter(str(notes["right"])),
        )
    except (KeyError, TypeError, ValueError, ArithmeticError):
        return None


def contract_label(symbol: Any) -> str | None:
    """``SPY 2026-11-20 600 C`` for an OCC symbol, ``None`` for any other symbol."""
    contract = option_contract(symbol)
    return None if contract is None else str(contract)


def contract_fields(symbol: Any) -> tuple[str | None, date | None, Decimal | None, str | None]:
    """(underlying, expiry, strike, right as ``C``/``P``) of an OCC symbol; all ``None`` for
    any other symbol."""
    contract = option_contract(symbol)
    if contract is None:
        return None, None, None, None
    return contract.underlying, contract.expiry, contract.strike, contract.right.letter


def days_to_expiry_label(contract: OptionContract, entry_time: datetime | None) -> str | None:
    """``0DTE``, ``1DTE``, ... : calendar days from the New York date of ``entry_time`` to the
    contract's expiry (``None`` without an entry time)."""
    if entry_time is None:
        return None
    at = entry_time if entry_time.tzinfo is not None else entry_time.replace(tzinfo=UTC)
    days = (contract.expiry - at.astimezone(NEW_YORK).date()).days
    return f"{max(days, 0)}DTE"


def expiry_kind(
    contract: OptionContract | None,
    entry_time: datetime | None,
    notes: Mapping[str, Any] | None = None,
) -> str | None:
    """How far the expiry was when the trade was entered: the ``expiry_kind`` its pipeline
    decision recorded, else counted from the entry time; ``None`` for a non-option."""
    recorded = (notes or {}).get("expiry_kind")
    if recorded:
        return str(recorded)
    if contract is None:
        return None
    return days_to_expiry_label(contract, entry_time)


def multiplier(instrument_type: Any) -> Decimal:
    """Money per unit of quantity per unit of price: 100 for an option, else 1 (also for an
    instrument type this version does not know)."""
    try:
        return contract_multiplier(instrument_type)
    except (ValueError, TypeError):
        return ONE


__all__ = [
    "NEW_YORK",
    "contract_fields",
    "contract_from_notes",
    "contract_label",
    "days_to_expiry_label",
    "expiry_kind",
    "multiplier",
    "option_contract",
]
