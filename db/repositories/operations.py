"""Operational repositories: the command inbox, versioned settings, the executor lease and
reconciliation differences."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Row, bindparam, case, func, insert, select, update

from core.domain import (
    Alert,
    AlertLevel,
    Command,
    CommandStatus,
    ReconciliationDiff,
    StageDecision,
)
from core.ports import LeaseInfo, SettingValue
from db.errors import RowNotFoundError
from db.prepared import PreparedStatement
from db.repositories._base import InsertBuilder, Repository, enum_value, for_dialect
from db.tables import ALERTS, COMMANDS, DECISIONS, LEASES, RECONCILIATION, SETTINGS
from db.types import JSONDoc, UTCDateTime

# ---------------------------------------------------------------------------------------------
# Commands
# ---------------------------------------------------------------------------------------------

_INSERT_COMMAND = insert(COMMANDS)
_SELECT_COMMANDS = select(COMMANDS)
_PENDING_COMMANDS = (
    _SELECT_COMMANDS.where(COMMANDS.c.status == CommandStatus.PENDING.value)
    .order_by(COMMANDS.c.id)
    .limit(bindparam("b_limit"))
)
_SELECT_COMMAND = _SELECT_COMMANDS.where(COMMANDS.c.id == bindparam("b_id"))
_RECENT_COMMANDS = _SELECT_COMMANDS.order_by(COMMANDS.c.id.desc()).limit(bindparam("b_limit"))
_MARK_COMMAND = PreparedStatement(
    update(COMMANDS)
    .where(COMMANDS.c.id == bindparam("b_id"))
    .values(
        status=bindparam("b_status"),
        result=bindparam("b_result"),
        applied_at=bindparam("b_at", type_=UTCDateTime()),
    )
)


def _command_from_row(r: Row[Any]) -> Command:
    m = r._mapping
    return Command(
        type=m["type"],
        payload=dict(m["payload"] or {}),
        created_by=m["created_by"],
        created_at=m["created_at"],
        status=CommandStatus(m["status"]),
        result=m["result"],
        applied_at=m["applied_at"],
        id=m["id"],
    )


class SqlCommandRepository(Repository):
    """Dashboard-to-executor commands; rows are never deleted, so they are the audit trail."""

    __slots__ = ()

    def add(self, command: Command) -> int:
        """Insert ``command``; returns its id and sets ``command.id``."""
        result = self._conn.execute(
            _INSERT_COMMAND,
            {
                "type": enum_value(command.type),
                "payload": command.payload or {},
                "created_by": command.created_by,
                "created_at": command.created_at,
                "status": enum_value(command.status),
                "result": command.result,
                "applied_at": command.applied_at,
            },
        )
        command.id = int(result.inserted_primary_key[0])  # type: ignore[index]
        return command.id

    def get(self, command_id: int) -> Command | None:
        row = self._conn.execute(_SELECT_COMMAND, {"b_id": command_id}).first()
        return None if row is None else _command_from_row(row)

    def pending(self, limit: int = 100) -> list[Command]:
        """Pending commands, oldest first."""
        rows = self._conn.execute(_PENDING_COMMANDS, {"b_limit": limit})
        return [_command_from_row(r) for r in rows]

    def mark(self, command_id: int, status: CommandStatus, result: str, at: datetime) -> None:
        params = {
            "b_id": command_id,
            "b_status": enum_value(status),
            "b_result": result,
            "b_at": at,
        }
        if _MARK_COMMAND.execute(self._conn, params) != 1:
            raise RowNotFoundError(f"command {command_id} is not stored")

    def recent(self, limit: int = 100) -> list[Command]:
        """Newest first."""
        rows = self._conn.execute(_RECENT_COMMANDS, {"b_limit": limit})
        return [_command_from_row(r) for r in rows]


# ---------------------------------------------------------------------------------------------
# Settings
# ---------------------------------------------------------------------------------------------


_LATEST_SETTING = (
    select(SETTINGS)
    .where(SETTINGS.c.key == bindparam("b_key"))
    .order_by(SETTINGS.c.version.desc())
    .limit(1)
)
_SETTING_HISTORY = (
    select(SETTINGS).where(SETTINGS.c.key == bindparam("b_key")).order_by(SETTINGS.c.version)
)
_LATEST_VERSION = select(func.max(SETTINGS.c.version)).where(SETTINGS.c.key == bindparam("b_key"))
_INSERT_SETTING = insert(SETTINGS)


def _setting_from_row(r: Row[Any]) -> SettingValue:
    m = r._mapping
    return SettingValue(
        key=m["key"],
        value=m["value"],
        version=m["version"],
        updated_by=m["updated_by"],
        updated_at=m["updated_at"],
    )


class SqlSettingsRepository(Repository):
    """Versioned settings: ``put`` adds version n+1, ``get`` reads the highest version."""

    __slots__ = ()

    def get(self, key: str) -> SettingValue | None:
        row = self._conn.execute(_LATEST_SETTING, {"b_key": key}).first()
        return None if row is None else _setting_from_row(row)

    def put(self, key: str, value: Any, by: str, at: datetime) -> int:
        """Store ``value`` as the next version of ``key``; returns that version (1 for the first).

        Two writers racing on one key collide on the primary key (key, version) rather than
        silently sharing a version number.
        """
        conn = self._conn
        latest = conn.execute(_LATEST_VERSION, {"b_key": key}).scalar_one()
        version = (latest or 0) + 1
        conn.execute(
            _INSERT_SETTING,
            {"key": key, "version": version, "value": value, "updated_by": by, "updated_at": at},
        )
        return version

    def history(self, key: str) -> list[SettingValue]:
        """Every version of ``key``, oldest first."""
        rows = self._conn.execute(_SETTING_HISTORY, {"b_key": key})
        return [_setting_from_row(r) for r in rows]


# ---------------------------------------------------------------------------------------------
# Executor lease
# ---------------------------------------------------------------------------------------------

_B_NOW = bindparam("b_now", type_=UTCDateTime())
_B_HOLDER = bindparam("b_holder")
_TAKE_LEASE_WHERE = (LEASES.c.name == bindparam("b_name")) & (
    (LEASES.c.holder == _B_HOLDER) | (LEASES.c.expires_at < _B_NOW)
)
_TAKE_LEASE_VALUES: dict[str, Any] = {
    "holder": _B_HOLDER,
    # Evaluated against the row before the update: a renewal keeps its original start.
    "acquired_at": case((LEASES.c.holder == _B_HOLDER, LEASES.c.acquired_at), else_=_B_NOW),
    "expires_at": bindparam("b_expires", type_=UTCDateTime()),
    "heartbeat_at": _B_NOW,
}
_TAKE_LEASE = PreparedStatement(update(LEASES).where(_TAKE_LEASE_WHERE).values(_TAKE_LEASE_VALUES))
_TAKE_LEASE_WITH_INFO = PreparedStatement(
    update(LEASES)
    .where(_TAKE_LEASE_WHERE)
    .values({**_TAKE_LEASE_VALUES, "info": bindparam("b_info", type_=JSONDoc())})
)
_RELEASE_LEASE = (
    update(LEASES)
    .where(LEASES.c.name == bindparam("b_name"), LEASES.c.holder == bindparam("b_holder"))
    .values(expires_at=bindparam("b_at", type_=UTCDateTime()))
)
# A released lease expires at the epoch rather than at the wall clock's "now", because the
# executor may run on a simulated clock (replays) that is far from the wall clock.
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


_SELECT_LEASE = select(LEASES).where(LEASES.c.name == bindparam("b_name"))


def _insert_lease_once(ins: InsertBuilder) -> Any:
    return ins(LEASES).on_conflict_do_nothing(index_elements=[LEASES.c.name])


_INSERT_LEASE_ONCE = PreparedStatement(for_dialect(_insert_lease_once))


class SqlLeaseRepository(Repository):
    """Leader election for executors sharing one database.

    ``try_acquire`` is a single conditional UPDATE (take it if it is ours or has expired),
    falling back to an INSERT ... ON CONFLICT DO NOTHING when no row exists yet. Both are atomic
    on their own, so two processes can never both hold an unexpired lease: on PostgreSQL the
    second UPDATE waits for the first and re-checks its WHERE clause against the new row; on
    SQLite the write lock taken by ``BEGIN IMMEDIATE`` serializes the whole transaction. The
    caller commits (it is part of the unit of work), and the lease only counts once committed.
    """

    __slots__ = ()

    def try_acquire(
        self,
        name: str,
        holder: str,
        now: datetime,
        ttl: timedelta,
        info: dict[str, Any] | None = None,
    ) -> bool:
        """Take or renew ``name`` for ``holder`` until ``now + ttl``; False if another holds it.

        ``info`` replaces the stored info when given and is kept otherwise.
        """
        conn = self._conn
        params: dict[str, Any] = {
            "b_name": name,
            "b_holder": holder,
            "b_now": now,
            "b_expires": now + ttl,
        }
        if info is None:
            updated = _TAKE_LEASE.execute(conn, params)
        else:
            updated = _TAKE_LEASE_WITH_INFO.execute(conn, {**params, "b_info": info})
        if updated == 1:
            return True
        inserted = _INSERT_LEASE_ONCE.execute(
            conn,
            {
                "name": name,
                "holder": holder,
                "acquired_at": now,
                "expires_at": now + ttl,
                "heartbeat_at": now,
                "info": info or {},
            },
        )
        return inserted == 1

    def release(self, name: str, holder: str) -> None:
        """Give the lease up at once (if ``holder`` has it) so a standby need not wait for expiry.

        The row stays (the dashboard can still show the last holder), expired, so the next
        ``try_acquire`` by anyone succeeds.
        """
        self._conn.execute(_RELEASE_LEASE, {"b_name": name, "b_holder": holder, "b_at": _EPOCH})

    def get(self, name: str) -> LeaseInfo | None:
        row = self._conn.execute(_SELECT_LEASE, {"b_name": name}).first()
        if row is None:
            return None
        m = row._mapping
        return LeaseInfo(
            name=m["name"],
            holder=m["holder"],
            acquired_at=m["acquired_at"],
            expires_at=m["expires_at"],
            heartbeat_at=m["heartbeat_at"],
            info=dict(m["info"] or {}),
        )


# ---------------------------------------------------------------------------------------------
# Reconciliation
# ---------------------------------------------------------------------------------------------


class SqlReconciliationRepository(Repository):
    """Differences between our books and a broker's, kept for the operator to resolve."""

    __slots__ = ()

    def add(self, diff: ReconciliationDiff) -> None:
        self._conn.execute(
            insert(RECONCILIATION),
            {
                "kind": diff.kind,
                "key": diff.key,
                "ours": diff.ours,
                "theirs": diff.theirs,
                "broker": diff.broker,
                "at": diff.at,
            },
        )

    def recent(self, limit: int = 100) -> list[ReconciliationDiff]:
        """Newest first."""
        rows = self._conn.execute(
            select(RECONCILIATION).order_by(RECONCILIATION.c.id.desc()).limit(limit)
        )
        return [
            ReconciliationDiff(
                kind=m["kind"],
                key=m["key"],
                ours=m["ours"],
                theirs=m["theirs"],
                at=m["at"],
                broker=m["broker"],
            )
            for m in (r._mapping for r in rows)
        ]


# ---------------------------------------------------------------------------------------------
# Stage decisions
# ---------------------------------------------------------------------------------------------

_INSERT_DECISION = PreparedStatement(insert(DECISIONS))
_DECISIONS_FOR_SIGNAL = (
    select(DECISIONS).where(DECISIONS.c.signal_id == bindparam("b_sid")).order_by(DECISIONS.c.id)
)
_RECENT_DECISIONS = select(DECISIONS).order_by(DECISIONS.c.id.desc()).limit(bindparam("b_limit"))


def _decision_from_row(r: Row[Any]) -> StageDecision:
    m = r._mapping
    return StageDecision(
        signal_id=m["signal_id"],
        stage=m["stage"],
        approved=bool(m["approved"]),
        at=m["at"],
        reason=m["reason"],
        details=dict(m["details"] or {}),
        id=m["id"],
    )


class SqlDecisionRepository(Repository):
    """What each pipeline stage decided about each signal."""

    __slots__ = ()

    def add(self, decision: StageDecision) -> None:
        _INSERT_DECISION.execute(
            self._conn,
            {
                "signal_id": decision.signal_id,
                "stage": decision.stage,
                "approved": decision.approved,
                "reason": decision.reason,
                "details": decision.details,
                "at": decision.at,
            },
        )

    def add_many(self, decisions: list[StageDecision]) -> None:
        """Insert decisions in one executemany."""
        if not decisions:
            return
        _INSERT_DECISION.executemany(
            self._conn,
            [
                {
                    "signal_id": d.signal_id,
                    "stage": d.stage,
                    "approved": d.approved,
                    "reason": d.reason,
                    "details": d.details,
                    "at": d.at,
                }
                for d in decisions
            ],
        )

    def for_signal(self, signal_id: int) -> list[StageDecision]:
        rows = self._conn.execute(_DECISIONS_FOR_SIGNAL, {"b_sid": signal_id})
        return [_decision_from_row(r) for r in rows]

    def recent(self, limit: int = 100) -> list[StageDecision]:
        rows = self._conn.execute(_RECENT_DECISIONS, {"b_limit": limit})
        return [_decision_from_row(r) for r in rows]


# ---------------------------------------------------------------------------------------------
# Alerts
# ---------------------------------------------------------------------------------------------

_INSERT_ALERT = insert(ALERTS)
_RECENT_ALERTS = select(ALERTS).order_by(ALERTS.c.id.desc()).limit(bindparam("b_limit"))
_UNACKNOWLEDGED_ALERTS = (
    select(ALERTS)
    .where(ALERTS.c.acknowledged_at.is_(None))
    .order_by(ALERTS.c.id.desc())
    .limit(bindparam("b_limit"))
)
_ACKNOWLEDGE_ALERT = (
    update(ALERTS)
    .where(ALERTS.c.id == bindparam("b_id"), ALERTS.c.acknowledged_at.is_(None))
    .values(
        acknowledged_by=bindparam("b_by"),
        acknowledged_at=bindparam("b_at", type_=UTCDateTime()),
    )
)


def _alert_from_row(r: Row[Any]) -> Alert:
    m = r._mapping
    return Alert(
        kind=m["kind"],
        level=AlertLevel(m["level"]),
        message=m["message"],
        at=m["at"],
        details=dict(m["details"] or {}),
        id=m["id"],
        acknowledged_by=m["acknowledged_by"],
        acknowledged_at=m["acknowledged_at"],
    )


class SqlAlertRepository(Repository):
    """Alerts for the trader; kept, and acknowledged by name."""

    __slots__ = ()

    def add(self, alert: Alert) -> int:
        result = self._conn.execute(
            _INSERT_ALERT.returning(ALERTS.c.id),
            {
                "kind": alert.kind,
                "level": alert.level.value,
                "message": alert.message,
                "details": alert.details,
                "at": alert.at,
            },
        )
        return int(result.scalar_one())

    def recent(self, limit: int = 100, unacknowledged: bool = False) -> list[Alert]:
        query = _UNACKNOWLEDGED_ALERTS if unacknowledged else _RECENT_ALERTS
        return [_alert_from_row(r) for r in self._conn.execute(query, {"b_limit": limit})]

    def acknowledge(self, alert_id: int, by: str, at: datetime) -> bool:
        result = self._conn.execute(_ACKNOWLEDGE_ALERT, {"b_id": alert_id, "b_by": by, "b_at": at})
        return bool(result.rowcount)
