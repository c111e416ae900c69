"""A yardstick for benchmarks: how fast can this database commit single-row inserts?

The pipeline benchmark prints this beside its own figure, so its result can be read as a ratio
to what the same database and disk manage at best for one-row transactions.
"""

from __future__ import annotations

import time
import uuid

from sqlalchemy import Column, Engine, Integer, MetaData, String, Table, insert


def raw_insert_rate(engine: Engine, n: int = 2000) -> float:
    """Insert ``n`` rows, one INSERT + COMMIT each, with plain SQLAlchemy Core; rows per second.

    The rows go into a scratch table created for the measurement and dropped afterwards. On
    SQLite engines from :func:`db.engine.make_engine` each transaction begins IMMEDIATE, as the
    store's own transactions do.
    """
    if n <= 0:
        raise ValueError("n must be positive")
    scratch = Table(
        f"bench_scratch_{uuid.uuid4().hex[:12]}",
        MetaData(),
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("payload", String(64), nullable=False),
    )
    with engine.begin() as conn:
        scratch.create(conn)
    try:
        stmt = insert(scratch)
        with engine.connect() as conn:
            # One warm-up row, so compiling the statement is not part of the measurement.
            conn.execute(stmt, {"payload": "warm-up"})
            conn.commit()
            started = time.perf_counter()
            for i in range(n):
                conn.execute(stmt, {"payload": f"row-{i}"})
                conn.commit()
            elapsed = time.perf_counter() - started
    finally:
        with engine.begin() as conn:
            scratch.drop(conn)
    return n / elapsed if elapsed > 0 else float("inf")
