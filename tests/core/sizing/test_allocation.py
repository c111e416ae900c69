"""Allocation methods (seed 000 R4.1) and position constraints (seed 000 R4.2): hand-worked
numbers, Kelly against a numerical maximisation of log growth, equal risk contributions, and a
property test that constrained weights always respect the profile."""

from __future__ import annotations

import math
from dataclasses import replace
from decimal import Decimal as D

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.domain import ValidationError
from core.risk.config import CONSERVATIVE
from core.sizing.allocation import (
    AllocationResult,
    ConstraintEffect,
    KellyInputs,
    Method,
    allocate,
    apply_constraints,
    equal_weights,
    fractional_kelly,
    inverse_volatility_weights,
    kelly_fraction,
    kelly_weights,
    portfolio_volatility,
    risk_contributions,
    risk_parity_weights,
    score_weights,
    volatility_target_weights,
)

#: Conservative limits without the single and sector caps, to look at one constraint at a time.
UNCAPPED = replace(CONSERVATIVE, max_single_exposure=D(1), max_sector_exposure=D(1))
STEP = D("1e-10")


def _cov(vols, corr):
    v = np.asarray(vols, dtype=float)
    return np.outer(v, v) * np.asarray(corr, dtype=float)


HAND_SYMBOLS = ["AAA", "BBB", "CCC"]
HAND_COV = _cov([0.10, 0.20, 0.30], [[1.0, 0.3, 0.5], [0.3, 1.0, -0.2], [0.5, -0.2, 1.0]])


def _random_cov(n=20, seed=7):
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(n, 2 * n))
    cov = a @ a.T / (2 * n)
    vols = rng.uniform(0.1, 0.5, size=n)
    d = np.sqrt(np.diag(cov))
    corr = cov / np.outer(d, d)
    return np.outer(vols, vols) * corr


def _effects(result_effects, constraint):
    return [e for e in result_effects if e.constraint == constraint]


# ---------------------------------------------------------------------------------------------
# Methods
# ---------------------------------------------------------------------------------------------


class TestEqualAndScore:
    def test_equal_weight(self):
        assert equal_weights(["B", "A", "C", "D"]) == {k: D("0.25") for k in "ABCD"}
        assert equal_weights(["X", "Y", "Z"])["X"] == D("0.3333333333")

    def test_score_weighted_proportional_to_positive_scores(self):
        w = score_weights({"A": 3, "B": 1, "C": 0, "D": -2})
        assert w == {"A": D("0.75"), "B": D("0.25"), "C": D(0), "D": D(0)}

    def test_all_non_positive_scores_is_an_error(self):
        with pytest.raises(ValidationError, match="positive score"):
            score_weights({"A": 0, "B": -1})

    def test_allocate_equal_with_conservative_profile(self):
        # 5 x 0.2 = 1.0 -> scaled to 0.98 (2 % cash buffer) -> 0.196 each, then cut to 0.15 each
        # with nobody to take the excess: 0.75 invested, 0.25 cash.
        r = allocate("equal", symbols=list("ABCDE"), equity=100_000)
        assert isinstance(r, AllocationResult)
        assert r.method is Method.EQUAL
        assert r.raw_weights == {k: D("0.2") for k in "ABCDE"}
        assert r.weights == {k: D("0.15") for k in "ABCDE"}
        assert r.cash == D("0.25")
        assert _effects(r.effects, "gross_exposure")[0].after == D("0.98")
        left = [e for e in r.effects if e.subject == "portfolio"][-1]
        assert left.constraint == "max_single_position" and left.before == D("0.23")


class TestVolatilityTarget:
    COV = [[0.04, 0.0], [0.0, 0.04]]  # two uncorrelated assets at 20 % vol

    def test_hand_worked_scale_down(self):
        # equal weights: vol = sqrt(2 x 0.25 x 0.04) = 0.1414...; to hit 0.10 scale by 0.7071...
        w, effects = volatility_target_weights(["A", "B"], self.COV, D("0.10"))
        assert w == {"A": D("0.3535533906"), "B": D("0.3535533906")}
        assert effects == []
        vol = portfolio_volatility(w, ["A", "B"], self.COV)
        assert abs(vol - D("0.10")) < D("1e-9")

    def test_leverage_cap_binds_and_is_reported(self):
        # 0.30 would need gross 2.12; the 1x cap stops at 0.5 / 0.5 (vol 0.1414)
        w, effects = volatility_target_weights(["A", "B"], self.COV, D("0.30"), None, D(1))
        assert w == {"A": D("0.5"), "B": D("0.5")}
        assert len(effects) == 1
        e = effects[0]
        assert (e.constraint, e.subject, e.after) == ("leverage", "portfolio", D(1))
        assert e.before == D("2.1213203436")

    def test_base_weights_and_correlations(self):
        w, _ = volatility_target_weights(
            HAND_SYMBOLS, HAND_COV, D("0.12"), {"AAA": 2, "BBB": 1, "CCC": 1}, D(3)
        )
        assert abs(portfolio_volatility(w, HAND_SYMBOLS, HAND_COV) - D("0.12")) < D("1e-9")
        assert abs(w["AAA"] - 2 * w["BBB"]) <= 2 * STEP
        assert w["BBB"] == w["CCC"]

    def test_allocate_reports_leverage_effect(self):
        r = allocate(
            Method.VOL_TARGET,
            symbols=["A", "B"],
            covariance=self.COV,
            target_vol="0.3",
            profile=UNCAPPED,
            equity=100_000,
        )
        assert r.raw_weights == {"A": D("0.5"), "B": D("0.5")}
        assert [e.constraint for e in r.effects] == ["leverage", "gross_exposure"]
        assert r.weights == {"A": D("0.49"), "B": D("0.49")}


def _golden_max(g, lo, hi, tol=1e-12):
    inv = (math.sqrt(5) - 1) / 2
    a, b = lo, hi
    c, d = b - inv * (b - a), a + inv * (b - a)
    gc, gd = g(c), g(d)
    while b - a > tol:
        if gc > gd:
            b, d, gd = d, c, gc
            c = b - inv * (b - a)
            gc = g(c)
        else:
            a, c, gc = c, d, gd
            d = a + inv * (b - a)
            gd = g(d)
    return (a + b) / 2


class TestKelly:
    def test_hand_worked_even_money(self):
        # p = 0.6, win 100 %, lose 100 %: f* = 0.6 - 0.4 = 0.2; quarter Kelly 0.05
        assert kelly_fraction("0.6", 1, 1) == D("0.2")
        assert fractional_kelly("0.6", 1, 1) == D("0.05")

    def test_hand_worked_two_to_one(self):
        # p = 0.5, b = 2, L = 1: f* = 0.5 - 0.5 / 2 = 0.25; quarter 0.0625; half 0.125
        assert kelly_fraction("0.5", 2, 1) == D("0.25")
        assert fractional_kelly("0.5", 2, 1) == D("0.0625")
        assert fractional_kelly("0.5", 2, 1, fraction="0.5") == D("0.125")

    def test_hand_worked_fractional_returns_capped(self):
        # p = 0.55, W = 10 %, L = 5 %: f* = 0.55/0.05 - 0.45/0.10 = 11 - 4.5 = 6.5
        assert kelly_fraction("0.55", "0.10", "0.05") == D("6.5")
        assert fractional_kelly("0.55", "0.10", "0.05") == D("1.625")
        assert fractional_kelly("0.55", "0.10", "0.05", cap=CONSERVATIVE.max_single_exposure) == D(
            "0.15"
        )

    def test_no_edge_clamps_to_zero(self):
        assert kelly_fraction("0.3", 1, 1) == D("-0.4")
        assert fractional_kelly("0.3", 1, 1) == D(0)
        assert fractional_kelly("0.4", "1.5", 1) == D(0)  # f* = 0.4 - 0.6/1.5 = 0

    @pytest.mark.parametrize(
        ("p", "win", "loss"),
        [(0.6, 1.0, 1.0), (0.5, 2.0, 1.0), (0.55, 0.10, 0.05), (0.45, 0.30, 0.10), (0.7, 0.5, 0.8)],
    )
    def test_matches_numerical_log_growth_maximum(self, p, win, loss):
        def growth(f):
            return p * math.log1p(f * win) + (1 - p) * math.log1p(-f * loss)

        best = _golden_max(growth, 0.0, (1.0 / loss) * (1 - 1e-9))
        assert abs(float(kelly_fraction(p, win, loss)) - best) < 1e-6

    def test_kelly_method_caps_each_name_then_constraints(self):
        stats = {
            "A": KellyInputs(D("0.6"), D(1), D(1)),  # quarter 0.05
            "B": KellyInputs(D("0.55"), D("0.10"), D("0.05")),  # quarter 1.625 -> 0.15
            "C": KellyInputs(D("0.3"), D(1), D(1)),  # no edge -> 0
        }
        assert kelly_weights(stats, cap="0.15") == {"A": D("0.05"), "B": D("0.15"), "C": D(0)}
        r = allocate("kelly", kelly=stats, equity=100_000)
        assert r.weights == {"A": D("0.05"), "B": D("0.15"), "C": D(0)}
        assert r.effects == ()

    def test_kelly_input_validation(self):
        with pytest.raises(ValidationError, match="win_rate"):
            KellyInputs(D("1.2"), D(1), D(1))
        with pytest.raises(ValidationError, match="avg_loss"):
            kelly_fraction("0.5", 1, 0)
        with pytest.raises(ValidationError, match="fraction"):
            fractional_kelly("0.5", 1, 1, fraction=0)


class TestRiskParity:
    @staticmethod
    def _spread(weights, symbols, cov):
        rc = np.array(list(risk_contributions(weights, symbols, cov).values()))
        return (rc.max() - rc.min()) / rc.mean()

    def test_equal_risk_contributions_three_assets(self):
        w = risk_parity_weights(HAND_SYMBOLS, HAND_COV)
        assert abs(sum(w.values()) - 1) <= D("1e-9")
        assert all(v > 0 for v in w.values())
        assert self._spread(w, HAND_SYMBOLS, HAND_COV) < 1e-6

    def test_equal_risk_contributions_twenty_random_assets(self):
        cov = _random_cov()
        assert np.linalg.eigvalsh(cov)[0] > 0
        symbols = [f"S{i:02d}" for i in range(20)]
        w = risk_parity_weights(symbols, cov)
        assert abs(sum(w.values()) - 1) <= D("1e-8")
        assert all(v > 0 for v in w.values())
        assert self._spread(w, symbols, cov) < 1e-6

    def test_differs_from_inverse_vol_when_correlations_differ(self):
        # equal vols; A and B correlated 0.8, C uncorrelated. Inverse vol: 1/3 each. ERC by
        # symmetry w_A = w_B = a, w_C = b with 0.04 x 1.8 a^2 = 0.04 b^2: b = sqrt(1.8) a, so
        # a = 1 / (2 + sqrt(1.8)) = 0.2992537, b = 0.4014926.
        cov = _cov([0.2, 0.2, 0.2], [[1, 0.8, 0], [0.8, 1, 0], [0, 0, 1]])
        iv = inverse_volatility_weights(["A", "B", "C"], cov)
        assert iv == {k: D("0.3333333333") for k in "ABC"}
        w = risk_parity_weights(["A", "B", "C"], cov)
        a = 1 / (2 + math.sqrt(1.8))
        assert abs(float(w["A"]) - a) < 1e-9 and abs(float(w["B"]) - a) < 1e-9
        assert abs(float(w["C"]) - math.sqrt(1.8) * a) < 1e-9
        assert self._spread(iv, ["A", "B", "C"], cov) > 0.1

    def test_uncorrelated_is_inverse_vol(self):
        cov = _cov([0.1, 0.2, 0.4], np.eye(3))
        w = risk_parity_weights(["A", "B", "C"], cov)
        iv = inverse_volatility_weights(["A", "B", "C"], cov)
        assert all(abs(w[k] - iv[k]) <= STEP for k in "ABC")

    def test_allocate_accepts_covariance_mapping(self):
        cov = {
            "A": {"A": 0.04, "B": 0.01},
            "B": {"A": 0.01, "B": 0.09},
        }
        r = allocate("risk_parity", covariance=cov, profile=UNCAPPED, equity=1_000_000)
        # two assets: ERC is inverse vol (0.6 / 0.4), then scaled to 0.98
        assert r.raw_weights == {"A": D("0.6"), "B": D("0.4")}
        assert r.weights == {"A": D("0.588"), "B": D("0.392")}


# ---------------------------------------------------------------------------------------------
# Constraints (conservative profile: 15 % single, 35 % sector, $500 minimum, 2 % cash, 1x)
# ---------------------------------------------------------------------------------------------


class TestConstraints:
    def test_gross_exposure_scaled_to_leverage_less_cash_buffer(self):
        w, effects = apply_constraints({"A": D("0.5"), "B": D("0.5")}, UNCAPPED)
        assert w == {"A": D("0.49"), "B": D("0.49")}
        assert effects == [
            ConstraintEffect(
                "gross_exposure",
                "portfolio",
                D(1),
                D("0.98"),
                "all weights scaled by 0.98 to leverage limit 1 less cash buffer 0.02",
            )
        ]

    def test_under_the_limit_is_untouched(self):
        w, effects = apply_constraints({"A": D("0.10"), "B": D("0.12")}, CONSERVATIVE, 100_000)
        assert w == {"A": D("0.10"), "B": D("0.12")}
        assert effects == []

    def test_single_cap_redistributes_pro_rata(self):
        # A 0.30 and B 0.20 cut to 0.15: excess 0.20 over eight names of 0.06 (0.48) -> +0.025
        weights = {"A": D("0.30"), "B": D("0.20")} | {c: D("0.06") for c in "CDEFGHIJ"}
        w, effects = apply_constraints(weights, CONSERVATIVE, 1_000_000)
        assert w == {"A": D("0.15"), "B": D("0.15")} | {c: D("0.085") for c in "CDEFGHIJ"}
        cuts = [e for e in effects if e.note.startswith("cut")]
        assert [(e.subject, e.before, e.after) for e in cuts] == [
            ("A", D("0.3"), D("0.15")),
            ("B", D("0.2"), D("0.15")),
        ]
        assert len([e for e in effects if e.note == "received redistributed excess"]) == 8

    def test_single_cap_cascades(self):
        # A 0.40 -> 0.15; spreading 0.25 pushes B (0.13) over too; in the end A = B = 0.15 and
        # the six equal names share the remaining 0.68: 0.11333... each.
        weights = {"A": D("0.40"), "B": D("0.13")} | {c: D("0.075") for c in "CDEFGH"}
        w, _ = apply_constraints(weights, CONSERVATIVE, 1_000_000)
        assert w["A"] == w["B"] == D("0.15")
        assert all(w[c] == D("0.1133333333") for c in "CDEFGH")

    def test_single_cap_excess_without_takers_stays_in_cash(self):
        w, effects = apply_constraints({"A": D("0.9")}, CONSERVATIVE, 1_000_000)
        assert w == {"A": D("0.15")}
        assert effects[-1] == ConstraintEffect(
            "max_single_position",
            "portfolio",
            D("0.75"),
            D(0),
            "excess no position could take is left in cash",
        )

    def test_sector_cap_redistributes_outside_the_sector(self):
        # Tech A, B, C at 0.15 = 0.45 -> 0.35 (0.11666... each); the 0.10 excess goes pro rata
        # to D..H (0.106 each, 0.53): +0.02 each -> 0.126.
        sectors = {"A": "Tech", "B": "Tech", "C": "Tech", "D": "Health", "E": "Health"}
        weights = {k: D("0.15") for k in "ABC"} | {k: D("0.106") for k in "DEFGH"}
        w, effects = apply_constraints(weights, CONSERVATIVE, 1_000_000, sectors.get)
        assert all(w[k] == D("0.1166666666") for k in "ABC")
        assert all(w[k] == D("0.126") for k in "DEFGH")
        sector = [e for e in effects if e.subject == "Tech"]
        assert sector == [
            ConstraintEffect(
                "max_sector", "Tech", D("0.45"), D("0.35"), "sector cut to max sector exposure 0.35"
            )
        ]
        assert {e.subject for e in effects if e.constraint == "max_sector"} == set("ABCDEFGH") | {
            "Tech"
        }

    def test_sector_redistribution_respects_single_cap(self):
        # as above but D..G at 0.1325 (0.53): +0.025 would reach 0.1575, so they stop at 0.15 and
        # the 0.03 nobody can take stays in cash.
        sectors = {"A": "Tech", "B": "Tech", "C": "Tech"}
        weights = {k: D("0.15") for k in "ABC"} | {k: D("0.1325") for k in "DEFG"}
        w, effects = apply_constraints(weights, CONSERVATIVE, 1_000_000, sectors.get)
        assert all(w[k] == D("0.1166666666") for k in "ABC")
        assert all(w[k] == D("0.15") for k in "DEFG")
        assert effects[-1].subject == "portfolio" and effects[-1].before == D("0.03")

    def test_min_position_dropped_to_cash(self):
        # equity 10,000: B at 4 % is $400 < $500 -> 0, not redistributed
        w, effects = apply_constraints({"A": D("0.15"), "B": D("0.04")}, CONSERVATIVE, 10_000)
        assert w == {"A": D("0.15"), "B": D(0)}
        assert effects == [
            ConstraintEffect(
                "min_position",
                "B",
                D("0.04"),
                D(0),
                "position of 400.00 is below the minimum 500; weight left in cash",
            )
        ]

    def test_min_position_skipped_without_equity(self):
        w, _ = apply_constraints({"A": D("0.0001")}, CONSERVATIVE)
        assert w == {"A": D("0.0001")}

    def test_deterministic_regardless_of_input_order(self):
        a = {"Z": D("0.5"), "A": D("0.3"), "M": D("0.2")}
        b = dict(reversed(list(a.items())))
        assert apply_constraints(a, CONSERVATIVE, 50_000) == apply_constraints(
            b, CONSERVATIVE, 50_000
        )
        assert list(apply_constraints(a, CONSERVATIVE, 50_000)[0]) == ["A", "M", "Z"]


_weight = st.decimals(min_value=0, max_value=2, places=4, allow_nan=False, allow_infinity=False)


@st.composite
def _cases(draw):
    n = draw(st.integers(min_value=1, max_value=10))
    symbols = [f"S{i}" for i in range(n)]
    weights = {s: draw(_weight) for s in symbols}
    sectors = {s: draw(st.sampled_from([None, "Tech", "Health", "Energy"])) for s in symbols}
    single = draw(st.decimals(min_value="0.01", max_value="1", places=2))
    sector = draw(st.decimals(min_value=single, max_value="1", places=2))
    profile = replace(
        CONSERVATIVE,
        max_single_exposure=single,
        max_sector_exposure=sector,
        cash_buffer=draw(st.decimals(min_value=0, max_value="0.2", places=2)),
        leverage_limit=draw(st.decimals(min_value="0.1", max_value=3, places=2)),
        min_position_value=draw(st.decimals(min_value=0, max_value=5_000, places=0)),
    )
    equity = draw(st.decimals(min_value=1_000, max_value=1_000_000, places=0))
    return weights, sectors, profile, equity


class TestConstraintProperties:
    @settings(max_examples=300, deadline=None)
    @given(_cases())
    def test_output_always_satisfies_every_constraint(self, case):
        weights, sectors, profile, equity = case
        w, _ = apply_constraints(weights, profile, equity, sectors.get)
        assert set(w) == set(weights)
        assert all(v >= 0 for v in w.values())
        assert sum(w.values()) <= max(D(0), profile.leverage_limit - profile.cash_buffer)
        assert all(v <= profile.max_single_exposure for v in w.values())
        for sec in {"Tech", "Health", "Energy"}:
            total = sum((v for s, v in w.items() if sectors[s] == sec), D(0))
            assert total <= profile.max_sector_exposure
        assert all(v == 0 or v * equity >= profile.min_position_value for v in w.values())


# ---------------------------------------------------------------------------------------------
# Validation
# ---------------------------------------------------------------------------------------------


class TestValidation:
    def test_unknown_method(self):
        with pytest.raises(ValidationError, match="unknown allocation method 'magic'"):
            allocate("magic", symbols=["A"], equity=10_000)

    def test_missing_method_input(self):
        with pytest.raises(ValidationError, match="risk_parity needs covariance"):
            allocate("risk_parity", symbols=["A"], equity=10_000)

    def test_empty_portfolio(self):
        with pytest.raises(ValidationError, match="empty portfolio"):
            equal_weights([])
        with pytest.raises(ValidationError, match="empty portfolio"):
            apply_constraints({}, CONSERVATIVE)

    @pytest.mark.parametrize("bad", [float("nan"), float("inf"), "nan", "-inf"])
    def test_non_finite_inputs(self, bad):
        with pytest.raises(ValidationError, match=r"finite|number"):
            score_weights({"A": bad, "B": 1})
        with pytest.raises(ValidationError, match=r"finite|number"):
            apply_constraints({"A": bad}, CONSERVATIVE)
        with pytest.raises(ValidationError, match="finite"):
            risk_parity_weights(["A", "B"], [[0.04, bad], [bad, 0.04]])

    def test_negative_inputs(self):
        with pytest.raises(ValidationError, match="must not be negative"):
            apply_constraints({"A": D("-0.1")}, CONSERVATIVE)
        with pytest.raises(ValidationError, match="base_weights"):
            volatility_target_weights(["A", "B"], np.eye(2) * 0.04, "0.1", {"A": -1, "B": 1})
        with pytest.raises(ValidationError, match="target_vol"):
            volatility_target_weights(["A"], [[0.04]], "-0.1")
        with pytest.raises(ValidationError, match="equity"):
            apply_constraints({"A": D("0.1")}, CONSERVATIVE, -5)

    def test_covariance_not_square(self):
        with pytest.raises(ValidationError, match="square"):
            risk_parity_weights(["A", "B"], [[0.04, 0.0, 0.0], [0.0, 0.04, 0.0]])

    def test_covariance_not_psd(self):
        # correlation 1.5 between two assets: eigenvalue 0.04 x (1 - 1.5) < 0
        with pytest.raises(ValidationError, match="positive semi-definite"):
            risk_parity_weights(["A", "B"], [[0.04, 0.06], [0.06, 0.04]])

    def test_covariance_not_symmetric_or_zero_variance(self):
        with pytest.raises(ValidationError, match="symmetric"):
            risk_parity_weights(["A", "B"], [[0.04, 0.01], [0.0, 0.04]])
        with pytest.raises(ValidationError, match="positive variances"):
            risk_parity_weights(["A", "B"], [[0.04, 0.0], [0.0, 0.0]])

    def test_mismatched_symbols(self):
        with pytest.raises(ValidationError, match="3x3 but the portfolio has 2"):
            risk_parity_weights(["A", "B"], np.eye(3) * 0.04)
        with pytest.raises(ValidationError, match="missing B"):
            allocate("risk_parity", symbols=["A", "B"], covariance={"A": {"A": 0.04}}, equity=1)
        with pytest.raises(ValidationError, match="base_weights symbols do not match"):
            volatility_target_weights(["A", "B"], np.eye(2) * 0.04, "0.1", {"A": 1, "C": 1})
        with pytest.raises(ValidationError, match="scores symbols do not match"):
            allocate("score", symbols=["A", "B"], scores={"A": 1}, equity=10_000)

    def test_duplicate_symbols(self):
        with pytest.raises(ValidationError, match="unique"):
            equal_weights(["A", "A"])
