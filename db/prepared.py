"""Core statements compiled once and executed with little per-call overhead.

``Connection.execute`` spends roughly 25-40 µs per statement on compilation-cache lookups and
parameter and result plumbing; SQLite itself needs a few µs for a one-row write. The executor
writes several rows per signal, so its hot-path writes go through :class:`PreparedStatement`: the
statement is built with SQLAlchemy Core and compiled by SQLAlchemy for the connection's dialect
once, the column types' bind processors are looked up once, and each call only binds values.

Execution: on PostgreSQL through :meth:`Connection.exec_driver_sql`, which keeps SQLAlchemy's
error wrapping and disconnect handling (a network round trip dwarfs the overhead anyway). On
SQLite the transaction is begun through SQLAlchemy (so the ``BEGIN IMMEDIATE`` hook runs and
commit/rollback stay SQLAlchemy's) and the statement goes straight to the driver's cursor, with
driver errors wrapped into SQLAlchemy's exception classes; with ``echo`` on, the logged
``exec_driver_sql`` path is used instead.

Only for plain DML: no expanding ``IN`` parameters, no literal execution, no RETURNING.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError, StatementError
from sqlalchemy.sql import ClauseElement

StatementSource = ClauseElement | Callable[[Dialect], ClauseElement]
_Plan = tuple[tuple[str, Callable[[Any], Any] | None], ...]
_ROWCOUNT = {"preserve_rowcount": True}


class _Compiled:
    __slots__ = ("plan", "positional", "sql")

    def __init__(self, statement: ClauseElement, dialect: Dialect, keys: Sequence[str]) -> None:
        compiled = statement.compile(dialect=dialect, column_keys=list(keys))
        self.sql: str = compiled.string
        self.positional: bool = bool(dialect.positional)
        names = compiled.positiontup if self.positional else list(compiled.binds)
        plan = []
        for name in names or ():
            bind = compiled.binds[name]
            plan.append((name, bind.type.dialect_impl(dialect).bind_processor(dialect)))
        self.plan: _Plan = tuple(plan)

    def bind(self, params: Mapping[str, Any]) -> Any:
        try:
            values = [
                params[name] if process is None else process(params[name])
                for name, process in self.plan
            ]
        except (TypeError, ValueError) as exc:
            raise StatementError(str(exc), self.sql, dict(params), exc) from exc
        if self.positional:
            return tuple(values)
        return dict(zip((name for name, _ in self.plan), values, strict=True))


class PreparedStatement:
    """A Core statement (or a per-dialect builder of one) compiled once per dialect and key set.

    Parameter dictionaries use the statement's bind names (column names for a bare ``insert``).
    """

    __slots__ = ("_cache", "_source")

    def __init__(self, source: StatementSource) -> None:
        self._source = source
        self._cache: dict[tuple[Any, ...], _Compiled] = {}

    def _compiled(self, dialect: Dialect, keys: tuple[str, ...]) -> _Compiled:
        cache_key = (dialect.name, dialect.paramstyle, dialect.server_version_info, keys)
        compiled = self._cache.get(cache_key)
        if compiled is None:
            source = self._source
            statement = source if isinstance(source, ClauseElement) else source(dialect)
            compiled = self._cache[cache_key] = _Compiled(statement, dialect, keys)
        return compiled

    def execute(self, conn: Connection, params: Mapping[str, Any]) -> int:
        """Run once with ``params``; returns the number of rows affected."""
        compiled = self._compiled(conn.dialect, tuple(params))
        return _run(conn, compiled.sql, compiled.bind(params), many=False)

    def executemany(self, conn: Connection, rows: Sequence[Mapping[str, Any]]) -> int:
        """Run once per row in a single DBAPI ``executemany``; every row needs the same keys.

        Returns the number of rows affected.
        """
        if not rows:
            return 0
        compiled = self._compiled(conn.dialect, tuple(rows[0]))
        return _run(conn, compiled.sql, [compiled.bind(row) for row in rows], many=True)


def _run(conn: Connection, sql: str, params: Any, *, many: bool) -> int:
    dialect = conn.dialect
    if dialect.name != "sqlite" or conn.engine.echo:
        result = conn.exec_driver_sql(sql, params, _ROWCOUNT)
        return int(result.rowcount)
    # SQLite runs in-process, so SQLAlchemy's per-call bookkeeping would cost more than the
    # statement itself (see the module docstring).
    if not conn.in_transaction():
        conn.begin()
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        if many:
            cursor.executemany(sql, params)
        else:
            cursor.execute(sql, params)
        return int(cursor.rowcount)
    except dialect.loaded_dbapi.Error as exc:
        raise DBAPIError.instance(
            sql, params, exc, dialect.loaded_dbapi.Error, dialect=dialect, ismulti=many
        ) from exc
    finally:
        cursor.close()
