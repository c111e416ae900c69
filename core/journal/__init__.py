"""Fills into orders, positions and the trade journal; reading and analysing the journal."""

from core.journal.queries import SessionTotals, get_daily_summary, get_trade_history
from core.journal.writer import TradeJournalWriter, exit_reason_for, trigger_for

__all__ = [
    "SessionTotals",
    "TradeJournalWriter",
    "exit_reason_for",
    "get_daily_summary",
    "get_trade_history",
    "trigger_for",
]
