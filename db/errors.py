"""Errors the store raises on top of SQLAlchemy's own."""

from __future__ import annotations


class StoreError(Exception):
    """Base class for store errors."""


class DuplicateKeyError(StoreError, ValueError):
    """A row with that key is already stored (for example a second order with one client id).

    Raised without aborting the transaction, so the unit of work stays usable on PostgreSQL too.
    """


class RowNotFoundError(StoreError, LookupError):
    """An update named a row that is not stored."""
