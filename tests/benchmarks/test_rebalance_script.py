"""benchmarks/rebalance.py runs end to end and prints both figures and the targets (the figures
are not checked: timings depend on the machine)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]


def test_rebalance_benchmark_prints_the_preview_and_execution_times():
    result = subprocess.run(
        [sys.executable, "benchmarks/rebalance.py", "--stocks", "4", "--runs", "2"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert re.search(r"^portfolio\s+: 4 stocks, equity [\d,]+\.\d\d; paper broker, ", out, re.M)
    assert "order-rate limit off" in out, out
    assert re.search(
        r"^orders\s+: 2 sells then 2 buys per run, at most [\d.]+% of ADV each: the router "
        r"works each as one marketable limit \(market algorithm\)",
        out,
        re.M,
    ), out
    assert re.search(
        r"^preview\s+: median [\d.]+ ms over 2 runs \(min [\d.]+, max [\d.]+\)$", out, re.M
    ), out
    assert re.search(
        r"^preview baseline\s+: [\d.]+ ms .*; preview / baseline [\d.]+x$", out, re.M
    ), out
    assert re.search(
        r"^approval to fills\s+: median \d+ ms over 2 runs \(max \d+ ms\), \d+ executor ticks$",
        out,
        re.M,
    ), out
    assert re.search(r"^execution baseline\s+: [\d.]+ ms per idle executor tick; ", out, re.M), out
    assert re.search(
        r"^targets\s+: preview < 100 ms: (met|not met); execution < 5 s: (met|not met)",
        out,
        re.M,
    ), out
