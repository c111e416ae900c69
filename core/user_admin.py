"""Managing dashboard users: the first administrator, adding users, roles, passwords.

Every change is checked against the acting user's stored role (admins only, except a user
changing their own password) and keeps at least one enabled administrator.
"""

from __future__ import annotations

from datetime import datetime

from core.domain import ValidationError
from core.ports import Clock, Store, UnitOfWork
from core.users import (
    Action,
    PermissionDenied,
    Role,
    User,
    check_password,
    hash_password,
    new_user,
    require,
    verify_password,
)

#: Versioned setting written once, in the same transaction as the first administrator: two
#: first-start forms submitted together collide on its (key, version 1) row, so only one wins.
FIRST_ADMIN_KEY = "auth.first_admin"


class UserError(ValidationError):
    """A user change that cannot be made; the message says why."""


class UserAdmin:
    def __init__(self, store: Store, clock: Clock) -> None:
        self.store = store
        self.clock = clock

    def needs_first_admin(self) -> bool:
        with self.store.unit_of_work(read_only=True) as uow:
            return uow.users.count() == 0

    def create_first_admin(self, username: str, name: str, email: str, password: str) -> User:
        """The first administrator, only while no user exists."""
        now = self.clock.now()
        user = new_user(
            username, name, email, Role.ADMIN, password, created_by="first-start", at=now
        )
        with self.store.unit_of_work() as uow:
            if uow.users.count() != 0:
                raise UserError("an administrator already exists: sign in instead")
            uow.settings.put(FIRST_ADMIN_KEY, user.username, user.username, now)
            uow.users.add(user)
            uow.commit()
        return user

    def get(self, username: str) -> User | None:
        with self.store.unit_of_work(read_only=True) as uow:
            return uow.users.get(username)

    def users(self, acting: str) -> list[User]:
        with self.store.unit_of_work(read_only=True) as uow:
            require(uow.users.get(acting), Action.MANAGE_USERS)
            return uow.users.all()

    def add_user(
        self, acting: str, username: str, name: str, email: str, role: Role | str, password: str
    ) -> User:
        user = new_user(
            username, name, email, role, password, created_by=acting, at=self.clock.now()
        )
        with self.store.unit_of_work() as uow:
            require(uow.users.get(acting), Action.MANAGE_USERS)
            if uow.users.get(user.username) is not None:
                raise UserError(f"user {user.username!r} already exists")
            uow.users.add(user)
            uow.commit()
        return user

    def set_role(self, acting: str, username: str, role: Role | str) -> None:
        try:
            role = Role(role)
        except ValueError:
            raise UserError(f"unknown role {role!r}") from None
        with self.store.unit_of_work() as uow:
            require(uow.users.get(acting), Action.MANAGE_USERS)
            target = self._existing(uow, username)
            if target.role is Role.ADMIN and role is not Role.ADMIN and not target.disabled:
                self._keep_an_admin(uow, username)
            uow.users.set_role(username, role)
            uow.commit()

    def set_disabled(self, acting: str, username: str, disabled: bool) -> None:
        with self.store.unit_of_work() as uow:
            require(uow.users.get(acting), Action.MANAGE_USERS)
            target = self._existing(uow, username)
            if disabled and target.role is Role.ADMIN and not target.disabled:
                self._keep_an_admin(uow, username)
            uow.users.set_disabled(username, disabled)
            uow.commit()

    def change_password(
        self, acting: str, username: str, new_password: str, current_password: str = ""
    ) -> None:
        """Admins may reset anyone's password; others only their own, with the current one."""
        check_password(new_password, username)
        with self.store.unit_of_work() as uow:
            actor = uow.users.get(acting)
            target = self._existing(uow, username)
            if acting == username:
                if actor is None or not verify_password(current_password, target.password_hash):
                    raise PermissionDenied("the current password is not correct")
            else:
                require(actor, Action.MANAGE_USERS)
            uow.users.set_password_hash(username, hash_password(new_password))
            uow.commit()

    def record_login(self, username: str, at: datetime | None = None) -> None:
        with self.store.unit_of_work() as uow:
            uow.users.record_login(username, at or self.clock.now())
            uow.commit()

    @staticmethod
    def _existing(uow: UnitOfWork, username: str) -> User:
        user = uow.users.get(username)
        if user is None:
            raise UserError(f"no user {username!r}")
        return user

    @staticmethod
    def _keep_an_admin(uow: UnitOfWork, username: str) -> None:
        if uow.users.active_admins() <= 1:
            raise UserError(f"{username!r} is the last enabled administrator; add another first")


__all__ = ["FIRST_ADMIN_KEY", "UserAdmin", "UserError"]
