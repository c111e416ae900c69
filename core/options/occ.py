"""OCC option symbols: ``SPY   261120C00590000`` (root padded to 6, expiry YYMMDD, C or P, the
strike in thousandths on 8 digits) and the compact form brokers use (``SPY261120C00590000``,
Alpaca's). :func:`parse_occ` reads both; :func:`OptionContract.occ` writes either; they
round-trip.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum

from core.domain import ValidationError

#: Shares per contract (US equity options).
MULTIPLIER = Decimal(100)
_STRIKE_SCALE = Decimal(1000)
_MAX_STRIKE = Decimal("99999.999")
#: Years a two-digit OCC expiry (YY, read as 20YY) can name.
_FIRST_YEAR, _LAST_YEAR = 2000, 2099
_PATTERN = re.compile(r"^([A-Z][A-Z0-9.]{0,5}) *(\d{2})(\d{2})(\d{2})([CP])(\d{8})$")


class Right(StrEnum):
    CALL = "call"
    PUT = "put"

    @property
    def letter(self) -> str:
        return "C" if self is Right.CALL else "P"

    @classmethod
    def from_letter(cls, letter: str) -> Right:
        if letter.upper() in ("C", "CALL"):
            return cls.CALL
        if letter.upper() in ("P", "PUT"):
            return cls.PUT
        raise ValidationError(f"an option right is C (call) or P (put), got {letter!r}")


@dataclass(frozen=True, slots=True, order=True)
class OptionContract:
    """One listed option: underlying, expiry, strike, right (multiplier 100)."""

    underlying: str
    expiry: date
    strike: Decimal
    right: Right

    def __post_init__(self) -> None:
        root = self.underlying
        if not isinstance(root, str) or not re.fullmatch(r"[A-Z][A-Z0-9.]{0,5}", root):
            raise ValidationError(
                f"an option's underlying is 1 to 6 capitals, digits or dots, got {root!r}"
            )
        if isinstance(self.expiry, datetime) or not isinstance(self.expiry, date):
            raise ValidationError(f"an option's expiry is a date, got {self.expiry!r}")
        if not _FIRST_YEAR <= self.expiry.year <= _LAST_YEAR:
            # The symbol carries a two-digit year read as 20YY.
            raise ValidationError(
                f"an option's expiry is in {_FIRST_YEAR}-{_LAST_YEAR}, got {self.expiry}"
            )
        strike = Decimal(str(self.strike))
        if not strike.is_finite() or strike <= 0 or strike > _MAX_STRIKE:
            raise ValidationError(f"an option's strike is above 0 and at most 99999.999: {strike}")
        if (strike * _STRIKE_SCALE) != (strike * _STRIKE_SCALE).to_integral_value():
            raise ValidationError(f"an option's strike has at most 3 decimals, got {strike}")
        object.__setattr__(self, "strike", strike)
        object.__setattr__(self, "right", Right(self.right))

    def occ(self, padded: bool = False) -> str:
        """The OCC symbol; ``padded`` gives the 21-character form (root padded to 6)."""
        root = self.underlying.ljust(6) if padded else self.underlying
        thousandths = int(self.strike * _STRIKE_SCALE)
        return f"{root}{self.expiry:%y%m%d}{self.right.letter}{thousandths:08d}"

    @property
    def symbol(self) -> str:
        """The compact OCC symbol: how contracts are named in orders, positions and the store."""
        return self.occ()

    def days_to_expiry(self, session: date) -> int:
        return (self.expiry - session).days

    def __str__(self) -> str:
        strike = f"{self.strike.normalize():f}"
        return f"{self.underlying} {self.expiry:%Y-%m-%d} {strike} {self.right.letter}"


def parse_occ(symbol: str) -> OptionContract:
    """Read an OCC symbol (padded or compact); :class:`ValidationError` if it is not one."""
    if not isinstance(symbol, str):
        raise ValidationError(f"not an OCC option symbol: {symbol!r}")
    match = _PATTERN.match(symbol.strip().upper())
    if match is None:
        raise ValidationError(
            f"not an OCC option symbol: {symbol!r} (expected ROOT + YYMMDD + C/P + 8-digit strike)"
        )
    root, yy, mm, dd, letter, strike = match.groups()
    try:
        expiry = date(2000 + int(yy), int(mm), int(dd))
    except ValueError:
        raise ValidationError(f"OCC symbol {symbol!r} has no valid expiry date") from None
    return OptionContract(
        root, expiry, Decimal(int(strike)) / _STRIKE_SCALE, Right.from_letter(letter)
    )


def is_occ(symbol: str) -> bool:
    """True if ``symbol`` reads as an OCC option symbol."""
    try:
        parse_occ(symbol)
    except ValidationError:
        return False
    return True


__all__ = ["MULTIPLIER", "OptionContract", "Right", "is_occ", "parse_occ"]
