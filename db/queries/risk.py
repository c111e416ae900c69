"""The Risk Dashboard's read views: exposure of the open positions, concurrent positions, realized
P&L by day and by minute, the executor's daily P&L rows, and the kill switch's history.

Sums of money are taken in SQL over micro-dollars held in 64-bit integers
(``CAST(ROUND(pnl * 1000000) AS BIGINT)``): money columns are TEXT on SQLite (see
:class:`db.types.ExactDecimal`), where a plain ``SUM`` would add floats. The integer sum is exact
on both engines, and comes back as a :class:`~decimal.Decimal` to the micro-dollar. Day and minute
buckets are UTC, as the journal's sessions are (:func:`core.journal.queries.session_span`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import pandas as pd
from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Connection,
    case,
    cast,
    desc,
    false,
    func,
    literal_column,
    select,
)

from core.domain import CommandType, InstrumentType, OrderStatus, TradeStatus
from core.instruments.sector_map import sector_of as shipped_sector_of
from core.risk.model import contract_multiplier
from core.settings_keys import KILL_SWITCH_KEY
from db.tables import COMMANDS, DAILY_PNL, ORDERS, POSITIONS, SETTINGS, TRADES

if TYPE_CHECKING:
    from db.store import SqlStore

#: Sector shown for symbols in no sector map (the risk gate holds them to no sector limit).
UNCLASSIFIED = "unclassified"

_MICROS = 1_000_000
_OPEN_ORDER_STATUSES = [s.value for s in OrderStatus if s.is_open]
_KILL_SWITCH_COMMANDS = [CommandType.KILL_SWITCH_ON.value, CommandType.KILL_SWITCH_OFF.value]

EXPOSURE_COLUMNS = [
    "symbol",
    "sector",
    "instrument_type",
    "qty",
    "avg_entry_price",
    "price",
    "market_value",
    "gross_value",
    "unrealized_pnl",
]
REALIZED_DAY_COLUMNS = ["day", "trades", "wins", "losses", "realized"]
REALIZED_MINUTE_COLUMNS = ["at", "trades", "realized"]
DAILY_PNL_COLUMNS = [
    "day",
    "starting_equity",
    "ending_equity",
    "realized",
    "unrealized",
    "equity_change",
    "trades",
    "max_drawdown",
    "kill_switch_triggered",
]
KILL_SWITCH_HISTORY_COLUMNS = ["version", "at", "active", "reason", "by", "recorded_by"]
KILL_SWITCH_COMMAND_COLUMNS = [
    "id",
    "type",
    "reason",
    "created_by",
    "created_at",
    "status",
    "result",
    "applied_at",
]


@dataclass(frozen=True, slots=True)
class RealizedPnl:
    """Realized P&L of closed trades by day (:data:`REALIZED_DAY_COLUMNS`) and, for the latest
    part, by minute (:data:`REALIZED_MINUTE_COLUMNS`)."""

    by_day: pd.DataFrame
    by_minute: pd.DataFrame


@dataclass(frozen=True, slots=True)
class ConcurrentPositions:
    """What counts against ``max_concurrent_positions``, as the risk gate counts it: symbols held,
    and symbols with a working entry order that are not held yet."""

    held: tuple[str, ...]
    pending: tuple[str, ...]

    @property
    def count(self) -> int:
        return len(self.held) + len(self.pending)


def _micros(column: Any) -> ColumnElement[Any]:
    """A money column as whole micro-dollars (an exact integer to sum)."""
    return cast(func.round(column * literal_column(str(_MICROS))), BigInteger)


def _money(value: Any) -> Decimal:
    """A summed micro-dollar figure back to dollars."""
    return Decimal(int(value or 0)).scaleb(-6)


def _utc_text(column: Any, dialect: str, length: int) -> ColumnElement[Any]:
    """The first ``length`` characters of a UTC timestamp as ``YYYY-MM-DD HH:MM:SS``: 10 is the
    day, 16 the minute. SQLite stores that text already; PostgreSQL formats it."""
    # Constants as literals, not bound parameters: PostgreSQL matches a GROUP BY expression to
    # the selected one only when both are spelled the same, and two parameters never are.
    one, n = literal_column("1"), literal_column(str(length))
    if dialect == "sqlite":
        return func.substr(column, one, n)
    utc_time = func.timezone(literal_column("'UTC'"), column)
    return func.substr(func.to_char(utc_time, literal_column("'YYYY-MM-DD HH24:MI:SS'")), one, n)


def _frame(rows: Sequence[dict[str, Any]], columns: list[str]) -> pd.DataFrame:
    return pd.DataFrame(list(rows), columns=columns)


class RiskQueries:
    """Read views of one store for the Risk Dashboard; each call is one read-only unit of work."""

    def __init__(
        self, store: SqlStore, sector_of: Callable[[str], str | None] | None = None
    ) -> None:
        self.store = store
        self._sector_of = sector_of or _shipped_sector

    @property
    def _dialect(self) -> str:
        return self.store.engine.dialect.name

    # ------------------------------------------------------------------ positions
    def exposure(self) -> pd.DataFrame:
        """One row per open position, largest gross value first (:data:`EXPOSURE_COLUMNS`).

        ``price`` is the last mark stored on the position (its entry price before the first
        mark); ``market_value`` is signed (negative short) and counts an option's contract
        multiplier; ``gross_value`` is its absolute value. Money is Decimal.
        """
        stmt = select(
            POSITIONS.c.symbol,
            POSITIONS.c.qty,
            POSITIONS.c.avg_entry_price,
            POSITIONS.c.current_price,
            POSITIONS.c.instrument_type,
        ).order_by(POSITIONS.c.symbol)
        with self.store.unit_of_work(read_only=True) as uow:
            rows = uow.connection.execute(stmt).all()
        out: list[dict[str, Any]] = []
        for symbol, qty, avg, current, kind in rows:
            if qty == 0:
                continue
            multiplier = contract_multiplier(_instrument(kind))
            price = current if current is not None else avg
            value = qty * price * multiplier
            unrealized = (current - avg) * qty * multiplier if current is not None else Decimal(0)
            out.append(
                {
                    "symbol": symbol,
                    "sector": self._sector_of(symbol) or UNCLASSIFIED,
                    "instrument_type": kind,
                    "qty": qty,
                    "avg_entry_price": avg,
                    "price": price,
                    "market_value": value,
                    "gross_value": abs(value),
                    "unrealized_pnl": unrealized,
                }
            )
        out.sort(key=lambda r: (-r["gross_value"], r["symbol"]))
        return _frame(out, EXPOSURE_COLUMNS)

    def concurrent_positions(self) -> ConcurrentPositions:
        """Symbols held and symbols with a working (open, not reduce-only) entry order."""
        working = (
            select(ORDERS.c.symbol)
            .where(ORDERS.c.status.in_(_OPEN_ORDER_STATUSES), ORDERS.c.reduce_only == false())
            .distinct()
        )
        with self.store.unit_of_work(read_only=True) as uow:
            conn = uow.connection
            held_rows = conn.execute(select(POSITIONS.c.symbol, POSITIONS.c.qty)).all()
            working_symbols = set(conn.execute(working).scalars())
        held = sorted(symbol for symbol, qty in held_rows if qty != 0)
        pending = sorted(working_symbols.difference(held))
        return ConcurrentPositions(tuple(held), tuple(pending))

    # ------------------------------------------------------------------ realized P&L
    def realized_by_day(self, since: date | None = None, until: date | None = None) -> pd.DataFrame:
        """Closed trades by UTC day of their exit, oldest first (:data:`REALIZED_DAY_COLUMNS`):
        how many, how many won and lost, and their realized P&L (Decimal); ``since`` and
        ``until`` are inclusive days."""
        with self.store.unit_of_work(read_only=True) as uow:
            rows = self._buckets(uow.connection, since=since, until=until)
        return _frame([_day_row(*r) for r in rows], REALIZED_DAY_COLUMNS)

    def realized_by_minute(self, start: datetime, end: datetime | None = None) -> pd.DataFrame:
        """Trades closed in ``[start, end)`` by UTC minute of their exit, oldest first
        (:data:`REALIZED_MINUTE_COLUMNS`; ``at`` is the minute, an aware UTC datetime)."""
        with self.store.unit_of_work(read_only=True) as uow:
            rows = self._buckets(uow.connection, start=start, end=end, minutes_from=start)
        return _frame([_minute_row(*r) for r in rows], REALIZED_MINUTE_COLUMNS)

    def realized(self, since: date, minutes_from: datetime) -> RealizedPnl:
        """Both curves in one pass over the journal: trades closed from day ``since`` on by day
        (the days of ``minutes_from`` and later included), and those closed at or after
        ``minutes_from`` by minute too. One scan instead of two: ``trade_executions`` has no
        index on ``exit_time``, so each of these reads the whole table."""
        with self.store.unit_of_work(read_only=True) as uow:
            rows = self._buckets(uow.connection, since=since, minutes_from=minutes_from)
        days: dict[date, dict[str, Any]] = {}
        minutes: list[dict[str, Any]] = []
        for bucket, n, wins, losses, total in rows:
            if len(bucket) > 10:
                minutes.append(_minute_row(bucket, n, wins, losses, total))
            row = _day_row(bucket[:10], n, wins, losses, total)
            same = days.get(row["day"])
            if same is None:
                days[row["day"]] = row
            else:
                for name in ("trades", "wins", "losses", "realized"):
                    same[name] += row[name]
        by_day = _frame([days[d] for d in sorted(days)], REALIZED_DAY_COLUMNS)
        return RealizedPnl(by_day, _frame(minutes, REALIZED_MINUTE_COLUMNS))

    def _buckets(
        self,
        conn: Connection,
        *,
        since: date | None = None,
        until: date | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
        minutes_from: datetime | None = None,
    ) -> list[tuple[str, int, int, int, Any]]:
        """(bucket, trades, wins, losses, realized micro-dollars) of closed trades by UTC day
        (``YYYY-MM-DD``), or by minute (``YYYY-MM-DD HH:MM``) from ``minutes_from`` on."""
        exit_time = TRADES.c.exit_time
        day = _utc_text(exit_time, self._dialect, 10)
        if minutes_from is None:
            bucket: ColumnElement[Any] = day
        else:
            minute = _utc_text(exit_time, self._dialect, 16)
            bucket = case((exit_time >= minutes_from, minute), else_=day)
        pnl = _micros(TRADES.c.pnl)
        # Grouped by the output name: PostgreSQL would not match a repeated expression that
        # holds a bound parameter (the CASE above) to the selected one.
        name = literal_column("bucket")
        stmt = (
            select(
                bucket.label("bucket"),
                func.count(),
                func.sum(case((pnl > 0, 1), else_=0)),
                func.sum(case((pnl < 0, 1), else_=0)),
                func.sum(pnl),
            )
            .where(TRADES.c.status == TradeStatus.CLOSED.value, exit_time.is_not(None))
            .group_by(name)
            .order_by(name)
        )
        if since is not None:
            stmt = stmt.where(exit_time >= _midnight(since))
        if until is not None:
            stmt = stmt.where(exit_time < _midnight(until, next_day=True))
        if start is not None:
            stmt = stmt.where(exit_time >= start)
        if end is not None:
            stmt = stmt.where(exit_time < end)
        return [(r[0], r[1], r[2], r[3], r[4]) for r in conn.execute(stmt)]

    # ------------------------------------------------------------------ daily rows
    def daily_pnl(self, days: int = 365) -> pd.DataFrame:
        """The executor's daily P&L rows of the latest ``days`` sessions, oldest first
        (:data:`DAILY_PNL_COLUMNS`); ``equity_change`` is ending minus starting equity."""
        stmt = (
            select(
                DAILY_PNL.c.date,
                DAILY_PNL.c.starting_equity,
                DAILY_PNL.c.ending_equity,
                DAILY_PNL.c.realized_pnl,
                DAILY_PNL.c.unrealized_pnl,
                DAILY_PNL.c.total_trades,
                DAILY_PNL.c.max_drawdown,
                DAILY_PNL.c.kill_switch_triggered,
            )
            .order_by(DAILY_PNL.c.date.desc())
            .limit(days)
        )
        with self.store.unit_of_work(read_only=True) as uow:
            rows = uow.connection.execute(stmt).all()
        return _frame(
            [
                {
                    "day": d,
                    "starting_equity": start,
                    "ending_equity": end,
                    "realized": realized,
                    "unrealized": unrealized,
                    "equity_change": end - start,
                    "trades": int(trades),
                    "max_drawdown": dd,
                    "kill_switch_triggered": bool(ks),
                }
                for d, start, end, realized, unrealized, trades, dd, ks in reversed(rows)
            ],
            DAILY_PNL_COLUMNS,
        )

    # ------------------------------------------------------------------ kill switch
    def kill_switch_history(self, limit: int = 20) -> pd.DataFrame:
        """The kill switch's latest state changes, newest first
        (:data:`KILL_SWITCH_HISTORY_COLUMNS`): each stored version of the ``kill_switch``
        setting, the engine's own trips included. ``reason`` is the trigger of an activation or
        the reason given for a release."""
        stmt = (
            select(
                SETTINGS.c.version, SETTINGS.c.value, SETTINGS.c.updated_by, SETTINGS.c.updated_at
            )
            .where(SETTINGS.c.key == KILL_SWITCH_KEY)
            .order_by(SETTINGS.c.version.desc())
            .limit(limit)
        )
        with self.store.unit_of_work(read_only=True) as uow:
            rows = uow.connection.execute(stmt).all()
        out: list[dict[str, Any]] = []
        for version, value, updated_by, updated_at in rows:
            v = value if isinstance(value, dict) else {}
            at = v.get("at")
            out.append(
                {
                    "version": int(version),
                    "at": datetime.fromisoformat(at) if isinstance(at, str) else updated_at,
                    "active": bool(v.get("active")),
                    "reason": v.get("reason"),
                    "by": v.get("by") or updated_by,
                    "recorded_by": updated_by,
                }
            )
        return _frame(out, KILL_SWITCH_HISTORY_COLUMNS)

    def kill_switch_commands(self, limit: int = 20) -> pd.DataFrame:
        """The latest kill-switch commands, newest first (:data:`KILL_SWITCH_COMMAND_COLUMNS`):
        who asked, why, and what the executor made of it (the audit trail)."""
        stmt = (
            select(
                COMMANDS.c.id,
                COMMANDS.c.type,
                COMMANDS.c.payload,
                COMMANDS.c.created_by,
                COMMANDS.c.created_at,
                COMMANDS.c.status,
                COMMANDS.c.result,
                COMMANDS.c.applied_at,
            )
            .where(COMMANDS.c.type.in_(_KILL_SWITCH_COMMANDS))
            .order_by(desc(COMMANDS.c.id))
            .limit(limit)
        )
        with self.store.unit_of_work(read_only=True) as uow:
            rows = uow.connection.execute(stmt).all()
        return _frame(
            [
                {
                    "id": int(cid),
                    "type": kind,
                    "reason": (payload or {}).get("reason"),
                    "created_by": by,
                    "created_at": created,
                    "status": status,
                    "result": result,
                    "applied_at": applied,
                }
                for cid, kind, payload, by, created, status, result, applied in rows
            ],
            KILL_SWITCH_COMMAND_COLUMNS,
        )


def _day_row(bucket: str, n: int, wins: int, losses: int, total: Any) -> dict[str, Any]:
    return {
        "day": date.fromisoformat(bucket[:10]),
        "trades": int(n),
        "wins": int(wins or 0),
        "losses": int(losses or 0),
        "realized": _money(total),
    }


def _minute_row(bucket: str, n: int, _wins: int, _losses: int, total: Any) -> dict[str, Any]:
    return {
        "at": datetime.fromisoformat(bucket).replace(tzinfo=UTC),
        "trades": int(n),
        "realized": _money(total),
    }


def _shipped_sector(symbol: str) -> str | None:
    sector = shipped_sector_of(symbol)
    return None if sector is None else sector.value


def _instrument(kind: str) -> InstrumentType:
    try:
        return InstrumentType(kind)
    except ValueError:
        return InstrumentType.STOCK


def _midnight(day: date, *, next_day: bool = False) -> datetime:
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    return start + timedelta(days=1) if next_day else start


__all__ = [
    "DAILY_PNL_COLUMNS",
    "EXPOSURE_COLUMNS",
    "KILL_SWITCH_COMMAND_COLUMNS",
    "KILL_SWITCH_HISTORY_COLUMNS",
    "REALIZED_DAY_COLUMNS",
    "REALIZED_MINUTE_COLUMNS",
    "UNCLASSIFIED",
    "ConcurrentPositions",
    "RealizedPnl",
    "RiskQueries",
]
