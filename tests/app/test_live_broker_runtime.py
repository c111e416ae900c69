"""Live brokers chosen by configuration alone: the runtime builds the Alpaca or IB adapter from
``AXION_*`` settings, Alpaca's keys come encrypted from the store (stored with
``python -m app.credentials``), and the executor trades through the real SDKs against the
loopback emulators. Neither the database file nor the logs ever hold a key in plain text."""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from app.runtime import build_runtime
from app.settings import AxionSettings
from core.domain import Command, CommandStatus, CommandType, OrderStatus
from tests.emulators.alpaca import AlpacaEmulator
from tests.emulators.tws import TwsEmulator

ROOT = Path(__file__).resolve().parents[2]
KEY_ID = "PKTESTKEY0123456789AB"
SECRET = "s3cr3t-Value-that-must-never-leak-42"


def _store_credential(env: dict[str, str], name: str, value: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "app.credentials", "set", name, "--by", "admin"],
        input=value + "\n",
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert value not in done.stdout + done.stderr
    return done.stdout


def _trade_once(settings: AxionSettings, symbol: str) -> tuple[object, list]:
    """Build the runtime from ``settings``, buy 2 ``symbol`` through a manual order command and
    tick until it is filled; returns the stored order and its fills."""
    runtime = build_runtime(settings)
    executor = runtime.make_executor("live-test")
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)  # as asyncio.run does in the executor thread (ib_insync uses it)
    try:
        with runtime.store.unit_of_work() as uow:
            cid = uow.commands.add(
                Command(
                    CommandType.MANUAL_ORDER.value,
                    {"symbol": symbol, "side": "buy", "qty": "2"},
                    "trader",
                    runtime.market.clock.now(),
                )
            )
            uow.commit()
        deadline = time.monotonic() + 30
        order = None
        while time.monotonic() < deadline:
            loop.run_until_complete(executor.tick())
            with runtime.store.unit_of_work(read_only=True) as uow:
                command = uow.commands.get(cid)
                assert command is not None
                assert command.status is not CommandStatus.REJECTED, command.result
                orders = [o for o in uow.orders.recent(10) if o.symbol == symbol]
                order = orders[0] if orders else None
                if order is not None and order.status is OrderStatus.FILLED:
                    fills = uow.fills.for_order(order.client_order_id)
                    if fills:
                        return order, fills
            time.sleep(0.05)
        raise AssertionError(f"the order never filled: {order}")
    finally:
        loop.run_until_complete(executor.shutdown())
        loop.close()
        asyncio.set_event_loop(asyncio.new_event_loop())
        runtime.store.engine.dispose()


@pytest.fixture
def alpaca() -> Iterator[AlpacaEmulator]:
    with AlpacaEmulator(api_key=KEY_ID, secret_key=SECRET) as emulator:
        yield emulator


def test_alpaca_by_configuration_with_keys_from_the_encrypted_store(
    alpaca, tmp_path, monkeypatch, caplog
):
    env = {
        "AXION_DATABASE_URL": f"sqlite:///{tmp_path / 'axion.db'}",
        "AXION_SECRETS_DIR": str(tmp_path / "secrets"),
        "AXION_BROKER": "alpaca",
        "AXION_ALPACA_BASE_URL": alpaca.base_url,
        "AXION_ALPACA_STREAM_URL": alpaca.stream_url,
        "AXION_PIPELINE": "pass_through",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AXION_MASTER_KEY", raising=False)
    with pytest.raises(ValueError, match=r"python -m app\.credentials set alpaca\.api_key"):
        build_runtime(AxionSettings())
    assert "stored" in _store_credential(env, "alpaca.api_key", KEY_ID)
    _store_credential(env, "alpaca.secret_key", SECRET)
    key_file = tmp_path / "secrets" / "master.key"
    assert key_file.stat().st_mode & 0o777 == 0o600

    caplog.set_level(logging.DEBUG)
    order, fills = _trade_once(AxionSettings(), "SPY")
    assert order.broker == "alpaca" and order.broker_order_id
    assert sum(f.qty for f in fills) == 2
    placed = [o for o in alpaca.all_orders() if o["client_order_id"] == order.client_order_id]
    assert placed and placed[0]["status"] == "filled"  # it really went through the SDK

    listed = subprocess.run(
        [sys.executable, "-m", "app.credentials", "list"],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "alpaca.secret_key" in listed and SECRET not in listed and SECRET[-4:] in listed
    # the store and the logs never hold either key in plain text
    for path in tmp_path.glob("axion.db*"):
        data = path.read_bytes()
        assert SECRET.encode() not in data and KEY_ID.encode() not in data, path.name
    logged = caplog.text
    assert SECRET not in logged and KEY_ID not in logged


def test_ibkr_by_configuration(tmp_path, monkeypatch):
    tws = TwsEmulator().start()
    try:
        monkeypatch.setenv("AXION_DATABASE_URL", f"sqlite:///{tmp_path / 'axion.db'}")
        monkeypatch.setenv("AXION_SECRETS_DIR", str(tmp_path / "secrets"))
        monkeypatch.setenv("AXION_BROKER", "ibkr")
        monkeypatch.setenv("AXION_IBKR_PORT", str(tws.port))
        monkeypatch.setenv("AXION_PIPELINE", "pass_through")
        order, fills = _trade_once(AxionSettings(), "SPY")
        assert order.broker == "ibkr"
        assert sum(f.qty for f in fills) == 2
        assert all(f.commission > 0 for f in fills)  # commission reports reach the fills
        assert tws.errors == []
    finally:
        tws.stop()


class Driver:
    """One runtime built from the environment and its executor, ticked by the test."""

    def __init__(self) -> None:
        self.runtime = build_runtime(AxionSettings())
        self.executor = self.runtime.make_executor("failover-test")
        self.loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self.loop)

    def tick(self) -> None:
        self.loop.run_until_complete(self.executor.tick())

    def buy(self, symbol: str, qty: str = "2", timeout: float = 30) -> tuple[object, list]:
        store = self.runtime.store
        with store.unit_of_work() as uow:
            cid = uow.commands.add(
                Command(
                    CommandType.MANUAL_ORDER.value,
                    {"symbol": symbol, "side": "buy", "qty": qty},
                    "trader",
                    self.runtime.market.clock.now(),
                )
            )
            uow.commit()
        coid = f"ax-c{cid}-manual"
        deadline = time.monotonic() + timeout
        order = None
        while time.monotonic() < deadline:
            self.tick()
            with store.unit_of_work(read_only=True) as uow:
                command = uow.commands.get(cid)
                assert command is not None
                assert command.status is not CommandStatus.REJECTED, command.result
                order = uow.orders.get(coid)
                if order is not None and order.status is OrderStatus.FILLED:
                    fills = uow.fills.for_order(coid)
                    if fills:
                        return order, fills
            time.sleep(0.05)
        raise AssertionError(f"the order never filled: {order}")

    def close(self) -> None:
        self.loop.run_until_complete(self.executor.shutdown())
        self.loop.close()
        asyncio.set_event_loop(asyncio.new_event_loop())
        self.runtime.store.engine.dispose()


def test_alpaca_primary_with_ibkr_fallback_by_configuration(alpaca, tmp_path, monkeypatch):
    """Primary down: IB takes new orders, each order keeps the broker that took it; no broker
    at all for more than 60 s (market time): the kill switch trips."""
    from core.brokers.router import OrderRouter
    from core.settings_keys import KILL_SWITCH_KEY, kill_switch_from_value

    tws = TwsEmulator().start()
    driver = None
    try:
        env = {
            "AXION_DATABASE_URL": f"sqlite:///{tmp_path / 'axion.db'}",
            "AXION_SECRETS_DIR": str(tmp_path / "secrets"),
            "AXION_BROKER": "alpaca",
            "AXION_ALPACA_BASE_URL": alpaca.base_url,
            "AXION_ALPACA_STREAM_URL": alpaca.stream_url,
            "AXION_FALLBACK_BROKER": "ibkr",
            "AXION_IBKR_PORT": str(tws.port),
            "AXION_MARKET_SPEED": "120",
        }
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        monkeypatch.delenv("AXION_MASTER_KEY", raising=False)
        _store_credential(env, "alpaca.api_key", KEY_ID)
        _store_credential(env, "alpaca.secret_key", SECRET)
        driver = Driver()
        assert isinstance(driver.runtime.broker, OrderRouter)

        first, _ = driver.buy("SPY")
        assert first.broker == "alpaca"
        alpaca.stop()  # the primary's server is gone: connections are refused
        second, fills = driver.buy("SPY")
        assert second.broker == "ibkr"
        assert tws.order_by_ref(second.client_order_id) is not None
        assert all(f.commission > 0 for f in fills)
        assert driver.runtime.broker.name == "ibkr"
        deadline = time.monotonic() + 10  # the heartbeat publishes the routes with the lease
        active = None
        while time.monotonic() < deadline and active != "ibkr":
            driver.tick()
            with driver.runtime.store.unit_of_work(read_only=True) as uow:
                lease = uow.lease.get(driver.runtime.config.lease_name)
            active = lease.info["routes"]["active"] if lease is not None else None
            time.sleep(0.1)
        assert active == "ibkr"
        assert not driver.executor.kill_switch.active

        tws.stop()  # no broker at all now
        clock = driver.runtime.market.clock
        outage_start = clock.now()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not driver.executor.kill_switch.active:
            driver.tick()
            time.sleep(0.05)
        tripped_at = clock.now()
        assert driver.executor.kill_switch.active
        assert tripped_at - outage_start > timedelta(seconds=60)
        with driver.runtime.store.unit_of_work(read_only=True) as uow:
            state = kill_switch_from_value(uow.settings.get(KILL_SWITCH_KEY))
        assert state.active and "broker" in (state.reason or "")
        assert tws.errors == []
    finally:
        if driver is not None:
            driver.close()
        tws.stop()
