"""Run-time settings of the full pipeline: ``executor.instrument_mode`` and ``risk.profile``
changed by ``update_setting`` commands take effect on the next signal, bad values are rejected
with the reason, and the stored values survive a restart (SQLite store, paper broker, fixed
market)."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from decimal import Decimal

import pytest

from core.brokers.paper import PaperBroker, PaperConfig
from core.config import RUNTIME_SETTINGS, ExecutorConfig, validate_setting
from core.domain import (
    Bar,
    Command,
    CommandStatus,
    Direction,
    Signal,
    SignalStatus,
    TradeType,
    ValidationError,
)
from core.executor import TradeExecutor
from core.instruments.modes import InstrumentMode
from core.marketdata.calendar import ManualClock
from core.risk.config import AGGRESSIVE, CONSERVATIVE
from core.stages import use_full_pipeline
from db.engine import open_store
from tests.core.brokers.fixed_market import FixedMarket, at, session_bars

D = Decimal
OPEN = at(20, 14, 30)


class MinuteMarket(FixedMarket):
    """The fixed market, answering longer timeframes with no bars rather than an error (exit
    management asks for the bars of a position's timeframe; these tests are about entries)."""

    async def bars(self, symbol: str, timeframe: str = "1Min", **kwargs) -> list[Bar]:
        if timeframe != "1Min" and symbol in self.symbols():
            return []
        return await super().bars(symbol, timeframe, **kwargs)


class World:
    def __init__(self, url: str):
        self.store = open_store(url)
        self.clock = ManualClock(OPEN + timedelta(minutes=45))
        prices = {"QQQ": "500", "TQQQ": "80", "SQQQ": "20", "AAPL": "200"}
        self.market = MinuteMarket(
            self.clock,
            {s: session_bars(s, OPEN.date(), price=p, volume=2_000_000) for s, p in prices.items()},
            adv={s: 5_000_000 for s in prices},
            spread="0.02",
        )
        self.broker = PaperBroker(self.market, self.store.paper_ledger("t"), PaperConfig())

    def executor(
        self,
        holder: str = "x",
        mode: InstrumentMode | None = InstrumentMode.BOTH,
        profile=AGGRESSIVE,
    ) -> TradeExecutor:
        ex = TradeExecutor(
            self.store,
            self.broker,
            self.market,
            ExecutorConfig(account="t"),
            clock=self.clock,
            wall_clock=ManualClock(OPEN),
            holder_id=holder,
        )
        if mode is not None:  # None: the pass-through pipeline
            use_full_pipeline(ex, mode, profile)
        return ex

    def signal(
        self,
        symbol: str,
        entry: str,
        stop: str,
        trade_type: TradeType = TradeType.DAY,
        direction: Direction = Direction.LONG,
        conviction: int = 80,
    ) -> int:
        s = Signal(
            symbol,
            direction,
            D(entry),
            D(stop),
            self.clock.now(),
            conviction=conviction,
            trade_type=trade_type,
        )
        with self.store.unit_of_work() as uow:
            sid = uow.signals.add(s)
            uow.commit()
        return sid

    def set(self, key: str, value: object) -> int:
        with self.store.unit_of_work() as uow:
            cid = uow.commands.add(
                Command("update_setting", {"key": key, "value": value}, "alice", self.clock.now())
            )
            uow.commit()
        return cid

    def command(self, cid: int) -> Command:
        with self.store.unit_of_work(read_only=True) as uow:
            c = uow.commands.get(cid)
        assert c is not None
        return c

    def trail(self, sid: int):
        with self.store.unit_of_work(read_only=True) as uow:
            return (
                uow.signals.get(sid),
                uow.decisions.for_signal(sid),
                uow.orders.get(f"ax-s{sid}-entry"),
            )

    def sizing(self, sid: int) -> dict:
        """The sizer's stored decision for signal ``sid`` (qty and how it was reached)."""
        decisions = self.trail(sid)[1]
        return next(d for d in decisions if d.stage == "sizing").details

    def setting(self, key: str):
        with self.store.unit_of_work(read_only=True) as uow:
            return uow.settings.get(key)


def tick(ex: TradeExecutor, n: int = 1) -> None:
    for _ in range(n):
        asyncio.run(ex.tick())


@pytest.fixture
def world(tmp_path):
    w = World(f"sqlite:///{tmp_path / 'settings.db'}")
    yield w
    w.store.engine.dispose()


def test_mode_change_routes_the_next_signal(world: World):
    ex = world.executor(mode=InstrumentMode.BOTH)
    cid = world.set("executor.instrument_mode", "leveraged_etf")
    etf = world.signal("QQQ", "500", "495", trade_type=TradeType.SCALP)
    tick(ex)  # commands are applied before the tick's signals
    assert world.command(cid).status is CommandStatus.APPLIED
    assert "executor.instrument_mode = leveraged_etf" in world.command(cid).result
    assert ex.instrument_mode is InstrumentMode.LEVERAGED_ETF
    s, decisions, order = world.trail(etf)
    assert s.status is SignalStatus.ROUTED
    assert order.symbol == "TQQQ" and order.request.instrument_type.value == "leveraged_etf"
    assert decisions[2].stage == "instrument" and decisions[2].details["ticker"] == "TQQQ"

    world.set("executor.instrument_mode", "options")
    scalp = world.signal("QQQ", "500", "495", trade_type=TradeType.SCALP)
    tick(ex)
    assert ex.instrument_mode is InstrumentMode.OPTIONS
    s, decisions, order = world.trail(scalp)
    assert s.status is SignalStatus.REJECTED and order is None
    assert "gives no option chains" in s.reason  # this market quotes no options
    assert decisions[-1].stage == "options" and not decisions[-1].approved


def test_profile_change_to_conservative_changes_sizing(world: World):
    ex = world.executor(mode=InstrumentMode.OPTIONS)  # day signals trade the stock
    # aggressive: 5% of 100,000 at risk over 50.00 -> 100 shares, capped at 15% / 200 -> 75
    first = world.signal("AAPL", "200", "150")
    tick(ex, 2)
    assert world.trail(first)[0].status is SignalStatus.ROUTED
    assert "(5% of equity" in world.sizing(first)["sizing"]
    assert world.sizing(first)["qty"] == "75"

    cid = world.set("risk.profile", "conservative")
    # conservative: 1% of equity (a little under 100,000 after the first fill's costs) at risk
    # over 50.00 -> 19 shares
    second = world.signal("QQQ", "500", "450")
    tick(ex, 2)
    assert world.command(cid).status is CommandStatus.APPLIED
    stored = world.setting("risk.profile")
    assert stored is not None and stored.value == CONSERVATIVE.to_dict()
    assert world.trail(second)[0].status is SignalStatus.ROUTED
    assert "(1% of equity" in world.sizing(second)["sizing"]
    assert world.sizing(second)["qty"] == "19"


def test_an_edited_profile_is_stored_whole_and_its_limits_apply(world: World):
    ex = world.executor(mode=InstrumentMode.OPTIONS)
    world.set("risk.profile", {"name": "conservative", "max_risk_per_trade": "0.005"})
    sid = world.signal("AAPL", "200", "150")  # 0.5% of 100,000 at risk over 50.00 -> 10 shares
    tick(ex, 2)
    stored = world.setting("risk.profile").value
    assert stored == {**CONSERVATIVE.to_dict(), "max_risk_per_trade": "0.005"}
    assert world.trail(sid)[0].status is SignalStatus.ROUTED
    assert world.sizing(sid)["qty"] == "10"

    world.set("risk.profile", {**stored, "min_position_value": "5000"})
    small = world.signal("QQQ", "500", "450")  # 9 shares, worth 4,500
    tick(ex)
    s, decisions, order = world.trail(small)
    assert s.status is SignalStatus.REJECTED and order is None
    assert "below the minimum position value 5,000.00" in s.reason
    assert decisions[-1].stage == "sizing" and not decisions[-1].approved


@pytest.mark.parametrize(
    ("key", "value", "reason"),
    [
        ("executor.instrument_mode", "futures", "unknown instrument mode 'futures'"),
        ("executor.instrument_mode", None, "known modes: options, leveraged_etf, both"),
        ("risk.profile", "reckless", "unknown risk profile 'reckless'"),
        ("risk.profile", 3, "risk profile settings must be given as a mapping of fields"),
        ("risk.profile", {"max_risk_per_trade": "2"}, "max_risk_per_trade must be above 0"),
        ("risk.profile", {"max_lots": 1}, "unknown risk profile fields: max_lots"),
    ],
)
def test_bad_values_are_rejected_with_the_reason(world: World, key, value, reason):
    ex = world.executor(mode=InstrumentMode.BOTH)
    pipeline = ex.pipeline
    cid = world.set(key, value)
    tick(ex)
    command = world.command(cid)
    assert command.status is CommandStatus.REJECTED
    assert reason in command.result
    assert world.setting(key) is None
    assert ex.pipeline is pipeline and ex.instrument_mode is InstrumentMode.BOTH


def test_settings_survive_a_restart(world: World):
    first = world.executor("first", mode=InstrumentMode.BOTH)
    world.set("executor.instrument_mode", "leveraged_etf")
    world.set("risk.profile", "conservative")
    tick(first)
    asyncio.run(first.shutdown())  # releases the lease

    # the new process starts from its environment's mode and profile ...
    second = world.executor("second", mode=InstrumentMode.BOTH, profile=AGGRESSIVE)
    assert second.instrument_mode is InstrumentMode.BOTH
    sid = world.signal("QQQ", "500", "450", trade_type=TradeType.SCALP)
    tick(second, 2)  # ... and takes the stored settings on becoming leader
    assert second.is_leader and second.instrument_mode is InstrumentMode.LEVERAGED_ETF
    s, decisions, order = world.trail(sid)
    assert s.status is SignalStatus.ROUTED and order.symbol == "TQQQ"
    # QQQ's 10% stop is 30% on TQQQ at 80: the aggressive 5% risk would size 208 shares (capped
    # at 187 by the 15% single-name limit), the stored conservative 1% sizes about 41
    assert D(30) <= D(world.sizing(sid)["qty"]) <= D(42), decisions


def test_pass_through_executor_stores_the_settings_but_has_nothing_to_route(world: World):
    ex = world.executor(mode=None)
    pipeline = ex.pipeline
    cid = world.set("executor.instrument_mode", "options")
    tick(ex)
    assert world.command(cid).status is CommandStatus.APPLIED
    assert world.setting("executor.instrument_mode").value == "options"
    assert ex.pipeline is pipeline and not ex.pipeline_needs_market


def test_unchanged_settings_keep_the_pipeline(world: World):
    ex = world.executor(mode=InstrumentMode.LEVERAGED_ETF, profile=CONSERVATIVE)
    pipeline = ex.pipeline
    world.set("executor.instrument_mode", "leveraged_etf")
    world.set("risk.profile", "conservative")
    tick(ex)
    assert ex.pipeline is pipeline


def test_validators():
    assert {"executor.instrument_mode", "risk.profile"} <= set(RUNTIME_SETTINGS)
    assert validate_setting("executor.instrument_mode", "both") == "both"
    assert validate_setting("executor.instrument_mode", InstrumentMode.OPTIONS) == "options"
    assert validate_setting("risk.profile", "aggressive") == AGGRESSIVE.to_dict()
    edited = validate_setting("risk.profile", {"max_concurrent_positions": "4"})
    assert edited == {**AGGRESSIVE.to_dict(), "max_concurrent_positions": 4}
    with pytest.raises(ValidationError, match="unknown instrument mode"):
        validate_setting("executor.instrument_mode", ["options"])
