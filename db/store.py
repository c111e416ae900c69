"""The SQL store: :class:`SqlStore` implements ``core.ports.Store`` on SQLite and PostgreSQL.

A unit of work is one connection and one transaction at a time::

    with store.unit_of_work() as uow:
        for signal in uow.signals.pending(100):
            ...
        uow.commit()          # leaving the block without commit() rolls back

After ``commit()`` the same unit of work can carry on with a new transaction.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, bindparam, select

from core.domain import utc, utcnow
from core.ports import PaperSnapshot
from core.vault import EncryptedSecret
from db.engine import SQLITE_BEGIN_OPTION
from db.prepared import PreparedStatement
from db.repositories._base import InsertBuilder, for_dialect
from db.repositories.journal import SqlJournalRepository
from db.repositories.operations import (
    SqlAlertRepository,
    SqlCommandRepository,
    SqlDecisionRepository,
    SqlLeaseRepository,
    SqlReconciliationRepository,
    SqlSettingsRepository,
)
from db.repositories.rebalance import SqlAlgoOrderRepository, SqlRebalanceRepository
from db.repositories.trading import (
    SqlFillRepository,
    SqlOrderRepository,
    SqlPositionRepository,
    SqlSignalRepository,
)
from db.repositories.users import SqlCredentialRepository, SqlUserRepository
from db.tables import PAPER_ACCOUNTS, PAPER_FILLS, PAPER_ORDERS

#: Seconds between ``PRAGMA optimize`` runs on SQLite (done with a checkpoint).
OPTIMIZE_EVERY_S = 600.0


class SqlUnitOfWork:
    """One connection, one transaction at a time, and every repository of the port.

    Writers' transactions on SQLite begin IMMEDIATE (see :mod:`db.engine`), so even a unit of
    work that only reads holds the write lock while its transaction is open. ``read_only=True``
    is for views (the dashboard): on SQLite its transactions begin DEFERRED and never wait for
    or block the executor (nothing stops a write there, which would then risk ``SQLITE_BUSY``);
    on PostgreSQL they are ``READ ONLY`` transactions and writes fail.
    """

    def __init__(self, engine: Engine, *, read_only: bool = False) -> None:
        self._engine = engine
        self._read_only = read_only
        self._connection: Connection | None = None
        self.signals = SqlSignalRepository(self)
        self.orders = SqlOrderRepository(self)
        self.fills = SqlFillRepository(self)
        self.positions = SqlPositionRepository(self)
        self.journal = SqlJournalRepository(self)
        self.commands = SqlCommandRepository(self)
        self.settings = SqlSettingsRepository(self)
        self.lease = SqlLeaseRepository(self)
        self.reconciliation = SqlReconciliationRepository(self)
        self.decisions = SqlDecisionRepository(self)
        self.alerts = SqlAlertRepository(self)
        self.rebalance = SqlRebalanceRepository(self)
        self.algos = SqlAlgoOrderRepository(self)
        self.users = SqlUserRepository(self)
        self.credentials = SqlCredentialRepository(self)

    @property
    def connection(self) -> Connection:
        """The open connection (only inside the ``with`` block)."""
        if self._connection is None:
            raise RuntimeError("unit of work is not open: use it in a 'with' block")
        return self._connection

    def __enter__(self) -> SqlUnitOfWork:
        if self._connection is not None:
            raise RuntimeError("unit of work is already open")
        connection = self._engine.connect()
        if self._read_only:
            connection.execution_options(
                **{SQLITE_BEGIN_OPTION: "DEFERRED", "postgresql_readonly": True}
            )
        self._connection = connection
        return self

    def __exit__(self, *exc: object) -> None:
        connection, self._connection = self._connection, None
        if connection is None:
            return
        try:
            if connection.in_transaction():
                connection.rollback()
        finally:
            connection.close()

    def commit(self) -> None:
        """Make everything since the last commit durable; the unit of work stays usable."""
        self.connection.commit()

    def rollback(self) -> None:
        """Discard everything since the last commit."""
        self.connection.rollback()


class SqlStore:
    """``core.ports.Store`` on a SQLAlchemy engine (see :func:`db.engine.open_store`)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._optimized_at = float("-inf")

    def unit_of_work(self, *, read_only: bool = False) -> SqlUnitOfWork:
        """A new unit of work; use it as a context manager."""
        return SqlUnitOfWork(self.engine, read_only=read_only)

    def paper_ledger(self, account: str) -> SqlPaperLedger:
        """The persisted books of paper account ``account``."""
        return SqlPaperLedger(self.engine, account)

    def checkpoint(self) -> None:
        """Copy the SQLite write-ahead log into the database file (PASSIVE: never waits for
        readers). Automatic checkpoints are off so that no commit pays for one; the executor
        calls this between ticks. A no-op on PostgreSQL."""
        if self.engine.dialect.name != "sqlite":
            return
        # Outside any transaction (a checkpoint cannot run inside one), on a pooled connection.
        raw = self.engine.raw_connection()
        try:
            cursor = raw.cursor()
            cursor.execute("PRAGMA wal_checkpoint(PASSIVE)")
            now = time.monotonic()
            if now - self._optimized_at >= OPTIMIZE_EVERY_S:
                # Refresh the query planner's statistics where they went stale (cheap when
                # nothing changed): without them SQLite may pick a poor index for the
                # dashboard's journal queries as the tables grow.
                self._optimized_at = now
                cursor.execute("PRAGMA optimize")
            cursor.close()
        finally:
            raw.close()

    def credential_store(self) -> SqlCredentialStore:
        """The vault's :class:`core.vault.CredentialStore` on the ``credentials`` table."""
        return SqlCredentialStore(self)

    def dispose(self) -> None:
        """Close the engine's pooled connections."""
        self.engine.dispose()


class SqlCredentialStore:
    """``core.vault.CredentialStore`` backed by the store: one committed transaction per call
    (``put_many`` writes a whole key rotation atomically)."""

    def __init__(self, store: SqlStore) -> None:
        self._store = store

    def get(self, name: str) -> EncryptedSecret | None:
        with self._store.unit_of_work(read_only=True) as uow:
            return uow.credentials.get(name)

    def put(self, name: str, secret: EncryptedSecret, by: str, at: datetime) -> None:
        self.put_many([(name, secret)], by, at)

    def put_many(
        self,
        items: Mapping[str, EncryptedSecret] | Iterable[tuple[str, EncryptedSecret]],
        by: str,
        at: datetime,
    ) -> None:
        with self._store.unit_of_work() as uow:
            uow.credentials.put_many(items, by, at)
            uow.commit()

    def names(self) -> list[str]:
        with self._store.unit_of_work(read_only=True) as uow:
            return uow.credentials.names()

    def delete(self, name: str) -> None:
        with self._store.unit_of_work() as uow:
            uow.credentials.delete(name)
            uow.commit()


# ---------------------------------------------------------------------------------------------
# Paper ledger
# ---------------------------------------------------------------------------------------------


_LOAD_PAPER_ACCOUNT = select(PAPER_ACCOUNTS.c.state).where(
    PAPER_ACCOUNTS.c.account == bindparam("b_account")
)
_LOAD_PAPER_ORDERS = (
    select(PAPER_ORDERS.c.data)
    .where(PAPER_ORDERS.c.account == bindparam("b_account"))
    .order_by(PAPER_ORDERS.c.updated_at, PAPER_ORDERS.c.client_order_id)
)
_LOAD_PAPER_FILLS = (
    select(PAPER_FILLS.c.data)
    .where(PAPER_FILLS.c.account == bindparam("b_account"))
    .order_by(PAPER_FILLS.c.at, PAPER_FILLS.c.fill_id)
)


def _upsert_paper_account(ins: InsertBuilder) -> Any:
    stmt = ins(PAPER_ACCOUNTS)
    return stmt.on_conflict_do_update(
        index_elements=[PAPER_ACCOUNTS.c.account],
        set_={"state": stmt.excluded.state, "updated_at": stmt.excluded.updated_at},
    )


def _upsert_paper_order(ins: InsertBuilder) -> Any:
    stmt = ins(PAPER_ORDERS)
    return stmt.on_conflict_do_update(
        index_elements=[PAPER_ORDERS.c.account, PAPER_ORDERS.c.client_order_id],
        set_={"data": stmt.excluded.data, "updated_at": stmt.excluded.updated_at},
    )


def _insert_paper_fill_once(ins: InsertBuilder) -> Any:
    return ins(PAPER_FILLS).on_conflict_do_nothing(
        index_elements=[PAPER_FILLS.c.account, PAPER_FILLS.c.fill_id]
    )


_UPSERT_PAPER_ACCOUNT = PreparedStatement(for_dialect(_upsert_paper_account))
_UPSERT_PAPER_ORDER = PreparedStatement(for_dialect(_upsert_paper_order))
_INSERT_PAPER_FILL_ONCE = PreparedStatement(for_dialect(_insert_paper_fill_once))


def _fill_time(data: dict[str, Any], default: datetime) -> datetime:
    at = data.get("at")
    if isinstance(at, datetime):
        return utc(at)
    if isinstance(at, str):
        try:
            return utc(datetime.fromisoformat(at))
        except ValueError:
            return default
    return default


class SqlPaperLedger:
    """``core.ports.PaperLedger``: one paper account's state, orders and fills as JSON documents.

    Each :meth:`save` is its own short transaction. Decimals in the documents come back as
    strings and datetimes as ISO-8601 strings (see :class:`db.types.JSONDoc`).
    """

    def __init__(self, engine: Engine, account: str) -> None:
        self._engine = engine
        self.account = account

    def load(self) -> PaperSnapshot:
        """Everything persisted: orders by last update, fills in execution order."""
        with self._engine.connect() as conn:
            conn.execution_options(**{SQLITE_BEGIN_OPTION: "DEFERRED"})
            params = {"b_account": self.account}
            state = conn.execute(_LOAD_PAPER_ACCOUNT, params).scalar_one_or_none()
            order_docs = [dict(d) for d in conn.execute(_LOAD_PAPER_ORDERS, params).scalars()]
            fill_docs = [dict(d) for d in conn.execute(_LOAD_PAPER_FILLS, params).scalars()]
        return PaperSnapshot(
            account=None if state is None else dict(state), orders=order_docs, fills=fill_docs
        )

    def save(
        self,
        account: dict[str, Any] | None = None,
        orders: Sequence[dict[str, Any]] = (),
        fills: Sequence[dict[str, Any]] = (),
    ) -> None:
        """Atomically write the account state, upsert ``orders`` (by ``client_order_id``) and
        insert ``fills`` (by ``fill_id``; a fill already stored is left as it is)."""
        now = utcnow()
        with self._engine.begin() as conn:
            if account is not None:
                _UPSERT_PAPER_ACCOUNT.execute(
                    conn, {"account": self.account, "state": account, "updated_at": now}
                )
            if orders:
                _UPSERT_PAPER_ORDER.executemany(
                    conn,
                    [
                        {
                            "account": self.account,
                            "client_order_id": str(o["client_order_id"]),
                            "data": o,
                            "updated_at": now,
                        }
                        for o in orders
                    ],
                )
            if fills:
                _INSERT_PAPER_FILL_ONCE.executemany(
                    conn,
                    [
                        {
                            "account": self.account,
                            "fill_id": str(f["fill_id"]),
                            "data": f,
                            "at": _fill_time(f, now),
                        }
                        for f in fills
                    ],
                )
