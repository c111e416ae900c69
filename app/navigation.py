"""The dashboard's pages, declared in one place, with the least role that sees each.

Page files are named ``<name>_page.py`` while their URLs are ``/<name>``. Streamlit still scans
a ``pages/`` folder beside the entry script on a process's first run (before ``st.navigation``
turns the scan off); with names that differ, a URL never resolves to a page script directly, so
every run goes through ``app/main.py`` and its login gate. Each page also refuses to render
without a signed-in user (``app.state.current_user``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import streamlit as st

from core.users import Role

PAGES_DIR = Path(__file__).parent / "pages"


@dataclass(frozen=True)
class PageSpec:
    file: str
    title: str
    icon: str
    url: str
    role: Role = Role.VIEWER


PAGES = (
    PageSpec(
        "positions_page.py", "Active Positions", ":material/account_balance_wallet:", "positions"
    ),
    PageSpec("orders_page.py", "Order Book", ":material/receipt_long:", "orders"),
    PageSpec("risk_page.py", "Risk Dashboard", ":material/shield:", "risk"),
    PageSpec("journal_page.py", "Trade Journal", ":material/menu_book:", "journal"),
    PageSpec("rebalance_page.py", "Rebalance", ":material/balance:", "rebalance"),
    PageSpec("mode_page.py", "Instrument Mode", ":material/tune:", "mode"),
    PageSpec("settings_page.py", "Settings", ":material/settings:", "settings"),
)


def pages_for(role: Role) -> list[st.Page]:
    visible = [p for p in PAGES if role.allows(p.role)]
    return [
        st.Page(
            str(PAGES_DIR / p.file),
            title=p.title,
            icon=p.icon,
            url_path=p.url,
            default=i == 0,
        )
        for i, p in enumerate(visible)
    ]


__all__ = ["PAGES", "PageSpec", "pages_for"]
