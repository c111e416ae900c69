"""The paper broker's fill settings at run time: ``update_setting`` commands for the
participation rate, impact, latency and commission are validated, stored, and applied by the
executor to the running paper broker, so the next fills follow them; a broker that does not take
them rejects the command with the reason (real store, paper broker, fixed market)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal

import pytest

from core.brokers.commission import CommissionSchedule
from core.brokers.paper import PaperBroker, PaperConfig
from core.brokers.paper_config import (
    COMMISSION_KEY,
    IMPACT_KEY,
    LATENCY_KEY,
    PARTICIPATION_KEY,
    commission_from_setting,
)
from core.config import ExecutorConfig, validate_setting
from core.domain import (
    Command,
    CommandStatus,
    CommandType,
    OrderStatus,
    ValidationError,
    client_order_id_for_command,
)
from core.executor import TradeExecutor
from core.marketdata.calendar import ManualClock
from db.engine import open_store
from tests.core.brokers.fixed_market import FixedMarket, at, session_bars

D = Decimal
OPEN = at(20, 14, 30)


class OtherBroker:
    """The paper broker under another name and without run-time fill settings, as a live
    broker's adapter would be."""

    name = "alpaca"

    def __init__(self, inner: PaperBroker) -> None:
        self._inner = inner

    def __getattr__(self, attr: str):
        if attr == "apply_fill_settings":
            raise AttributeError(attr)
        return getattr(self._inner, attr)


class Rig:
    def __init__(self, url: str, adv: int = 1_000_000) -> None:
        self.store = open_store(url)
        self.clock = ManualClock(OPEN + timedelta(minutes=30))
        self.market = FixedMarket(
            self.clock,
            {"AAA": session_bars("AAA", OPEN.date(), price="100", volume=100_000)},
            adv={"AAA": adv},
            spread="0.02",
        )
        self.broker = PaperBroker(self.market, self.store.paper_ledger("t"), PaperConfig())
        self.executor = self.make_executor()
        self.loop = asyncio.new_event_loop()
        self.tick()

    def make_executor(self, holder: str = "x") -> TradeExecutor:
        return TradeExecutor(
            self.store,
            self.broker,
            self.market,
            ExecutorConfig(account="t", reconcile_every_ticks=1000),
            clock=self.clock,
            wall_clock=ManualClock(OPEN),
            holder_id=holder,
        )

    def tick(self, advance: timedelta = timedelta(0)) -> None:
        self.clock.advance(advance)
        self.loop.run_until_complete(self.executor.tick())

    def command(self, kind: CommandType, payload: dict) -> Command:
        with self.store.unit_of_work() as uow:
            cid = uow.commands.add(Command(kind, payload, "alice", self.clock.now()))
            uow.commit()
        self.tick()
        with self.store.unit_of_work(read_only=True) as uow:
            found = uow.commands.get(cid)
        assert found is not None
        return found

    def set(self, key: str, value: object) -> Command:
        return self.command(CommandType.UPDATE_SETTING, {"key": key, "value": value})

    def buy(self, qty: str = "100") -> str:
        cmd = self.command(CommandType.MANUAL_ORDER, {"symbol": "AAA", "side": "buy", "qty": qty})
        assert cmd.status is CommandStatus.APPLIED, cmd.result
        return client_order_id_for_command(cmd.id or 0)

    def order(self, coid: str):
        with self.store.unit_of_work(read_only=True) as uow:
            return uow.orders.get(coid), uow.fills.for_order(coid)

    def close(self) -> None:
        self.loop.close()
        self.store.engine.dispose()


@pytest.fixture
def rig(tmp_path) -> Iterator[Rig]:
    r = Rig(f"sqlite:///{tmp_path / 'axion.db'}")
    yield r
    r.close()


def test_commission_setting_changes_the_next_fills_commission(rig: Rig):
    first = rig.buy()
    assert rig.order(first)[1][0].commission == D(0)  # the default schedule is free
    cmd = rig.set(COMMISSION_KEY, {"kind": "per_share", "rate": "0.01", "minimum": "1.50"})
    assert cmd.status is CommandStatus.APPLIED, cmd.result
    assert "applied to the paper broker" in (cmd.result or "")
    assert rig.broker.config.commission == CommissionSchedule.per_share("0.01", "1.50")
    second = rig.buy()
    assert rig.order(second)[1][0].commission == D("1.50")  # 100 x 0.01 = 1.00, minimum 1.50
    third = rig.buy("500")
    assert rig.order(third)[1][0].commission == D("5.00")


def test_latency_setting_delays_a_market_orders_fill(rig: Rig):
    cmd = rig.set(LATENCY_KEY, 90_000)
    assert cmd.status is CommandStatus.APPLIED, cmd.result
    assert rig.broker.config.latency == timedelta(seconds=90)
    coid = rig.buy()
    order, fills = rig.order(coid)
    assert order is not None and order.status is OrderStatus.ACCEPTED and fills == []
    rig.tick(timedelta(minutes=1))
    assert rig.order(coid)[1] == []  # not yet eligible: 90 s, rounded up to the next bar
    rig.tick(timedelta(minutes=2))
    order, fills = rig.order(coid)
    assert order is not None and order.status is OrderStatus.FILLED and len(fills) == 1
    rig.set(LATENCY_KEY, 0)
    order, fills = rig.order(rig.buy())
    assert order is not None and order.status is OrderStatus.FILLED  # immediate again


def test_participation_setting_splits_a_large_order_into_partial_fills(rig: Rig):
    rig.set(LATENCY_KEY, 60_000)  # fills on bars, where the participation cap applies
    cmd = rig.set(PARTICIPATION_KEY, "0.001")  # 100 shares of a 100,000-share bar
    assert cmd.status is CommandStatus.APPLIED, cmd.result
    coid = rig.buy("250")
    rig.tick(timedelta(minutes=3))
    order, fills = rig.order(coid)
    assert order is not None
    assert [f.qty for f in fills] == [D(100), D(100)]
    assert order.status is OrderStatus.PARTIALLY_FILLED
    rig.tick(timedelta(minutes=1))
    order, fills = rig.order(coid)
    assert order is not None and order.status is OrderStatus.FILLED
    assert sum(f.qty for f in fills) == D(250)


def test_impact_setting_moves_the_fill_price(tmp_path):
    rig = Rig(f"sqlite:///{tmp_path / 'impact.db'}", adv=100_000)
    try:
        base = rig.order(rig.buy("300"))[1][0].price
        assert rig.set(IMPACT_KEY, "0").status is CommandStatus.APPLIED
        free = rig.order(rig.buy("300"))[1][0].price
        assert rig.set(IMPACT_KEY, "50").status is CommandStatus.APPLIED
        heavy = rig.order(rig.buy("300"))[1][0].price
    finally:
        rig.close()
    # 300 of 100,000 ADV is 0.3 % on the 100.01 ask: 3 bps by default, none at 0, 15 at 50
    assert (free, base, heavy) == (D("100.01"), D("100.04"), D("100.16"))


@pytest.mark.parametrize(
    ("key", "value", "reason"),
    [
        (PARTICIPATION_KEY, "0", "above 0"),
        (PARTICIPATION_KEY, "1.5", "at most 1"),
        (IMPACT_KEY, "-1", "between 0"),
        (LATENCY_KEY, -5, "between 0"),
        (LATENCY_KEY, "soon", "integer"),
        (COMMISSION_KEY, {"kind": "flat"}, "unknown commission kind"),
        (COMMISSION_KEY, {"kind": "percent", "pct": "-1"}, "must not be negative"),
        (COMMISSION_KEY, {"kind": "per_share", "fee": "1"}, "unknown commission fields"),
        (COMMISSION_KEY, "free", "must be an object"),
    ],
)
def test_bad_values_are_rejected_with_the_reason_and_change_nothing(rig: Rig, key, value, reason):
    before = rig.broker.config
    cmd = rig.set(key, value)
    assert cmd.status is CommandStatus.REJECTED and reason in (cmd.result or "")
    assert rig.broker.config == before
    with rig.store.unit_of_work(read_only=True) as uow:
        assert uow.settings.get(key) is None


def test_stored_settings_are_applied_when_an_executor_becomes_leader(rig: Rig):
    rig.set(COMMISSION_KEY, {"kind": "percent", "pct": "0.1"})
    rig.set(LATENCY_KEY, 30_000)
    rig.loop.run_until_complete(rig.executor.shutdown())
    fresh = PaperBroker(rig.market, rig.store.paper_ledger("t"), PaperConfig())
    rig.broker = fresh
    rig.executor = rig.make_executor("y")
    rig.tick()
    assert fresh.config.latency == timedelta(seconds=30)
    assert fresh.config.commission == CommissionSchedule.percent_of_notional("0.1")


def test_a_broker_without_fill_settings_rejects_the_command(rig: Rig):
    rig.executor.broker = OtherBroker(rig.broker)  # type: ignore[assignment]
    cmd = rig.set(LATENCY_KEY, 1000)
    assert cmd.status is CommandStatus.REJECTED
    assert "'alpaca', which does not take it" in (cmd.result or "")
    with rig.store.unit_of_work(read_only=True) as uow:
        assert uow.settings.get(LATENCY_KEY) is None


def test_validators_normalise_the_stored_values():
    assert validate_setting(PARTICIPATION_KEY, 0.25) == "0.25"
    assert validate_setting(IMPACT_KEY, 12) == "12"
    assert validate_setting(LATENCY_KEY, "250") == 250
    assert validate_setting(COMMISSION_KEY, {"kind": "per_share", "rate": 0.005}) == {
        "kind": "per_share",
        "rate": "0.005",
        "pct": "0",
        "minimum": "0",
        "max_pct": None,
    }
    with pytest.raises(ValidationError):
        validate_setting(LATENCY_KEY, True)


def test_fill_settings_round_trip_through_the_config():
    config = PaperConfig(
        latency=timedelta(milliseconds=1500),
        participation_rate=D("0.2"),
        commission=CommissionSchedule.per_share("0.005", "1", "1"),
    )
    assert PaperConfig().with_fill_settings(config.fill_settings()) == config
    assert commission_from_setting(config.commission.to_dict()) == config.commission
    assert PaperConfig().with_fill_settings({"unrelated": 1}) == PaperConfig()
