"""``python -m app.credentials``: broker keys in the encrypted credential store.

    python -m app.credentials set alpaca.api_key        # asks for the value (not echoed)
    python -m app.credentials set alpaca.secret_key < secret.txt
    python -m app.credentials list                      # names with the last 4 characters
    python -m app.credentials delete alpaca.api_key
    python -m app.credentials rotate                    # re-encrypt under a new master key

Values are AES-256-GCM encrypted with the master key (``AXION_MASTER_KEY``, or the 0600 file
``master.key`` in ``AXION_SECRETS_DIR`` created at first use) before they reach the database;
they are never printed, only their masked form.
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys

from app.runtime import credential_vault
from app.settings import AxionSettings
from core.domain import utcnow
from core.vault import VaultError, encode_key, generate_master_key
from db.engine import open_store


def _read_value(name: str) -> str:
    if sys.stdin.isatty():
        return getpass.getpass(f"{name}: ")
    return sys.stdin.readline().rstrip("\r\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m app.credentials", description=__doc__)
    sub = parser.add_subparsers(dest="action", required=True)
    put = sub.add_parser("set", help="store a credential (the value is read from the terminal)")
    put.add_argument("name")
    put.add_argument("--by", default=os.environ.get("USER", "admin"), help="who stores it")
    sub.add_parser("list", help="names and masked values")
    drop = sub.add_parser("delete", help="remove a credential")
    drop.add_argument("name")
    sub.add_parser("rotate", help="re-encrypt everything under a new master key file")
    args = parser.parse_args(argv)

    settings = AxionSettings()
    store = open_store(settings.database_url)
    try:
        vault = credential_vault(settings, store)
        if args.action == "set":
            value = _read_value(args.name)
            if not value:
                print("nothing stored: the value is empty", file=sys.stderr)
                return 1
            vault.set(args.name, value, args.by, utcnow())
            print(f"{args.name} stored ({vault.masked(args.name)})")
        elif args.action == "list":
            for name in vault.names():
                print(f"{name}\t{vault.masked(name)}")
        elif args.action == "delete":
            vault.delete(args.name)
            print(f"{args.name} deleted")
        elif args.action == "rotate":
            if os.environ.get("AXION_MASTER_KEY"):
                print(
                    "the master key comes from AXION_MASTER_KEY: rotate it there", file=sys.stderr
                )
                return 1
            new_key = generate_master_key()
            path = settings.master_key_file
            # The new key is on disk before any credential is re-encrypted under it, so an
            # interrupted rotation leaves it in master.key.new rather than losing it.
            tmp = path.with_name(path.name + ".new")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as handle:
                handle.write(encode_key(new_key) + "\n")
                handle.flush()
                os.fsync(handle.fileno())
            try:
                count = vault.rotate(new_key, by="rotation")
            except BaseException:
                tmp.unlink(missing_ok=True)
                raise
            os.replace(tmp, path)
            print(f"{count} credentials re-encrypted; new master key in {path}")
    except VaultError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        store.engine.dispose()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
