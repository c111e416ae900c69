"""record_entry / record_exit: the trade record's fields, exit reasons and holding period."""

from __future__ import annotations

from datetime import timedelta

import pytest

from core.domain import (
    ONE,
    Direction,
    InstrumentType,
    Position,
    Side,
    TradeStatus,
    TradeType,
)
from core.exits.model import ExitReason
from core.journal import TradeJournalWriter, exit_reason_for, trigger_for
from db.store import SqlStore
from tests.core.journal.helpers import (
    T0,
    D,
    add_decisions,
    add_signal,
    apply,
    fill_for,
    order,
)


def _trades(store: SqlStore):
    with store.unit_of_work(read_only=True) as uow:
        return uow.journal.trades()


# ------------------------------------------------------------------ exit reasons


@pytest.mark.parametrize(
    ("coid", "reason"),
    [
        ("ax-s12-entry", "signal"),
        ("ax-s12-entry-tp", "target"),
        ("ax-s12-entry-sl", "stop_loss"),
        ("ax-c7-manual", "manual"),
        ("ax-c7-manual-tp", "target"),
        ("ax-c9-flatten-AAPL", "kill_switch"),
        ("ax-c9-flatten-BRK.B", "kill_switch"),
        ("ax-k3-close-AAPL", "kill_switch"),
        ("ax-k20240506T1400-close-TQQQ", "kill_switch"),
        ("ax-x41-time_stop-1", "time_stop"),
        ("ax-x41-max_hold_days-12", "max_hold_days"),
        ("broker-adopted-123", "signal"),
    ],
)
def test_exit_reason_for_each_client_order_id_family(coid: str, reason: str) -> None:
    assert exit_reason_for(order(coid, "AAPL", Side.SELL, 1)) == reason


@pytest.mark.parametrize("reason", list(ExitReason))
def test_every_exit_monitor_reason_is_read_back_from_its_order_id(reason: ExitReason) -> None:
    for trade_id, attempt in ((1, 1), (987, 3)):
        coid = f"ax-x{trade_id}-{reason.value}-{attempt}"
        assert exit_reason_for(order(coid, "TQQQ", Side.SELL, 5)) == reason.value


def test_trigger_is_signal_manual_or_unknown() -> None:
    assert trigger_for(order("ax-s1-entry", "AAPL", Side.BUY, 1), None) == "signal"
    assert trigger_for(order("ax-c4-manual", "AAPL", Side.BUY, 1), None) == "manual"
    assert trigger_for(order("ext-1", "AAPL", Side.BUY, 1), None) is None


# ------------------------------------------------------------------ entries


def test_entry_from_a_stock_signal_carries_its_context(store: SqlStore) -> None:
    signal = add_signal(
        store,
        metadata={"regime": "risk_on", "factor_scores": {"momentum": "0.8", "value": "-0.1"}},
    )
    assert signal.id is not None
    add_decisions(
        store,
        signal.id,
        ("validate", True, {}),
        ("instrument", True, {"instrument": "stock", "ticker": "AAPL", "leverage": "1"}),
        (
            "sizing",
            True,
            {"qty": "50", "sizing": "1% risk of 100000 over a 2.00 stop", "stop": "98"},
        ),
        (
            "risk",
            True,
            {
                "instrument": "stock",
                "ticker": "AAPL",
                "leverage": "1",
                "why": "stock mode",
                "qty": "50",
                "sizing": "1% risk of 100000 over a 2.00 stop",
                "stop": "98",
                "target": "104",
                "approved_qty": "40",
            },
        ),
    )
    writer = TradeJournalWriter()
    entry = order(f"ax-s{signal.id}-entry", "AAPL", Side.BUY, 40, signal_id=signal.id)
    apply(store, writer, entry, "100.05", T0, portfolio_value=D("100000.00"))

    (trade,) = _trades(store)
    assert trade.status is TradeStatus.OPEN
    assert (trade.ticker, trade.original_ticker, trade.direction) == ("AAPL", "AAPL", "long")
    assert trade.shares == 40 and trade.entry_price == D("100.05") and trade.entry_time == T0
    assert trade.trigger == "signal"
    assert trade.strategy == "ema_cloud"
    assert trade.sector == "technology"
    assert trade.regime == "risk_on"
    assert trade.factor_scores == {"momentum": "0.8", "value": "-0.1"}
    assert trade.portfolio_value == D("100000.00")
    assert trade.leverage == ONE and trade.stop_loss == 98 and trade.target_price == 104
    assert trade.conviction == 80 and trade.signal_id == signal.id
    assert (
        trade.notes == "stock mode; 1% risk of 100000 over a 2.00 stop; risk gate reduced 50 to 40"
    )
    assert trade.order_id == entry.client_order_id and trade.broker == "paper"
    assert trade.metadata["source"] == "ema_cloud"
    assert writer.open_trades["AAPL"].id == trade.id


def test_leveraged_etf_entry_takes_the_etf_stop_target_and_leverage(store: SqlStore) -> None:
    signal = add_signal(store, symbol="QQQ", entry=D(400), stop=D(396), target=D(410))
    assert signal.id is not None
    details = {
        "instrument": "leveraged_etf",
        "ticker": "TQQQ",
        "leverage": "3",
        "why": "QQQ trades its index pair",
        "qty": "120",
        "sizing": "ETF risk budget",
        "stop": "58.20",
        "target": "63.75",
        "etf_stop": "58.20",
        "max_hold_days": "3",
    }
    add_decisions(
        store,
        signal.id,
        ("validate", True, {}),
        ("instrument", True, {k: details[k] for k in ("instrument", "ticker", "leverage")}),
        ("sizing", True, details),
        ("risk", True, {**details, "approved_qty": "120"}),
    )
    writer = TradeJournalWriter()
    entry = order(
        f"ax-s{signal.id}-entry",
        "TQQQ",
        Side.BUY,
        120,
        signal_id=signal.id,
        instrument_type=InstrumentType.LEVERAGED_ETF,
    )
    apply(store, writer, entry, "60.00", T0)

    (trade,) = _trades(store)
    assert trade.ticker == "TQQQ" and trade.original_ticker == "QQQ"
    assert trade.instrument_type is InstrumentType.LEVERAGED_ETF
    assert trade.leverage == 3
    assert trade.stop_loss == D("58.20") and trade.target_price == D("63.75")
    assert trade.sector == "nasdaq100"  # of the signal's ticker, not the fund's
    assert trade.portfolio_value is None and trade.regime is None and trade.factor_scores == {}
    assert trade.notes == "QQQ trades its index pair; ETF risk budget"  # no reduction
    assert trade.metadata["etf_stop"] == "58.20" and trade.metadata["max_hold_days"] == "3"
    assert trade.metadata["signal_stop"] == "396" and trade.metadata["signal_target"] == "410"


def test_the_last_approved_decision_wins(store: SqlStore) -> None:
    signal = add_signal(store)
    assert signal.id is not None
    add_decisions(
        store,
        signal.id,
        ("sizing", True, {"stop": "97", "target": "105", "sizing": "first pass"}),
        ("risk", False, {"stop": "1", "target": "2"}),  # a rejection's notes never count
        ("sizing", True, {"stop": "97.5", "target": "", "sizing": "second pass"}),
        ("risk", False, {}),
        ("exit", True, {"stop": "90", "sizing": "recorded after an entry"}),
        ("scale_in", True, {"stop": "91", "sizing": "an add"}),
    )
    writer = TradeJournalWriter()
    apply(store, writer, order("ax-s1-entry", "AAPL", Side.BUY, 10, signal_id=signal.id), 100, T0)
    (trade,) = _trades(store)
    # target left empty by the sizer: the signal's own target
    assert trade.stop_loss == D("97.5") and trade.target_price == 104
    assert trade.notes == "second pass"


def test_entry_without_decisions_uses_the_signal(store: SqlStore) -> None:
    signal = add_signal(store, symbol="XOM", direction=Direction.SHORT, stop=D(102), target=D(95))
    writer = TradeJournalWriter()
    short = order("ax-s1-entry", "XOM", Side.SELL, 10, signal_id=signal.id)
    apply(store, writer, short, 100, T0)
    (trade,) = _trades(store)
    assert trade.direction is Direction.SHORT and trade.sector == "energy"
    assert trade.stop_loss == 102 and trade.target_price == 95 and trade.leverage == 1
    assert trade.notes is None and "signal_stop" not in trade.metadata


def test_manual_entry(store: SqlStore) -> None:
    writer = TradeJournalWriter()
    apply(store, writer, order("ax-c7-manual", "JPM", Side.BUY, 5), "190", T0, portfolio_value=D(5))
    (trade,) = _trades(store)
    assert trade.trigger == "manual" and trade.strategy is None
    assert trade.sector == "financials" and trade.original_ticker is None
    assert trade.signal_id is None and trade.stop_loss is None and trade.trade_type is TradeType.DAY
    assert trade.notes == "manual order ax-c7-manual"
    assert trade.portfolio_value == 5


def test_record_entry_directly(store: SqlStore) -> None:
    signal = add_signal(store, symbol="ZZZZ", metadata={"regime": 3})
    writer = TradeJournalWriter()
    entry = order("ax-s1-entry", "ZZZZ", Side.BUY, 7, signal_id=signal.id)
    fill = fill_for(entry, "10", T0)
    with store.unit_of_work() as uow:
        trade = writer.record_entry(
            uow, signal, entry, fill, Position("ZZZZ", D(7), D(10), D(10)), D("2500")
        )
        uow.commit()
    assert trade.id is not None and trade.sector is None and trade.regime == "3"
    assert _trades(store) == [trade]


# ------------------------------------------------------------------ exits


@pytest.mark.parametrize(
    ("exit_coid", "reason"),
    [
        ("ax-s1-entry-tp", "target"),
        ("ax-s1-entry-sl", "stop_loss"),
        ("ax-c2-manual", "manual"),
        ("ax-c3-flatten-AAPL", "kill_switch"),
        ("ax-k4-close-AAPL", "kill_switch"),
        ("ax-x1-momentum_exhaustion-1", "momentum_exhaustion"),
        ("ax-x1-eod_close-2", "eod_close"),
        ("ax-s9-entry", "signal"),
    ],
)
def test_exit_closes_the_trade_with_reason_pnl_and_holding(
    store: SqlStore, exit_coid: str, reason: str
) -> None:
    signal = add_signal(store)
    writer = TradeJournalWriter()
    apply(store, writer, order("ax-s1-entry", "AAPL", Side.BUY, 10, signal_id=1), "100", T0)
    closed_at = T0 + timedelta(hours=1, minutes=2, seconds=3, microseconds=900_000)
    apply(store, writer, order(exit_coid, "AAPL", Side.SELL, 10), "101.50", closed_at)

    (trade,) = _trades(store)
    assert trade.signal_id == signal.id
    assert trade.status is TradeStatus.CLOSED and trade.exit_reason == reason
    assert trade.exit_price == D("101.50") and trade.exit_time == closed_at
    assert trade.pnl == D("15.00") and trade.pnl_pct == D("0.015")
    assert trade.metadata["holding_seconds"] == 3723
    assert trade.metadata["exits"] == [{"qty": "10", "price": "101.50", "order": exit_coid}]
    assert "AAPL" not in writer.open_trades and "AAPL" not in writer.positions


def test_partial_exits_then_close(store: SqlStore) -> None:
    writer = TradeJournalWriter()
    apply(store, writer, order("ax-c1-manual", "AAPL", Side.BUY, 10), "100", T0)
    apply(store, writer, order("ax-c1-manual-2", "AAPL", Side.BUY, 10), "102", T0)  # add: avg 101
    apply(store, writer, order("ax-s1-entry-tp", "AAPL", Side.SELL, 5), "101", T0)  # breakeven
    apply(store, writer, order("ax-s1-entry-tp2", "AAPL", Side.SELL, 5), "103", T0)  # +10
    (trade,) = _trades(store)
    assert trade.status is TradeStatus.OPEN and trade.pnl == 10
    assert trade.shares == 20 and trade.entry_price == 101
    assert [e["qty"] for e in trade.metadata["exits"]] == ["5", "5"]
    apply(store, writer, order("ax-x1-stop_loss-1", "AAPL", Side.SELL, 10), "99", T0)  # -20
    (trade,) = _trades(store)
    assert trade.status is TradeStatus.CLOSED and trade.exit_reason == "stop_loss"
    assert trade.pnl == -10
    assert trade.exit_price == (5 * D(101) + 5 * D(103) + 10 * D(99)) / 20
    assert trade.pnl_pct == D(-10) / (D(101) * 20)
    assert trade.metadata["holding_seconds"] == 0


def test_a_flip_closes_one_trade_and_opens_the_next(store: SqlStore) -> None:
    writer = TradeJournalWriter()
    apply(store, writer, order("ax-c1-manual", "AAPL", Side.BUY, 10), "100", T0)
    later = T0 + timedelta(minutes=30)
    apply(
        store,
        writer,
        order("ax-c2-manual", "AAPL", Side.SELL, 25),
        "98",
        later,
        portfolio_value=D(7),
    )
    new, old = _trades(store)
    assert old.status is TradeStatus.CLOSED and old.pnl == -20 and old.exit_reason == "manual"
    assert old.metadata["exits"] == [{"qty": "10", "price": "98", "order": "ax-c2-manual"}]
    assert old.metadata["holding_seconds"] == 1800
    assert new.status is TradeStatus.OPEN and new.direction is Direction.SHORT
    assert new.shares == 15 and new.entry_price == 98 and new.portfolio_value == 7
    assert writer.open_trades["AAPL"].id == new.id


def test_record_exit_directly_computes_pnl_and_takes_an_explicit_reason(store: SqlStore) -> None:
    writer = TradeJournalWriter()
    apply(store, writer, order("ax-c1-manual", "TQQQ", Side.SELL, 8), "50", T0)  # short 8 @ 50
    cover = order("ax-c2-manual", "TQQQ", Side.BUY, 8)
    fill = fill_for(cover, "47.25", T0 + timedelta(days=2))
    with store.unit_of_work() as uow:
        flat = Position("TQQQ", D(0), D(50), D("47.25"))
        trade = writer.record_exit(uow, flat, "rebalance", cover, fill)
        assert writer.record_exit(uow, flat, None, cover, fill) is None  # nothing open any more
        uow.commit()
    assert trade is not None
    assert trade.pnl == D("22.00") and trade.exit_reason == "rebalance"
    assert trade.metadata["holding_seconds"] == 2 * 86400
    assert _trades(store)[0].status is TradeStatus.CLOSED


def test_writer_reloads_open_trades_and_closes_them_after_a_restart(store: SqlStore) -> None:
    add_signal(store)
    first = TradeJournalWriter()
    apply(store, first, order("ax-s1-entry", "AAPL", Side.BUY, 10, signal_id=1), "100", T0)
    second = TradeJournalWriter()
    with store.unit_of_work(read_only=True) as uow:
        second.load(uow)
    apply(store, second, order("ax-s1-entry-sl", "AAPL", Side.SELL, 10), "98", T0 + timedelta(1))
    (trade,) = _trades(store)
    assert trade.exit_reason == "stop_loss" and trade.pnl == -20
    assert trade.strategy == "ema_cloud"  # the entry's fields survive the update


def test_notes_tell_a_scale_in_split_and_a_risk_gate_cut(store: SqlStore) -> None:
    signal = add_signal(store)
    assert signal.id is not None
    notes = {"why": "stock mode", "sizing": "1% risk", "qty": "74", "stop": "98"}
    add_decisions(
        store,
        signal.id,
        ("entry", True, {**notes, "entry_qty": "37", "scale_in_remaining": "37"}),
        (
            "risk",
            True,
            {**notes, "entry_qty": "37", "scale_in_remaining": "37", "approved_qty": "30"},
        ),
    )
    writer = TradeJournalWriter()
    apply(store, writer, order("ax-s1-entry", "AAPL", Side.BUY, 30, signal_id=signal.id), 100, T0)
    (trade,) = _trades(store)
    assert trade.notes == (
        "stock mode; 1% risk; scale-in: 37 first, 37 on a pullback; risk gate reduced 37 to 30"
    )
