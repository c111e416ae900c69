"""Dashboard users and what each role may do.

Passwords are kept only as bcrypt hashes. Roles are ordered: a trader may do everything a viewer
may, an admin everything a trader may. Every action a front end offers is checked against
:func:`require` on the server side, whatever the page shows or hides.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum

import bcrypt

from core.domain import ValidationError


class Role(StrEnum):
    VIEWER = "viewer"
    TRADER = "trader"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        return _RANK[self]

    def allows(self, needed: Role) -> bool:
        return self.rank >= needed.rank


_RANK = {Role.VIEWER: 0, Role.TRADER: 1, Role.ADMIN: 2}


class Action(StrEnum):
    """Everything a person can do from a front end, with the least role it needs."""

    KILL_SWITCH = "kill_switch"
    CLOSE_POSITION = "close_position"
    CANCEL_ORDER = "cancel_order"
    MANUAL_ORDER = "manual_order"
    REBALANCE = "rebalance"  # preview, modify, approve, cancel
    CHANGE_SETTINGS = "change_settings"  # mode, risk profile, watchlist, autonomy
    RECONCILE = "reconcile"
    EXECUTOR_CONTROL = "executor_control"
    MANAGE_USERS = "manage_users"
    MANAGE_BROKERS = "manage_brokers"  # broker choice, keys, go-live

    @property
    def needs(self) -> Role:
        return _NEEDS[self]


_NEEDS = {
    Action.KILL_SWITCH: Role.TRADER,
    Action.CLOSE_POSITION: Role.TRADER,
    Action.CANCEL_ORDER: Role.TRADER,
    Action.MANUAL_ORDER: Role.TRADER,
    Action.REBALANCE: Role.TRADER,
    Action.CHANGE_SETTINGS: Role.TRADER,
    Action.RECONCILE: Role.TRADER,
    Action.EXECUTOR_CONTROL: Role.ADMIN,
    Action.MANAGE_USERS: Role.ADMIN,
    Action.MANAGE_BROKERS: Role.ADMIN,
}


class PermissionDenied(ValidationError):
    """The user's role does not allow the action; the message says which role would."""


USERNAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_.-]{1,31}$")
MIN_PASSWORD_LENGTH = 10


@dataclass(frozen=True, slots=True)
class User:
    username: str
    name: str
    email: str
    role: Role
    password_hash: str
    created_at: datetime
    created_by: str
    disabled: bool = False
    last_login_at: datetime | None = None
    id: int | None = None

    def __repr__(self) -> str:  # the hash stays out of logs and tracebacks
        return f"User({self.username!r}, role={self.role.value}, disabled={self.disabled})"

    def can(self, action: Action) -> bool:
        return not self.disabled and self.role.allows(action.needs)

    def with_role(self, role: Role) -> User:
        return replace(self, role=role)


def require(user: User | None, action: Action) -> User:
    """The user, if allowed to do ``action``; else :class:`PermissionDenied` with the reason."""
    if user is None:
        raise PermissionDenied(f"{action.value.replace('_', ' ')} needs a signed-in user")
    if user.disabled:
        raise PermissionDenied(f"user {user.username!r} is disabled")
    if not user.role.allows(action.needs):
        raise PermissionDenied(
            f"{action.value.replace('_', ' ')} needs the {action.needs.value} role; "
            f"{user.username!r} is a {user.role.value}"
        )
    return user


def check_username(username: str) -> str:
    name = (username or "").strip().lower()
    if not USERNAME_PATTERN.match(name):
        raise ValidationError(
            "a username is 2-32 characters: lower-case letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return name


def check_password(password: str, username: str = "") -> str:
    if not isinstance(password, str) or len(password) < MIN_PASSWORD_LENGTH:
        raise ValidationError(f"a password needs at least {MIN_PASSWORD_LENGTH} characters")
    if len(password.encode("utf-8")) > 72:
        raise ValidationError("a password may be at most 72 bytes long (bcrypt's limit)")
    if username and password.lower() == username.lower():
        raise ValidationError("the password must not be the username")
    return password


def hash_password(password: str) -> str:
    return bcrypt.hashpw(password.encode("utf-8"), bcrypt.gensalt()).decode("ascii")


def verify_password(password: str, password_hash: str) -> bool:
    try:
        return bcrypt.checkpw(password.encode("utf-8"), password_hash.encode("ascii"))
    except ValueError:  # not a bcrypt hash
        return False


def new_user(
    username: str,
    name: str,
    email: str,
    role: Role | str,
    password: str,
    *,
    created_by: str,
    at: datetime,
) -> User:
    """A validated user with a bcrypt hash of ``password`` (which is not kept)."""
    username = check_username(username)
    check_password(password, username)
    name = (name or "").strip() or username
    email = (email or "").strip()
    if email and ("@" not in email or len(email) > 254):
        raise ValidationError(f"{email!r} is not an e-mail address")
    try:
        role = Role(role)
    except ValueError:
        raise ValidationError(
            f"unknown role {role!r}; roles: {', '.join(r.value for r in Role)}"
        ) from None
    return User(
        username=username,
        name=name[:64],
        email=email,
        role=role,
        password_hash=hash_password(password),
        created_at=at,
        created_by=created_by,
    )


__all__ = [
    "Action",
    "PermissionDenied",
    "Role",
    "User",
    "check_password",
    "check_username",
    "hash_password",
    "new_user",
    "require",
    "verify_password",
]
