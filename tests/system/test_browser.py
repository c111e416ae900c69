"""The dashboard in a real browser: ``streamlit run app/main.py`` (SQLite, paper broker,
simulated market, the executor in a thread) driven by Playwright in Debian's chromium.

One journey, as a first-time administrator would take it: create the administrator, sign in,
preview and approve a rebalance and see its fills, visit every page (a screenshot of each is
saved in ``artifacts/screenshots``, or ``$AXION_SCREENSHOTS``), turn the kill switch on and see
the executor halt in the store and on the page, and log out.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.navigation import PAGES
from core.config import ExecutorConfig
from core.domain import CommandStatus, CommandType
from core.rebalance.model import PlanStatus
from core.settings_keys import KILL_SWITCH_KEY
from db.engine import open_store

ROOT = Path(__file__).resolve().parents[2]
SHOTS = Path(os.environ.get("AXION_SCREENSHOTS", ROOT / "artifacts" / "screenshots"))
PASSWORD = "correct horse battery"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
#: What each page shows once it has rendered (its title).
PAGE_TITLES = {
    "positions": "Active Positions",
    "orders": "Order Book",
    "risk": "Risk Dashboard",
    "journal": "Trade Journal",
    "rebalance": "Rebalance",
    "mode": "Instrument Mode",
    "settings": "Settings",
}
WAIT_MS = 60_000

pytestmark = pytest.mark.slow


def _chromium() -> str:
    path = shutil.which("chromium")
    if path is None:
        if os.environ.get("CI") == "true":
            pytest.fail("chromium must be installed in CI (apt-get install -y chromium)")
        pytest.skip("Debian's chromium is not installed (apt-get install -y chromium)")
    return path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Dashboard:
    def __init__(self, tmp: Path) -> None:
        self.db_url = f"sqlite:///{tmp / 'axion.db'}"
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = tmp / "streamlit.log"
        env = {
            **os.environ,
            "AXION_DATABASE_URL": self.db_url,
            "AXION_SECRETS_DIR": str(tmp / "secrets"),
            "AXION_EXECUTOR": "thread",
            "AXION_DEMO": "0",
            "PYTHONUNBUFFERED": "1",
        }
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "streamlit",
                "run",
                "app/main.py",
                "--server.port",
                str(self.port),
                "--server.address",
                "127.0.0.1",
                "--server.headless",
                "true",
            ],
            cwd=ROOT,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"streamlit exited:\n{self.output()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return
            except OSError:
                time.sleep(0.2)
        raise AssertionError(f"streamlit did not listen:\n{self.output()}")

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self._log.close()


@pytest.fixture
def dashboard(tmp_path) -> Iterator[Dashboard]:
    _chromium()
    dash = Dashboard(tmp_path)
    try:
        yield dash
    finally:
        dash.stop()


def _wait_store(check, timeout: float = 60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.25)
    raise AssertionError("the store never showed the expected state")


def test_first_start_to_kill_switch_in_a_real_browser(dashboard):
    from playwright.sync_api import expect, sync_playwright

    SHOTS.mkdir(parents=True, exist_ok=True)
    store = open_store(dashboard.db_url)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=_chromium(), args=CHROMIUM_FLAGS)
        page = browser.new_page(viewport={"width": 1440, "height": 1000})
        page.set_default_timeout(WAIT_MS)
        try:
            # ---------------------------------------------------- first start: the administrator
            page.goto(dashboard.url)
            expect(page.get_by_text("Create the first administrator")).to_be_visible()
            page.get_by_label("Username").fill("admin")
            page.get_by_label("Full name").fill("Ada Admin")
            page.get_by_label("Password", exact=True).fill(PASSWORD)
            page.get_by_label("Repeat the password").fill(PASSWORD)
            page.get_by_role("button", name="Create administrator").click()
            # ---------------------------------------------------- sign in
            expect(page.get_by_role("button", name="Sign in")).to_be_visible()
            page.get_by_label("Username").fill("admin")
            page.get_by_label("Password", exact=True).fill(PASSWORD)
            page.get_by_role("button", name="Sign in").click()
            expect(page.get_by_text("PAPER", exact=True)).to_be_visible()
            expect(page.get_by_text("Equity")).to_be_visible()  # the executor published
            # ---------------------------------------------------- a rebalance, approved here
            page.get_by_role("link", name="Rebalance").click()
            expect(page.get_by_role("heading", name=PAGE_TITLES["rebalance"]).first).to_be_visible()
            page.get_by_text("Upload CSV or JSON").click()
            targets = dashboard.log_path.parent / "targets.csv"
            targets.write_text("symbol,weight\nSPY,0.20\nQQQ,0.15\n")
            page.locator("input[type=file]").set_input_files(str(targets))
            page.get_by_role("button", name="Preview rebalance").click()
            page.get_by_role("button", name="Approve…").click()
            page.get_by_role("button", name="Approve and execute").click()

            def plan_done():
                with store.unit_of_work(read_only=True) as uow:
                    plans = uow.rebalance.recent(5)
                    return plans and plans[0].status is PlanStatus.COMPLETED and plans[0]

            plan = _wait_store(plan_done)
            with store.unit_of_work(read_only=True) as uow:
                filled = {f.symbol for f in uow.fills.recent(50)}
                approval = [
                    c
                    for c in uow.commands.recent(20)
                    if c.type == CommandType.APPROVE_REBALANCE.value
                ]
            assert {"SPY", "QQQ"} <= filled
            assert approval and approval[0].created_by == "admin"
            assert approval[0].status is CommandStatus.APPLIED
            expect(page.get_by_text("completed").first).to_be_visible()
            page.get_by_role("link", name="Order Book").click()
            expect(page.get_by_role("heading", name=PAGE_TITLES["orders"]).first).to_be_visible()
            expect(page.get_by_text("SPY").first).to_be_visible()
            page.screenshot(path=str(SHOTS / "orders-after-rebalance.png"), full_page=True)
            assert plan.id is not None

            # ---------------------------------------------------- every page, with a screenshot
            for spec in PAGES:
                page.get_by_role("link", name=spec.title).click()
                expect(
                    page.get_by_role("heading", name=PAGE_TITLES[spec.url]).first
                ).to_be_visible()
                page.wait_for_timeout(1500)  # let the live fragments draw
                page.screenshot(path=str(SHOTS / f"{spec.url}.png"), full_page=True)

            # ---------------------------------------------------- the kill switch
            page.get_by_role("link", name="Risk Dashboard").click()
            expect(page.get_by_role("heading", name=PAGE_TITLES["risk"]).first).to_be_visible()
            page.get_by_role("button", name="Activate kill switch…").click()
            page.get_by_label("Reason").fill("browser drill")
            page.get_by_role("button", name="Turn on").click()

            def halted():
                with store.unit_of_work(read_only=True) as uow:
                    setting = uow.settings.get(KILL_SWITCH_KEY)
                    lease = uow.lease.get(ExecutorConfig().lease_name)
                return (
                    setting is not None
                    and setting.value.get("active")
                    and lease is not None
                    and lease.info.get("kill_switch") is True
                )

            _wait_store(halted)
            expect(page.get_by_text("Kill switch ON").first).to_be_visible()
            expect(page.get_by_text("browser drill").first).to_be_visible()
            page.screenshot(path=str(SHOTS / "risk-kill-switch-on.png"), full_page=True)

            # ---------------------------------------------------- log out
            page.get_by_role("button", name="Log out").click()
            expect(page.get_by_role("button", name="Sign in")).to_be_visible()
        except Exception:
            page.screenshot(path=str(SHOTS / "failure.png"), full_page=True)
            print(dashboard.output()[-5000:])
            raise
        finally:
            browser.close()
            store.engine.dispose()
