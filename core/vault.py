"""The credential vault: broker API keys encrypted at rest, shown only masked.

Encryption is AES-256-GCM (``cryptography``'s :class:`AESGCM`). Every secret gets its own random
96-bit nonce, and the credential's name is bound to the ciphertext as associated data, so a
ciphertext copied under another name (or altered in any way) fails authentication instead of
decrypting to the wrong key.

The master key never lives in the database. It comes from the environment variable
``AXION_MASTER_KEY`` (base64 or URL-safe base64 of 32 bytes) or from a key file that is created
at first start with ``0600`` permissions; a key file readable by anyone but its owner is refused.
Each stored secret carries ``key_id``, a one-way fingerprint of the master key it was encrypted
with, so a wrong master key is reported as such (:class:`VaultKeyError`) rather than showing up
as a decryption failure -- or as garbage.

Plaintext leaves the vault only inside :class:`Secret`, whose ``repr``, ``str`` and ``format``
show the masked form (``••••WXYZ``); the plaintext needs an explicit :meth:`Secret.reveal`.
No exception raised here contains plaintext or key material.

Persistence goes through the small :class:`CredentialStore` protocol (the database implements
it); :class:`InMemoryCredentialStore` serves tests and tools.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import secrets
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from core.domain import utc, utcnow

#: Environment variable holding the master key (base64 of 32 bytes).
MASTER_KEY_ENV = "AXION_MASTER_KEY"
KEY_BYTES = 32
NONCE_BYTES = 12
MASK_PREFIX = "••••"
#: Secrets shorter than this are masked completely: showing four characters of a short value
#: would give away too much of it.
MIN_LEN_TO_SHOW_TAIL = 8
_AAD_PREFIX = b"axion-vault/v1/credential:"
_KEY_ID_LABEL = b"axion-vault/v1/key-id"
_MAX_NAME_LEN = 100
WRONG_KEY_MESSAGE = "the master key does not match the one the credentials were encrypted with"


class VaultError(Exception):
    """A credential problem. Messages name credentials but never contain secrets."""


class VaultKeyError(VaultError):
    """The master key is missing, malformed, badly protected or not the one in use."""


class VaultIntegrityError(VaultError):
    """A stored ciphertext failed authentication: altered, truncated or stored under the wrong
    name."""


class UnknownCredential(VaultError):
    """No credential is stored under that name."""


# ---------------------------------------------------------------------------------------------
# Masking and the plaintext wrapper
# ---------------------------------------------------------------------------------------------


def mask(text: str) -> str:
    """``••••`` followed by the last 4 characters (``••••`` alone for short values)."""
    if len(text) < MIN_LEN_TO_SHOW_TAIL:
        return MASK_PREFIX
    return MASK_PREFIX + text[-4:]


class Secret:
    """A plaintext credential that does not print itself.

    ``repr``, ``str`` and f-string formatting all give the masked form, so passing a Secret to a
    logger, an exception or a page shows ``••••WXYZ``. :meth:`reveal` returns the plaintext and
    is meant to be called only where the value is handed to a broker SDK. Pickling is refused so
    the value cannot be written somewhere by accident.
    """

    __slots__ = ("_masked", "_value")

    def __init__(self, value: str) -> None:
        if not isinstance(value, str):
            raise TypeError("a Secret holds a str")
        self._value = value
        self._masked = mask(value)

    def reveal(self) -> str:
        """The plaintext. Hand it to the SDK that needs it; never log or store it."""
        return self._value

    @property
    def masked(self) -> str:
        return self._masked

    def __repr__(self) -> str:
        return f"Secret({self._masked!r})"

    def __str__(self) -> str:
        return self._masked

    def __format__(self, spec: str) -> str:
        # any format spec still yields the masked form: a spec must not be a way to the value
        return self._masked

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented
        # constant time, so comparing keys does not leak them through timing
        return hmac.compare_digest(self._value.encode(), other._value.encode())

    __hash__ = None  # type: ignore[assignment]  # secrets are not meant to be dict keys

    def __bool__(self) -> bool:
        return bool(self._value)

    def __reduce__(self) -> Any:
        raise TypeError("a Secret cannot be pickled")


# ---------------------------------------------------------------------------------------------
# The master key
# ---------------------------------------------------------------------------------------------


def _decode_key(text: str, source: str) -> bytes:
    """Base64, standard or URL-safe alphabet, padding optional, of exactly 32 bytes."""
    cleaned = "".join(text.split())
    if not cleaned:
        raise VaultKeyError(f"{source} is empty; it must hold base64 of {KEY_BYTES} random bytes")
    # one strict decoder for both alphabets: the standard library's URL-safe decoder silently
    # skips characters outside its alphabet, which would accept a mistyped key
    standard = cleaned.translate(str.maketrans("-_", "+/"))
    standard += "=" * (-len(standard) % 4)
    try:
        raw = base64.b64decode(standard.encode("ascii"), validate=True)
    except (binascii.Error, ValueError, UnicodeEncodeError):
        # the value itself is never echoed: it is (or is meant to be) key material
        raise VaultKeyError(
            f"{source} is not valid base64; it must hold base64 of {KEY_BYTES} bytes"
        ) from None
    if len(raw) != KEY_BYTES:
        raise VaultKeyError(
            f"{source} decodes to {len(raw)} bytes; AES-256 needs exactly {KEY_BYTES}"
        )
    return raw


def encode_key(key: bytes) -> str:
    """The text form of a master key (URL-safe base64), as written to a key file."""
    if len(key) != KEY_BYTES:
        raise VaultKeyError(f"a master key has {KEY_BYTES} bytes, got {len(key)}")
    return base64.urlsafe_b64encode(key).decode("ascii")


def generate_master_key() -> bytes:
    """32 bytes from the operating system's CSPRNG."""
    return secrets.token_bytes(KEY_BYTES)


def key_id(key: bytes) -> str:
    """A fingerprint naming a master key without revealing it (HMAC-SHA256 of a fixed label)."""
    return hmac.new(key, _KEY_ID_LABEL, hashlib.sha256).hexdigest()[:16]


def _check_key_file_mode(path: Path) -> None:
    if os.name != "posix":
        return  # POSIX permission bits do not exist elsewhere; the ACLs are the operator's job
    info = path.stat()
    if not stat.S_ISREG(info.st_mode):
        raise VaultKeyError(f"key file {path} is not a regular file")
    broader = stat.S_IMODE(info.st_mode) & 0o077
    if broader:
        raise VaultKeyError(
            f"key file {path} has permissions {oct(stat.S_IMODE(info.st_mode))}; it must be "
            f"readable by its owner only: chmod 600 {path}"
        )


def _read_key_file(path: Path) -> bytes:
    _check_key_file_mode(path)
    try:
        text = path.read_text(encoding="ascii")
    except UnicodeDecodeError:
        raise VaultKeyError(f"key file {path} is not base64 text") from None
    return _decode_key(text, f"key file {path}")


def _create_key_file(path: Path) -> bytes | None:
    """Write a new key to ``path`` atomically; None if another process created it first.

    The key is written to a temporary file opened with ``O_CREAT | O_EXCL`` and mode 0600, then
    hard-linked into place: the link fails if ``path`` exists, and a reader never sees a half
    written key file.
    """
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    key = generate_master_key()
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        try:
            if hasattr(os, "fchmod"):
                os.fchmod(fd, 0o600)  # exactly 0600, whatever the process umask removed
            os.write(fd, (encode_key(key) + "\n").encode("ascii"))
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.link(tmp, path)
        except FileExistsError:
            return None
    finally:
        tmp.unlink(missing_ok=True)
    return key


def load_master_key(
    key_file: str | os.PathLike[str] | None = None, *, env: Mapping[str, str] | None = None
) -> bytes:
    """The master key: ``AXION_MASTER_KEY`` if set, else ``key_file`` (created with 0600 at
    first start and reused afterwards). Raises :class:`VaultKeyError` with the fix to apply."""
    environ = os.environ if env is None else env
    from_env = environ.get(MASTER_KEY_ENV)
    if from_env is not None and from_env.strip():
        return _decode_key(from_env, MASTER_KEY_ENV)
    if key_file is None:
        raise VaultKeyError(f"no master key: set {MASTER_KEY_ENV} or configure a key file")
    return key_from_file(key_file)


def key_from_file(key_file: str | os.PathLike[str]) -> bytes:
    """A 32-byte key kept in ``key_file``: created there with 0600 at first use (atomically, so
    two processes starting together agree on one key), read back afterwards."""
    path = Path(key_file)
    if not path.exists():
        created = _create_key_file(path)
        if created is not None:
            return created
    return _read_key_file(path)


def _check_key(key: bytes) -> bytes:
    if not isinstance(key, bytes | bytearray) or len(key) != KEY_BYTES:
        raise VaultKeyError(f"the master key must be {KEY_BYTES} bytes")
    return bytes(key)


# ---------------------------------------------------------------------------------------------
# Stored form and persistence port
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EncryptedSecret:
    """One credential as stored: AES-GCM ciphertext (with its tag), nonce, the master key's
    fingerprint and the masked form for display. Contains nothing secret."""

    ciphertext: bytes = field(repr=False)
    nonce: bytes = field(repr=False)
    key_id: str
    masked: str
    updated_by: str
    updated_at: datetime

    def __post_init__(self) -> None:
        object.__setattr__(self, "updated_at", utc(self.updated_at))

    def to_dict(self) -> dict[str, str]:
        """JSON-able form; bytes as standard base64."""
        return {
            "ciphertext": base64.b64encode(self.ciphertext).decode("ascii"),
            "nonce": base64.b64encode(self.nonce).decode("ascii"),
            "key_id": self.key_id,
            "masked": self.masked,
            "updated_by": self.updated_by,
            "updated_at": self.updated_at.isoformat(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EncryptedSecret:
        try:
            return cls(
                ciphertext=base64.b64decode(data["ciphertext"], validate=True),
                nonce=base64.b64decode(data["nonce"], validate=True),
                key_id=str(data["key_id"]),
                masked=str(data["masked"]),
                updated_by=str(data["updated_by"]),
                updated_at=datetime.fromisoformat(str(data["updated_at"])),
            )
        except KeyError as exc:
            raise VaultError(f"stored credential is missing {exc.args[0]!r}") from None
        except (binascii.Error, ValueError, TypeError) as exc:
            raise VaultError(f"stored credential is malformed: {exc}") from None


class CredentialStore(Protocol):
    """Where encrypted credentials are kept (a database table in production).

    A store may also offer ``put_many(items, by, at)`` writing several credentials in one
    transaction; :meth:`CredentialVault.rotate` uses it when present.
    """

    def get(self, name: str) -> EncryptedSecret | None: ...

    def put(self, name: str, secret: EncryptedSecret, by: str, at: datetime) -> None: ...

    def names(self) -> list[str]: ...

    def delete(self, name: str) -> None: ...


class InMemoryCredentialStore:
    """A :class:`CredentialStore` in a dict; ``writes`` records every put as (name, by, at)."""

    def __init__(self) -> None:
        self.data: dict[str, EncryptedSecret] = {}
        self.writes: list[tuple[str, str, datetime]] = []

    def get(self, name: str) -> EncryptedSecret | None:
        return self.data.get(name)

    def put(self, name: str, secret: EncryptedSecret, by: str, at: datetime) -> None:
        self.data[name] = secret
        self.writes.append((name, by, at))

    def names(self) -> list[str]:
        return sorted(self.data)

    def delete(self, name: str) -> None:
        self.data.pop(name, None)


# ---------------------------------------------------------------------------------------------
# The vault
# ---------------------------------------------------------------------------------------------


def _check_name(name: str) -> str:
    if not isinstance(name, str) or not name.strip():
        raise VaultError("a credential needs a name")
    if name != name.strip() or len(name) > _MAX_NAME_LEN or not name.isprintable():
        raise VaultError(
            f"credential name must be printable, without surrounding spaces and at most "
            f"{_MAX_NAME_LEN} characters: {name[:_MAX_NAME_LEN]!r}"
        )
    return name


def _aad(name: str) -> bytes:
    return _AAD_PREFIX + name.encode("utf-8")


class CredentialVault:
    """Encrypts credentials under the master key and decrypts them into :class:`Secret`."""

    def __init__(self, store: CredentialStore, master_key: bytes) -> None:
        self.store = store
        self._key = _check_key(master_key)
        self._key_id = key_id(self._key)

    def __repr__(self) -> str:
        return f"CredentialVault(key_id={self._key_id!r})"

    @property
    def key_id(self) -> str:
        """Fingerprint of the master key in use (safe to show)."""
        return self._key_id

    # ------------------------------------------------------------------ encrypt / decrypt
    def _encrypt(
        self, key: bytes, name: str, plaintext: str, by: str, at: datetime
    ) -> EncryptedSecret:
        nonce = secrets.token_bytes(NONCE_BYTES)
        ciphertext = AESGCM(key).encrypt(nonce, plaintext.encode("utf-8"), _aad(name))
        return EncryptedSecret(ciphertext, nonce, key_id(key), mask(plaintext), by, at)

    def _decrypt(self, key: bytes, name: str, stored: EncryptedSecret) -> str:
        if not hmac.compare_digest(stored.key_id, key_id(key)):
            raise VaultKeyError(WRONG_KEY_MESSAGE)
        if len(stored.nonce) != NONCE_BYTES:
            raise VaultIntegrityError(f"credential {name!r} has a malformed nonce")
        try:
            data = AESGCM(key).decrypt(stored.nonce, stored.ciphertext, _aad(name))
        except InvalidTag:
            raise VaultIntegrityError(
                f"credential {name!r} failed its integrity check: the stored ciphertext was "
                f"altered or belongs to another credential; set it again"
            ) from None
        return data.decode("utf-8")

    def _load(self, name: str) -> EncryptedSecret:
        stored = self.store.get(name)
        if stored is None:
            raise UnknownCredential(f"no credential named {name!r}")
        return stored

    # ------------------------------------------------------------------ public API
    def set(self, name: str, secret: str | Secret, by: str, at: datetime) -> EncryptedSecret:
        """Encrypt and store ``secret`` under ``name`` (replacing any previous value)."""
        _check_name(name)
        if not isinstance(by, str) or not by.strip():
            raise VaultError("setting a credential needs the name of who did it")
        value = secret.reveal() if isinstance(secret, Secret) else secret
        if not isinstance(value, str):
            raise VaultError(f"credential {name!r} must be text")
        value = value.strip()  # a pasted key often carries a trailing newline or space
        if not value:
            raise VaultError(f"credential {name!r} is empty")
        at = utc(at)
        stored = self._encrypt(self._key, name, value, by, at)
        self.store.put(name, stored, by, at)
        return stored

    def get(self, name: str) -> Secret:
        """The credential, decrypted, wrapped in a :class:`Secret`."""
        return Secret(self._decrypt(self._key, name, self._load(name)))

    def masked(self, name: str) -> str:
        """The credential's masked form (last 4 characters), without decrypting it."""
        return self._load(name).masked

    def names(self) -> list[str]:
        return list(self.store.names())

    def has(self, name: str) -> bool:
        return self.store.get(name) is not None

    def delete(self, name: str) -> None:
        self.store.delete(name)

    def verify(self) -> int:
        """Decrypt every credential (discarding the plaintext); the number checked. Raises on
        the first wrong key or damaged entry, so a bad master key is caught at start-up."""
        names = self.store.names()
        for name in names:
            self._decrypt(self._key, name, self._load(name))
        return len(names)

    def rotate(
        self, new_master_key: bytes, *, by: str = "system", at: datetime | None = None
    ) -> int:
        """Re-encrypt every credential under ``new_master_key``; returns how many were
        re-encrypted. From then on this vault uses the new key and the old one fails.

        All or nothing: everything is decrypted first, so a wrong key or a damaged entry stops
        the rotation before anything is written. Entries already under the new key (a rotation
        that was interrupted) are kept as they are. A store with ``put_many`` writes all in one
        transaction; otherwise, if a write fails, the entries already written are put back.
        """
        new_key = _check_key(new_master_key)
        new_id = key_id(new_key)
        at = utcnow() if at is None else utc(at)
        plain: dict[str, tuple[EncryptedSecret, str]] = {}
        for name in self.store.names():
            stored = self._load(name)
            if hmac.compare_digest(stored.key_id, new_id):
                self._decrypt(new_key, name, stored)  # already rotated: only check it is sound
                continue
            plain[name] = (stored, self._decrypt(self._key, name, stored))
        updated = {
            name: self._encrypt(new_key, name, value, old.updated_by, old.updated_at)
            for name, (old, value) in plain.items()
        }
        put_many = getattr(self.store, "put_many", None)
        if put_many is not None:
            put_many(updated, by, at)
        else:
            written: list[str] = []
            try:
                for name, stored in updated.items():
                    self.store.put(name, stored, by, at)
                    written.append(name)
            except BaseException:
                for name in written:  # leave every entry readable with the old key
                    self.store.put(name, plain[name][0], by, at)
                raise
        self._key, self._key_id = new_key, new_id
        return len(updated)


__all__ = [
    "MASTER_KEY_ENV",
    "WRONG_KEY_MESSAGE",
    "CredentialStore",
    "CredentialVault",
    "EncryptedSecret",
    "InMemoryCredentialStore",
    "Secret",
    "UnknownCredential",
    "VaultError",
    "VaultIntegrityError",
    "VaultKeyError",
    "encode_key",
    "generate_master_key",
    "key_from_file",
    "key_id",
    "load_master_key",
    "mask",
]
