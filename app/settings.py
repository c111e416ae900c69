"""Process configuration from the environment (``AXION_*``) via pydantic-settings.

Secrets never go here in plain text; broker credentials live encrypted in the store.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_DATABASE_URL = "sqlite:///./data/axion.db"
DEFAULT_INSTRUMENT_MODE = "both"
DEMO_INSTRUMENT_MODE = "leveraged_etf"


class AxionSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="AXION_", extra="ignore")

    database_url: str = Field(DEFAULT_DATABASE_URL, description="SQLAlchemy URL of the store")
    #: "alpaca" and "ibkr" take their connection below; Alpaca's keys come from the encrypted
    #: credential store (``python -m app.credentials set alpaca.api_key``), never from here.
    broker: Literal["paper", "alpaca", "ibkr"] = "paper"
    #: A second broker that takes new orders while the primary cannot be reached (never after
    #: a rejection); each order stays with the broker that took it (seed 001's OrderRouter).
    fallback_broker: Literal["none", "alpaca", "ibkr"] = "none"
    account: str = Field("paper-default", pattern=r"^[A-Za-z0-9_-]+$")
    market: Literal["simulated", "replay", "alpaca", "ibkr"] = "simulated"
    market_speed: float = Field(60.0, gt=0, description="simulated seconds per real second")
    market_seed: int = 7
    replay_file: Path | None = None
    initial_cash: str = "100000"
    #: Alpaca: None = Alpaca's own endpoints (paper unless ``alpaca_live``); set them to reach
    #: another server speaking the same API (the loopback emulator in the tests).
    alpaca_base_url: str | None = None
    alpaca_stream_url: str | None = None
    alpaca_data_url: str | None = None
    alpaca_live: bool = False
    #: Interactive Brokers: TWS or IB Gateway (paper TWS 7497, paper Gateway 4002).
    ibkr_host: str = "127.0.0.1"
    ibkr_port: int = Field(7497, ge=1, le=65535)
    ibkr_client_id: int = Field(1, ge=0)
    ibkr_account: str = ""
    #: The IB account trades real money (TWS 7496 / Gateway 4001). Like ``alpaca_live``, it
    #: makes this a live account: new-risk orders are refused until an admin switches live
    #: trading on behind the paper-history gate.
    ibkr_live: bool = False
    tick_ms: int = Field(250, ge=1, le=60_000)
    #: New-risk orders per window per account (seed 000: 10 a minute); exits, cancels and the
    #: kill switch's orders are never throttled. The ``orders.rate_limit`` setting (Settings
    #: page, admins) replaces it at run time.
    order_rate_max: int = Field(10, ge=1, le=100_000)
    order_rate_window_s: float = Field(60.0, gt=0, le=86_400)
    lease_ttl_s: float = Field(10.0, ge=0.5, le=600)
    #: Symbols the demo's EMA-cloud scan watches. The leveraged ETFs their signals route to
    #: (SPXL/SPXS, TQQQ/SQQQ, SOXL/SOXS) trade on the simulated market; the technology funds a
    #: signal on AAPL or MSFT would need (TECL/TECS) do not, so those signals would be rejected.
    watchlist: str = "SPY,QQQ,NVDA,TQQQ,SOXL,SPXL"
    #: "full" = instrument router, sizer and risk gate; "pass_through" = validate and submit as is
    pipeline: Literal["full", "pass_through"] = "full"
    #: None: "both" (the seed's default), or "leveraged_etf" for the demo (see ``mode_for``)
    instrument_mode: Literal["options", "leveraged_etf", "both"] | None = None
    risk_profile: Literal["aggressive", "conservative"] = "aggressive"
    #: Where key files live (the cookie-signing key, the vault's master key): outside the
    #: database and the repository, created with 0600 at first start.
    secrets_dir: Path = Path("./data")
    #: The dashboard's executor: "thread" runs it inside the dashboard process (one per process,
    #: the store's lease still elects one leader per account); "external" leaves it to
    #: ``python -m app.worker`` and the dashboard only reads the store and writes commands.
    executor: Literal["thread", "external"] = "thread"
    #: Run the EMA-cloud scan of the watchlist (the worker's ``--demo``). None: on in the
    #: dashboard, off in the worker unless ``--demo`` is given.
    demo: bool | None = None
    #: Minutes without a click or a key before the dashboard signs a user out (seed 000).
    session_timeout_min: float = Field(30.0, gt=0, le=24 * 60)

    @field_validator("database_url")
    @classmethod
    def _url(cls, v: str) -> str:
        if "://" not in v:
            raise ValueError(
                "database_url must be a SQLAlchemy URL such as sqlite:///./data/axion.db"
            )
        return v

    def mode_for(self, demo: bool) -> str:
        """The instrument mode to start with: the seed's "both", and leveraged ETFs for the demo
        (its scan gives mostly 1-minute scalps, which the other modes send to 0DTE options; the
        Instrument Mode page switches it at run time)."""
        if self.instrument_mode is not None:
            return self.instrument_mode
        return DEMO_INSTRUMENT_MODE if demo else DEFAULT_INSTRUMENT_MODE

    def is_live(self, broker: str) -> bool:
        """Whether ``broker`` is configured on a real-money account."""
        return (broker == "alpaca" and self.alpaca_live) or (broker == "ibkr" and self.ibkr_live)

    @property
    def live_account(self) -> bool:
        """The configured account trades real money (its primary or its fallback broker)."""
        brokers = [self.broker] + ([self.fallback_broker] if self.fallback_broker != "none" else [])
        return any(self.is_live(b) for b in brokers)

    @property
    def cookie_key_file(self) -> Path:
        return self.secrets_dir / "cookie.key"

    @property
    def master_key_file(self) -> Path:
        return self.secrets_dir / "master.key"

    @property
    def watchlist_symbols(self) -> list[str]:
        return [s.strip().upper() for s in self.watchlist.split(",") if s.strip()]
