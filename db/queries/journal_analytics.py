"""The Trade Journal's analytics: win rate by strategy, sector and regime, holding periods,
slippage, commission impact and turnover, each one SQL aggregate over the filter (see
:mod:`db.queries.journal_sql` for how money stays exact and what the filters cover). Ratios and
averages derived from the sums are Decimal divisions; bps and seconds that only feed charts are
floats.

:class:`db.queries.journal.JournalQueries` offers these with the journal's other views.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import pandas as pd
from sqlalchemy import case, func, select

from db.queries.journal_sql import (
    FILLS_WITH_ORDERS,
    ZERO,
    JournalFilter,
    JournalQueriesBase,
    as_frame,
    count_if,
    fill_where,
    rate,
    time_bounds,
    trade_where,
)
from db.tables import DAILY_PNL, FILLS, ORDERS, TRADES

_BPS = Decimal(10_000)
_BPS_QUANTUM = Decimal("0.01")

#: Holding-period buckets: (label, upper bound in seconds, exclusive); the last has none.
HOLDING_BUCKETS: tuple[tuple[str, int | None], ...] = (
    ("< 1h", 3_600),
    ("1-4h", 4 * 3_600),
    ("4h-1d", 86_400),
    ("1-2d", 2 * 86_400),
    ("2-5d", 5 * 86_400),
    ("5-10d", 10 * 86_400),
    ("10-20d", 20 * 86_400),
    ("20d+", None),
)
#: The keys :meth:`JournalQueries.win_rates` groups closed trades by.
WIN_RATE_KEYS = ("strategy", "sector", "regime")


def _day(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value))


def _bps(cost: Decimal, notional: Decimal) -> Decimal | None:
    if not notional:
        return None
    return (cost / notional * _BPS).quantize(_BPS_QUANTUM)


class JournalAnalytics(JournalQueriesBase):
    """The Trade Journal page's analytics; each call is one read-only unit of work, and all but
    turnover (which follows the daily equity) are cached per filter while the journal's version
    is unchanged."""

    def win_rates(self, f: JournalFilter) -> pd.DataFrame:
        """Closed trades matching ``f`` grouped by strategy, sector and regime.

        Columns: ``key`` (one of :data:`WIN_RATE_KEYS`), ``group`` (the value, ``None`` for
        trades without one), ``trades``, ``wins``, ``losses``, ``win_rate`` (Decimal, wins
        over trades), ``total_pnl`` and ``average_pnl`` (Decimal). Per key, the biggest
        groups first, trades without a value last.
        """
        return self._cached("win_rates", f, lambda conn: self._win_rates(conn, f))

    def _win_rates(self, conn: Any, f: JournalFilter) -> pd.DataFrame:
        sql, c = self._sql, TRADES.c
        keys, pnl = (c.strategy, c.sector, c.regime), sql.realized()
        # One pass grouped by all three keys; each key's groups are sums of these cells.
        stmt = (
            select(*keys, func.count(), count_if(pnl > 0), count_if(pnl < 0), sql.money_sum(pnl))
            .where(sql.closed(), *trade_where(f))
            .group_by(*keys)
        )
        cells = conn.execute(stmt).all()
        rows: list[dict[str, Any]] = []
        for i, key in enumerate(WIN_RATE_KEYS):
            groups: dict[str | None, list[Any]] = {}
            for cell in cells:
                acc = groups.setdefault(cell[i], [0, 0, 0, ZERO])
                acc[0] += int(cell[3])
                acc[1] += int(cell[4] or 0)
                acc[2] += int(cell[5] or 0)
                acc[3] += sql.money(cell[6])
            order = sorted(groups, key=lambda g: (g is None, -groups[g][0], g or ""))
            for group in order:
                n, wins, losses, total = groups[group]
                rows.append(
                    {
                        "key": key,
                        "group": group,
                        "trades": n,
                        "wins": wins,
                        "losses": losses,
                        "win_rate": rate(wins, n),
                        "total_pnl": total,
                        "average_pnl": total / n,
                    }
                )
        columns = ("key", "group", "trades", "wins", "losses", "win_rate", "total_pnl")
        return as_frame(rows, [*columns, "average_pnl"], ints=("trades", "wins", "losses"))

    def holding_periods(self, f: JournalFilter) -> pd.DataFrame:
        """Closed trades matching ``f`` by holding period (:data:`HOLDING_BUCKETS`, every
        bucket present, shortest first). Columns: ``bucket`` (label), ``trades``, ``wins``,
        ``losses``, ``total_pnl`` (Decimal) and ``average_seconds`` (float, ``None`` for an
        empty bucket)."""
        return self._cached("holding", f, lambda conn: self._holding_periods(conn, f))

    def _holding_periods(self, conn: Any, f: JournalFilter) -> pd.DataFrame:
        sql, c = self._sql, TRADES.c
        rows = sql.fenced(
            select(
                sql.seconds(c.entry_time, c.exit_time).label("seconds"),
                sql.realized().label("pnl"),
            ).where(sql.closed(), c.exit_time.is_not(None), *trade_where(f))
        )
        seconds, pnl = rows.c.seconds, rows.c.pnl
        bounds = [upper for _, upper in HOLDING_BUCKETS if upper is not None]
        bucket = case(
            *((seconds < upper, i) for i, upper in enumerate(bounds)), else_=len(bounds)
        ).label("bucket")
        stmt = select(
            bucket,
            func.count(),
            count_if(pnl > 0),
            count_if(pnl < 0),
            sql.money_sum(pnl),
            func.sum(seconds),
        ).group_by(bucket)
        found = {int(r[0]): r for r in conn.execute(stmt)}
        rows = []
        for i, (label, _) in enumerate(HOLDING_BUCKETS):
            r = found.get(i)
            n = int(r[1]) if r is not None else 0
            rows.append(
                {
                    "bucket": label,
                    "trades": n,
                    "wins": int(r[2] or 0) if r is not None else 0,
                    "losses": int(r[3] or 0) if r is not None else 0,
                    "total_pnl": sql.money(r[4]) if r is not None else ZERO,
                    "average_seconds": float(r[5]) / n if r is not None and n else None,
                }
            )
        columns = ("bucket", "trades", "wins", "losses", "total_pnl", "average_seconds")
        return as_frame(rows, columns, ints=("trades", "wins", "losses"))

    def slippage(self, f: JournalFilter) -> pd.DataFrame:
        """Fills with an expected (arrival) price in the execution scope of ``f``, by order
        type and side: ``fills``, ``expected_notional`` and ``actual_notional`` (expected
        and actual price times quantity), ``slippage_cost`` (what filling away from the
        expected price cost, negative when it improved), ``slippage_bps`` (cost over
        expected notional, 0.01 bps) and ``commission``; money as Decimals."""
        return self._cached("slippage", f.execution(), lambda conn: self._slippage(conn, f))

    def _slippage(self, conn: Any, f: JournalFilter) -> pd.DataFrame:
        sql, fl = self._sql, FILLS.c
        qty, price, expected = sql.num(fl.qty), sql.num(fl.price), sql.num(fl.expected_price)
        sign = case((fl.side == "sell", -1), else_=1)
        stmt = (
            select(
                ORDERS.c.order_type,
                fl.side,
                func.count(),
                sql.money_sum(expected * qty),
                sql.money_sum(price * qty),
                sql.money_sum((price - expected) * qty * sign),
                sql.money_sum(sql.num(fl.commission)),
            )
            .select_from(FILLS_WITH_ORDERS)
            .where(fl.expected_price.is_not(None), *fill_where(f.execution()))
            .group_by(ORDERS.c.order_type, fl.side)
            .order_by(ORDERS.c.order_type, fl.side)
        )
        rows = []
        for order_type, side, n, exp, act, cost, fee in conn.execute(stmt):
            expected_notional, cost_value = sql.money(exp), sql.money(cost)
            rows.append(
                {
                    "order_type": order_type,
                    "side": side,
                    "fills": int(n),
                    "expected_notional": expected_notional,
                    "actual_notional": sql.money(act),
                    "slippage_cost": cost_value,
                    "slippage_bps": _bps(cost_value, expected_notional),
                    "commission": sql.money(fee),
                }
            )
        columns = ("order_type", "side", "fills", "expected_notional", "actual_notional")
        extra = ("slippage_cost", "slippage_bps", "commission")
        return as_frame(rows, [*columns, *extra], ints=("fills",))

    def commission_impact(self, f: JournalFilter) -> pd.DataFrame:
        """Per UTC day of the execution scope of ``f``: ``gross_pnl`` realized by trades that
        closed that day, ``commission`` and ``notional`` of that day's fills, and
        ``net_pnl`` (gross less commission); money as Decimals, days in order."""
        scope = f.execution()
        return self._cached("commission", scope, lambda conn: self._commissions(conn, scope))

    def _commissions(self, conn: Any, scope: JournalFilter) -> pd.DataFrame:
        sql, c, fl = self._sql, TRADES.c, FILLS.c
        trade_day = sql.day(c.exit_time).label("day")
        pnl_stmt = (
            select(trade_day, func.count(), sql.money_sum(sql.realized()))
            .where(
                sql.closed(),
                c.exit_time.is_not(None),
                *time_bounds(c.exit_time, scope),
                *trade_where(scope, dates=False),
            )
            .group_by(trade_day)
        )
        fill_day = sql.day(fl.at).label("day")
        fill_stmt = (
            select(
                fill_day,
                func.count(),
                sql.money_sum(sql.num(fl.commission)),
                sql.money_sum(sql.num(fl.price) * sql.num(fl.qty)),
            )
            .select_from(FILLS_WITH_ORDERS)
            .where(*fill_where(scope))
            .group_by(fill_day)
        )
        pnl_rows = conn.execute(pnl_stmt).all()
        fill_rows = conn.execute(fill_stmt).all()
        days: dict[date, dict[str, Any]] = {}

        def day_row(value: Any) -> dict[str, Any]:
            day = _day(value)
            return days.setdefault(
                day,
                {
                    "day": day,
                    "closed_trades": 0,
                    "gross_pnl": ZERO,
                    "fills": 0,
                    "commission": ZERO,
                    "notional": ZERO,
                },
            )

        for value, n, gross in pnl_rows:
            row = day_row(value)
            row.update(closed_trades=int(n), gross_pnl=sql.money(gross))
        for value, n, fee, notional in fill_rows:
            row = day_row(value)
            row.update(fills=int(n), commission=sql.money(fee), notional=sql.money(notional))
        rows = [days[d] for d in sorted(days)]
        for row in rows:
            row["net_pnl"] = row["gross_pnl"] - row["commission"]
        columns = ("day", "closed_trades", "gross_pnl", "fills", "commission", "notional")
        return as_frame(rows, [*columns, "net_pnl"], ints=("closed_trades", "fills"))

    def turnover(self, f: JournalFilter) -> pd.DataFrame:
        """Per UTC day of the execution scope of ``f``: ``trades_opened``, ``fills``, traded
        ``notional`` (Decimal), the day's starting ``equity`` from the daily P&L summary
        (Decimal, ``None`` when none was kept) and ``turnover`` (notional over equity,
        Decimal or ``None``); days in order."""
        sql, c, fl = self._sql, TRADES.c, FILLS.c
        scope = f.execution()
        entry_day = sql.day(c.entry_time).label("day")
        opened_stmt = select(entry_day, func.count()).where(*trade_where(scope)).group_by(entry_day)
        fill_day = sql.day(fl.at).label("day")
        fill_stmt = (
            select(fill_day, func.count(), sql.money_sum(sql.num(fl.price) * sql.num(fl.qty)))
            .select_from(FILLS_WITH_ORDERS)
            .where(*fill_where(scope))
            .group_by(fill_day)
        )
        equity_stmt = select(DAILY_PNL.c.date, DAILY_PNL.c.starting_equity)
        if scope.start is not None:
            equity_stmt = equity_stmt.where(DAILY_PNL.c.date >= scope.start)
        if scope.end is not None:
            equity_stmt = equity_stmt.where(DAILY_PNL.c.date <= scope.end)
        with self.store.unit_of_work(read_only=True) as uow:
            conn = uow.connection
            opened = {_day(d): int(n) for d, n in conn.execute(opened_stmt)}
            traded = {_day(d): (int(n), sql.money(v)) for d, n, v in conn.execute(fill_stmt)}
            equity = {_day(d): e for d, e in conn.execute(equity_stmt)}
        rows = []
        for day in sorted(set(opened) | set(traded)):
            fills, notional = traded.get(day, (0, ZERO))
            start = equity.get(day)
            rows.append(
                {
                    "day": day,
                    "trades_opened": opened.get(day, 0),
                    "fills": fills,
                    "notional": notional,
                    "equity": start,
                    "turnover": notional / start if start else None,
                }
            )
        columns = ("day", "trades_opened", "fills", "notional", "equity", "turnover")
        return as_frame(rows, columns, ints=("trades_opened", "fills"))


__all__ = ["HOLDING_BUCKETS", "WIN_RATE_KEYS", "JournalAnalytics"]
