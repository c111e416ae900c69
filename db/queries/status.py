"""What every page's header shows: the executor's lease and heartbeat, the kill switch, the
account as of the last mark, and the state of commands a user has sent."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select

from core.domain import Command, KillSwitchState, utcnow
from core.settings_keys import (
    KILL_SWITCH_KEY,
    LIVE_KEY,
    kill_switch_from_value,
    live_from_value,
)
from db.tables import FILLS

if TYPE_CHECKING:
    from db.store import SqlStore

#: A heartbeat older than this means the executor is down (or stuck), whatever the lease says.
STALE_HEARTBEAT = timedelta(seconds=15)


@dataclass(frozen=True, slots=True)
class AccountSummary:
    equity: Decimal
    cash: Decimal
    buying_power: Decimal
    margin_used: Decimal
    day_trades_remaining: int | None
    daily_pnl: Decimal
    at: datetime | None

    @classmethod
    def from_info(cls, data: dict[str, Any] | None) -> AccountSummary | None:
        if not data:
            return None
        try:
            at = data.get("at")
            return cls(
                equity=Decimal(str(data["equity"])),
                cash=Decimal(str(data["cash"])),
                buying_power=Decimal(str(data["buying_power"])),
                margin_used=Decimal(str(data.get("margin_used") or "0")),
                day_trades_remaining=data.get("day_trades_remaining"),
                daily_pnl=Decimal(str(data.get("daily_pnl") or "0")),
                at=datetime.fromisoformat(at) if isinstance(at, str) else None,
            )
        except (KeyError, ArithmeticError, ValueError):
            return None


@dataclass(frozen=True, slots=True)
class ExecutorStatus:
    """The executor as the store last saw it."""

    holder: str | None
    heartbeat_at: datetime | None
    expires_at: datetime | None
    broker: str | None
    connected: bool | None
    last_error: str | None
    ticks: int
    kill_switch: KillSwitchState
    account: AccountSummary | None
    live: bool
    now: datetime
    #: The executor trades on a live (real-money) account, switched to live trading or not.
    live_account: bool = False
    #: With a fallback broker: which broker takes new orders, since when the primary is down,
    #: and each broker's state (``{"active", "down_since", "brokers": [...]}``); else None.
    routes: dict[str, Any] | None = None

    @property
    def heartbeat_age(self) -> timedelta | None:
        return None if self.heartbeat_at is None else self.now - self.heartbeat_at

    @property
    def running(self) -> bool:
        """A leader holds the lease and its heartbeat is fresh."""
        age = self.heartbeat_age
        return (
            self.holder is not None
            and self.expires_at is not None
            and self.expires_at > self.now
            and age is not None
            and age <= STALE_HEARTBEAT
        )

    @property
    def broker_down(self) -> bool:
        return self.running and self.connected is False and self.ticks > 1

    @property
    def trading_mode(self) -> str:
        """LIVE (real-money orders), LIVE LOCKED (a live account whose new-risk orders are
        refused until an admin switches it on) or PAPER."""
        if self.live:
            return "LIVE"
        return "LIVE LOCKED" if self.live_account else "PAPER"


class StatusQueries:
    def __init__(self, store: SqlStore, lease_name: str = "executor") -> None:
        self.store = store
        self.lease_name = lease_name

    def executor(self, now: datetime | None = None) -> ExecutorStatus:
        now = now or utcnow()
        with self.store.unit_of_work(read_only=True) as uow:
            lease = uow.lease.get(self.lease_name)
            kill = kill_switch_from_value(uow.settings.get(KILL_SWITCH_KEY))
            live_setting = uow.settings.get(LIVE_KEY)
        info = lease.info if lease is not None else {}
        broker = info.get("broker")
        live_account = info.get("live_account") is True
        routes = info.get("routes")
        # the executor's own word when it published one; the setting alone never makes a paper
        # broker LIVE
        if "live" in info:
            live = info.get("live") is True
        else:
            live = live_from_value(live_setting) and live_account
        return ExecutorStatus(
            holder=lease.holder if lease is not None else None,
            heartbeat_at=lease.heartbeat_at if lease is not None else None,
            expires_at=lease.expires_at if lease is not None else None,
            broker=broker,
            connected=info.get("connected"),
            last_error=info.get("last_error"),
            ticks=int(info.get("ticks") or 0),
            kill_switch=kill,
            account=AccountSummary.from_info(info.get("account")),
            live=live,
            live_account=live_account,
            now=now,
            routes=routes if isinstance(routes, dict) else None,
        )

    def commands(self, ids: Sequence[int]) -> list[Command]:
        """These commands as stored now (a page follows the ones its user sent)."""
        if not ids:
            return []
        with self.store.unit_of_work(read_only=True) as uow:
            found = [uow.commands.get(i) for i in ids]
        return [c for c in found if c is not None]

    def recent_commands(self, limit: int = 50) -> list[Command]:
        with self.store.unit_of_work(read_only=True) as uow:
            return uow.commands.recent(limit)

    def last_fill_id(self) -> int:
        """The newest fill's id (0 before any): the header compares it between refreshes to
        announce new fills, with a primary-key lookup rather than counting the table."""
        with self.store.unit_of_work(read_only=True) as uow:
            value = uow.connection.execute(select(func.max(FILLS.c.id))).scalar_one()
        return int(value or 0)

    def fills_after(self, fill_id: int) -> int:
        """How many fills were stored after ``fill_id`` (ids may skip: a range count is exact)."""
        with self.store.unit_of_work(read_only=True) as uow:
            query = select(func.count()).select_from(FILLS).where(FILLS.c.id > fill_id)
            return int(uow.connection.execute(query).scalar_one())


__all__ = ["STALE_HEARTBEAT", "AccountSummary", "ExecutorStatus", "StatusQueries"]
