"""Broker keys as an admin manages them from a front end: listed masked, set, replaced and
deleted, each only by a user whose role allows managing brokers (checked against the stored
user, like every command).

Keys never travel through the command table (its payloads are stored in plain text): they are
encrypted by the vault straight into the ``credentials`` table. What is logged and returned
names the credential and who changed it, never its value.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from core.ports import Clock, Store
from core.users import Action, require
from core.vault import CredentialVault, Secret

log = logging.getLogger("axion.credentials")

#: Credentials the brokers read, with what each is for (shown beside the form).
KNOWN_CREDENTIALS: dict[str, str] = {
    "alpaca.api_key": "Alpaca API key id",
    "alpaca.secret_key": "Alpaca API secret key",
}


@dataclass(frozen=True, slots=True)
class CredentialInfo:
    """One stored credential as it may be shown: masked, with who set it and when."""

    name: str
    masked: str
    updated_by: str
    updated_at: datetime
    purpose: str | None


class CredentialAdmin:
    """See the module docstring."""

    def __init__(self, store: Store, vault: CredentialVault, clock: Clock) -> None:
        self.store = store
        self.vault = vault
        self.clock = clock

    def _require(self, username: str) -> None:
        with self.store.unit_of_work(read_only=True) as uow:
            user = uow.users.get(username) if username else None
        require(user, Action.MANAGE_BROKERS)

    def list(self, username: str) -> list[CredentialInfo]:
        """Every stored credential, masked (admins only: even masked keys say which exist)."""
        self._require(username)
        out = []
        for name in self.vault.names():
            stored = self.vault.store.get(name)
            if stored is None:  # deleted meanwhile
                continue
            out.append(
                CredentialInfo(
                    name,
                    stored.masked,
                    stored.updated_by,
                    stored.updated_at,
                    KNOWN_CREDENTIALS.get(name),
                )
            )
        return out

    def set(self, username: str, name: str, value: str | Secret) -> str:
        """Encrypt and store ``value`` under ``name``; returns its masked form."""
        self._require(username)
        secret = value if isinstance(value, Secret) else Secret(value)
        stored = self.vault.set(name, secret, username, self.clock.now())
        log.info("credential %s set by %s (%s)", name, username, stored.masked)
        return stored.masked

    def delete(self, username: str, name: str) -> bool:
        """Delete ``name``; False if there was no such credential."""
        self._require(username)
        if not self.vault.has(name):
            return False
        self.vault.delete(name)
        log.info("credential %s deleted by %s", name, username)
        return True


__all__ = ["KNOWN_CREDENTIALS", "CredentialAdmin", "CredentialInfo"]
