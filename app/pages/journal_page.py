"""Trade Journal: the journaled trades under filters, page by page, one trade followed from
its signal to its fills, analytics (win rate, holding periods, slippage, commissions,
turnover) and CSV export of the filtered trades.

Every figure is a SQL aggregate over the filter (``runtime.queries.journal``); only the page
of rows on screen is fetched, and a tab's analytics run only while that tab is open.
"""

from __future__ import annotations

from functools import partial

import streamlit as st

from app.components import journal as ui
from app.state import current_user, dashboard_runtime

PAGE_SIZE = 100
TABS = ("Trades", "Win rate", "Holding period", "Slippage", "Commissions", "Turnover")

runtime = dashboard_runtime()
user = current_user()
journal = runtime.queries.journal

st.title("Trade Journal")
choices = journal.choices()
if choices.empty:
    st.info(
        "No trades yet. A trade is journaled when its first fill arrives and closed, with its "
        "P&L and exit reason, by the fill that flattens the position.",
        icon=":material/menu_book:",
    )
    st.stop()

filters = ui.render_filters(choices)
summary = journal.summary(filters)
ui.render_summary(summary)
if summary.trades == 0:
    st.info(
        "No trades match these filters. Widen the date range or clear a filter.",
        icon=":material/filter_alt_off:",
    )
    st.stop()

# The CSV is generated only when the button is clicked (a callable, run on download).
st.download_button(
    f"Download {summary.trades:,} trades (CSV)",
    data=partial(journal.export_csv, filters),
    file_name=f"axion-trades-{runtime.market.clock.now():%Y%m%d-%H%M}.csv",
    mime="text/csv",
    on_click="ignore",
    icon=":material/download:",
    key="journal_csv",
)

# Tabs keep state, so only the open tab's queries run on a rerun.
tabs = st.tabs(TABS, key="journal_tab", on_change="rerun")
trades_tab, win_tab, holding_tab, slippage_tab, commission_tab, turnover_tab = tabs

if trades_tab.open:
    with trades_tab:
        pages = -(-summary.trades // PAGE_SIZE)
        table = st.container()
        page = st.pagination(pages, key=f"journal_page_{hash(filters)}") if pages > 1 else 1
        offset = (page - 1) * PAGE_SIZE
        rows = journal.trades(filters, limit=PAGE_SIZE, offset=offset)
        table.caption(
            f"Trades {offset + 1:,} to {offset + len(rows):,} of {summary.trades:,}, "
            "newest entry first."
        )
        table.dataframe(
            ui.trades_table(rows),
            hide_index=True,
            column_config=ui.TRADE_COLUMN_CONFIG,
            placeholder="",
        )
        labels = {
            int(r.id): f"#{r.id} · {r.ticker} · {r.entry_time:%Y-%m-%d %H:%M} · {r.status}"
            for r in rows.itertuples()
        }
        picked = st.selectbox(
            "Follow a trade from its signal to its fills",
            list(labels),
            index=None,
            format_func=labels.get,
            placeholder="Choose a trade on this page",
            key="journal_chain_trade",
        )
        if picked is not None:
            chain = journal.chain(picked)
            if chain is None:
                st.warning(f"Trade #{picked} is no longer stored.")
            else:
                ui.render_chain(chain)

if win_tab.open:
    with win_tab:
        ui.render_win_rates(journal.win_rates(filters))

if holding_tab.open:
    with holding_tab:
        ui.render_holding_periods(journal.holding_periods(filters))

if slippage_tab.open:
    with slippage_tab:
        ui.render_slippage(journal.slippage(filters), filters.trade_only)

if commission_tab.open:
    with commission_tab:
        ui.render_commissions(journal.commission_impact(filters), filters.trade_only)

if turnover_tab.open:
    with turnover_tab:
        ui.render_turnover(journal.turnover(filters), filters.trade_only)
