"""The kill switch in the running executor: evaluate its triggers each mark, latch, act, alert.

:class:`~core.risk.kill_switch.KillSwitch` holds the rules. This module feeds it what the
executor knows (equity, the session's starting and peak equity, how long the broker has been
unreachable, the returns of the latest closed trades) and, when it trips or when a trader turned
it on from the dashboard, applies its actions:

* the latched state (reason, time, who) is stored in the versioned settings, so it survives a
  restart; only a named person releases it (the ``kill_switch_off`` command);
* working entry orders are cancelled (exits and protective bracket legs keep working);
* day-trade and scalp positions are closed with reduce-only market orders
  ``ax-k{activation}-close-{symbol}``, written ahead like every order;
* an alert is stored.

Actions are applied once per activation: which activation they were applied for is stored
(``kill_switch.actions``), so a restart in between finishes them and never repeats them. While
the broker is unreachable they wait; the switch itself latches at once.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING

from core.domain import (
    AccountState,
    Alert,
    AlertLevel,
    DailyPnl,
    KillSwitchState,
    OrderRequest,
    TradeStatus,
)
from core.ports import BrokerUnavailable
from core.risk.kill_switch import (
    KillSwitch,
    KillSwitchActions,
    KillSwitchConfig,
    KillSwitchInputs,
)
from core.settings_keys import KILL_SWITCH_KEY, kill_switch_value

if TYPE_CHECKING:
    from core.executor import TradeExecutor

log = logging.getLogger("axion.kill_switch")

#: Settings key recording the activation whose actions were applied.
ACTIONS_KEY = "kill_switch.actions"


def activation_tag(state: KillSwitchState) -> str:
    """A stable name for one activation (its time), used in the closing orders' ids."""
    assert state.at is not None
    return state.at.strftime("%Y%m%d%H%M%S%f")


def close_client_order_id(state: KillSwitchState, symbol: str) -> str:
    return f"ax-k{activation_tag(state)}-close-{symbol}"


class KillSwitchMonitor:
    """See the module docstring."""

    def __init__(self, ex: TradeExecutor, config: KillSwitchConfig | None = None):
        self.ex = ex
        self.config = config or KillSwitchConfig()
        #: When the broker was first seen unreachable (cleared once it answers again).
        self.disconnected_since: datetime | None = None
        self._actions_done_for: str | None = None
        self._returns: tuple[Decimal, ...] = ()
        self._returns_key: tuple[int, datetime | None] | None = None
        self._last_equity: Decimal | None = None
        self._last_row: DailyPnl | None = None

    # ------------------------------------------------------------------ state
    def load(self) -> None:
        """On becoming leader: which activation's actions are already done."""
        with self.ex.store.unit_of_work(read_only=True) as uow:
            stored = uow.settings.get(ACTIONS_KEY)
            # the last known equity, so that an outage from the start is still counted
            today = self.ex.clock.now().date()
            for back in range(10):
                row = uow.journal.daily_pnl(today - timedelta(days=back))
                if row is not None:
                    self._last_row, self._last_equity = row, row.ending_equity
                    break
        value = stored.value if stored is not None else None
        self._actions_done_for = value.get("for") if isinstance(value, dict) else None
        self._returns_key = None

    def broker_up(self) -> None:
        self.disconnected_since = None

    def broker_down(self, now: datetime) -> None:
        if self.disconnected_since is None:
            self.disconnected_since = now

    # ------------------------------------------------------------------ triggers
    def _recent_returns(self) -> tuple[Decimal, ...]:
        """Returns of the latest closed trades, oldest first (re-read only after new fills or a
        release). Trades closed before the switch was last released do not count again: no
        trade can close while it is on, so they would trip it again at once, for good."""
        state = self.ex.kill_switch
        released_at = state.at if not state.active else None
        key = (self.ex.stats.fills, released_at)
        if self._returns_key == key:
            return self._returns
        n = self.config.consecutive_losses
        with self.ex.store.unit_of_work(read_only=True) as uow:
            trades = uow.journal.trades(limit=max(50, n * 10))
        closed = sorted(
            (
                t
                for t in trades
                if t.status is TradeStatus.CLOSED
                and t.exit_time is not None
                and (released_at is None or t.exit_time > released_at)
            ),
            key=lambda t: (t.exit_time, t.id or 0),
        )
        self._returns = tuple(t.pnl_pct for t in closed[-n:] if t.pnl_pct is not None)
        self._returns_key = key
        return self._returns

    def inputs(
        self, equity: Decimal | None, row: DailyPnl | None, manual: str | None = None
    ) -> KillSwitchInputs | None:
        equity = equity if equity is not None else self._last_equity
        row = row or self._last_row
        if equity is None:
            return None
        starting = row.starting_equity if row is not None else equity
        if starting <= 0:
            return None
        peak = Decimal(row.metadata.get("peak_equity", str(equity))) if row is not None else equity
        return KillSwitchInputs(
            equity=equity,
            starting_equity=starting,
            disconnected_since=self.disconnected_since,
            recent_trade_returns=self._recent_returns(),
            peak_equity=max(peak, equity),
            manual_request=manual,
        )

    async def check(
        self, account: AccountState | None, row: DailyPnl | None, now: datetime
    ) -> bool:
        """Evaluate the triggers (after marking to market, or with the last known equity when
        the broker is unreachable) and apply pending actions. True if the switch is on."""
        if account is not None:
            self._last_equity = account.equity
        if row is not None:
            self._last_row = row
        if not self.ex.kill_switch.active:
            inputs = self.inputs(account.equity if account else None, row)
            if inputs is not None:
                switch = KillSwitch(self.config, self.ex.kill_switch)
                activation = switch.evaluate(inputs, now)
                if activation is not None:
                    self._latch(activation.state, activation.actions, now)
        if self.ex.kill_switch.active:
            await self.apply_actions(now)
        return self.ex.kill_switch.active

    def _latch(self, state: KillSwitchState, actions: KillSwitchActions, now: datetime) -> None:
        log.error("kill switch on: %s", state.reason)
        with self.ex.store.unit_of_work() as uow:
            uow.settings.put(KILL_SWITCH_KEY, kill_switch_value(state), state.by or "system", now)
            session = self.ex.market.calendar.session_date(now)
            row = uow.journal.daily_pnl(session) if session is not None else None
            if row is not None and not row.kill_switch_triggered:
                uow.journal.upsert_daily_pnl(replace(row, kill_switch_triggered=True))
            uow.alerts.add(
                Alert(
                    kind="kill_switch",
                    level=AlertLevel.CRITICAL,
                    message=actions.alert,
                    at=now,
                    details={"reason": state.reason, "by": state.by, "actions": actions.describe()},
                )
            )
            uow.commit()
        self.ex.kill_switch = state

    # ------------------------------------------------------------------ actions
    async def apply_actions(self, now: datetime) -> None:
        """Cancel working entries and close day-trade positions, once per activation."""
        state = self.ex.kill_switch
        if not state.active or state.at is None:
            return
        tag = activation_tag(state)
        if self._actions_done_for == tag or self.disconnected_since is not None:
            return
        actions = KillSwitchActions(alert=f"kill switch on: {state.reason}")
        try:
            cancelled = await self.ex.cancel_working_entries()
            closing = await self._close_positions(state, actions)
        except BrokerUnavailable as exc:
            log.warning("kill switch actions wait for the broker: %s", exc)
            return
        with self.ex.store.unit_of_work() as uow:
            uow.settings.put(
                ACTIONS_KEY,
                {"for": tag, "cancelled": cancelled, "closing": closing, "at": now.isoformat()},
                "system",
                now,
            )
            if state.by == "system" or closing or cancelled:
                uow.alerts.add(
                    Alert(
                        kind="kill_switch",
                        level=AlertLevel.WARNING,
                        message=(
                            f"kill switch actions: {cancelled} entry orders cancelled, "
                            f"{len(closing)} positions closing"
                            + (f" ({', '.join(closing)})" if closing else "")
                        ),
                        at=now,
                        details={"for": tag, "cancelled": cancelled, "closing": closing},
                    )
                )
            uow.commit()
        self._actions_done_for = tag

    async def _close_positions(
        self, state: KillSwitchState, actions: KillSwitchActions
    ) -> list[str]:
        trades = self.ex.journal.open_trades
        symbols = actions.positions_to_close({s: t.trade_type for s, t in trades.items()})
        requests: list[OrderRequest] = []
        with self.ex.store.unit_of_work(read_only=True) as uow:
            for symbol in symbols:
                pos = self.ex.journal.positions.get(symbol)
                if pos is None or pos.qty == 0:
                    continue
                coid = close_client_order_id(state, symbol)
                if uow.orders.get(coid) is not None:
                    continue  # sent before a restart
                trade = trades[symbol]
                requests.append(pos.closing_request(coid, trade.signal_id, trade.instrument_type))
        for request in requests:
            await self.ex.cancel_protective_legs(request.symbol)
        await self.ex.write_and_submit(requests)
        return [r.symbol for r in requests]


__all__ = ["ACTIONS_KEY", "KillSwitchMonitor", "close_client_order_id"]
