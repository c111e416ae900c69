"""The pre-trade risk gate (seed 001 ``risk_gate.py``, seed 000 R2.3).

:meth:`RiskGate.validate` runs every check and records each in the decision's audit trail; the
first failed check gives the rejection reason. Exposure limits (single name, sector, leverage,
buying power with the cash buffer) shrink an order to what still fits instead of rejecting it,
unless what fits is zero or worth less than the profile's minimum position value. Reduce-only
intents (exits) pass without any check: exits are never blocked, not even by the kill switch.

Rules where the seeds leave a choice:

* Limits count as reached at equality for losses (daily loss, drawdown) and as allowed at
  equality for exposures (an order that lands exactly on the 15 % cap passes).
* Minimum equity passes at exactly the minimum (FINRA: "at least $25,000").
* Exposure is gross market value (longs and shorts both count) at the positions' current prices
  plus working entry orders; the new order is priced at its reference price plus the slippage
  buffer. A symbol with no known sector is not held to a sector limit.
* A symbol counts as a position when it is held or has a working entry order.
* The PDT check applies to day and scalp trades (opened to be closed the same session) while
  equity is under the PDT threshold; swing trades are not day trades.
* An order is a duplicate when the same symbol, side and quantity was sent less than
  ``duplicate_window`` ago; once the window has fully passed it may be sent again.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Any

from core.domain import ZERO, TradeType, utc
from core.ports import MarketCalendar
from core.risk.config import RiskProfile
from core.risk.model import (
    CheckName,
    CheckResult,
    ExposureBook,
    RiskDecision,
    RiskSnapshot,
    TradeIntent,
    contract_multiplier,
    floor_to,
    money,
    pct,
    qty_text,
    seconds_text,
)

_DAY_TRADE_TYPES = frozenset({TradeType.DAY, TradeType.SCALP})


def _no_sector(_symbol: str) -> str | None:
    return None


def _ts(ts: datetime) -> str:
    return ts.strftime("%Y-%m-%d %H:%M:%S UTC")


class RiskGate:
    """Validates trade intents against a :class:`RiskProfile` (seed 001 ``RiskGate``)."""

    def __init__(
        self,
        profile: RiskProfile,
        calendar: MarketCalendar,
        sector_of: Callable[[str], str | None] = _no_sector,
    ):
        self.profile = profile
        self.calendar = calendar
        self.sector_of = sector_of

    def validate(self, intent: TradeIntent, account: RiskSnapshot, now: datetime) -> RiskDecision:
        """Decide on ``intent`` given the account ``account`` at ``now`` (UTC-aware)."""
        now = utc(now)
        if intent.reduce_only:
            detail = "reduce-only order: exits are never blocked"
            return RiskDecision(
                True, None, {}, (CheckResult(CheckName.REDUCE_ONLY, True, detail),), intent.qty
            )
        snap, book = account, ExposureBook.of(account)
        checks = [
            self._kill_switch(snap),
            self._daily_loss(snap),
            self._drawdown(snap),
            self._min_equity(snap),
            self._market_hours(now),
            self._day_trades(intent, snap),
            self._duplicate(intent, snap, now),
            self._conflict(intent, snap, book),
            self._existing(intent, snap, book),
            self._max_positions(intent, book),
            self._min_position(intent),
        ]
        qty = intent.qty
        reduced_by: list[str] = []
        whys: list[str] = []
        for limit in (self._single, self._sector, self._leverage, self._buying_power):
            result, allowed = limit(intent, snap, book, qty)
            checks.append(result)
            if result.passed and allowed < qty:
                reduced_by.append(str(result.name))
                whys.append(result.detail)
                qty = allowed
        failed = next((c for c in checks if not c.passed), None)
        if failed is not None:
            return RiskDecision(False, failed.detail, {}, tuple(checks), None)
        adjustments: dict[str, Any] = {}
        if qty != intent.qty:
            adjustments = {"qty": qty, "from": intent.qty, "why": "; ".join(whys), "by": reduced_by}
        return RiskDecision(True, None, adjustments, tuple(checks), qty)

    # -- account-wide checks --------------------------------------------------------------------
    def _kill_switch(self, snap: RiskSnapshot) -> CheckResult:
        ks = snap.kill_switch
        if ks.active:
            return CheckResult(
                CheckName.KILL_SWITCH, False, f"kill switch is on: {ks.reason or 'no reason given'}"
            )
        return CheckResult(CheckName.KILL_SWITCH, True, "kill switch is off")

    def _daily_loss(self, snap: RiskSnapshot) -> CheckResult:
        p = self.profile
        floor = -p.daily_loss_limit * snap.starting_equity
        text = (
            f"daily P&L {money(snap.pnl)} against a limit of {money(floor)} "
            f"({pct(p.daily_loss_limit)} of starting equity {money(snap.starting_equity)})"
        )
        if snap.pnl <= floor:
            return CheckResult(CheckName.DAILY_LOSS, False, f"daily loss limit reached: {text}")
        return CheckResult(CheckName.DAILY_LOSS, True, text)

    def _drawdown(self, snap: RiskSnapshot) -> CheckResult:
        peak = snap.peak_equity
        if peak is None:
            return CheckResult(CheckName.DRAWDOWN, True, "no peak equity known; not checked")
        dd = max(peak - snap.equity, ZERO) / peak
        limit = self.profile.max_drawdown
        text = (
            f"equity {money(snap.equity)} is {pct(dd.quantize(Decimal('0.0001')))} below "
            f"its peak {money(peak)}; limit {pct(limit)}"
        )
        if peak - snap.equity >= limit * peak:
            return CheckResult(CheckName.DRAWDOWN, False, f"max drawdown reached: {text}")
        return CheckResult(CheckName.DRAWDOWN, True, text)

    def _min_equity(self, snap: RiskSnapshot) -> CheckResult:
        minimum = self.profile.min_account_equity
        if snap.equity < minimum:
            return CheckResult(
                CheckName.MIN_EQUITY,
                False,
                f"account equity {money(snap.equity)} is below the minimum {money(minimum)}",
            )
        return CheckResult(
            CheckName.MIN_EQUITY,
            True,
            f"account equity {money(snap.equity)} is at least {money(minimum)}",
        )

    def _market_hours(self, now: datetime) -> CheckResult:
        session = self.calendar.session_date(now)
        if session is not None:
            close = self.calendar.session_close(session)
            detail = f"market open (session {session}, closes {_ts(close)})"
            return CheckResult(CheckName.MARKET_HOURS, True, detail)
        try:
            next_open = f"; next open {_ts(self.calendar.next_open(now))}"
        except ValueError:
            next_open = ""
        text = f"market is closed at {_ts(now)}{next_open}"
        if self.profile.reject_outside_hours:
            return CheckResult(CheckName.MARKET_HOURS, False, text)
        return CheckResult(CheckName.MARKET_HOURS, True, f"warning: {text}")

    def _day_trades(self, intent: TradeIntent, snap: RiskSnapshot) -> CheckResult:
        p = self.profile
        if snap.equity >= p.pdt_equity_threshold:
            return CheckResult(
                CheckName.DAY_TRADES,
                True,
                f"equity {money(snap.equity)} is at least {money(p.pdt_equity_threshold)}; "
                "no day-trade limit",
            )
        if intent.trade_type not in _DAY_TRADE_TYPES:
            return CheckResult(
                CheckName.DAY_TRADES, True, f"{intent.trade_type.value} trade is not a day trade"
            )
        count, allowed = snap.day_trades, p.pdt_max_day_trades
        text = (
            f"{count} day trades in the last 5 sessions with equity {money(snap.equity)} under "
            f"{money(p.pdt_equity_threshold)}; this would be number {count + 1}, "
            f"{allowed} allowed"
        )
        if count >= allowed:
            return CheckResult(CheckName.DAY_TRADES, False, f"day-trade limit (PDT): {text}")
        return CheckResult(CheckName.DAY_TRADES, True, text)

    def _duplicate(self, intent: TradeIntent, snap: RiskSnapshot, now: datetime) -> CheckResult:
        window = self.profile.duplicate_window
        side = intent.side
        for fp in snap.recent_orders:
            if (fp.symbol, fp.side, fp.qty) == (intent.symbol, side, intent.qty):
                age = now - fp.at
                if age < window:
                    return CheckResult(
                        CheckName.DUPLICATE,
                        False,
                        f"duplicate order: {side.value} {qty_text(intent.qty)} {intent.symbol} "
                        f"was sent {seconds_text(age)} s ago (window {seconds_text(window)} s)",
                    )
        return CheckResult(
            CheckName.DUPLICATE,
            True,
            f"no identical order in the last {seconds_text(window)} s",
        )

    # -- this symbol ----------------------------------------------------------------------------
    def _conflict(self, intent: TradeIntent, snap: RiskSnapshot, book: ExposureBook) -> CheckResult:
        sign = intent.direction.entry_side.sign
        pos = snap.positions.get(intent.symbol)
        if pos is not None and pos.qty != 0 and (pos.qty > 0) != (sign > 0):
            return CheckResult(
                CheckName.CONFLICT,
                False,
                f"conflicting position: holding {pos.side.value} {qty_text(pos.qty)} "
                f"{intent.symbol}; a {intent.direction.value} entry is refused",
            )
        working = book.working.get(intent.symbol, ZERO)
        if working != 0 and (working > 0) != (sign > 0):
            return CheckResult(
                CheckName.CONFLICT,
                False,
                f"conflicting order: an opposite entry order for {intent.symbol} is working; "
                f"a {intent.direction.value} entry is refused",
            )
        return CheckResult(CheckName.CONFLICT, True, "no opposite position or order")

    def _existing(self, intent: TradeIntent, snap: RiskSnapshot, book: ExposureBook) -> CheckResult:
        pos = snap.positions.get(intent.symbol)
        if pos is not None and pos.qty != 0:
            pnl = pos.unrealized_pnl * contract_multiplier(pos.instrument_type)
            held = f"{qty_text(pos.qty)} {intent.symbol} (unrealized P&L {money(pnl)})"
            if self.profile.allow_add_to_winner and pnl > 0:
                return CheckResult(CheckName.EXISTING, True, f"adding to a winner: {held}")
            return CheckResult(
                CheckName.EXISTING,
                False,
                f"existing position: already holding {held}; only winners may be added to",
            )
        if book.working.get(intent.symbol, ZERO) != 0:
            return CheckResult(
                CheckName.EXISTING,
                False,
                f"existing order: an entry order for {intent.symbol} is already working",
            )
        return CheckResult(CheckName.EXISTING, True, f"no position in {intent.symbol}")

    def _max_positions(self, intent: TradeIntent, book: ExposureBook) -> CheckResult:
        held = book.held
        cap = self.profile.max_concurrent_positions
        if intent.symbol in held:
            return CheckResult(
                CheckName.MAX_POSITIONS, True, f"{len(held)} positions; adds to {intent.symbol}"
            )
        if len(held) >= cap:
            return CheckResult(
                CheckName.MAX_POSITIONS,
                False,
                f"max concurrent positions reached: {len(held)} open, limit {cap}",
            )
        return CheckResult(
            CheckName.MAX_POSITIONS, True, f"{len(held)} open; this makes {len(held) + 1} of {cap}"
        )

    def _min_position(self, intent: TradeIntent) -> CheckResult:
        minimum = self.profile.min_position_value
        if intent.notional < minimum:
            return CheckResult(
                CheckName.MIN_POSITION,
                False,
                f"order value {money(intent.notional)} is below the minimum position value "
                f"{money(minimum)}",
            )
        return CheckResult(
            CheckName.MIN_POSITION,
            True,
            f"order value {money(intent.notional)} is at least {money(minimum)}",
        )

    # -- exposure limits: (result, quantity that fits) -------------------------------------------
    def _unit_cost(self, intent: TradeIntent) -> Decimal:
        """Estimated cost of one unit of quantity: reference price plus the slippage buffer."""
        return intent.price * intent.multiplier * (1 + self.profile.slippage_buffer)

    def _fit(
        self, name: str, intent: TradeIntent, qty: Decimal, room: Decimal, limit_text: str
    ) -> tuple[CheckResult, Decimal]:
        """Shrink ``qty`` so that ``qty x unit cost <= room``; fail if nothing useful fits."""
        unit = self._unit_cost(intent)
        cost = qty * unit
        if cost <= room:
            return CheckResult(name, True, f"{limit_text}; order {money(cost)} fits"), qty
        allowed = floor_to(room / unit, intent.qty_step)
        while allowed > 0 and allowed * unit > room:  # guard against division rounding up
            allowed -= intent.qty_step
        allowed = max(allowed, ZERO)
        value = allowed * intent.price * intent.multiplier
        fits = f"{limit_text}; room for {qty_text(allowed)} of {qty_text(qty)} {intent.symbol}"
        if allowed <= 0:
            return CheckResult(name, False, f"{fits}: nothing fits"), ZERO
        minimum = self.profile.min_position_value
        if value < minimum:
            return CheckResult(
                name,
                False,
                f"{fits}, worth {money(value)}, below the minimum position value {money(minimum)}",
            ), allowed
        return CheckResult(name, True, f"{fits}: reduced to {qty_text(allowed)}"), allowed

    def _single(
        self, intent: TradeIntent, snap: RiskSnapshot, book: ExposureBook, qty: Decimal
    ) -> tuple[CheckResult, Decimal]:
        cap = snap.equity * self.profile.max_single_exposure
        current = abs(book.value.get(intent.symbol, ZERO))
        text = (
            f"single-name exposure: {intent.symbol} at {money(current)} of a {money(cap)} cap "
            f"({pct(self.profile.max_single_exposure)} of equity {money(snap.equity)})"
        )
        return self._fit(CheckName.SINGLE, intent, qty, cap - current, text)

    def _sector(
        self, intent: TradeIntent, snap: RiskSnapshot, book: ExposureBook, qty: Decimal
    ) -> tuple[CheckResult, Decimal]:
        sector = self.sector_of(intent.symbol)
        if sector is None:
            detail = f"no sector known for {intent.symbol}; sector limit not applied"
            return CheckResult(CheckName.SECTOR, True, detail), qty
        members = {s for s in book.value if s == intent.symbol or self.sector_of(s) == sector}
        current = book.gross(members)
        cap = snap.equity * self.profile.max_sector_exposure
        text = (
            f"sector exposure: {sector} at {money(current)} of a {money(cap)} cap "
            f"({pct(self.profile.max_sector_exposure)} of equity {money(snap.equity)})"
        )
        return self._fit(CheckName.SECTOR, intent, qty, cap - current, text)

    def _leverage(
        self, intent: TradeIntent, snap: RiskSnapshot, book: ExposureBook, qty: Decimal
    ) -> tuple[CheckResult, Decimal]:
        cap = snap.equity * self.profile.leverage_limit
        current = book.gross()
        text = (
            f"leverage: gross exposure {money(current)} of a {money(cap)} cap "
            f"({qty_text(self.profile.leverage_limit)}x equity {money(snap.equity)})"
        )
        return self._fit(CheckName.LEVERAGE, intent, qty, cap - current, text)

    def _buying_power(
        self, intent: TradeIntent, snap: RiskSnapshot, book: ExposureBook, qty: Decimal
    ) -> tuple[CheckResult, Decimal]:
        reserve = snap.equity * self.profile.cash_buffer
        bp = snap.account.buying_power
        text = (
            f"buying power: {money(bp)} less a {money(reserve)} cash buffer "
            f"({pct(self.profile.cash_buffer)} of equity); costs include a "
            f"{pct(self.profile.slippage_buffer)} slippage buffer"
        )
        return self._fit(CheckName.BUYING_POWER, intent, qty, bp - reserve, text)
