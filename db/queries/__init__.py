"""Read views for the dashboard: SQL filters, limits and aggregates over the store.

The write side goes through the executor (commands); these only read, each call in its own
read-only unit of work (on SQLite a deferred transaction that never blocks the executor). Views
return pandas DataFrames or small dataclasses ready to render, and do their filtering and
aggregation in SQL so that a page stays fast with 100k journal rows and 10k orders.
"""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING

from db.queries.status import StatusQueries

if TYPE_CHECKING:
    from db.queries.journal import JournalQueries
    from db.queries.orders import OrderQueries
    from db.queries.positions import PositionQueries
    from db.queries.risk import RiskQueries
    from db.queries.settings import SettingsQueries
    from db.store import SqlStore


class DashboardQueries:
    """Every read view of one account's store, grouped by page."""

    def __init__(self, store: SqlStore, lease_name: str = "executor") -> None:
        self.store = store
        self.lease_name = lease_name

    @cached_property
    def status(self) -> StatusQueries:
        return StatusQueries(self.store, self.lease_name)

    @cached_property
    def positions(self) -> PositionQueries:
        from db.queries.positions import PositionQueries

        return PositionQueries(self.store)

    @cached_property
    def orders(self) -> OrderQueries:
        from db.queries.orders import OrderQueries

        return OrderQueries(self.store)

    @cached_property
    def risk(self) -> RiskQueries:
        from db.queries.risk import RiskQueries

        return RiskQueries(self.store)

    @cached_property
    def settings(self) -> SettingsQueries:
        from db.queries.settings import SettingsQueries

        return SettingsQueries(self.store)

    @cached_property
    def journal(self) -> JournalQueries:
        from db.queries.journal import JournalQueries

        return JournalQueries(self.store)


__all__ = ["DashboardQueries"]
