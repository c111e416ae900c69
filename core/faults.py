"""Named fail points for crash testing.

``AXION_FAIL_POINTS="after_write_ahead:3,after_submit:1"`` makes the process kill itself with
SIGKILL the 3rd time it passes ``after_write_ahead`` (and so on). Unset, :func:`fail_point` is a
dictionary lookup on an empty dict. The crash tests use it to stop the worker at exact points
between the write-ahead commit, the broker call and the recording of the broker's answer.
"""

from __future__ import annotations

import os
import signal

_counts: dict[str, int] = {}


def _parse(spec: str) -> dict[str, int]:
    points: dict[str, int] = {}
    for item in filter(None, (part.strip() for part in spec.split(","))):
        name, _, nth = item.partition(":")
        points[name] = int(nth or "1")
    return points


_armed: dict[str, int] = _parse(os.environ.get("AXION_FAIL_POINTS", ""))


def fail_point(name: str) -> None:
    """Die here (SIGKILL, nothing flushed) if this point is armed and its count is reached."""
    if not _armed or name not in _armed:
        return
    _counts[name] = _counts.get(name, 0) + 1
    if _counts[name] >= _armed[name]:
        os.kill(os.getpid(), signal.SIGKILL)
