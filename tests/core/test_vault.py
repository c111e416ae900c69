"""The credential vault: encryption at rest, masking, key handling and rotation."""

from __future__ import annotations

import base64
import json
import logging
import os
import pickle
import stat
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from core.vault import (
    MASTER_KEY_ENV,
    WRONG_KEY_MESSAGE,
    CredentialVault,
    EncryptedSecret,
    InMemoryCredentialStore,
    Secret,
    UnknownCredential,
    VaultError,
    VaultIntegrityError,
    VaultKeyError,
    encode_key,
    generate_master_key,
    key_id,
    load_master_key,
    mask,
)

AT = datetime(2026, 11, 20, 15, tzinfo=UTC)
API_KEY = "PKTESTKEY1234567WXYZ"
API_SECRET = "s3cr3t-Value-That-Must-Never-Leak-9876"


@pytest.fixture
def store() -> InMemoryCredentialStore:
    return InMemoryCredentialStore()


@pytest.fixture
def key() -> bytes:
    return generate_master_key()


@pytest.fixture
def vault(store: InMemoryCredentialStore, key: bytes) -> CredentialVault:
    v = CredentialVault(store, key)
    v.set("alpaca.key_id", API_KEY, "admin", AT)
    v.set("alpaca.secret", API_SECRET, "admin", AT)
    return v


# --- round trip and stored form --------------------------------------------------------------


def test_round_trip(vault: CredentialVault) -> None:
    assert vault.get("alpaca.key_id").reveal() == API_KEY
    assert vault.get("alpaca.secret").reveal() == API_SECRET
    assert vault.names() == ["alpaca.key_id", "alpaca.secret"]
    assert vault.masked("alpaca.key_id") == "••••WXYZ"
    assert vault.has("alpaca.secret") and not vault.has("ibkr.password")


def test_stored_form_holds_no_plaintext(vault: CredentialVault, store, key: bytes) -> None:
    stored = store.get("alpaca.secret")
    assert stored is not None
    blob = json.dumps(stored.to_dict()) + repr(stored)
    assert API_SECRET not in blob
    assert API_SECRET.encode() not in stored.ciphertext
    assert stored.masked == "••••9876"
    assert stored.key_id == key_id(key) and len(stored.nonce) == 12
    assert stored.updated_by == "admin" and stored.updated_at == AT
    assert store.writes == [("alpaca.key_id", "admin", AT), ("alpaca.secret", "admin", AT)]
    # the fingerprint does not reveal the key
    assert base64.b64encode(key).decode() not in blob and key.hex() not in blob


def test_encrypted_secret_dict_round_trip(vault: CredentialVault, store) -> None:
    stored = store.get("alpaca.key_id")
    data = json.loads(json.dumps(stored.to_dict()))
    assert EncryptedSecret.from_dict(data) == stored
    with pytest.raises(VaultError, match="missing 'nonce'"):
        EncryptedSecret.from_dict({k: v for k, v in data.items() if k != "nonce"})
    with pytest.raises(VaultError, match="malformed"):
        EncryptedSecret.from_dict({**data, "ciphertext": "not base64!"})


def test_each_encryption_uses_a_fresh_nonce(vault: CredentialVault, store) -> None:
    first = store.get("alpaca.key_id")
    vault.set("alpaca.key_id", API_KEY, "admin", AT)
    second = store.get("alpaca.key_id")
    assert first.nonce != second.nonce and first.ciphertext != second.ciphertext
    assert vault.get("alpaca.key_id").reveal() == API_KEY


def test_set_refuses_bad_input_without_echoing_it(vault: CredentialVault) -> None:
    with pytest.raises(VaultError, match="empty"):
        vault.set("x", "   ", "admin", AT)
    with pytest.raises(VaultError, match="who"):
        vault.set("x", API_SECRET, "", AT)
    with pytest.raises(VaultError, match="name"):
        vault.set(" padded ", API_SECRET, "admin", AT)
    with pytest.raises(ValueError, match="naive"):
        vault.set("x", API_SECRET, "admin", datetime(2026, 1, 1))
    with pytest.raises(UnknownCredential):
        vault.get("nothing")
    # a pasted key loses its surrounding whitespace; a Secret can be stored as it is
    vault.set("pasted", f"  {API_KEY}\n", "admin", AT)
    assert vault.get("pasted").reveal() == API_KEY
    vault.set("copied", Secret(API_SECRET), "admin", AT)
    assert vault.get("copied").reveal() == API_SECRET


def test_delete(vault: CredentialVault) -> None:
    vault.delete("alpaca.key_id")
    assert vault.names() == ["alpaca.secret"]


# --- masking ---------------------------------------------------------------------------------


def test_mask_shows_the_last_four_only() -> None:
    assert mask(API_KEY) == "••••WXYZ"
    assert mask("abcdefgh") == "••••efgh"
    assert mask("short") == "••••"  # four of five characters would give it away
    assert mask("") == "••••"


def test_secret_never_shows_itself(vault: CredentialVault) -> None:
    secret = vault.get("alpaca.secret")
    shown = [
        repr(secret),
        str(secret),
        f"{secret}",
        f"{secret!r}",
        f"{secret:>60}",
        "%s %r" % (secret, secret),  # noqa: UP031 - the old style must be masked too
        "{}".format(secret),  # noqa: UP032
        repr([secret]),
        repr({"key": secret}),
    ]
    for text in shown:
        assert API_SECRET not in text
        assert "9876" in text  # the masked tail is what is shown
    with pytest.raises(TypeError):
        json.dumps({"key": secret})
    with pytest.raises(TypeError):
        pickle.dumps(secret)
    assert secret == Secret(API_SECRET) and secret != Secret(API_KEY)
    assert secret.masked == "••••9876"


def test_logging_never_contains_the_plaintext(
    vault: CredentialVault, caplog: pytest.LogCaptureFixture
) -> None:
    log = logging.getLogger("axion.test.vault")
    secret = vault.get("alpaca.secret")
    with caplog.at_level(logging.DEBUG, logger="axion.test.vault"):
        log.info("using credential %s", secret)
        log.info("credential repr %r", secret)
        log.warning(f"formatted {secret}")  # an f-string is the usual accident
        log.error("in a dict %s", {"secret": secret})
        try:
            raise RuntimeError(f"broker refused key {secret}")
        except RuntimeError:
            log.exception("login failed")
    assert len(caplog.records) == 5
    assert API_SECRET not in caplog.text
    assert "••••9876" in caplog.text


def test_exceptions_never_contain_plaintext(vault: CredentialVault, store) -> None:
    other = CredentialVault(store, generate_master_key())
    messages = []
    for call in (
        lambda: other.get("alpaca.secret"),
        lambda: other.rotate(generate_master_key()),
        lambda: vault.set("x" * 200, API_SECRET, "admin", AT),
    ):
        with pytest.raises(VaultError) as info:
            call()
        messages.append(str(info.value) + repr(info.value))
    assert all(API_SECRET not in m for m in messages)


# --- wrong keys and tampering ----------------------------------------------------------------


def test_wrong_master_key_is_a_clear_error(vault: CredentialVault, store) -> None:
    wrong = CredentialVault(store, generate_master_key())
    with pytest.raises(VaultKeyError) as info:
        wrong.get("alpaca.secret")
    assert str(info.value) == WRONG_KEY_MESSAGE
    with pytest.raises(VaultKeyError):
        wrong.verify()
    assert vault.verify() == 2
    # masked forms need no key: the settings page can still show what is configured
    assert wrong.masked("alpaca.secret") == "••••9876"


def test_tampered_ciphertext_fails_its_integrity_check(vault: CredentialVault, store) -> None:
    stored = store.get("alpaca.secret")
    flipped = bytes([stored.ciphertext[0] ^ 1]) + stored.ciphertext[1:]
    store.data["alpaca.secret"] = replace(stored, ciphertext=flipped)
    with pytest.raises(VaultIntegrityError, match="integrity check"):
        vault.get("alpaca.secret")
    store.data["alpaca.secret"] = replace(stored, nonce=b"\0" * 12)
    with pytest.raises(VaultIntegrityError):
        vault.get("alpaca.secret")
    store.data["alpaca.secret"] = replace(stored, nonce=b"short")
    with pytest.raises(VaultIntegrityError, match="nonce"):
        vault.get("alpaca.secret")


def test_ciphertexts_swapped_between_names_fail(vault: CredentialVault, store) -> None:
    key_entry, secret_entry = store.get("alpaca.key_id"), store.get("alpaca.secret")
    store.data["alpaca.key_id"], store.data["alpaca.secret"] = secret_entry, key_entry
    for name in ("alpaca.key_id", "alpaca.secret"):
        with pytest.raises(VaultIntegrityError, match=name):
            vault.get(name)


# --- rotation --------------------------------------------------------------------------------


def test_rotation_re_encrypts_everything_and_the_old_key_then_fails(
    vault: CredentialVault, store, key: bytes
) -> None:
    before = {n: store.get(n) for n in store.names()}
    new_key = generate_master_key()
    assert vault.rotate(new_key, by="admin", at=AT) == 2
    for name, old in before.items():
        now = store.get(name)
        assert now.key_id == key_id(new_key) != old.key_id
        assert now.ciphertext != old.ciphertext and now.nonce != old.nonce
        assert now.masked == old.masked and now.updated_by == old.updated_by
    assert vault.get("alpaca.secret").reveal() == API_SECRET
    assert vault.key_id == key_id(new_key)
    assert CredentialVault(store, new_key).get("alpaca.key_id").reveal() == API_KEY
    with pytest.raises(VaultKeyError, match="does not match"):
        CredentialVault(store, key).get("alpaca.key_id")


def test_rotation_is_all_or_nothing(vault: CredentialVault, store, key: bytes) -> None:
    stored = store.get("alpaca.secret")
    store.data["alpaca.secret"] = replace(stored, ciphertext=stored.ciphertext[:-1] + b"\0")
    snapshot = dict(store.data)
    with pytest.raises(VaultIntegrityError):
        vault.rotate(generate_master_key())
    assert store.data == snapshot  # nothing was written
    assert vault.key_id == key_id(key)


def test_rotation_puts_entries_back_when_a_write_fails(vault: CredentialVault, key) -> None:
    class FailingStore(InMemoryCredentialStore):
        fail_after = 1

        def put(self, name, secret, by, at):  # type: ignore[no-untyped-def]
            if secret.key_id != key_id(key):
                if self.fail_after == 0:
                    raise OSError("disk full")
                self.fail_after -= 1
            super().put(name, secret, by, at)

    failing = FailingStore()
    failing.data = dict(vault.store.data)  # type: ignore[attr-defined]
    v = CredentialVault(failing, key)
    with pytest.raises(OSError):
        v.rotate(generate_master_key())
    assert {e.key_id for e in failing.data.values()} == {key_id(key)}
    assert v.get("alpaca.secret").reveal() == API_SECRET


def test_rotation_uses_a_transactional_put_many(vault: CredentialVault, key: bytes) -> None:
    class BatchStore(InMemoryCredentialStore):
        batches: list[list[str]] = []

        def put_many(self, items, by, at):  # type: ignore[no-untyped-def]
            self.batches.append(sorted(items))
            self.data.update(items)

    batch = BatchStore()
    batch.data = dict(vault.store.data)  # type: ignore[attr-defined]
    v = CredentialVault(batch, key)
    assert v.rotate(generate_master_key()) == 2
    assert batch.batches == [["alpaca.key_id", "alpaca.secret"]]
    assert batch.writes == []


def test_an_interrupted_rotation_can_be_finished(vault: CredentialVault, store, key) -> None:
    new_key = generate_master_key()
    half = CredentialVault(InMemoryCredentialStore(), new_key)
    half.set("alpaca.secret", API_SECRET, "admin", AT)
    store.data["alpaca.secret"] = half.store.get("alpaca.secret")  # already under the new key
    assert vault.rotate(new_key) == 1
    assert CredentialVault(store, new_key).verify() == 2


# --- the master key --------------------------------------------------------------------------


def test_master_key_from_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    raw = generate_master_key()
    monkeypatch.setenv(MASTER_KEY_ENV, base64.b64encode(raw).decode())
    assert load_master_key(tmp_path / "unused.key") == raw
    assert not (tmp_path / "unused.key").exists()
    monkeypatch.setenv(MASTER_KEY_ENV, base64.urlsafe_b64encode(raw).decode().rstrip("="))
    assert load_master_key() == raw
    assert load_master_key(env={MASTER_KEY_ENV: encode_key(raw)}) == raw


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("not base64 at all!", "not valid base64"),
        (base64.b64encode(b"x" * 16).decode(), "16 bytes"),
    ],
)
def test_a_bad_environment_key_is_a_clear_error_without_the_value(
    monkeypatch: pytest.MonkeyPatch, value: str, message: str
) -> None:
    monkeypatch.setenv(MASTER_KEY_ENV, value)
    with pytest.raises(VaultKeyError, match=message) as info:
        load_master_key()
    assert value not in str(info.value)
    assert MASTER_KEY_ENV in str(info.value)


def test_no_key_source_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(MASTER_KEY_ENV, raising=False)
    with pytest.raises(VaultKeyError, match=MASTER_KEY_ENV):
        load_master_key()


def test_key_file_is_created_0600_and_reused(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.delenv(MASTER_KEY_ENV, raising=False)
    path = tmp_path / "keys" / "master.key"
    old_umask = os.umask(0o022)  # a permissive umask must not widen the file
    try:
        first = load_master_key(path)
    finally:
        os.umask(old_umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(first) == 32
    assert load_master_key(path) == first
    assert [p.name for p in path.parent.iterdir()] == ["master.key"]  # no temporary left
    # the file holds the key as text, so it can also be given as AXION_MASTER_KEY
    assert load_master_key(env={MASTER_KEY_ENV: path.read_text()}) == first


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660])
def test_key_file_with_broader_permissions_is_refused(tmp_path: Path, mode: int) -> None:
    path = tmp_path / "master.key"
    load_master_key(path, env={})
    path.chmod(mode)
    with pytest.raises(VaultKeyError, match="chmod 600") as info:
        load_master_key(path, env={})
    assert oct(mode) in str(info.value)


def test_a_damaged_key_file_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "master.key"
    path.write_text("too short")
    path.chmod(0o600)
    with pytest.raises(VaultKeyError, match="key file"):
        load_master_key(path, env={})


def test_vault_refuses_a_malformed_key(store) -> None:
    with pytest.raises(VaultKeyError):
        CredentialVault(store, b"short")
    with pytest.raises(VaultKeyError):
        CredentialVault(store, generate_master_key()).rotate(b"short")
