"""``python -m app.import_signals FILE``: queue signals from a CSV or JSON file.

Good rows are queued pending for the executor; each bad row is stored rejected with its reason
(see :mod:`core.signals.importer` for the format). Prints what was queued and what was rejected,
and exits 1 when the file cannot be read or any row was rejected.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from app.settings import AxionSettings
from core.domain import utcnow
from core.signals.importer import DEFAULT_SOURCE, SignalFileError, import_signals_file
from db.engine import open_store


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m app.import_signals", description=__doc__.split("\n")[0]
    )
    p.add_argument("file", help="a .csv or .json file of signals")
    p.add_argument("--database-url", help="the store (default: AXION_DATABASE_URL or SQLite)")
    p.add_argument("--source", default=DEFAULT_SOURCE, help="source name stored on each signal")
    args = p.parse_args(argv)
    settings = AxionSettings()
    store = open_store(args.database_url or settings.database_url)
    try:
        result = import_signals_file(store, args.file, utcnow(), args.source)
    except SignalFileError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        store.engine.dispose()
    print(
        f"queued {len(result.accepted)} signals: ids {', '.join(map(str, result.accepted)) or '-'}"
    )
    for row, stored_id, reason in result.rejected:
        print(f"row {row} rejected (stored as signal {stored_id}): {reason}")
    return 1 if result.rejected else 0


if __name__ == "__main__":
    sys.exit(main())
