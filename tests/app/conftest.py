"""The dashboard under ``streamlit.testing.v1.AppTest``: a store on a temporary SQLite file,
three users (admin, trader, viewer), a test executor on the same store that applies the
commands pages write, and helpers to open a page as a signed-in user."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from app.runtime import Runtime, build_runtime
from app.settings import AxionSettings
from core.domain import (
    Command,
    CommandStatus,
    CommandType,
    Direction,
    InstrumentType,
    Order,
    OrderRequest,
    OrderStatus,
    OrderType,
    Position,
    Side,
    StatusChange,
    TradeExecution,
    TradeType,
)
from core.executor import TradeExecutor
from core.options.occ import OptionContract, Right
from core.user_admin import UserAdmin
from core.users import Role

APP = Path(__file__).resolve().parents[2] / "app"
MAIN = str(APP / "main.py")
PASSWORD = "correct horse battery"
USERS = {"admin": Role.ADMIN, "trader": Role.TRADER, "viewer": Role.VIEWER}


def page_path(name: str) -> str:
    return str(APP / "pages" / f"{name}_page.py")


@dataclass
class Dashboard:
    """One dashboard store with its test executor."""

    runtime: Runtime
    loop: asyncio.AbstractEventLoop
    _executor: TradeExecutor | None = field(default=None, repr=False)

    @property
    def store(self):
        return self.runtime.store

    # -------------------------------------------------------------- the app
    def app(
        self, page: str | None = None, user: str | None = "trader", timeout: float = 30
    ) -> AppTest:
        """An AppTest of ``app/main.py`` signed in as ``user`` (None: signed out), on ``page``."""
        at = AppTest.from_file(MAIN, default_timeout=timeout)
        if user is not None:
            stored = UserAdmin(self.store, self.runtime.market.clock).get(user)
            assert stored is not None, f"no user {user}"
            at.session_state["authentication_status"] = True
            at.session_state["username"] = user
            at.session_state["name"] = stored.name
            at.session_state["roles"] = [stored.role.value]
        if page is not None:
            # A first run registers st.navigation's pages, so switch_page() resolves the page
            # to its url path (main.py then runs on every run, as in a browser).
            at.run()
            at.switch_page(page_path(page))
        return at

    # -------------------------------------------------------------- the executor
    @property
    def executor(self) -> TradeExecutor:
        if self._executor is None:
            self._executor = self.runtime.make_executor("test-executor")
        return self._executor

    def restart(self) -> None:
        """Shut the test executor down; the next tick starts a new one from the runtime's
        configuration as it is then (as a restarted process would)."""
        if self._executor is not None:
            self.loop.run_until_complete(self._executor.shutdown())
            self._executor = None

    def tick(self, n: int = 1) -> None:
        for _ in range(n):
            self.loop.run_until_complete(self.executor.tick())

    def command(self, kind: CommandType | str, payload: dict[str, Any], by: str = "trader") -> int:
        with self.store.unit_of_work() as uow:
            cid = uow.commands.add(Command(str(kind), payload, by, self.runtime.market.clock.now()))
            uow.commit()
        return cid

    def commands(self) -> list[Command]:
        with self.store.unit_of_work(read_only=True) as uow:
            return list(reversed(uow.commands.recent(500)))

    def last_command(self) -> Command:
        found = self.commands()
        assert found, "no command was written"
        return found[-1]

    def apply(self) -> Command:
        """Tick until the newest command is no longer pending; returns it."""
        for _ in range(20):
            self.tick()
            last = self.last_command()
            if last.status is not CommandStatus.PENDING:
                return last
        raise AssertionError(f"command {last.id} still pending: {last}")

    # -------------------------------------------------------------- seed data
    def seed_trading(self) -> None:
        """Real orders, fills, positions and journal rows, made by the executor: three market
        buys that fill, and one resting limit order that stays open."""
        for symbol, qty in (("SPY", "10"), ("QQQ", "5"), ("NVDA", "20")):
            self.command(CommandType.MANUAL_ORDER, {"symbol": symbol, "side": "buy", "qty": qty})
        self.tick(3)
        quote = self.loop.run_until_complete(self.runtime.market.quote("SPY"))
        low = (quote.bid * Decimal("0.8")).quantize(Decimal("0.01"))
        self.command(
            CommandType.MANUAL_ORDER,
            {
                "symbol": "SPY",
                "side": "buy",
                "qty": "1",
                "order_type": "limit",
                "limit_price": str(low),
                "time_in_force": "gtc",
            },
        )
        self.tick(2)

    def option_contract(self, underlying: str = "SPY", right: Right = Right.CALL) -> OptionContract:
        """A contract the simulated market quotes: expiring at the session after the market
        clock's (SPY lists every session), struck at the money."""
        market = self.runtime.market
        now = market.clock.now()
        calendar = market.calendar
        session = calendar.session_date(now) or calendar.previous_session(now)
        spot = market.quote_sync(underlying).last
        strike = spot.quantize(Decimal(1))
        return OptionContract(underlying, calendar.next_session(session), strike, right)

    def seed_option(self, contracts: str = "2") -> tuple[OptionContract, Decimal, Decimal]:
        """An open long call position as the executor books one, written to the store: the
        position (marked 0.40 above its entry), the journal trade behind it with the notes the
        options stage records, its filled entry order and a take-profit limit sell of one
        contract still working. Returns (contract, entry price, mark), per share."""
        contract = self.option_contract()
        market = self.runtime.market
        now = market.clock.now()
        session = market.calendar.session_date(now) or market.calendar.previous_session(now)
        quote = market.option_quote(contract.symbol)
        entry, mark = quote.mid, quote.mid + Decimal("0.40")
        qty = Decimal(contracts)
        symbol, option = contract.symbol, InstrumentType.OPTION
        path = [OrderStatus.NEW, OrderStatus.SUBMITTED, OrderStatus.ACCEPTED]

        def order(coid, side, n, limit, status, reduce_only=False):
            steps = [*path, status] if status not in path else path
            return Order(
                request=OrderRequest(
                    client_order_id=coid,
                    symbol=symbol,
                    side=side,
                    qty=n,
                    order_type=OrderType.LIMIT,
                    limit_price=limit,
                    reduce_only=reduce_only,
                    instrument_type=option,
                ),
                status=status,
                broker="paper",
                filled_qty=n if status is OrderStatus.FILLED else Decimal(0),
                avg_fill_price=entry if status is OrderStatus.FILLED else None,
                created_at=now,
                updated_at=now,
                history=[
                    StatusChange(a, b, now) for a, b in zip([None, *steps[:-1]], steps, strict=True)
                ],
            )

        with self.store.unit_of_work() as uow:
            uow.orders.add(order("ax-opt-entry", Side.BUY, qty, quote.ask, OrderStatus.FILLED))
            uow.orders.add(
                order(
                    "ax-opt-tp",
                    Side.SELL,
                    Decimal(1),
                    entry * 2,
                    OrderStatus.ACCEPTED,
                    reduce_only=True,
                )
            )
            uow.positions.upsert(
                Position(symbol, qty, entry, mark, instrument_type=option, opened_at=now)
            )
            uow.journal.open_trade(
                TradeExecution(
                    ticker=symbol,
                    direction=Direction.LONG,
                    trade_type=TradeType.DAY,
                    entry_price=entry,
                    shares=qty,
                    entry_time=now,
                    instrument_type=option,
                    original_ticker=contract.underlying,
                    broker="paper",
                    order_id="ax-opt-entry",
                    trigger="signal",
                    strategy="ema_cloud",
                    metadata={
                        "source": "ema_cloud",
                        "underlying": contract.underlying,
                        "expiry": contract.expiry.isoformat(),
                        "strike": str(contract.strike),
                        "right": contract.right.value,
                        "expiry_kind": f"{contract.days_to_expiry(session)}DTE",
                        "iv": f"{quote.iv:.4f}",
                        "delta": f"{quote.greeks.delta:.4f}",
                        "premium_at_risk": str(quote.ask * qty * 100),
                    },
                )
            )
            uow.commit()
        return contract, entry, mark

    def close(self) -> None:
        if self._executor is not None:
            self.loop.run_until_complete(self._executor.shutdown())
        self.loop.close()
        self.store.engine.dispose()


@pytest.fixture
def dashboard(tmp_path, monkeypatch) -> Iterator[Dashboard]:
    env = {
        "AXION_DATABASE_URL": f"sqlite:///{tmp_path / 'axion.db'}",
        "AXION_EXECUTOR": "external",
        "AXION_DEMO": "0",
        "AXION_SECRETS_DIR": str(tmp_path / "secrets"),
        "AXION_MARKET_SPEED": "1",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    for name in ("AXION_INSTRUMENT_MODE", "AXION_WATCHLIST", "AXION_PIPELINE", "AXION_BROKER"):
        monkeypatch.delenv(name, raising=False)
    st.cache_resource.clear()
    st.cache_data.clear()
    runtime = build_runtime(AxionSettings())
    admin = UserAdmin(runtime.store, runtime.market.clock)
    admin.create_first_admin("admin", "Ada Admin", "admin@example.com", PASSWORD)
    for name, role in USERS.items():
        if name != "admin":
            admin.add_user("admin", name, name.title(), f"{name}@example.com", role, PASSWORD)
    dash = Dashboard(runtime, asyncio.new_event_loop())
    try:
        yield dash
    finally:
        dash.close()
        st.cache_resource.clear()
        st.cache_data.clear()


@pytest.fixture
def empty_dashboard(tmp_path, monkeypatch) -> Iterator[Dashboard]:
    """Like ``dashboard`` but with no user at all (the first-start form)."""
    monkeypatch.setenv("AXION_DATABASE_URL", f"sqlite:///{tmp_path / 'axion.db'}")
    monkeypatch.setenv("AXION_EXECUTOR", "external")
    monkeypatch.setenv("AXION_DEMO", "0")
    monkeypatch.setenv("AXION_SECRETS_DIR", str(tmp_path / "secrets"))
    st.cache_resource.clear()
    runtime = build_runtime(AxionSettings())
    dash = Dashboard(runtime, asyncio.new_event_loop())
    try:
        yield dash
    finally:
        dash.close()
        st.cache_resource.clear()


def texts(at: AppTest) -> str:
    """Everything a page shows as text (markdown, captions, alerts, metrics), for assertions."""
    parts: list[str] = []
    for kind in (
        "markdown",
        "caption",
        "error",
        "warning",
        "info",
        "success",
        "title",
        "header",
        "subheader",
        "text",
    ):
        parts.extend(str(e.value) for e in getattr(at, kind))
    parts.extend(f"{m.label} {m.value}" for m in at.metric)
    return "\n".join(parts)


def button_keys(at: AppTest) -> set[str]:
    """The keys of the buttons a page shows."""
    return {b.key for b in at.button}


def click(at: AppTest, label: str) -> AppTest:
    """Click the first button labelled ``label`` and run the page again."""
    button = next(b for b in at.button if b.label == label)
    return button.click().run()


def frames(at: AppTest) -> list:
    """The values of the page's data frames."""
    return [d.value for d in at.dataframe]
