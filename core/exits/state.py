"""What the exit rules need to know about one symbol's bars on one timeframe, kept up to date one
bar at a time (:meth:`CloudTracker.update`, O(1) per bar) or rebuilt from a whole history
(:func:`facts_from_bars`, using the array functions of :mod:`core.signals.clouds`).

Both produce the same :class:`BarFacts` for the same bars; the exit decisions read only those.
Everything is stored for both directions (index 0 = long, 1 = short) so a check is a lookup.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from core.domain import Bar
from core.exits.model import ExitConfig
from core.signals.clouds import (
    CloudState,
    EmaState,
    Relation,
    cloud_series,
    consecutive_outside,
    last_flip_index,
)

LONG, SHORT = 0, 1


@dataclass(slots=True)
class BarFacts:
    """The exit-relevant facts of the latest bar (``end`` None: no bar yet)."""

    end: datetime | None = None
    close: Decimal | None = None
    #: Close beyond the macro cloud against the position: (below bottom, above top).
    beyond_macro: tuple[bool, bool] = (False, False)
    macro_edge: tuple[float, float] = (0.0, 0.0)  # (bottom, top)
    #: Close beyond the trailing cloud against the position: (below bottom, above top).
    beyond_trail: tuple[bool, bool] = (False, False)
    trail_edge: tuple[float, float] = (0.0, 0.0)
    #: Consecutive closes above a bullish / below a bearish fast cloud.
    run: tuple[int, int] = (0, 0)
    #: End of the earliest of the last ``exhaustion_bars`` bars when the run is at least that
    #: long (the exhaustion fires if this bar closed after the entry), else None.
    exhausted_from: tuple[datetime | None, datetime | None] = (None, None)
    #: End of the bar on which the fast cloud last turned against the position, while it still
    #: is against it: (turned bearish, turned bullish).
    flipped_against_at: tuple[datetime | None, datetime | None] = (None, None)

    def copy_from(self, other: BarFacts) -> None:
        for name in BarFacts.__slots__:
            setattr(self, name, getattr(other, name))


class CloudTracker:
    """Incremental clouds and exit facts for one (symbol, timeframe)."""

    __slots__ = (
        "_ends",
        "_fast",
        "_last_bullish",
        "_last_flip",
        "_macro",
        "_pull",
        "_run_above",
        "_run_below",
        "_trail_is_fast",
        "config",
        "facts",
    )

    def __init__(self, config: ExitConfig):
        self.config = config
        self.facts = BarFacts()
        self.reset()

    def reset(self) -> None:
        cfg = self.config
        seed = cfg.ema_seed
        self._fast = (EmaState(cfg.fast[0], seed), EmaState(cfg.fast[1], seed))
        self._pull = (EmaState(cfg.pullback[0], seed), EmaState(cfg.pullback[1], seed))
        self._macro = (EmaState(cfg.macro[0], seed), EmaState(cfg.macro[1], seed))
        self._trail_is_fast = cfg.trailing_stop_cloud == "fast"
        self._ends: deque[datetime] = deque(maxlen=cfg.exhaustion_bars)
        self._run_above = self._run_below = 0
        self._last_bullish: bool | None = None
        self._last_flip: datetime | None = None
        self.facts.copy_from(BarFacts())

    def clouds(self) -> dict[str, CloudState | None]:
        """The current fast, pullback and macro clouds (None until defined)."""
        return {
            "fast": _cloud(self._fast),
            "pullback": _cloud(self._pull),
            "macro": _cloud(self._macro),
        }

    def update(self, bar: Bar) -> bool:
        """Take the next bar; False (and no change) if it does not end after the last one."""
        f = self.facts
        if f.end is not None and bar.end <= f.end:
            return False
        x = float(bar.close)
        fast = _step(self._fast, x)
        pull = _step(self._pull, x)
        macro = _step(self._macro, x)
        self._ends.append(bar.end)
        f.end = bar.end
        f.close = bar.close

        if macro is not None:
            f.beyond_macro = (x < macro.bottom, x > macro.top)
            f.macro_edge = (macro.bottom, macro.top)
        else:
            f.beyond_macro, f.macro_edge = (False, False), (0.0, 0.0)
        trail = fast if self._trail_is_fast else pull
        if trail is not None:
            f.beyond_trail = (x < trail.bottom, x > trail.top)
            f.trail_edge = (trail.bottom, trail.top)
        else:
            f.beyond_trail, f.trail_edge = (False, False), (0.0, 0.0)

        if fast is None:
            self._run_above = self._run_below = 0
            f.flipped_against_at = (None, None)
        else:
            bullish = fast.bullish
            self._run_above = self._run_above + 1 if bullish and x > fast.top else 0
            self._run_below = self._run_below + 1 if not bullish and x < fast.bottom else 0
            if self._last_bullish is not None and bullish != self._last_bullish:
                self._last_flip = bar.end
            self._last_bullish = bullish
            flip = self._last_flip
            f.flipped_against_at = (None, flip) if bullish else (flip, None)
        f.run = (self._run_above, self._run_below)
        need = self.config.exhaustion_bars
        first = self._ends[0] if len(self._ends) == need else None
        f.exhausted_from = (
            first if self._run_above >= need else None,
            first if self._run_below >= need else None,
        )
        return True


def _step(pair: tuple[EmaState, EmaState], x: float) -> CloudState | None:
    a = pair[0].update(x)
    b = pair[1].update(x)
    return None if a is None or b is None else CloudState(a, b)


def _cloud(pair: tuple[EmaState, EmaState]) -> CloudState | None:
    a, b = pair[0].value, pair[1].value
    return None if a is None or b is None else CloudState(a, b)


def facts_from_bars(bars: Sequence[Bar], config: ExitConfig) -> BarFacts:
    """The same facts as feeding ``bars`` (in order, one per end time) to a CloudTracker,
    recomputed from scratch with the array functions."""
    facts = BarFacts()
    if not bars:
        return facts
    closes = [float(b.close) for b in bars]
    seed = config.ema_seed
    fast = cloud_series(closes, config.fast, seed)
    pull = cloud_series(closes, config.pullback, seed)
    macro = cloud_series(closes, config.macro, seed)
    trail = fast if config.trailing_stop_cloud == "fast" else pull
    t = len(bars) - 1
    x = closes[t]
    facts.end = bars[t].end
    facts.close = bars[t].close
    m, tr = macro[t], trail[t]
    if m is not None:
        facts.beyond_macro = (x < m.bottom, x > m.top)
        facts.macro_edge = (m.bottom, m.top)
    if tr is not None:
        facts.beyond_trail = (x < tr.bottom, x > tr.top)
        facts.trail_edge = (tr.bottom, tr.top)
    above = consecutive_outside(closes, fast, Relation.ABOVE)
    below = consecutive_outside(closes, fast, Relation.BELOW)
    facts.run = (above, below)
    need = config.exhaustion_bars
    first = bars[t - need + 1].end if len(bars) >= need else None
    facts.exhausted_from = (first if above >= need else None, first if below >= need else None)
    current = fast[t]
    if current is not None:
        # Flips are only counted between bars where the fast cloud is defined.
        defined = [s for s in fast if s is not None]
        offset = len(fast) - len(defined)
        i = last_flip_index(defined)
        at = None if i is None else bars[i + offset].end
        facts.flipped_against_at = (None, at) if current.bullish else (at, None)
    return facts
