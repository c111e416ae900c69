"""Fills into orders, positions and the trade journal."""

from core.journal.writer import TradeJournalWriter, exit_reason_for

__all__ = ["TradeJournalWriter", "exit_reason_for"]
