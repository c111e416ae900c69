"""Dashboard users and encrypted broker credentials (revision 0005)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import Row, bindparam, delete, func, insert, select, update

from core.users import Role, User
from core.vault import EncryptedSecret
from db.repositories._base import Repository
from db.tables import CREDENTIALS, USERS

_SELECT_USERS = select(USERS)
_USER_BY_NAME = _SELECT_USERS.where(USERS.c.username == bindparam("b_username"))
_ALL_USERS = _SELECT_USERS.order_by(USERS.c.username)
_COUNT_USERS = select(func.count()).select_from(USERS)
_COUNT_ACTIVE_ADMINS = (
    select(func.count())
    .select_from(USERS)
    .where(USERS.c.role == Role.ADMIN.value, USERS.c.disabled.is_(False))
)


def _user_from_row(r: Row[Any]) -> User:
    m = r._mapping
    return User(
        username=m["username"],
        name=m["name"],
        email=m["email"],
        role=Role(m["role"]),
        password_hash=m["password_hash"],
        created_at=m["created_at"],
        created_by=m["created_by"],
        disabled=bool(m["disabled"]),
        last_login_at=m["last_login_at"],
        id=m["id"],
    )


class SqlUserRepository(Repository):
    """Users by username; the first one can only be created while the table is empty."""

    __slots__ = ()

    def count(self) -> int:
        return int(self._conn.execute(_COUNT_USERS).scalar_one())

    def active_admins(self) -> int:
        return int(self._conn.execute(_COUNT_ACTIVE_ADMINS).scalar_one())

    def add(self, user: User) -> int:
        row = self._conn.execute(
            insert(USERS).returning(USERS.c.id),
            {
                "username": user.username,
                "name": user.name,
                "email": user.email,
                "role": user.role.value,
                "password_hash": user.password_hash,
                "disabled": user.disabled,
                "created_by": user.created_by,
                "created_at": user.created_at,
                "last_login_at": user.last_login_at,
            },
        ).scalar_one()
        return int(row)

    def get(self, username: str) -> User | None:
        row = self._conn.execute(_USER_BY_NAME, {"b_username": username}).first()
        return None if row is None else _user_from_row(row)

    def all(self) -> list[User]:
        return [_user_from_row(r) for r in self._conn.execute(_ALL_USERS)]

    def _update(self, username: str, **values: Any) -> bool:
        result = self._conn.execute(
            update(USERS).where(USERS.c.username == username).values(**values)
        )
        return bool(result.rowcount)

    def set_role(self, username: str, role: Role) -> bool:
        return self._update(username, role=role.value)

    def set_disabled(self, username: str, disabled: bool) -> bool:
        return self._update(username, disabled=disabled)

    def set_password_hash(self, username: str, password_hash: str) -> bool:
        return self._update(username, password_hash=password_hash)

    def record_login(self, username: str, at: datetime) -> bool:
        return self._update(username, last_login_at=at)


_SELECT_CREDENTIAL = select(CREDENTIALS).where(CREDENTIALS.c.name == bindparam("b_name"))
_CREDENTIAL_NAMES = select(CREDENTIALS.c.name).order_by(CREDENTIALS.c.name)


class SqlCredentialRepository(Repository):
    """Encrypted credentials: ciphertext, nonce, key fingerprint and the masked form only."""

    __slots__ = ()

    def get(self, name: str) -> EncryptedSecret | None:
        row = self._conn.execute(_SELECT_CREDENTIAL, {"b_name": name}).first()
        if row is None:
            return None
        m = row._mapping
        return EncryptedSecret(
            ciphertext=bytes(m["ciphertext"]),
            nonce=bytes(m["nonce"]),
            key_id=m["key_id"],
            masked=m["masked"],
            updated_by=m["updated_by"],
            updated_at=m["updated_at"],
        )

    def put(self, name: str, secret: EncryptedSecret, by: str, at: datetime) -> None:
        self.put_many([(name, secret)], by, at)

    def put_many(
        self,
        items: Mapping[str, EncryptedSecret] | Iterable[tuple[str, EncryptedSecret]],
        by: str,
        at: datetime,
    ) -> None:
        conn = self._conn
        pairs = items.items() if isinstance(items, Mapping) else items
        for name, secret in pairs:
            conn.execute(delete(CREDENTIALS).where(CREDENTIALS.c.name == name))
            conn.execute(
                insert(CREDENTIALS),
                {
                    "name": name,
                    "ciphertext": secret.ciphertext,
                    "nonce": secret.nonce,
                    "key_id": secret.key_id,
                    "masked": secret.masked,
                    "updated_by": by,
                    "updated_at": at,
                },
            )

    def names(self) -> list[str]:
        return [r[0] for r in self._conn.execute(_CREDENTIAL_NAMES)]

    def delete(self, name: str) -> None:
        self._conn.execute(delete(CREDENTIALS).where(CREDENTIALS.c.name == name))


__all__ = ["SqlCredentialRepository", "SqlUserRepository"]
