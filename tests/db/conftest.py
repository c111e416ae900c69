"""Store fixtures: every test taking ``db_url``/``engine``/``store`` runs on SQLite and PostgreSQL.

PostgreSQL runs need ``AXION_TEST_POSTGRES_URL`` (for example
``postgresql://postgres@127.0.0.1:5432/test``); each test gets a fresh schema, dropped afterwards.
Without the variable the PostgreSQL runs are skipped, except in CI (``CI=true``) where they fail.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, text

from db.engine import make_engine, migrate
from db.store import SqlStore

POSTGRES_ENV = "AXION_TEST_POSTGRES_URL"


@dataclass(frozen=True)
class TestDatabase:
    """Where a test's database lives and how to connect to it."""

    __test__ = False  # not a test class, despite the name

    backend: str
    url: str
    engine_kwargs: dict[str, Any] = field(default_factory=dict)

    def make_engine(self, **kwargs: Any) -> Engine:
        return make_engine(self.url, **{**self.engine_kwargs, **kwargs})


def postgres_url_or_skip() -> str:
    url = os.environ.get(POSTGRES_ENV)
    if url:
        return url
    if os.environ.get("CI") == "true":
        pytest.fail(f"{POSTGRES_ENV} must be set in CI: the PostgreSQL store tests are required")
    pytest.skip(f"{POSTGRES_ENV} is not set: PostgreSQL store tests not requested")


@pytest.fixture
def sqlite_database(tmp_path: Path) -> TestDatabase:
    return TestDatabase("sqlite", f"sqlite:///{tmp_path / 'store' / 'axion.db'}")


@pytest.fixture
def postgres_database() -> Iterator[TestDatabase]:
    base = postgres_url_or_skip()
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = make_engine(base, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        yield TestDatabase(
            "postgres", base, {"connect_args": {"options": f"-csearch_path={schema}"}}
        )
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database(request: pytest.FixtureRequest) -> TestDatabase:
    return request.getfixturevalue(f"{request.param}_database")


@pytest.fixture
def db_url(database: TestDatabase) -> str:
    """The database URL (SQLite temp file or PostgreSQL); see ``database.engine_kwargs``."""
    return database.url


@pytest.fixture
def engine(database: TestDatabase) -> Iterator[Engine]:
    """An engine on an empty database (no schema yet)."""
    eng = database.make_engine()
    try:
        yield eng
    finally:
        eng.dispose()


@pytest.fixture
def store(engine: Engine) -> SqlStore:
    """A migrated store."""
    migrate(engine)
    return SqlStore(engine)
