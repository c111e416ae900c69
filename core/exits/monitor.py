"""The exit monitor: which exit, if any, an open position should take now.

Incremental use (the executor's hot path)
-----------------------------------------
* :meth:`ExitMonitor.on_bar` (or :meth:`~ExitMonitor.on_bars` to prime with history) feeds each
  completed bar of a (symbol, timeframe); the clouds are updated in O(1) per bar.
* :meth:`ExitMonitor.check` (position, price, now) is O(1): the bar facts are a lookup, and what
  depends only on the position (R-multiples, the time-stop deadline, the max-hold deadline) is
  computed on its first check and kept with the position. The EOD cutoff is computed once per
  session. ``now`` must be UTC (as everywhere in the domain) and ``price`` a Decimal.

:meth:`ExitMonitor.evaluate` (position, bars, now) gives the same answer from a whole bar history,
recomputing the clouds from scratch; use it where speed does not matter (and to check the
incremental path).

The rules, in priority order (the first that fires wins)
--------------------------------------------------------
Bar rules only read bars that closed after the entry (``bar.end > entry_time``).

1. ``stop_loss``: the last close is beyond the macro cloud (below its bottom for a long, above its
   top for a short); or, with ``hard_stop``, the price is at or through the position's stop.
2. ``momentum_exhaustion``: the last ``exhaustion_bars`` (3) closes are all above a bullish fast
   cloud (long) / below a bearish one (short), and all of those bars closed after the entry.
3. ``cloud_flip``: the fast cloud is against the position and turned so on a bar that closed
   after the entry.
4. ``target``: the price reached the target (the position's, else ``reward_to_risk_target`` R).
5. ``time_stop`` (day trades): open more than ``time_stop_minutes`` (120) and the unrealized gain
   is below ``time_stop_min_r`` (0.5) R.
6. ``eod_close`` (day trades and scalps): at or after the session's cutoff (15:55 ET; on an early
   close, that close minus the same 5 minutes, e.g. 12:55 ET on 2026-11-27), or when the position
   was opened before the current session began (it was held overnight).
7. ``trailing_stop`` (swings): the last close is beyond the trailing (8/9) cloud against the
   position (below its bottom for a long, above its top for a short).
8. ``max_hold_days`` (leveraged ETFs): from the open of the N-th session after the entry session
   (N = 5 for 3x, 10 for 2x, 15 for 1.5x), counting exchange sessions, not calendar days.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_FLOOR, Decimal

from core.domain import Bar, Direction, InstrumentType, TradeType
from core.exits.model import ExitConfig, ExitDecision, ExitReason, TrackedPosition
from core.exits.state import LONG, SHORT, BarFacts, CloudTracker, facts_from_bars
from core.marketdata.calendar import EASTERN
from core.options.occ import Right, is_occ, parse_occ
from core.ports import MarketCalendar
from core.signals.clouds import CloudState

_EDGE_NAMES = (("bottom", "below"), ("top", "above"))


@dataclass(slots=True, eq=False)
class _Plan:
    """Per-position thresholds, computed once."""

    owner: ExitMonitor
    position: TrackedPosition
    facts: BarFacts
    long: bool
    side: int  # index into the BarFacts pairs: 0 long, 1 short
    entry_time: datetime
    hard_stop: Decimal | None
    target: Decimal
    progress: Decimal  # the price of time_stop_min_r R
    time_deadline: datetime | None
    eod: bool
    trailing: bool
    hold_days: int | None
    hold_deadline: datetime | None
    #: The macro-cloud stop and momentum exhaustion apply (not to options: their stop is the
    #: premium stop, and the underlying's clouds only close them on a flip).
    cloud_stop: bool = True
    exhaustion: bool = True


class ExitMonitor:
    """Seed 001's exit rules for open positions (see the module docstring)."""

    def __init__(self, config: ExitConfig | None = None, calendar: MarketCalendar | None = None):
        if calendar is None:
            from core.marketdata.calendar import default_calendar

            calendar = default_calendar()
        self.config = config or ExitConfig()
        self.calendar = calendar
        self._trackers: dict[tuple[str, str], CloudTracker] = {}
        #: (session open, EOD cutoff, next session open) of the session being traded.
        self._eod_window: tuple[datetime, datetime, datetime] | None = None
        self._lead = timedelta(minutes=self.config.eod_lead_minutes)
        self._checks: tuple[Callable[[_Plan, Decimal, datetime], ExitDecision | None], ...] = (
            self._stop_loss,
            self._momentum_exhaustion,
            self._cloud_flip,
            self._profit_target,
            self._time_stop,
            self._eod_close,
            self._trailing_stop,
            self._max_hold_days,
        )

    # -- bars ------------------------------------------------------------------------------
    def tracker(self, symbol: str, timeframe: str) -> CloudTracker:
        key = (symbol, timeframe)
        tracker = self._trackers.get(key)
        if tracker is None:
            tracker = self._trackers[key] = CloudTracker(self.config)
        return tracker

    def on_bar(self, symbol: str, bar: Bar, timeframe: str = "1Min") -> bool:
        """Feed the next completed bar; False if it is not later than the last one (ignored)."""
        return self.tracker(symbol, timeframe).update(bar)

    def on_bars(self, symbol: str, bars: Iterable[Bar], timeframe: str = "1Min") -> int:
        """Feed bars oldest first (priming with history); returns how many were taken."""
        tracker = self.tracker(symbol, timeframe)
        return sum(tracker.update(bar) for bar in bars)

    def clouds(self, symbol: str, timeframe: str = "1Min") -> dict[str, CloudState | None]:
        """The current fast, pullback and macro clouds of a (symbol, timeframe)."""
        return self.tracker(symbol, timeframe).clouds()

    def forget(self, symbol: str, timeframe: str) -> None:
        """Drop what is known about a (symbol, timeframe) (e.g. before re-priming)."""
        tracker = self._trackers.get((symbol, timeframe))
        if tracker is not None:
            tracker.reset()

    @staticmethod
    def chart_symbol(position: TrackedPosition) -> str:
        """The symbol whose bars and clouds manage the position: an option's underlying."""
        if position.instrument_type is InstrumentType.OPTION and is_occ(position.symbol):
            return parse_occ(position.symbol).underlying
        return position.symbol

    def timeframe_of(self, position: TrackedPosition) -> str:
        return position.timeframe or self.config.timeframe_for(position.trade_type)

    # -- decisions -------------------------------------------------------------------------
    def check(
        self, position: TrackedPosition, price: Decimal, now: datetime
    ) -> ExitDecision | None:
        """The highest-priority exit that fires at ``price`` and ``now``, from the bars fed so
        far. O(1)."""
        plan = position._plan
        if plan is None or plan.owner is not self:
            plan = self._plan(position)
        # Fast path: the common "nothing fires" answer without building any decision. It tests
        # the same conditions as the rules below (tests hold the two paths to each other).
        f = plan.facts
        side = plan.side
        et = plan.entry_time
        hard = plan.hard_stop
        if plan.long:
            quiet = price < plan.target and (hard is None or price > hard)
        else:
            quiet = price > plan.target and (hard is None or price < hard)
        if quiet:
            end = f.end
            if end is not None and end > et:
                ex = f.exhausted_from[side]
                fl = f.flipped_against_at[side]
                quiet = not (
                    f.beyond_macro[side]
                    or (ex is not None and ex > et)
                    or (fl is not None and fl > et)
                    or (plan.trailing and f.beyond_trail[side])
                )
            if quiet:
                deadline = plan.time_deadline
                if deadline is not None and now > deadline:
                    quiet = price >= plan.progress if plan.long else price <= plan.progress
                if quiet and plan.eod:
                    w = self._eod_window
                    if w is None or not w[0] <= now < w[2]:
                        w = self._window(now)
                    quiet = w is None or (now < w[1] and et >= w[0])
                hold = plan.hold_deadline
                if quiet and (hold is None or now < hold):
                    return None
        for rule in self._checks:
            decision = rule(plan, price, now)
            if decision is not None:
                return decision
        return None

    def evaluate(
        self,
        position: TrackedPosition,
        bars: Sequence[Bar],
        now: datetime,
        price: Decimal | None = None,
    ) -> ExitDecision | None:
        """Like :meth:`check`, with the clouds recomputed from ``bars`` (the position's
        timeframe, oldest first, one per end time); ``price`` defaults to the last close."""
        if price is None:
            if not bars:
                raise ValueError("evaluate needs bars or a price")
            price = bars[-1].close
        plan = self._make_plan(position, facts_from_bars(bars, self.config))
        for rule in self._checks:
            decision = rule(plan, price, now)
            if decision is not None:
                return decision
        return None

    def check_all(
        self, position: TrackedPosition, price: Decimal, now: datetime
    ) -> list[ExitDecision]:
        """Every exit that fires, highest priority first."""
        plan = self._plan_of(position)
        return [d for rule in self._checks if (d := rule(plan, price, now)) is not None]

    # One method per exit, each for a single position (the seed's API).
    def check_stop_loss(
        self, position: TrackedPosition, price: Decimal, now: datetime
    ) -> ExitDecision | None:
        return self._stop_loss(self._plan_of(position), price, now)

    def check_momentum_exhaustion(
        self, position: TrackedPosition, price: Decimal, now: datetime
    ) -> ExitDecision | None:
        return self._momentum_exhaustion(self._plan_of(position), price, now)

    def check_cloud_flip(
        self, position: TrackedPosition, price: Decimal, now: datetime
    ) -> ExitDecision | None:
        return self._cloud_flip(self._plan_of(position), price, now)

    def check_profit_target(
        self, position: TrackedPosition, price: Decimal, now: datetime
    ) -> ExitDecision | None:
        return self._profit_target(self._plan_of(position), price, now)

    def check_time_stop(
        self, position: TrackedPosition, price: Decimal, now: datetime
    ) -> ExitDecision | None:
        return self._time_stop(self._plan_of(position), price, now)

    def check_eod_close(
        self, position: TrackedPosition, price: Decimal, now: datetime
    ) -> ExitDecision | None:
        return self._eod_close(self._plan_of(position), price, now)

    def check_trailing_stop(
        self, position: TrackedPosition, price: Decimal, now: datetime
    ) -> ExitDecision | None:
        return self._trailing_stop(self._plan_of(position), price, now)

    def check_max_hold_days(
        self, position: TrackedPosition, price: Decimal, now: datetime
    ) -> ExitDecision | None:
        return self._max_hold_days(self._plan_of(position), price, now)

    # -- plans -----------------------------------------------------------------------------
    def _plan_of(self, position: TrackedPosition) -> _Plan:
        plan = position._plan
        if plan is None or plan.owner is not self:
            plan = self._plan(position)
        return plan

    def _plan(self, position: TrackedPosition) -> _Plan:
        tracker = self.tracker(self.chart_symbol(position), self.timeframe_of(position))
        plan = self._make_plan(position, tracker.facts)
        object.__setattr__(position, "_plan", plan)
        return plan

    def _make_plan(self, position: TrackedPosition, facts: BarFacts) -> _Plan:
        cfg = self.config
        long = position.direction is Direction.LONG
        sign = 1 if long else -1
        entry, risk = position.entry_price, position.risk_per_share
        tt = position.trade_type
        target = position.target
        if target is None:
            target = entry + sign * cfg.reward_to_risk_target * risk
        time_deadline = None
        if tt is TradeType.DAY:
            time_deadline = position.entry_time + timedelta(minutes=cfg.time_stop_minutes)
        option = position.instrument_type is InstrumentType.OPTION and is_occ(position.symbol)
        cloud_long = long
        if option:
            # a bought call or put: its premium rises with the view (long in price terms), and
            # the underlying's clouds flip against a call when bearish, against a put when bullish
            cloud_long = parse_occ(position.symbol).right is Right.CALL
            time_deadline = position.entry_time + timedelta(minutes=cfg.option_time_stop_minutes)
        hold_days = hold_deadline = None
        if position.instrument_type is InstrumentType.LEVERAGED_ETF:
            hold_days = cfg.max_hold_days(position.leverage)
            if hold_days is not None:
                hold_deadline = self._hold_deadline(position.entry_time, hold_days)
        return _Plan(
            owner=self,
            position=position,
            facts=facts,
            long=long,
            side=LONG if cloud_long else SHORT,
            entry_time=position.entry_time,
            hard_stop=position.stop if cfg.hard_stop else None,
            target=target,
            progress=entry + sign * cfg.time_stop_min_r * risk,
            time_deadline=time_deadline,
            eod=tt in (TradeType.DAY, TradeType.SCALP),
            trailing=tt is TradeType.SWING,
            hold_days=hold_days,
            hold_deadline=hold_deadline,
            cloud_stop=not option,
            exhaustion=not option,
        )

    def _hold_deadline(self, entry_time: datetime, days: int) -> datetime:
        """The open of the ``days``-th session after the one the position was opened in (an
        entry outside a session belongs to the next session)."""
        cal = self.calendar
        session = cal.session_date(entry_time)
        if session is None:
            session = cal.session_date(cal.next_open(entry_time))
            assert session is not None
        for _ in range(days):
            following = cal.session_date(cal.next_open(cal.session_close(session)))
            assert following is not None
            session = following
        return cal.session_open(session)

    def eod_cutoff(self, session: date) -> datetime:
        """The EOD cutoff of a session: ``eod_close_time`` ET, or the session's own close minus
        the same lead when it closes early."""
        cal = self.calendar
        eod = self.config.eod_close_time
        assert isinstance(eod, time)  # ExitConfig parses "HH:MM"
        local = datetime.combine(session, eod, tzinfo=EASTERN).astimezone(UTC)
        return min(local, cal.session_close(session) - self._lead)

    def _window(self, now: datetime) -> tuple[datetime, datetime, datetime] | None:
        w = self._eod_window
        if w is not None and w[0] <= now < w[2]:
            return w
        cal = self.calendar
        try:
            session = cal.previous_session(now)
        except ValueError:
            return None
        opened = cal.session_open(session)
        w = (opened, self.eod_cutoff(session), cal.next_open(opened))
        self._eod_window = w
        return w

    # -- the rules -------------------------------------------------------------------------
    def _stop_loss(self, p: _Plan, price: Decimal, now: datetime) -> ExitDecision | None:
        f = p.facts
        if p.cloud_stop and f.end is not None and f.end > p.entry_time and f.beyond_macro[p.side]:
            edge, word = _EDGE_NAMES[p.side]
            level = f.macro_edge[p.side]
            return ExitDecision(
                ExitReason.STOP_LOSS,
                f"close {f.close} {word} the macro cloud {edge} {level:.2f}",
                price,
                now,
            )
        stop = p.hard_stop
        if stop is not None and (price <= stop if p.long else price >= stop):
            word = "at or below" if p.long else "at or above"
            return ExitDecision(
                ExitReason.STOP_LOSS, f"price {price} {word} the stop {stop}", price, now
            )
        return None

    def _momentum_exhaustion(self, p: _Plan, price: Decimal, now: datetime) -> ExitDecision | None:
        f = p.facts
        since = f.exhausted_from[p.side]
        if p.exhaustion and since is not None and since > p.entry_time:
            where = "above a bullish" if p.long else "below a bearish"
            return ExitDecision(
                ExitReason.MOMENTUM_EXHAUSTION,
                f"{f.run[p.side]} closes in a row {where} fast cloud "
                f"(exhaustion from {self.config.exhaustion_bars})",
                price,
                now,
            )
        return None

    def _cloud_flip(self, p: _Plan, price: Decimal, now: datetime) -> ExitDecision | None:
        at = p.facts.flipped_against_at[p.side]
        if at is not None and at > p.entry_time:
            colour = "bearish" if p.side == LONG else "bullish"
            return ExitDecision(
                ExitReason.CLOUD_FLIP,
                f"fast cloud turned {colour} on the bar ending {at.isoformat()}",
                price,
                now,
            )
        return None

    def _profit_target(self, p: _Plan, price: Decimal, now: datetime) -> ExitDecision | None:
        target = p.target
        if price >= target if p.long else price <= target:
            return ExitDecision(
                ExitReason.TARGET, f"price {price} reached the target {target}", price, now
            )
        return None

    def _time_stop(self, p: _Plan, price: Decimal, now: datetime) -> ExitDecision | None:
        deadline = p.time_deadline
        if deadline is None or now <= deadline:
            return None
        if price < p.progress if p.long else price > p.progress:
            pos = p.position
            r = (price - pos.entry_price) / pos.risk_per_share * (1 if p.long else -1)
            r = r.quantize(Decimal("0.01"), ROUND_FLOOR)
            minutes = int((now - p.entry_time).total_seconds() // 60)
            cfg = self.config
            return ExitDecision(
                ExitReason.TIME_STOP,
                f"open {minutes} min with {r}R; needs {cfg.time_stop_min_r}R after "
                f"{cfg.time_stop_minutes} min",
                price,
                now,
            )
        return None

    def _eod_close(self, p: _Plan, price: Decimal, now: datetime) -> ExitDecision | None:
        if not p.eod:
            return None
        w = self._window(now)
        if w is None:
            return None
        tt = p.position.trade_type.value
        if p.entry_time < w[0]:
            return ExitDecision(
                ExitReason.EOD_CLOSE,
                f"{tt} position opened before this session: no overnight holds",
                price,
                now,
            )
        if now >= w[1]:
            cutoff = w[1].astimezone(EASTERN)
            return ExitDecision(
                ExitReason.EOD_CLOSE,
                f"{tt} position closed at the {cutoff:%H:%M} ET cutoff",
                price,
                now,
            )
        return None

    def _trailing_stop(self, p: _Plan, price: Decimal, now: datetime) -> ExitDecision | None:
        if not p.trailing:
            return None
        f = p.facts
        if f.end is not None and f.end > p.entry_time and f.beyond_trail[p.side]:
            edge, word = _EDGE_NAMES[p.side]
            return ExitDecision(
                ExitReason.TRAILING_STOP,
                f"close {f.close} {word} the {self.config.trailing_stop_cloud} cloud {edge} "
                f"{f.trail_edge[p.side]:.2f}",
                price,
                now,
            )
        return None

    def _max_hold_days(self, p: _Plan, price: Decimal, now: datetime) -> ExitDecision | None:
        deadline = p.hold_deadline
        if deadline is not None and now >= deadline:
            lev = p.position.leverage.normalize()
            return ExitDecision(
                ExitReason.MAX_HOLD_DAYS,
                f"{lev}x leveraged ETF held {p.hold_days} sessions, its maximum",
                price,
                now,
            )
        return None
