"""benchmarks/ticks.py runs end to end and prints its figures (the figures are not checked:
timings depend on the machine)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]


def test_ticks_benchmark_prints_its_figures():
    result = subprocess.run(
        [sys.executable, "benchmarks/ticks.py", "--ticks", "500", "--repeat", "1"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert re.search(r"^positions\s+: 10 open positions, ", out, re.M), out
    assert re.search(r"^stream\s+: 500 ticks over 90 min, \d+ bars fed", out, re.M), out
    assert re.search(r"^baseline \(iterate \+ compare\)\s+: [\d,]+ ticks/s$", out, re.M), out
    assert re.search(r"^mark \+ exit check\s+: [\d,]+ ticks/s \([\d.]+ us/tick\)$", out, re.M), out
    assert re.search(r"^mark \+ exit check / baseline\s+: [\d.]+x", out, re.M), out
    assert re.search(r"^ticks with an exit firing\s+: [\d,]+ \(", out, re.M), out
    assert re.search(r"^goal 50,000 ticks/s: (met|not met)$", out, re.M), out
