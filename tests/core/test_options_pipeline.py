"""Options mode end to end on the paper broker (SQLite store, a hand-steered market that quotes
option chains): a scalp signal buys a 0DTE call or put sized by premium at risk, fills, is
journaled as an option, and is closed by each options exit rule (premium stop, premium target,
time stop, EOD close, the underlying's cloud flip) or settled at expiry. In "both" mode day
signals still go to leveraged ETFs."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

import pytest

from core.brokers.paper import PaperBroker, PaperConfig
from core.config import ExecutorConfig
from core.domain import (
    Command,
    Direction,
    InstrumentType,
    OrderStatus,
    Signal,
    SignalStatus,
    TradeStatus,
    TradeType,
)
from core.executor import TradeExecutor
from core.instruments.modes import InstrumentMode
from core.marketdata.calendar import EASTERN, ManualClock
from core.options.chain import option_chain
from core.options.occ import parse_occ
from core.options.pricing import OptionQuote
from core.stages import use_full_pipeline
from db.engine import open_store
from tests.core.brokers.fixed_market import FixedMarket, minute_bars, session_bars

D = Decimal
DAY = date(2026, 11, 20)  # a Friday: SPY lists a 0DTE expiry every session
SPOT = D("600")
VOL = 0.20


def et(hour: int, minute: int = 0, day: date = DAY) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=EASTERN).astimezone(UTC)


class OptionsMarket(FixedMarket):
    """Bars the test gives (underlyings and contracts); option chains modelled at a fixed
    realized volatility from the underlying's last price."""

    def option_chain(
        self, underlying: str, expiry: date | None = None, n_strikes: int = 10
    ) -> list[OptionQuote]:
        now = self.clock.now()
        closes = [b.close for b in self._bars[underlying] if b.end <= now]
        spot = closes[-1] if closes else self._bars[underlying][0].open
        session = self.calendar.session_date(self.clock.now()) or DAY
        return option_chain(
            underlying,
            spot,
            session,
            self.clock.now(),
            VOL,
            self.calendar,
            n_strikes=n_strikes,
            expiry=expiry,
        )


class World:
    def __init__(self, tmp_path, start: datetime | None = None):
        start = start or et(10, 15)
        self.store = open_store(f"sqlite:///{tmp_path / 'o.db'}")
        self.clock = ManualClock(start)
        prices = {"SPY": str(SPOT), "SPXL": "150", "SPXS": "10"}
        self.market = OptionsMarket(
            self.clock,
            {s: session_bars(s, DAY, price=p, volume=2_000_000) for s, p in prices.items()},
            adv={s: 50_000_000 for s in prices},
            spread="0.02",
        )
        # the contracts a bull and a bear scalp pick now (0DTE, at the money), priced flat at
        # the model's mid for the session unless a test steers them
        self.reprice()
        self.broker = PaperBroker(
            self.market, self.store.paper_ledger("o"), PaperConfig(initial_cash=D(100_000))
        )
        self.ex = TradeExecutor(
            self.store,
            self.broker,
            self.market,
            ExecutorConfig(account="o", reconcile_every_ticks=10_000),
            clock=self.clock,
            wall_clock=ManualClock(start),
            holder_id="o",
        )
        use_full_pipeline(self.ex, InstrumentMode.OPTIONS)

    def reprice(self) -> None:
        """Price the ATM call and put at the model's mid (flat for the session)."""
        self.call = self.atm(bullish=True)
        self.put = self.atm(bullish=False)
        for q in (self.call, self.put):
            self.market.add_bars(q.symbol, session_bars(q.symbol, DAY, price=q.mid, volume=500))

    def atm(self, bullish: bool) -> OptionQuote:
        right = "call" if bullish else "put"
        chain = self.market.option_chain("SPY", DAY)
        return min(
            (q for q in chain if q.contract.right.value == right),
            key=lambda q: abs(q.contract.strike - SPOT),
        )

    def tick(self, n: int = 1, advance: timedelta = timedelta(0)) -> None:
        for _ in range(n):
            if advance:
                self.clock.advance(advance)
            asyncio.run(self.ex.tick())

    def signal(self, direction=Direction.LONG, trade_type=TradeType.SCALP, conviction=80) -> int:
        stop = SPOT - 2 if direction is Direction.LONG else SPOT + 2
        s = Signal(
            "SPY",
            direction,
            SPOT,
            stop,
            self.clock.now(),
            conviction=conviction,
            trade_type=trade_type,
            timeframe="1Min",
        )
        with self.store.unit_of_work() as uow:
            sid = uow.signals.add(s)
            uow.commit()
        return sid

    def trail(self, sid: int):
        with self.store.unit_of_work(read_only=True) as uow:
            return (
                uow.signals.get(sid),
                uow.decisions.for_signal(sid),
                uow.orders.get(f"ax-s{sid}-entry"),
            )

    def trade(self, symbol: str):
        with self.store.unit_of_work(read_only=True) as uow:
            found = [t for t in uow.journal.trades(50) if t.ticker == symbol]
        assert found, f"no journal trade in {symbol}"
        return found[0]

    def steer(self, symbol: str, start: datetime, prices: list[Decimal | str]) -> None:
        """Minute bars of ``symbol`` from ``start`` at the given closes."""
        rows = [(p, p, p, p, 500) for p in prices]
        self.market.add_bars(symbol, minute_bars(symbol, start, rows))

    def enter(self, direction=Direction.LONG) -> tuple[int, OptionQuote]:
        sid = self.signal(direction)
        self.tick(2, advance=timedelta(seconds=1))
        quote = self.call if direction is Direction.LONG else self.put
        return sid, quote


@pytest.fixture
def world(tmp_path):
    w = World(tmp_path)
    yield w
    w.store.engine.dispose()


def test_a_bull_scalp_buys_a_0dte_call_sized_by_premium_at_risk(world: World):
    sid, quote = world.enter()
    signal, decisions, order = world.trail(sid)
    assert signal.status is SignalStatus.ROUTED, signal.reason
    assert [d.stage for d in decisions] == [
        "validate",
        "kill_switch",
        "instrument",
        "options",
        "sizing",
        "entry",
        "risk",
    ]
    chosen = decisions[3].details
    contract = parse_occ(order.symbol)
    assert contract == quote.contract  # the ATM call of today's expiry
    assert contract.expiry == DAY and chosen["expiry_kind"] == "0DTE"
    assert order.request.instrument_type is InstrumentType.OPTION
    assert order.request.limit_price == quote.ask
    # premium at risk: 5 % of 100,000 x conviction 1 = 5,000; at ask x 100 per contract,
    # capped at 10 contracts
    per_contract = quote.ask * 100
    assert order.request.qty == D(min(10, int(D(5000) / per_contract)))
    assert order.status is OrderStatus.FILLED
    trade = world.trade(order.symbol)
    assert trade.instrument_type is InstrumentType.OPTION and trade.status is TradeStatus.OPEN
    assert trade.original_ticker == "SPY"
    assert trade.metadata["expiry_kind"] == "0DTE" and trade.metadata["right"] == "call"
    assert trade.stop_loss == (quote.ask * D("0.5")).quantize(D("0.01"), ROUND_HALF_UP)
    assert trade.target_price == (quote.ask * 2).quantize(D("0.01"), ROUND_HALF_UP)


def test_a_bear_scalp_buys_a_put(world: World):
    sid, quote = world.enter(Direction.SHORT)
    _, _, order = world.trail(sid)
    assert order is not None and order.symbol == quote.symbol
    assert parse_occ(order.symbol).right.value == "put"
    assert order.request.side.value == "buy"  # bought, never sold to open
    assert order.status is OrderStatus.FILLED


def exit_of(world: World, symbol: str):
    trade = world.trade(symbol)
    assert trade.status is TradeStatus.CLOSED, trade
    return trade


def test_premium_stop_closes_at_minus_50_percent(world: World):
    sid, quote = world.enter()
    _, _, order = world.trail(sid)
    entry = order.avg_fill_price
    now = world.clock.now().replace(second=0, microsecond=0)
    world.steer(quote.symbol, now, [entry * D("0.45")] * 5)
    world.tick(3, advance=timedelta(minutes=1))
    trade = exit_of(world, quote.symbol)
    assert trade.exit_reason == "stop_loss"
    # the P&L counts the contract multiplier
    assert trade.pnl == (trade.exit_price - trade.entry_price) * trade.shares * 100
    assert trade.pnl < 0


def test_premium_target_closes_at_plus_100_percent(world: World):
    sid, quote = world.enter()
    _, _, order = world.trail(sid)
    now = world.clock.now().replace(second=0, microsecond=0)
    world.steer(quote.symbol, now, [order.avg_fill_price * D("2.2")] * 5)
    world.tick(3, advance=timedelta(minutes=1))
    trade = exit_of(world, quote.symbol)
    assert trade.exit_reason == "target" and trade.pnl > 0


def test_time_stop_closes_an_option_going_nowhere(world: World):
    _, quote = world.enter()
    world.tick(29, advance=timedelta(minutes=1))
    assert world.trade(quote.symbol).status is TradeStatus.OPEN
    world.tick(3, advance=timedelta(minutes=1))
    assert exit_of(world, quote.symbol).exit_reason == "time_stop"


def test_eod_close(tmp_path):
    # entered at 15:20, before the 0DTE cutoff (30 min before the close)
    world = World(tmp_path, start=et(15, 20))
    try:
        sid, quote = world.enter()
        _, _, order = world.trail(sid)
        assert world.trade(quote.symbol).status is TradeStatus.OPEN
        # up 40 %: short of the target, and enough progress that the time stop holds off
        now = world.clock.now().replace(second=0, microsecond=0)
        world.steer(quote.symbol, now, [order.avg_fill_price * D("1.4")] * 45)
        world.tick(34, advance=timedelta(minutes=1))
        assert world.trade(quote.symbol).status is TradeStatus.OPEN
        world.tick(3, advance=timedelta(minutes=1))  # past the 15:55 cutoff
        assert exit_of(world, quote.symbol).exit_reason == "eod_close"
    finally:
        world.store.engine.dispose()


def test_the_underlyings_cloud_flip_closes_a_call(tmp_path):
    world = World(tmp_path, start=et(10, 45))
    try:
        # SPY rose steadily into the entry, then falls: the fast cloud turns bearish
        open_ = world.market.calendar.session_open(DAY)
        rising = [SPOT - D("0.75") * (75 - i) / 5 for i in range(75)]
        world.steer("SPY", open_, rising)
        world.reprice()
        _, quote = world.enter()
        assert world.trade(quote.symbol).status is TradeStatus.OPEN
        now = world.clock.now().replace(second=0, microsecond=0)
        falling = [SPOT - D("0.6") * i for i in range(1, 15)]
        world.steer("SPY", now, falling)
        world.tick(12, advance=timedelta(minutes=1))
        trade = exit_of(world, quote.symbol)
        assert trade.exit_reason == "cloud_flip"
    finally:
        world.store.engine.dispose()


def test_an_option_held_to_expiry_is_settled_and_journaled(world: World):
    # a trader's own option order carries no stop, so no exit rule manages it
    symbol = world.call.symbol
    with world.store.unit_of_work() as uow:
        uow.commands.add(
            Command(
                "manual_order",
                {
                    "symbol": symbol,
                    "side": "buy",
                    "qty": "1",
                    "order_type": "limit",
                    "limit_price": str(world.call.ask),
                    "instrument_type": "option",
                },
                "tina",
                world.clock.now(),
            )
        )
        uow.commit()
    world.tick(2, advance=timedelta(seconds=1))
    assert world.trade(symbol).status is TradeStatus.OPEN
    # SPY closes 5 above the strike: the call settles at its intrinsic value
    close = world.market.calendar.session_close(DAY)
    strike = world.call.contract.strike
    world.steer("SPY", close - timedelta(minutes=1), [strike + 5])
    world.clock.set(close + timedelta(minutes=5))
    world.tick(2)
    trade = exit_of(world, symbol)
    assert trade.exit_reason == "expiry"
    assert trade.exit_price == D(5)
    assert trade.pnl == (D(5) - trade.entry_price) * 100
    assert symbol not in world.ex.journal.positions


def test_both_mode_sends_day_signals_to_leveraged_etfs(world: World):
    use_full_pipeline(world.ex, InstrumentMode.BOTH)
    scalp = world.signal(trade_type=TradeType.SCALP)
    day = world.signal(trade_type=TradeType.DAY)
    world.tick(2, advance=timedelta(seconds=1))
    _, _, scalp_order = world.trail(scalp)
    _, day_decisions, day_order = world.trail(day)
    assert scalp_order is not None
    assert scalp_order.request.instrument_type is InstrumentType.OPTION
    assert day_order is not None and day_order.symbol == "SPXL", day_decisions[-1].reason
    assert day_order.request.instrument_type is InstrumentType.LEVERAGED_ETF


def test_a_trader_buys_and_closes_an_option_on_the_simulated_market(tmp_path):
    """The simulated market lists underlyings only and quotes their contracts: a manual option
    order and its close go through the executor and the paper broker."""
    from core.marketdata.calendar import default_calendar
    from core.marketdata.simulated import SimulatedMarket

    calendar = default_calendar()
    clock = ManualClock(et(11, 0))
    market = SimulatedMarket(clock, calendar, seed=7)
    store = open_store(f"sqlite:///{tmp_path / 's.db'}")
    try:
        broker = PaperBroker(market, store.paper_ledger("s"), PaperConfig())
        ex = TradeExecutor(
            store, broker, market, ExecutorConfig(account="s"), clock=clock, holder_id="s"
        )
        spot = market.quote_sync("SPY").last
        chain = market.option_chain("SPY", DAY)
        quote = min(
            (q for q in chain if q.contract.right.value == "call"),
            key=lambda q: abs(q.contract.strike - spot),
        )
        assert quote.symbol not in market.symbols()

        def command(payload: dict) -> int:
            with store.unit_of_work() as uow:
                cid = uow.commands.add(Command("manual_order", payload, "tina", clock.now()))
                uow.commit()
            for _ in range(3):
                asyncio.run(ex.tick())
                clock.advance(timedelta(seconds=20))
            return cid

        option = {"symbol": quote.symbol, "instrument_type": "option", "qty": "2"}
        bought = command(
            {**option, "side": "buy", "order_type": "limit", "limit_price": str(quote.ask)}
        )
        closed = command({**option, "side": "sell", "reduce_only": True})
        with store.unit_of_work(read_only=True) as uow:
            results = [uow.commands.get(c) for c in (bought, closed)]
            (trade,) = uow.journal.trades(5)
        assert [c.status.value for c in results] == ["applied", "applied"], [
            c.result for c in results
        ]
        assert trade.ticker == quote.symbol and trade.instrument_type is InstrumentType.OPTION
        assert trade.status is TradeStatus.CLOSED and trade.exit_reason == "manual"
        assert trade.pnl == (trade.exit_price - trade.entry_price) * 2 * 100
    finally:
        store.engine.dispose()
