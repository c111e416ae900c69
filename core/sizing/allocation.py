"""Portfolio allocation: target weights per symbol (seed 000 R4.1) under the position constraints
of seed 000 R4.2.

Methods (each gives symbol -> weight, a share of account equity):

``equal``
    1/n for each symbol.
``score``
    Proportional to positive scores; a zero or negative score gets 0. No positive score is an error.
``vol_target``
    Base weights (equal unless given) scaled by one factor so the ex-ante portfolio volatility
    sqrt(w' S w) (S the annualised covariance matrix) equals the target, but never beyond the
    leverage limit: when the cap binds the weights stop at gross = ``leverage_limit`` and a
    ``leverage`` effect is reported.
``kelly``
    Per symbol, full Kelly f* = p/L - (1 - p)/W for win rate p, average win W and average loss L
    as fractional returns (this maximises the expected log growth p ln(1 + fW) + (1 - p) ln(1 - fL);
    with L = 1 it is the textbook p - q/b). The weight is ``fraction`` x f* (quarter Kelly by
    default), clamped at 0 and capped at the profile's ``max_single_exposure``.
``risk_parity``
    Equal risk contribution: long-only weights summing to 1 with RC_i = w_i (S w)_i equal for all
    i, solved by cyclical coordinate descent on min 1/2 y'Sy - sum(ln y_i)/n (whose optimum has
    y_i (S y)_i = 1/n) started from inverse volatility, then normalised.

Constraints (:func:`apply_constraints`), applied in this order, one rule, every change reported as
a :class:`ConstraintEffect`; symbols are always processed in sorted order so the result is
deterministic:

1. ``gross_exposure``: if the weights add up to more than ``leverage_limit - cash_buffer`` they are
   all scaled down by the same factor to exactly that total (the cash buffer is always held and
   never borrowed against).
2. ``max_single_position``: any weight above ``max_single_exposure`` is cut to it and the excess
   is redistributed pro rata (to current weight) over the names still below the cap, repeating
   until none is above; excess that no name can take stays in cash.
3. ``max_sector``: any sector (``sector_of(symbol)``, ``None`` for none) whose weights add up to
   more than ``max_sector_exposure`` is scaled down to it and the excess is redistributed pro rata
   over names below the single cap in sectors below the sector cap (or without sector),
   repeating until no cap is exceeded; excess no name can take stays in cash.
4. ``min_position``: a position worth less than ``min_position_value`` (weight x equity) is
   dropped to 0 and its weight stays in cash (it is not redistributed, so steps 1-3 still hold).

Weights are :class:`~decimal.Decimal` at the API; the numerical methods solve in float and round
results to ``1e-10`` (constrained weights round down so no cap is exceeded by rounding).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_DOWN, ROUND_HALF_EVEN, Decimal
from enum import StrEnum
from types import MappingProxyType
from typing import Any

import numpy as np

from core.domain import ZERO, ValidationError, to_decimal
from core.risk.config import CONSERVATIVE, RiskProfile

#: Weights are reported to this step.
WEIGHT_STEP = Decimal("1e-10")
#: Quarter Kelly unless told otherwise (seed 000 R4.1).
DEFAULT_KELLY_FRACTION = Decimal("0.25")
#: Risk parity stops when (max RC - min RC) / mean RC is below this.
RISK_PARITY_TOLERANCE = 1e-10
RISK_PARITY_MAX_SWEEPS = 10_000

SectorOf = Callable[[str], str | None]


class Method(StrEnum):
    EQUAL = "equal"
    SCORE = "score"
    VOL_TARGET = "vol_target"
    KELLY = "kelly"
    RISK_PARITY = "risk_parity"


@dataclass(frozen=True, slots=True)
class ConstraintEffect:
    """One change a constraint made: ``subject`` is a symbol, a sector or ``"portfolio"``."""

    constraint: str
    subject: str
    before: Decimal
    after: Decimal
    note: str


@dataclass(frozen=True, slots=True)
class KellyInputs:
    """Trade statistics of one symbol: win rate and average win / loss as fractional returns."""

    win_rate: Decimal
    avg_win: Decimal
    avg_loss: Decimal

    def __post_init__(self) -> None:
        p = to_decimal(self.win_rate, "win_rate")
        if not 0 <= p <= 1:
            raise ValidationError(f"win_rate must be between 0 and 1, got {p}")
        object.__setattr__(self, "win_rate", p)
        for name in ("avg_win", "avg_loss"):
            value = to_decimal(getattr(self, name), name)
            if value <= 0:
                raise ValidationError(f"{name} must be above 0 (a fractional return), got {value}")
            object.__setattr__(self, name, value)


@dataclass(frozen=True, slots=True)
class AllocationResult:
    """Weights before (``raw_weights``) and after (``weights``) the constraints."""

    method: Method
    raw_weights: Mapping[str, Decimal]
    weights: Mapping[str, Decimal]
    effects: tuple[ConstraintEffect, ...] = field(default_factory=tuple)

    @property
    def invested(self) -> Decimal:
        return sum(self.weights.values(), ZERO)

    @property
    def cash(self) -> Decimal:
        """Share of equity left in cash."""
        return Decimal(1) - self.invested


# ---------------------------------------------------------------------------------------------
# Validation helpers
# ---------------------------------------------------------------------------------------------


def _symbols(symbols: Iterable[str]) -> list[str]:
    out = list(symbols)
    if not out:
        raise ValidationError("allocation needs at least one symbol, got an empty portfolio")
    for s in out:
        if not isinstance(s, str) or not s.strip():
            raise ValidationError(f"symbols must be non-empty strings, got {s!r}")
    if len(set(out)) != len(out):
        dupes = sorted({s for s in out if out.count(s) > 1})
        raise ValidationError(f"symbols must be unique, repeated: {', '.join(dupes)}")
    return out


def _same_symbols(expected: Sequence[str], got: Iterable[str], what: str) -> None:
    a, b = set(expected), set(got)
    if a != b:
        parts = []
        if b - a:
            parts.append(f"unexpected {', '.join(sorted(b - a))}")
        if a - b:
            parts.append(f"missing {', '.join(sorted(a - b))}")
        raise ValidationError(f"{what} symbols do not match the portfolio: {'; '.join(parts)}")


def _weights_in(weights: Mapping[str, Any], name: str = "weights") -> dict[str, Decimal]:
    if not isinstance(weights, Mapping):
        raise ValidationError(f"{name} must be a mapping of symbol to weight")
    _symbols(weights)
    out: dict[str, Decimal] = {}
    for s in sorted(weights):
        w = to_decimal(weights[s], f"{name}[{s}]")
        if w < 0:
            raise ValidationError(f"{name}[{s}] must not be negative, got {w}")
        out[s] = w
    return out


def _q(value: float | Decimal, rounding: str = ROUND_HALF_EVEN) -> Decimal:
    d = value if isinstance(value, Decimal) else Decimal(repr(float(value)))
    result = d.quantize(WEIGHT_STEP, rounding=rounding)
    return result if result != 0 else ZERO


def _text(value: Decimal) -> str:
    """A Decimal for a note, without trailing zeros or exponent (``0.9800000000`` -> ``0.98``)."""
    return format(value.normalize(), "f")


def covariance_matrix(covariance: Any, symbols: Sequence[str]) -> np.ndarray:
    """A validated float covariance matrix in the order of ``symbols``.

    ``covariance`` is an n x n array-like in that order, or a mapping symbol -> symbol -> value.
    It must be square, finite, symmetric and positive semi-definite with positive variances.
    """
    syms = _symbols(symbols)
    n = len(syms)
    if isinstance(covariance, Mapping):
        _same_symbols(syms, covariance, "covariance")
        rows = []
        for a in syms:
            row = covariance[a]
            if not isinstance(row, Mapping):
                raise ValidationError(f"covariance[{a}] must be a mapping of symbol to value")
            _same_symbols(syms, row, f"covariance[{a}]")
            rows.append([row[b] for b in syms])
        covariance = rows
    try:
        m = np.asarray(covariance, dtype=float)
    except (TypeError, ValueError):
        raise ValidationError("covariance must be a numeric matrix") from None
    if m.ndim != 2 or m.shape[0] != m.shape[1]:
        raise ValidationError(f"covariance must be a square matrix, got shape {m.shape}")
    if m.shape[0] != n:
        raise ValidationError(
            f"covariance is {m.shape[0]}x{m.shape[1]} but the portfolio has {n} symbols"
        )
    if not np.all(np.isfinite(m)):
        raise ValidationError("covariance must contain only finite numbers (no NaN or inf)")
    scale = float(np.max(np.abs(m))) or 1.0
    if not np.allclose(m, m.T, rtol=0.0, atol=1e-10 * scale):
        raise ValidationError("covariance must be symmetric")
    diag = np.diag(m)
    if np.any(diag <= 0):
        bad = [syms[i] for i in range(n) if diag[i] <= 0]
        raise ValidationError(f"covariance needs positive variances, not for {', '.join(bad)}")
    m = (m + m.T) / 2.0
    if float(np.linalg.eigvalsh(m)[0]) < -1e-10 * scale:
        raise ValidationError("covariance must be positive semi-definite")
    return m


# ---------------------------------------------------------------------------------------------
# Methods
# ---------------------------------------------------------------------------------------------


def equal_weights(symbols: Iterable[str]) -> dict[str, Decimal]:
    """1/n for each symbol."""
    syms = sorted(_symbols(symbols))
    w = _q(Decimal(1) / Decimal(len(syms)))
    return dict.fromkeys(syms, w)


def score_weights(scores: Mapping[str, Any]) -> dict[str, Decimal]:
    """Weights proportional to positive scores; zero and negative scores get 0."""
    if not isinstance(scores, Mapping):
        raise ValidationError("scores must be a mapping of symbol to score")
    syms = sorted(_symbols(scores))
    values = {s: to_decimal(scores[s], f"scores[{s}]") for s in syms}
    total = sum((v for v in values.values() if v > 0), ZERO)
    if total <= 0:
        raise ValidationError("score weighting needs at least one positive score")
    return {s: _q(v / total) if v > 0 else ZERO for s, v in values.items()}


def portfolio_volatility(
    weights: Mapping[str, Any], symbols: Sequence[str], covariance: Any
) -> Decimal:
    """Ex-ante volatility sqrt(w' S w) in the covariance's units (annualised in and out)."""
    syms = _symbols(symbols)
    m = covariance_matrix(covariance, syms)
    w = _weights_in(weights)
    _same_symbols(syms, w, "weights")
    x = np.array([float(w[s]) for s in syms])
    return Decimal(repr(math.sqrt(max(float(x @ m @ x), 0.0))))


def volatility_target_weights(
    symbols: Sequence[str],
    covariance: Any,
    target_vol: Any,
    base_weights: Mapping[str, Any] | None = None,
    leverage_limit: Any = Decimal(1),
) -> tuple[dict[str, Decimal], list[ConstraintEffect]]:
    """Scale ``base_weights`` (equal by default) so sqrt(w' S w) equals ``target_vol``, with gross
    exposure at most ``leverage_limit``; a ``leverage`` effect is reported when that cap binds."""
    syms = _symbols(symbols)
    m = covariance_matrix(covariance, syms)
    target = to_decimal(target_vol, "target_vol")
    if target <= 0:
        raise ValidationError(f"target_vol must be above 0, got {target}")
    lev = to_decimal(leverage_limit, "leverage_limit")
    if lev <= 0:
        raise ValidationError(f"leverage_limit must be above 0, got {lev}")
    if base_weights is None:
        base = {s: Decimal(1) for s in syms}
    else:
        base = _weights_in(base_weights, "base_weights")
        _same_symbols(syms, base, "base_weights")
    x = np.array([float(base[s]) for s in syms])
    if x.sum() <= 0:
        raise ValidationError("base_weights must have a positive total")
    x = x / x.sum()
    vol = math.sqrt(max(float(x @ m @ x), 0.0))
    if vol <= 0:
        raise ValidationError("the base portfolio has zero volatility; it cannot be scaled")
    scale = float(target) / vol
    effects: list[ConstraintEffect] = []
    if scale > float(lev):
        effects.append(
            ConstraintEffect(
                "leverage",
                "portfolio",
                _q(scale),
                lev,
                f"gross exposure for target volatility {target} capped at leverage limit {lev}; "
                f"volatility reached {_text(_q(vol * float(lev)))}",
            )
        )
        scale = float(lev)
    weights = {s: _q(x[i] * scale) for i, s in enumerate(syms)}
    return dict(sorted(weights.items())), effects


def kelly_fraction(win_rate: Any, avg_win: Any, avg_loss: Any) -> Decimal:
    """Full Kelly f* = p/L - (1 - p)/W (may be negative: no edge)."""
    k = KellyInputs(win_rate, avg_win, avg_loss)
    p = k.win_rate
    return p / k.avg_loss - (1 - p) / k.avg_win


def fractional_kelly(
    win_rate: Any,
    avg_win: Any,
    avg_loss: Any,
    fraction: Any = DEFAULT_KELLY_FRACTION,
    cap: Any | None = None,
) -> Decimal:
    """``fraction`` x full Kelly, clamped at 0 and at most ``cap`` (when given)."""
    frac = to_decimal(fraction, "fraction")
    if not 0 < frac <= 1:
        raise ValidationError(f"Kelly fraction must be above 0 and at most 1, got {frac}")
    f = max(ZERO, frac * kelly_fraction(win_rate, avg_win, avg_loss))
    if cap is not None:
        c = to_decimal(cap, "cap")
        if c < 0:
            raise ValidationError(f"cap must not be negative, got {c}")
        f = min(f, c)
    return _q(f)


def kelly_weights(
    stats: Mapping[str, KellyInputs],
    fraction: Any = DEFAULT_KELLY_FRACTION,
    cap: Any | None = None,
) -> dict[str, Decimal]:
    """Fractional Kelly per symbol (see :func:`fractional_kelly`)."""
    if not isinstance(stats, Mapping):
        raise ValidationError("kelly inputs must be a mapping of symbol to KellyInputs")
    out: dict[str, Decimal] = {}
    for s in sorted(_symbols(stats)):
        k = stats[s]
        if not isinstance(k, KellyInputs):
            raise ValidationError(f"kelly[{s}] must be KellyInputs, got {type(k).__name__}")
        out[s] = fractional_kelly(k.win_rate, k.avg_win, k.avg_loss, fraction, cap)
    return out


def inverse_volatility_weights(symbols: Sequence[str], covariance: Any) -> dict[str, Decimal]:
    """Weights proportional to 1 / sqrt(S_ii), summing to 1."""
    syms = _symbols(symbols)
    m = covariance_matrix(covariance, syms)
    iv = 1.0 / np.sqrt(np.diag(m))
    iv = iv / iv.sum()
    return dict(sorted((s, _q(iv[i])) for i, s in enumerate(syms)))


def _risk_parity(m: np.ndarray) -> np.ndarray:
    n = m.shape[0]
    b = 1.0 / n
    diag = np.diag(m).copy()
    y = 1.0 / np.sqrt(diag)
    y = y / y.sum()
    y = y / math.sqrt(float(y @ m @ y) * n)  # so that sum y_i (S y)_i = 1 at the start
    sy = m @ y
    for _ in range(RISK_PARITY_MAX_SWEEPS):
        for i in range(n):
            c = sy[i] - diag[i] * y[i]
            new = (-c + math.sqrt(c * c + 4.0 * diag[i] * b)) / (2.0 * diag[i])
            sy += m[:, i] * (new - y[i])
            y[i] = new
        sy = m @ y  # refresh to keep rounding from accumulating
        rc = y * sy
        if (rc.max() - rc.min()) / rc.mean() < RISK_PARITY_TOLERANCE:
            return y / y.sum()
    raise ValidationError(
        "risk parity did not converge; the covariance matrix may be degenerate or ill-conditioned"
    )


def risk_parity_weights(symbols: Sequence[str], covariance: Any) -> dict[str, Decimal]:
    """Long-only equal-risk-contribution weights summing to 1."""
    syms = _symbols(symbols)
    w = _risk_parity(covariance_matrix(covariance, syms))
    return dict(sorted((s, _q(w[i])) for i, s in enumerate(syms)))


def risk_contributions(
    weights: Mapping[str, Any], symbols: Sequence[str], covariance: Any
) -> dict[str, float]:
    """RC_i = w_i (S w)_i for each symbol (they add up to the portfolio variance)."""
    syms = _symbols(symbols)
    m = covariance_matrix(covariance, syms)
    w = _weights_in(weights)
    _same_symbols(syms, w, "weights")
    x = np.array([float(w[s]) for s in syms])
    rc = x * (m @ x)
    return {s: float(rc[i]) for i, s in enumerate(syms)}


# ---------------------------------------------------------------------------------------------
# Constraints
# ---------------------------------------------------------------------------------------------


def _water_fill(
    w: dict[str, Decimal],
    single_cap: Decimal,
    sector_of: Mapping[str, str | None],
    sector_cap: Decimal | None,
) -> tuple[dict[str, Decimal], list[str], Decimal]:
    """Cut names (and sectors when ``sector_cap`` is set) to their caps and spread the excess pro
    rata over names with room. Returns the weights, the sectors cut, and the excess left in cash.

    A name at the single cap or in a sector at the sector cap never receives again, so each round
    either places all the excess or freezes one more name or sector: it ends in at most
    n + sectors + 1 rounds."""
    w = dict(w)
    frozen: set[str] = set()
    frozen_sectors: set[str] = set()
    cut_sectors: list[str] = []
    left = ZERO
    for _ in range(2 * len(w) + 2):
        excess = ZERO
        for s in sorted(w):
            if w[s] > single_cap:
                excess += w[s] - single_cap
                w[s] = single_cap
            if w[s] >= single_cap:
                frozen.add(s)
        if sector_cap is not None:
            totals: dict[str, Decimal] = {}
            for s in sorted(w):
                sec = sector_of[s]
                if sec is not None:
                    totals[sec] = totals.get(sec, ZERO) + w[s]
            for sec in sorted(totals):
                if totals[sec] > sector_cap:
                    factor = sector_cap / totals[sec]
                    for s in sorted(w):
                        if sector_of[s] == sec:
                            new = w[s] * factor
                            excess += w[s] - new
                            w[s] = new
                    if sec not in cut_sectors:
                        cut_sectors.append(sec)
                if totals[sec] >= sector_cap:
                    frozen_sectors.add(sec)
        if excess <= 0:
            break
        takers = [
            s
            for s in sorted(w)
            if w[s] > 0 and s not in frozen and sector_of.get(s) not in frozen_sectors
        ]
        room = sum((w[s] for s in takers), ZERO)
        if room <= 0:
            left += excess
            break
        for s in takers:
            w[s] += excess * w[s] / room
    return w, cut_sectors, left


def apply_constraints(
    weights: Mapping[str, Any],
    profile: RiskProfile = CONSERVATIVE,
    equity: Any | None = None,
    sector_of: SectorOf | None = None,
) -> tuple[dict[str, Decimal], list[ConstraintEffect]]:
    """Apply the seed 000 R4.2 constraints of ``profile`` by the rule in the module docstring.

    ``equity`` (account equity in dollars) is needed for the minimum position size; without it
    that step is skipped. Returns the constrained weights (every input symbol, 0 when dropped)
    and the effects in the order they were applied."""
    if not isinstance(profile, RiskProfile):
        raise ValidationError("profile must be a RiskProfile")
    w = _weights_in(weights)
    eq = None
    if equity is not None:
        eq = to_decimal(equity, "equity")
        if eq <= 0:
            raise ValidationError(f"equity must be above 0, got {eq}")
    sectors: dict[str, str | None] = {}
    for s in w:
        sec = sector_of(s) if sector_of is not None else None
        if sec is not None and (not isinstance(sec, str) or not sec.strip()):
            raise ValidationError(f"sector of {s} must be a non-empty string or None, got {sec!r}")
        sectors[s] = sec
    effects: list[ConstraintEffect] = []

    # 1. gross exposure: leverage limit less the cash buffer
    limit = max(ZERO, profile.leverage_limit - profile.cash_buffer)
    total = sum(w.values(), ZERO)
    if total > limit:
        factor = limit / total
        w = {s: v * factor for s, v in w.items()}
        effects.append(
            ConstraintEffect(
                "gross_exposure",
                "portfolio",
                _q(total),
                _q(limit),
                f"all weights scaled by {_text(_q(factor))} to leverage limit "
                f"{profile.leverage_limit} less cash buffer {profile.cash_buffer}",
            )
        )

    # 2. single position cap with pro-rata redistribution
    before = dict(w)
    w, _, left = _water_fill(w, profile.max_single_exposure, sectors, None)
    effects.extend(_changes("max_single_position", before, w, profile.max_single_exposure, left))

    # 3. sector cap with pro-rata redistribution (single cap still holds)
    before = dict(w)
    w, cut, left = _water_fill(w, profile.max_single_exposure, sectors, profile.max_sector_exposure)
    for sec in cut:
        members = [s for s in sorted(w) if sectors[s] == sec]
        effects.append(
            ConstraintEffect(
                "max_sector",
                sec,
                _q(sum((before[s] for s in members), ZERO)),
                _q(sum((w[s] for s in members), ZERO)),
                f"sector cut to max sector exposure {profile.max_sector_exposure}",
            )
        )
    if cut:
        effects.extend(_changes("max_sector", before, w, profile.max_sector_exposure, left))

    out = {s: _q(v, ROUND_DOWN) for s, v in sorted(w.items())}

    # 4. minimum position value: dropped weight stays in cash
    if eq is not None:
        for s, v in out.items():
            if v > 0 and v * eq < profile.min_position_value:
                effects.append(
                    ConstraintEffect(
                        "min_position",
                        s,
                        v,
                        ZERO,
                        f"position of {(v * eq).quantize(Decimal('0.01'))} is below the minimum "
                        f"{profile.min_position_value}; weight left in cash",
                    )
                )
                out[s] = ZERO
    return out, effects


def _changes(
    constraint: str,
    before: Mapping[str, Decimal],
    after: Mapping[str, Decimal],
    cap: Decimal,
    left: Decimal,
) -> list[ConstraintEffect]:
    out = []
    for s in sorted(before):
        b, a = _q(before[s]), _q(after[s])
        if a < b:
            out.append(ConstraintEffect(constraint, s, b, a, f"cut to cap {cap}"))
        elif a > b:
            out.append(ConstraintEffect(constraint, s, b, a, "received redistributed excess"))
    if left > 0:
        out.append(
            ConstraintEffect(
                constraint,
                "portfolio",
                _q(left),
                ZERO,
                "excess no position could take is left in cash",
            )
        )
    return out


# ---------------------------------------------------------------------------------------------
# Entry point
# ---------------------------------------------------------------------------------------------


def allocate(
    method: Method | str,
    *,
    symbols: Sequence[str] | None = None,
    scores: Mapping[str, Any] | None = None,
    covariance: Any = None,
    target_vol: Any = None,
    base_weights: Mapping[str, Any] | None = None,
    kelly: Mapping[str, KellyInputs] | None = None,
    kelly_multiplier: Any = DEFAULT_KELLY_FRACTION,
    profile: RiskProfile = CONSERVATIVE,
    equity: Any | None = None,
    sector_of: SectorOf | None = None,
) -> AllocationResult:
    """Raw weights by ``method``, then :func:`apply_constraints` with ``profile``.

    Inputs by method: ``equal`` symbols; ``score`` scores; ``vol_target`` symbols, covariance,
    target_vol (base_weights optional); ``kelly`` kelly (per-symbol :class:`KellyInputs`);
    ``risk_parity`` symbols, covariance. A covariance given as a symbol mapping supplies the
    symbols itself."""
    try:
        m = Method(method)
    except ValueError:
        known = ", ".join(x.value for x in Method)
        raise ValidationError(f"unknown allocation method {method!r}; use one of {known}") from None
    if not isinstance(profile, RiskProfile):
        raise ValidationError("profile must be a RiskProfile")
    if symbols is None and isinstance(covariance, Mapping):
        symbols = sorted(covariance)

    def need(value: Any, name: str) -> Any:
        if value is None:
            raise ValidationError(f"method {m.value} needs {name}")
        return value

    effects: list[ConstraintEffect] = []
    if m is Method.EQUAL:
        raw = equal_weights(need(symbols, "symbols"))
    elif m is Method.SCORE:
        raw = score_weights(need(scores, "scores"))
        if symbols is not None:
            _same_symbols(_symbols(symbols), raw, "scores")
    elif m is Method.VOL_TARGET:
        raw, effects = volatility_target_weights(
            need(symbols, "symbols"),
            need(covariance, "covariance"),
            need(target_vol, "target_vol"),
            base_weights,
            profile.leverage_limit,
        )
    elif m is Method.KELLY:
        raw = kelly_weights(need(kelly, "kelly"), kelly_multiplier, profile.max_single_exposure)
        if symbols is not None:
            _same_symbols(_symbols(symbols), raw, "kelly")
    else:
        raw = risk_parity_weights(need(symbols, "symbols"), need(covariance, "covariance"))
    weights, more = apply_constraints(raw, profile, equity, sector_of)
    return AllocationResult(
        method=m,
        raw_weights=MappingProxyType(dict(raw)),
        weights=MappingProxyType(weights),
        effects=tuple(effects + more),
    )
