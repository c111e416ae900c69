"""Import signals from a CSV or JSON file into the signal queue.

Formats
-------
``.csv``
    UTF-8 (a byte-order mark is allowed), a header row of intake field names (``symbol``,
    ``direction``, ``entry``, ``stop`` required; ``target``, ``qty``, ``conviction``,
    ``trade_type``, ``timeframe``, ``order_type``, ``metadata``, ``created_at`` optional), one
    signal per row. Empty cells are absent values. A ``metadata`` cell holds a JSON object.
``.json``
    A list of objects with the same field names (or ``{"signals": [...]}``).

Every row goes through :func:`core.signals.intake.submit_signals` in one transaction: good rows
are queued pending, each bad row is stored rejected with its reason and the raw input, so a file
is never half-imported and nothing in it is silently dropped. A ``metadata`` cell that is not a
JSON object rejects its row (reported as an unknown field ``metadata (not a JSON object)``). A
file that cannot be read as a whole (missing, not UTF-8, malformed JSON, no CSV header, a JSON
value that is not a list of objects at the top, an unknown extension) raises
:class:`SignalFileError` and stores nothing.

The command-line wrapper (``--database-url`` and so on) belongs to the application layer, which
opens the store and calls :func:`import_signals_file`; this module never touches a database
itself.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime
from pathlib import Path
from typing import Any

from core.ports import Store
from core.signals.intake import IntakeResult, submit_signals

DEFAULT_SOURCE = "import"
_BAD_METADATA = "metadata (not a JSON object)"


class SignalFileError(ValueError):
    """A signal file that cannot be read; the message names the file and the problem."""


def import_signals_file(
    store: Store, path: str | Path, now: datetime, source: str = DEFAULT_SOURCE
) -> IntakeResult:
    """Read ``path`` (``.csv`` or ``.json``) and submit its signals (see the module docstring).

    Returns the intake result: stored ids of accepted rows, and (row index, stored id, reason)
    for rejected ones; row indexes count data rows from 0."""
    rows = read_signals_file(path)
    return submit_signals(store, rows, source, now)


def read_signals_file(path: str | Path) -> list[Any]:
    """The file's rows as plain data, unvalidated (intake validates them)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".json"):
        raise SignalFileError(f"{path.name}: unsupported file type {suffix!r}; use .csv or .json")
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except FileNotFoundError:
        raise SignalFileError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise SignalFileError(f"{path}: is a directory, not a signal file") from None
    except UnicodeDecodeError as exc:
        raise SignalFileError(f"{path.name}: not UTF-8 text ({exc.reason})") from None
    except OSError as exc:
        raise SignalFileError(f"{path.name}: cannot be read ({exc.strerror})") from None
    if suffix == ".json":
        return _json_rows(text, path.name)
    return _csv_rows(text, path.name)


def _json_rows(text: str, name: str) -> list[Any]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SignalFileError(
            f"{name}: malformed JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"
        ) from None
    if isinstance(data, dict) and set(data) == {"signals"}:
        data = data["signals"]
    if not isinstance(data, list):
        raise SignalFileError(f"{name}: expected a JSON list of signal objects")
    # Non-object items are passed on: intake stores each rejected ("a signal must be an object").
    return data


def _csv_rows(text: str, name: str) -> list[dict[str, Any]]:
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except StopIteration:
        raise SignalFileError(f"{name}: empty file; expected a header row") from None
    except csv.Error as exc:
        raise SignalFileError(f"{name} line 1: {exc}") from None
    fields = [h.strip().lower() for h in header]
    if not any(fields):
        raise SignalFileError(f"{name}: the first line must be a header row of field names")
    blank = [i + 1 for i, h in enumerate(fields) if not h]
    if blank:
        raise SignalFileError(f"{name}: header column {blank[0]} has no name")
    dupes = sorted({h for h in fields if fields.count(h) > 1})
    if dupes:
        raise SignalFileError(f"{name}: duplicate header columns: {', '.join(dupes)}")
    rows: list[dict[str, Any]] = []
    try:
        for cells in reader:
            if not any(c.strip() for c in cells):
                continue  # blank line
            row: dict[str, Any] = {}
            for i, cell in enumerate(cells):
                key = fields[i] if i < len(fields) else f"column {i + 1} (no header)"
                value = cell.strip()
                if value == "":
                    continue
                row[key] = value
            _decode_metadata(row)
            rows.append(row)
    except csv.Error as exc:
        raise SignalFileError(f"{name} line {reader.line_num}: {exc}") from None
    return rows


def _decode_metadata(row: dict[str, Any]) -> None:
    text = row.get("metadata")
    if text is None:
        return
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        value = None
    if isinstance(value, dict):
        row["metadata"] = value
    else:
        # Intake would quietly drop a non-object; an unknown field makes it reject the row.
        row[_BAD_METADATA] = row.pop("metadata")


__all__ = ["DEFAULT_SOURCE", "SignalFileError", "import_signals_file", "read_signals_file"]
