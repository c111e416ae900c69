"""RiskGate exposure limits: orders that would breach them are reduced, not rejected, unless
what still fits is nothing or worth less than the minimum position value."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal as D

from core.domain import Direction, Side
from core.risk import AGGRESSIVE, CONSERVATIVE, RiskDecision, WorkingOrder
from tests.core.risk.support import FLAT, NOON, gate, intent, position, snapshot


def reduced(decision: RiskDecision, qty: int, original: int, by: list[str]) -> str:
    assert decision.approved, decision.reason
    assert decision.qty == D(qty)
    adj = decision.adjustments
    assert (adj["qty"], adj["from"], adj["by"]) == (D(qty), D(original), by)
    return adj["why"]


def unchanged(decision: RiskDecision, qty: int) -> None:
    assert decision.approved, decision.reason
    assert decision.qty == D(qty)
    assert decision.adjustments == {}


class TestSingleNameExposure:
    """Equity 100,000 and a 15 % cap: 15,000 per symbol."""

    def test_exactly_at_the_cap_passes_unchanged(self):
        unchanged(gate().validate(intent(qty=150), snapshot(), NOON), 150)

    def test_one_share_past_is_reduced_to_the_cap(self):
        why = reduced(
            gate().validate(intent(qty=151), snapshot(), NOON), 150, 151, ["single_exposure"]
        )
        assert why == (
            "single-name exposure: AAPL at 0.00 of a 15,000.00 cap (15% of equity 100,000.00); "
            "room for 150 of 151 AAPL: reduced to 150"
        )

    def test_one_cent_past_is_reduced_by_a_share(self):
        d = gate().validate(intent(qty=150, price="100.01"), snapshot(), NOON)
        reduced(d, 149, 150, ["single_exposure"])

    def test_the_slippage_buffer_counts(self):
        # 150 x 100 x 1.001 = 15,015 > 15,000; 149 x 100.1 = 14,914.90
        d = gate(AGGRESSIVE).validate(intent(qty=150), snapshot(), NOON)
        reduced(d, 149, 150, ["single_exposure"])

    def test_adding_to_a_winner_only_fills_the_room(self):
        snap = snapshot(positions=[position("AAPL", 145, 99, 100)])
        d = gate().validate(intent(qty=10), snap, NOON)
        assert reduced(d, 5, 10, ["single_exposure"]).startswith(
            "single-name exposure: AAPL at 14,500.00 of a 15,000.00 cap"
        )

    def test_no_room_rejects(self):
        snap = snapshot(positions=[position("AAPL", 150, 99, 100)])
        d = gate().validate(intent(qty=10), snap, NOON)
        assert not d.approved
        assert d.reason == (
            "single-name exposure: AAPL at 15,000.00 of a 15,000.00 cap "
            "(15% of equity 100,000.00); room for 0 of 10 AAPL: nothing fits"
        )

    def test_room_worth_less_than_the_minimum_position_rejects(self):
        profile = replace(FLAT, min_position_value=D(500))
        snap = snapshot(positions=[position("AAPL", 146, 99, 100)])
        d = gate(profile).validate(intent(qty=10), snap, NOON)
        assert not d.approved
        assert d.reason == (
            "single-name exposure: AAPL at 14,600.00 of a 15,000.00 cap "
            "(15% of equity 100,000.00); room for 4 of 10 AAPL, worth 400.00, "
            "below the minimum position value 500.00"
        )
        snap = snapshot(positions=[position("AAPL", 145, 99, 100)])
        reduced(gate(profile).validate(intent(qty=10), snap, NOON), 5, 10, ["single_exposure"])

    def test_short_exposure_counts_by_its_size(self):
        snap = snapshot(positions=[position("AAPL", -100, 101, 100)])
        d = gate().validate(intent(qty=80, direction=Direction.SHORT), snap, NOON)
        reduced(d, 50, 80, ["single_exposure"])

    def test_working_entry_orders_count_as_exposure(self):
        snap = snapshot(
            positions=[position("AAPL", 100, 99, 100)],
            working_orders=[WorkingOrder("AAPL", Side.BUY, D(20), D(100))],
        )
        # a winner held at 10,000 plus a working entry of 2,000 leaves 3,000 of room
        reduced(gate().validate(intent(qty=50), snap, NOON), 30, 50, ["single_exposure"])

    def test_fractional_steps(self):
        d = gate().validate(intent(qty="151.5", qty_step=D("0.001")), snapshot(), NOON)
        assert (d.qty, d.adjustments["from"]) == (D(150), D("151.5"))
        d = gate().validate(
            intent(qty="150.5", price="99.7", qty_step=D("0.001")), snapshot(), NOON
        )
        assert d.qty == D("150.451")  # 15,000 / 99.7 = 150.4513...


class TestSectorExposure:
    """Equity 100,000 and a 30 % cap: 30,000 of tech. MSFT and NVDA hold 24,000."""

    def snap(self, **kw):
        held = [position("MSFT", 140, 100, 100), position("NVDA", -100, 100, 100)]
        return snapshot(positions=held, **kw)

    def test_exactly_at_the_cap_passes_unchanged(self):
        unchanged(gate().validate(intent(qty=60), self.snap(), NOON), 60)

    def test_one_share_past_is_reduced(self):
        why = reduced(
            gate().validate(intent(qty=61), self.snap(), NOON), 60, 61, ["sector_exposure"]
        )
        assert why == (
            "sector exposure: tech at 24,000.00 of a 30,000.00 cap (30% of equity 100,000.00); "
            "room for 60 of 61 AAPL: reduced to 60"
        )

    def test_one_cent_past_is_reduced_by_a_share(self):
        d = gate().validate(intent(qty=60, price="100.01"), self.snap(), NOON)
        reduced(d, 59, 60, ["sector_exposure"])

    def test_other_sectors_do_not_count(self):
        unchanged(gate().validate(intent("XOM", 140), self.snap(), NOON), 140)

    def test_full_sector_rejects(self):
        held = [position("MSFT", 150, 100), position("NVDA", 150, 100)]
        d = gate().validate(intent(qty=10), snapshot(positions=held), NOON)
        assert d.reason is not None and d.reason.endswith("room for 0 of 10 AAPL: nothing fits")
        assert d.failed_checks[0].name == "sector_exposure"

    def test_unknown_sector_is_not_limited(self):
        d = gate().validate(intent("ZZZ", 150), self.snap(), NOON)
        unchanged(d, 150)
        assert d.check("sector_exposure").detail == (
            "no sector known for ZZZ; sector limit not applied"
        )


class TestLeverage:
    """Conservative (1x) on 100,000 with 90,000 already invested outside any sector."""

    profile = replace(CONSERVATIVE, slippage_buffer=D(0))

    def snap(self):
        held = [position(f"H{i}", 150, 100) for i in range(6)]
        return snapshot(positions=held, buying_power=1_000_000)

    def test_exactly_at_the_limit_passes_unchanged(self):
        unchanged(gate(self.profile).validate(intent("ZZZ", 100), self.snap(), NOON), 100)

    def test_one_share_past_is_reduced(self):
        d = gate(self.profile).validate(intent("ZZZ", 101), self.snap(), NOON)
        assert reduced(d, 100, 101, ["leverage"]) == (
            "leverage: gross exposure 90,000.00 of a 100,000.00 cap (1x equity 100,000.00); "
            "room for 100 of 101 ZZZ: reduced to 100"
        )


class TestBuyingPower:
    def test_exactly_the_buying_power_passes_unchanged(self):
        unchanged(gate().validate(intent(qty=100), snapshot(buying_power=10_000), NOON), 100)

    def test_one_share_past_is_reduced(self):
        d = gate().validate(intent(qty=101), snapshot(buying_power=10_000), NOON)
        reduced(d, 100, 101, ["buying_power"])

    def test_one_cent_short_reduces_by_a_share(self):
        d = gate().validate(intent(qty=100), snapshot(buying_power="9999.99"), NOON)
        reduced(d, 99, 100, ["buying_power"])

    def test_the_cash_buffer_is_kept(self):
        profile = replace(CONSERVATIVE, slippage_buffer=D(0))
        # 12,000 buying power less 2 % of 100,000 leaves 10,000
        unchanged(gate(profile).validate(intent(qty=100), snapshot(buying_power=12_000), NOON), 100)
        d = gate(profile).validate(intent(qty=101), snapshot(buying_power=12_000), NOON)
        assert reduced(d, 100, 101, ["buying_power"]).startswith(
            "buying power: 12,000.00 less a 2,000.00 cash buffer (2% of equity)"
        )

    def test_no_buying_power_rejects(self):
        d = gate().validate(intent(qty=10), snapshot(buying_power=0), NOON)
        assert not d.approved
        assert d.failed_checks[0].name == "buying_power"
        assert d.reason is not None and d.reason.endswith("room for 0 of 10 AAPL: nothing fits")


class TestCombinedReductions:
    def test_each_limit_shrinks_what_the_previous_left(self):
        # single-name allows 150, buying power 12,000 then allows 120
        d = gate().validate(intent(qty=200), snapshot(buying_power=12_000), NOON)
        why = reduced(d, 120, 200, ["single_exposure", "buying_power"])
        assert "room for 150 of 200 AAPL" in why
        assert "room for 120 of 150 AAPL" in why
