"""Shared plumbing for the repositories: the unit of work's connection and dialect inserts."""

from __future__ import annotations

from collections.abc import Callable
from enum import Enum
from typing import Any, Protocol

from sqlalchemy import Connection, Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect


class ConnectionSource(Protocol):
    """What a repository needs from its unit of work: the open connection."""

    @property
    def connection(self) -> Connection: ...


class Repository:
    """Base class: every statement runs on the unit of work's one connection."""

    __slots__ = ("_uow",)

    def __init__(self, uow: ConnectionSource) -> None:
        self._uow = uow

    @property
    def _conn(self) -> Connection:
        return self._uow.connection


InsertBuilder = Callable[[Table], Any]


def for_dialect(build: Callable[[InsertBuilder], Any]) -> Callable[[Dialect], Any]:
    """Adapt a function building an ``INSERT ... ON CONFLICT`` statement from a dialect's
    ``insert`` into a :class:`db.prepared.PreparedStatement` source.

    SQLite and PostgreSQL spell ``ON CONFLICT`` the same way, but SQLAlchemy exposes it through
    each dialect's own ``insert`` construct.
    """

    def source(dialect: Dialect) -> Any:
        return build(_dialect_insert(dialect.name))

    return source


def _dialect_insert(dialect: str) -> InsertBuilder:
    if dialect == "postgresql":
        return postgresql.insert
    if dialect == "sqlite":
        return sqlite.insert
    raise ValueError(f"the store supports sqlite and postgresql, not {dialect!r}")


def enum_value(value: Any) -> str:
    """The stored text of an enum member (or of a plain string standing in for one)."""
    return value.value if isinstance(value, Enum) else str(value)


def optional_enum(value: Any) -> str | None:
    return None if value is None else enum_value(value)
