"""Composition root: the only place that wires the store and concrete brokers into the engine."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from functools import cached_property

from app.settings import AxionSettings
from core.brokers.commission import CommissionSchedule
from core.brokers.paper import PaperBroker, PaperConfig
from core.brokers.rate_limit import RateLimitConfig
from core.brokers.router import OrderRouter
from core.config import ExecutorConfig
from core.credential_admin import CredentialAdmin
from core.executor import ExecutorThread, SignalSource, TradeExecutor
from core.instruments.modes import InstrumentMode
from core.instruments.sector_map import sector_of
from core.marketdata.calendar import WallClock
from core.marketdata.replay import ReplayMarket
from core.marketdata.simulated import SimulatedMarket
from core.ports import Broker, MarketData
from core.rebalance.runner import use_rebalancing
from core.risk.config import RiskProfile, profile_named
from core.service import TradingService
from core.signals.demo import demo_signal_source
from core.stages import use_full_pipeline
from core.vault import CredentialVault, load_master_key
from db.engine import open_store
from db.queries import DashboardQueries
from db.store import SqlStore


@dataclass
class Runtime:
    settings: AxionSettings
    store: SqlStore
    market: MarketData
    broker: Broker
    config: ExecutorConfig
    signal_sources: list[SignalSource] = field(default_factory=list)
    demo: bool = False
    #: The executor thread this process runs (the dashboard's), if any.
    thread: ExecutorThread | None = None

    @cached_property
    def queries(self) -> DashboardQueries:
        """The dashboard's read views (SQL filters and aggregates over the store)."""
        return DashboardQueries(self.store, lease_name=self.config.lease_name)

    def start_executor(self) -> ExecutorThread:
        """Start this process's executor thread (idempotent). Several processes may each run
        one: the store's lease makes exactly one of them the account's leader."""
        if self.thread is None or not self.thread.is_alive():
            self.thread = ExecutorThread(self.make_executor)
            self.thread.start()
            self.thread.ready.wait(10)
        return self.thread

    def stop_executor(self, timeout: float = 10.0) -> None:
        if self.thread is not None:
            self.thread.stop(timeout)
            self.thread = None

    def wake(self) -> None:
        """Run the local executor's next tick now (a command was just written)."""
        if self.thread is not None:
            self.thread.wake()

    @property
    def instrument_mode(self) -> InstrumentMode:
        return InstrumentMode(self.settings.mode_for(self.demo))

    def make_executor(self, holder_id: str | None = None) -> TradeExecutor:
        executor = TradeExecutor(
            self.store,
            self.broker,
            self.market,
            self.config,
            holder_id=holder_id,
            signal_sources=self.signal_sources,
        )
        use_rebalancing(executor, commission=self.commission, sector_of=_sector_name)
        if self.settings.pipeline == "full":
            # stored run-time settings (executor.instrument_mode, risk.profile) replace these
            # when the executor becomes leader
            use_full_pipeline(
                executor, self.instrument_mode, profile_named(self.settings.risk_profile)
            )
        return executor

    @property
    def commission(self) -> CommissionSchedule | None:
        config = getattr(self.broker, "config", None)
        return getattr(config, "commission", None)

    def current_profile(self) -> RiskProfile:
        """The risk profile in force: the stored setting, else the configured one."""
        with self.store.unit_of_work(read_only=True) as uow:
            stored = uow.settings.get("risk.profile")
        if stored is not None:
            try:
                return RiskProfile.from_dict(stored.value)
            except ValueError:
                pass  # validated when stored; an unreadable one falls back to the default
        return self.config.risk

    @property
    def live_account(self) -> bool:
        """The configured broker account trades real money (see AXION_ALPACA_LIVE)."""
        return self.config.live_account

    def credential_admin(self) -> CredentialAdmin:
        """Broker keys for the Settings page: masked, set and deleted by admins."""
        return CredentialAdmin(self.store, credential_vault(self.settings, self.store), WallClock())

    def service(self) -> TradingService:
        """The facade the dashboard, the worker CLI and the Python API share."""
        return TradingService(
            self.store,
            self.market,
            profile=self.current_profile,
            commission=self.commission,
            sector_of=_sector_name,
            lease_name=self.config.lease_name,
        )


def _sector_name(symbol: str) -> str | None:
    sector = sector_of(symbol)
    return None if sector is None else sector.value


def build_market(settings: AxionSettings, store: SqlStore | None = None) -> MarketData:
    if settings.market == "replay":
        if settings.replay_file is None:
            raise ValueError("AXION_REPLAY_FILE is required with AXION_MARKET=replay")
        return ReplayMarket.from_file(settings.replay_file, speed=settings.market_speed)
    if settings.market == "alpaca":
        from core.marketdata.alpaca import AlpacaMarketData

        key, secret = alpaca_keys(settings, store)
        return AlpacaMarketData(
            key,
            secret,
            _universe(settings),
            base_url=settings.alpaca_data_url or settings.alpaca_base_url,
        )
    if settings.market == "ibkr":
        _ensure_event_loop()
        from core.marketdata.ibkr import IBKRMarketData

        return IBKRMarketData(
            settings.ibkr_host,
            settings.ibkr_port,
            settings.ibkr_client_id + 1,  # its own API session beside the broker's
            symbols=_universe(settings),
        )
    return SimulatedMarket.demo(speed=settings.market_speed, seed=settings.market_seed)


def _ensure_event_loop() -> None:
    """ib_insync (through eventkit) asks for the thread's event loop when it is imported; the
    dashboard builds the runtime on a script thread, which has none."""
    try:
        asyncio.get_event_loop()
    except RuntimeError:
        asyncio.set_event_loop(asyncio.new_event_loop())


def _universe(settings: AxionSettings) -> list[str]:
    """The symbols a broker's market data serves: the watchlist and the leveraged ETFs its
    signals route to."""
    from core.instruments.catalog import LEVERAGED_ETF_CATALOG

    return sorted(set(settings.watchlist_symbols) | LEVERAGED_ETF_CATALOG.tickers)


#: Names of Alpaca's keys in the encrypted credential store.
ALPACA_KEY_NAMES = ("alpaca.api_key", "alpaca.secret_key")


def credential_vault(settings: AxionSettings, store: SqlStore) -> CredentialVault:
    """The vault over the store's ``credentials`` table, under the master key
    (``AXION_MASTER_KEY`` or the 0600 key file in ``AXION_SECRETS_DIR``)."""
    return CredentialVault(store.credential_store(), load_master_key(settings.master_key_file))


def alpaca_keys(settings: AxionSettings, store: SqlStore | None) -> tuple[str, str]:
    if store is None:
        raise ValueError("Alpaca's keys are read from the store's credentials")
    vault = credential_vault(settings, store)
    missing = [name for name in ALPACA_KEY_NAMES if not vault.has(name)]
    if missing:
        raise ValueError(
            f"Alpaca needs {' and '.join(missing)} in the credential store: "
            f"python -m app.credentials set {missing[0]}"
        )
    key, secret = (vault.get(name).reveal() for name in ALPACA_KEY_NAMES)
    return key, secret


def build_broker(settings: AxionSettings, store: SqlStore, market: MarketData) -> Broker:
    """The configured broker, behind an :class:`OrderRouter` when a fallback is configured."""
    primary = _one_broker(settings.broker, settings, store, market)
    if settings.fallback_broker == "none":
        return primary
    if settings.fallback_broker == settings.broker:
        raise ValueError(
            f"AXION_FALLBACK_BROKER must differ from AXION_BROKER (both are {settings.broker!r})"
        )
    if settings.is_live(settings.broker) != settings.is_live(settings.fallback_broker):
        raise ValueError(
            "the primary and the fallback broker must both be live or both be paper accounts: "
            "an outage must never move orders between real and simulated money"
        )
    fallback = _one_broker(settings.fallback_broker, settings, store, market)
    return OrderRouter(primary, fallback, clock=market.clock)


def _one_broker(kind: str, settings: AxionSettings, store: SqlStore, market: MarketData) -> Broker:
    if kind == "paper":
        config = PaperConfig(initial_cash=Decimal(settings.initial_cash))
        return PaperBroker(market, store.paper_ledger(settings.account), config)
    if kind == "alpaca":
        from core.brokers.alpaca import AlpacaBroker

        key, secret = alpaca_keys(settings, store)
        return AlpacaBroker(
            key,
            secret,
            paper=not settings.alpaca_live,
            base_url=settings.alpaca_base_url,
            stream_url=settings.alpaca_stream_url,
        )
    if kind == "ibkr":
        _ensure_event_loop()
        from core.brokers.ibkr import IBKRBroker

        return IBKRBroker(
            settings.ibkr_host,
            settings.ibkr_port,
            settings.ibkr_client_id,
            account=settings.ibkr_account,
        )
    raise ValueError(f"broker {kind!r} is not supported")


def build_runtime(settings: AxionSettings | None = None, demo: bool = False) -> Runtime:
    """Everything one process needs, built once: store (migrated), market, broker, config."""
    settings = settings or AxionSettings()
    store = open_store(settings.database_url)
    market = build_market(settings, store)
    broker = build_broker(settings, store, market)
    ttl = timedelta(seconds=settings.lease_ttl_s)
    config = ExecutorConfig(
        account=settings.account,
        tick_interval=timedelta(milliseconds=settings.tick_ms),
        lease_ttl=ttl,
        lease_renew_every=min(ttl / 5, timedelta(seconds=2)),
        instrument_mode=InstrumentMode(settings.mode_for(demo)),
        risk=profile_named(settings.risk_profile),
        live_account=settings.live_account,
        order_rate=RateLimitConfig(
            max_orders=settings.order_rate_max,
            window=timedelta(seconds=settings.order_rate_window_s),
        ),
    )
    sources: list[SignalSource] = []
    if demo:
        sources.append(demo_signal_source(market, settings.watchlist_symbols))
    return Runtime(settings, store, market, broker, config, sources, demo=demo)
