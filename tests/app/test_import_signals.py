"""The signal import command queues good rows and stores bad ones rejected with their reason."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from app.import_signals import main
from core.domain import SignalStatus
from db.engine import open_store

REPO = Path(__file__).resolve().parents[2]


def signals_in(url: str):
    store = open_store(url)
    try:
        with store.unit_of_work(read_only=True) as uow:
            return sorted(uow.signals.recent(100), key=lambda s: s.id)
    finally:
        store.engine.dispose()


def test_csv_with_a_bad_row_queues_the_good_one_and_stores_the_reason(tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'i.db'}"
    path = tmp_path / "signals.csv"
    path.write_text(
        "symbol,direction,entry,stop,target,conviction\n"
        "AAPL,long,200,198,204,80\n"
        "MSFT,long,400,405,,80\n",  # the stop of a long must be below the entry
        encoding="utf-8",
    )
    assert main([str(path), "--database-url", url]) == 1
    out = capsys.readouterr().out
    assert "queued 1 signals" in out and "row 1 rejected" in out
    good, bad = signals_in(url)
    assert good.symbol == "AAPL" and good.status is SignalStatus.PENDING
    assert good.source == "import"
    assert bad.symbol == "MSFT" and bad.status is SignalStatus.REJECTED and "stop" in bad.reason


def test_json_file_from_the_command_line(tmp_path):
    url = f"sqlite:///{tmp_path / 'j.db'}"
    path = tmp_path / "signals.json"
    rows = [
        {
            "symbol": "SPY",
            "direction": "short",
            "entry": "600",
            "stop": "606",
            "trade_type": "swing",
        }
    ]
    path.write_text(json.dumps(rows), encoding="utf-8")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "app.import_signals",
            str(path),
            "--database-url",
            url,
            "--source",
            "desk",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    (signal,) = signals_in(url)
    assert signal.source == "desk" and signal.status is SignalStatus.PENDING


def test_an_unreadable_file_stores_nothing(tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'k.db'}"
    path = tmp_path / "signals.json"
    path.write_text("{not json", encoding="utf-8")
    assert main([str(path), "--database-url", url]) == 1
    assert "error:" in capsys.readouterr().err
    assert signals_in(url) == []
