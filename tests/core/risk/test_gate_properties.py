"""Properties of the risk gate over random intents and price moves on a simulated book.

Whatever the sequence, no approved (possibly reduced) entry takes the book past the maximum
number of positions, the single-name, sector or leverage limits, and nothing but exits is
approved once the daily loss limit is reached or the kill switch is on.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from decimal import Decimal as D

from hypothesis import event, given, settings
from hypothesis import strategies as st

from core.domain import (
    ZERO,
    AccountState,
    Direction,
    KillSwitchState,
    Position,
    TradeType,
)
from core.marketdata.calendar import ManualClock, default_calendar
from core.risk import (
    AGGRESSIVE,
    CONSERVATIVE,
    OrderFingerprint,
    RiskGate,
    RiskProfile,
    RiskSnapshot,
    TradeIntent,
)
from tests.core.risk.support import OPEN, SECTORS

SYMBOLS = [*SECTORS, "ZZZ", "YYY", "XXX"]  # 15 symbols, three without a sector
#: Small limits, so that every limit is reached often.
TIGHT = replace(
    AGGRESSIVE,
    name="tight",
    max_concurrent_positions=4,
    max_single_exposure=D("0.10"),
    max_sector_exposure=D("0.15"),
    leverage_limit=D("0.3"),
    daily_loss_limit=D("0.04"),
    max_drawdown=D("0.5"),
)


@dataclass
class Book:
    """A cash account with signed positions that fill at the current price."""

    profile: RiskProfile
    cash: D
    prices: dict[str, D]
    #: Buying power as a share of what the leverage limit leaves (a broker may allow less).
    bp_share: D = D(1)
    start: D = ZERO
    peak: D = ZERO
    qty: dict[str, D] = field(default_factory=dict)
    avg: dict[str, D] = field(default_factory=dict)
    recent: list[OrderFingerprint] = field(default_factory=list)
    kill: KillSwitchState = field(default_factory=lambda: KillSwitchState(False))

    def __post_init__(self) -> None:
        self.start = self.peak = self.equity()

    def value(self, symbol: str) -> D:
        return self.qty.get(symbol, ZERO) * self.prices[symbol]

    def equity(self) -> D:
        return self.cash + sum((self.value(s) for s in self.qty), ZERO)

    def gross(self, symbols: list[str] | None = None) -> D:
        return sum((abs(self.value(s)) for s in self.qty if symbols is None or s in symbols), ZERO)

    def snapshot(self) -> RiskSnapshot:
        equity = self.equity()
        room = equity * self.profile.leverage_limit - self.gross()
        buying_power = max(room * self.bp_share, ZERO)
        positions = {
            s: Position(s, q, self.avg[s], self.prices[s]) for s, q in self.qty.items() if q != 0
        }
        return RiskSnapshot(
            account=AccountState(equity=equity, cash=self.cash, buying_power=buying_power),
            starting_equity=self.start,
            positions=positions,
            peak_equity=self.peak,
            recent_orders=self.recent,
            kill_switch=self.kill,
        )

    def fill(self, symbol: str, signed: D) -> None:
        price = self.prices[symbol]
        held = self.qty.get(symbol, ZERO)
        new = held + signed
        if held == 0 or (held > 0) == (signed > 0):  # open or add
            self.avg[symbol] = (self.avg.get(symbol, ZERO) * held + price * signed) / new
        self.qty[symbol] = new
        self.cash -= signed * price
        if new == 0:
            del self.qty[symbol]


entry = st.tuples(
    st.just("entry"),
    st.integers(0, len(SYMBOLS) - 1),
    st.sampled_from([Direction.LONG, Direction.SHORT]),
    st.integers(1, 400),
)
step = st.one_of(
    entry,
    entry,
    entry,
    st.tuples(st.just("exit"), st.integers(0, len(SYMBOLS) - 1), st.integers(1, 400)),
    st.tuples(st.just("move"), st.integers(0, len(SYMBOLS) - 1), st.integers(-40, 40)),
    st.tuples(st.just("crash"), st.integers(1, 8)),
    st.tuples(st.just("wait"), st.integers(1, 120)),
)


def check_limits(book: Book, symbol: str, equity: D, profile: RiskProfile) -> None:
    held = [s for s, q in book.qty.items() if q != 0]
    assert len(held) <= profile.max_concurrent_positions
    assert abs(book.value(symbol)) <= equity * profile.max_single_exposure
    sector = SECTORS.get(symbol)
    if sector is not None:
        members = [s for s in held if SECTORS.get(s) == sector]
        assert book.gross(members) <= equity * profile.max_sector_exposure
    assert book.gross() <= equity * profile.leverage_limit


@settings(max_examples=200, deadline=None)
@given(
    profile=st.sampled_from([AGGRESSIVE, CONSERVATIVE, TIGHT]),
    equity=st.integers(30_000, 400_000),
    bp_share=st.sampled_from([D("0.5"), D(1), D(2)]),
    steps=st.lists(step, min_size=20, max_size=80),
    kill_at=st.one_of(st.none(), st.integers(0, 80)),
)
def test_approved_entries_keep_the_book_within_limits(profile, equity, bp_share, steps, kill_at):
    gate = RiskGate(profile, default_calendar(), SECTORS.get)
    clock = ManualClock(OPEN + timedelta(minutes=5))
    prices = {s: D(20 + 13 * i) + D(i) / 100 for i, s in enumerate(SYMBOLS)}
    book = Book(profile, D(equity), prices, bp_share)
    approvals = 0
    blocked = 0
    for i, op in enumerate(steps):
        kind = op[0]
        now: datetime = clock.now()
        if i == kill_at:
            book.kill = KillSwitchState(True, "test", now, "system")
        if kind == "entry":
            _, idx, direction, qty = op
            symbol = SYMBOLS[idx]
            intent = TradeIntent(
                symbol, direction, D(qty), book.prices[symbol], trade_type=TradeType.SWING
            )
            snap = book.snapshot()
            decision = gate.validate(intent, snap, now)
            limit_hit = snap.pnl <= -profile.daily_loss_limit * snap.starting_equity
            if limit_hit or book.kill.active:
                assert not decision.approved
                blocked += 1
            if not decision.approved:
                continue
            approvals += 1
            held = book.qty.get(symbol, ZERO)
            assert held == 0 or (held > 0) == (direction is Direction.LONG)
            assert decision.qty is not None and 0 < decision.qty <= intent.qty
            cost = decision.qty * intent.price * (1 + profile.slippage_buffer)
            assert cost <= snap.account.buying_power - snap.equity * profile.cash_buffer
            book.fill(symbol, decision.qty * direction.entry_side.sign)
            book.recent.append(intent.fingerprint(now))
            check_limits(book, symbol, snap.equity, profile)
        elif kind == "exit":
            _, idx, qty = op
            symbol = SYMBOLS[idx]
            held = book.qty.get(symbol, ZERO)
            if held == 0:
                continue
            direction = Direction.LONG if held > 0 else Direction.SHORT
            size = min(D(qty), abs(held))
            intent = TradeIntent(symbol, direction, size, book.prices[symbol], reduce_only=True)
            decision = gate.validate(intent, book.snapshot(), now)
            assert decision.approved and decision.qty == size  # exits are never blocked
            book.fill(symbol, -size if held > 0 else size)
        elif kind == "move":
            _, idx, pct = op
            symbol = SYMBOLS[idx]
            book.prices[symbol] = max(book.prices[symbol] * (100 + pct) / 100, D("0.01"))
        elif kind == "crash":  # every price down, so the daily loss limit is reached often
            for s in book.prices:
                book.prices[s] = book.prices[s] * (100 - op[1]) / 100
        elif kind == "wait":
            clock.advance(op[1])
        book.peak = max(book.peak, book.equity())
    event(f"approved entries: {min(approvals, 5)}{'+' if approvals >= 5 else ''}")
    event(f"entries blocked by loss limit or kill switch: {'some' if blocked else 'none'}")
