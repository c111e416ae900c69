"""What the Settings page reads: reconciliation differences (and which were resolved), the
versioned run-time settings with their history, and the command audit trail.

Each call is one read-only unit of work; filters, limits and the "resolved by" lookup run in
SQL. DataFrames come back with tz-aware UTC timestamps (the page converts them for display).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import pandas as pd
from sqlalchemy import case, func, select

from core.ports import SettingValue
from core.reconcile import (
    ORPHAN_CANCELLED,
    POSITION_ADOPTED,
    POSITION_MISMATCH,
    RESOLVES,
    UNKNOWN_AT_BROKER,
)
from db.tables import COMMANDS, RECONCILIATION, SETTINGS

if TYPE_CHECKING:
    from db.store import SqlStore

#: Columns of :meth:`SettingsQueries.reconciliation`.
DIFF_COLUMNS = ["id", "at", "kind", "key", "ours", "theirs", "broker", "status", "resolved_by"]
#: Columns of :meth:`SettingsQueries.commands`.
COMMAND_COLUMNS = [
    "id",
    "created_at",
    "created_by",
    "type",
    "payload",
    "status",
    "applied_at",
    "result",
]
#: Columns of :meth:`SettingsQueries.settings` and :meth:`SettingsQueries.history`.
SETTING_COLUMNS = ["key", "value", "version", "updated_by", "updated_at"]

_RESOLVED_BY_KIND = {kind: resolution for resolution, kind in RESOLVES.items()}


@dataclass(frozen=True, slots=True)
class OpenDiff:
    """The newest unresolved difference of one key (a symbol or a client order id)."""

    id: int
    kind: str
    key: str
    ours: str | None
    theirs: str | None
    broker: str
    at: datetime

    @property
    def label(self) -> str:
        ours = "none" if self.ours is None else self.ours
        theirs = "none" if self.theirs is None else self.theirs
        if self.kind == POSITION_MISMATCH:
            return f"{self.key}: ours {ours}, {self.broker} {theirs}"
        return f"{self.key} ({self.broker}: {theirs})"


def _compact(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(", ", ": "), default=str)


def _diffs_with_resolution():
    """Every difference row with the id of the later row that resolved it (or NULL)."""
    later = RECONCILIATION.alias("later")
    resolving_kind = case(_RESOLVED_BY_KIND, value=RECONCILIATION.c.kind, else_=None)
    resolved_by = (
        select(func.min(later.c.id))
        .where(
            later.c.key == RECONCILIATION.c.key,
            later.c.kind == resolving_kind,
            later.c.id > RECONCILIATION.c.id,
        )
        .scalar_subquery()
        .label("resolved_by")
    )
    return select(RECONCILIATION, resolved_by)


class SettingsQueries:
    """Read views of the Settings page over one store."""

    def __init__(self, store: SqlStore) -> None:
        self.store = store

    # ------------------------------------------------------------------ reconciliation
    def reconciliation(self, limit: int = 200) -> pd.DataFrame:
        """Recent differences, newest first. ``status``: ``open``; ``resolved`` (``resolved_by``
        is the id of the row that resolved it); ``resolution`` for the rows that record a
        person's resolution (``position_adopted``, ``orphan_cancelled``)."""
        stmt = _diffs_with_resolution().order_by(RECONCILIATION.c.id.desc()).limit(limit)
        with self.store.unit_of_work(read_only=True) as uow:
            rows = [dict(r._mapping) for r in uow.connection.execute(stmt)]
        for row in rows:
            if row["kind"] in RESOLVES:
                row["status"] = "resolution"
            elif row["resolved_by"] is not None:
                row["status"] = "resolved"
            else:
                row["status"] = "open"
        return pd.DataFrame(rows, columns=DIFF_COLUMNS).astype({"resolved_by": "Int64"})

    def _open(self, kind: str, limit: int) -> list[OpenDiff]:
        inner = _diffs_with_resolution().where(RECONCILIATION.c.kind == kind).subquery()
        stmt = (
            select(inner)
            .where(inner.c.resolved_by.is_(None))
            .order_by(inner.c.id.desc())
            .limit(limit)
        )
        with self.store.unit_of_work(read_only=True) as uow:
            rows = [r._mapping for r in uow.connection.execute(stmt)]
        found: dict[str, OpenDiff] = {}
        for m in rows:
            if m["key"] not in found:  # the newest difference of each key
                found[m["key"]] = OpenDiff(
                    m["id"], m["kind"], m["key"], m["ours"], m["theirs"], m["broker"], m["at"]
                )
        return list(found.values())

    def open_position_mismatches(self, limit: int = 500) -> list[OpenDiff]:
        """Symbols whose quantity differs between store and broker and nobody adopted since."""
        return self._open(POSITION_MISMATCH, limit)

    def open_orphan_orders(self, limit: int = 500) -> list[OpenDiff]:
        """Orders the broker reported that the store does not know, not cancelled since."""
        return self._open(UNKNOWN_AT_BROKER, limit)

    # ------------------------------------------------------------------ settings
    def current(self, keys: Sequence[str] | None = None) -> dict[str, SettingValue]:
        """The latest version of each key (of ``keys``, or of every key stored)."""
        latest = select(SETTINGS.c.key, func.max(SETTINGS.c.version).label("version"))
        if keys is not None:
            if not keys:
                return {}
            latest = latest.where(SETTINGS.c.key.in_(list(keys)))
        sub = latest.group_by(SETTINGS.c.key).subquery()
        stmt = (
            select(SETTINGS)
            .join(sub, (SETTINGS.c.key == sub.c.key) & (SETTINGS.c.version == sub.c.version))
            .order_by(SETTINGS.c.key)
        )
        with self.store.unit_of_work(read_only=True) as uow:
            rows = [r._mapping for r in uow.connection.execute(stmt)]
        return {
            m["key"]: SettingValue(
                m["key"], m["value"], m["version"], m["updated_by"], m["updated_at"]
            )
            for m in rows
        }

    def settings(self, keys: Sequence[str] | None = None) -> pd.DataFrame:
        """The current value of every stored setting (or of ``keys``), by key."""
        rows = [
            {
                "key": s.key,
                "value": _compact(s.value),
                "version": s.version,
                "updated_by": s.updated_by,
                "updated_at": s.updated_at,
            }
            for s in self.current(keys).values()
        ]
        return pd.DataFrame(rows, columns=SETTING_COLUMNS)

    def history(self, keys: Sequence[str] | None = None, limit: int = 100) -> pd.DataFrame:
        """Setting changes, newest first (of ``keys``, or of every key)."""
        stmt = select(SETTINGS)
        if keys is not None:
            stmt = stmt.where(SETTINGS.c.key.in_(list(keys)))
        stmt = stmt.order_by(SETTINGS.c.updated_at.desc(), SETTINGS.c.version.desc()).limit(limit)
        with self.store.unit_of_work(read_only=True) as uow:
            rows = [dict(r._mapping) for r in uow.connection.execute(stmt)]
        for row in rows:
            row["value"] = _compact(row["value"])
        return pd.DataFrame(rows, columns=SETTING_COLUMNS)

    # ------------------------------------------------------------------ command audit
    def commands(
        self,
        limit: int = 100,
        *,
        types: Sequence[str] | None = None,
        created_by: str | None = None,
        status: str | None = None,
    ) -> pd.DataFrame:
        """Recent commands, newest first: who, what (type and payload), when, status, result."""
        stmt = select(COMMANDS)
        if types:
            stmt = stmt.where(COMMANDS.c.type.in_(list(types)))
        if created_by:
            stmt = stmt.where(COMMANDS.c.created_by == created_by)
        if status:
            stmt = stmt.where(COMMANDS.c.status == status)
        stmt = stmt.order_by(COMMANDS.c.id.desc()).limit(limit)
        with self.store.unit_of_work(read_only=True) as uow:
            rows = [dict(r._mapping) for r in uow.connection.execute(stmt)]
        for row in rows:
            row["payload"] = _compact(row["payload"])
        return pd.DataFrame(rows, columns=COMMAND_COLUMNS)

    def command_authors(self) -> list[str]:
        """Everyone who has given a command, by name."""
        stmt = select(COMMANDS.c.created_by).distinct().order_by(COMMANDS.c.created_by)
        with self.store.unit_of_work(read_only=True) as uow:
            return [str(v) for v in uow.connection.execute(stmt).scalars()]


__all__ = [
    "COMMAND_COLUMNS",
    "DIFF_COLUMNS",
    "ORPHAN_CANCELLED",
    "POSITION_ADOPTED",
    "SETTING_COLUMNS",
    "OpenDiff",
    "SettingsQueries",
]
