"""Importing signal files: good rows queue pending, bad rows are stored rejected with the reason,
unreadable files raise and store nothing."""

from __future__ import annotations

import json

import pytest

from core.domain import Direction, OrderType, SignalStatus, TradeType
from core.signals.importer import SignalFileError, import_signals_file, read_signals_file
from tests.core.brokers.fixed_market import at

NOW = at(20, 15, 0)


@pytest.fixture
def store(tmp_path):
    from db.engine import open_store

    s = open_store(f"sqlite:///{tmp_path}/x.db")
    yield s
    s.engine.dispose()


def stored(store, ids):
    with store.unit_of_work(read_only=True) as uow:
        return [uow.signals.get(i) for i in ids]


def all_signals(store):
    with store.unit_of_work(read_only=True) as uow:
        return uow.signals.recent(1000)


CSV = """\
symbol,direction,entry,stop,target,qty,conviction,trade_type,timeframe,order_type,metadata
AAPL,long,230.50,228.00,235.50,10,80,day,10Min,market,"{""note"": ""breakout""}"
spy,SHORT,580,582,,,,,,,
TSLA,sideways,250,245,,,,,,,
MSFT,long,400,401,,,,,,,
NVDA,long,NaN,120,,,,,,,
AMD,long,150,148,,,,,,,not json
"""


def test_csv_good_and_bad_rows(store, tmp_path):
    path = tmp_path / "signals.csv"
    path.write_text(CSV)
    result = import_signals_file(store, path, NOW)
    assert len(result.accepted) == 2
    good = stored(store, result.accepted)
    aapl, spy = good
    assert (aapl.symbol, aapl.direction, aapl.status) == (
        "AAPL",
        Direction.LONG,
        SignalStatus.PENDING,
    )
    assert (str(aapl.entry), str(aapl.stop), str(aapl.target)) == ("230.50", "228.00", "235.50")
    assert (aapl.conviction, aapl.trade_type, aapl.order_type) == (
        80,
        TradeType.DAY,
        OrderType.MARKET,
    )
    assert aapl.metadata == {"note": "breakout"}
    assert aapl.source == "import"
    assert (spy.symbol, spy.direction, spy.target) == ("SPY", Direction.SHORT, None)

    reasons = {i: reason for i, _, reason in result.rejected}
    assert sorted(reasons) == [2, 3, 4, 5]
    assert "direction must be long or short" in reasons[2]
    assert "stop 401 must be below entry 400" in reasons[3]
    assert "entry must be a finite number" in reasons[4]
    assert "metadata (not a JSON object)" in reasons[5]
    for _, sid, reason in result.rejected:
        (signal,) = stored(store, [sid])
        assert signal.status is SignalStatus.REJECTED
        assert signal.reason == reason
        assert "raw" in signal.metadata  # the input is kept
    assert len(all_signals(store)) == 6  # nothing dropped


def test_json_good_and_bad_rows(store, tmp_path):
    path = tmp_path / "signals.json"
    rows = [
        {"symbol": "AAPL", "direction": "long", "entry": 230.5, "stop": "228", "qty": 5},
        {"symbol": "SPY", "direction": "short", "entry": "580", "stop": "579"},
        {"symbol": "QQQ", "direction": "long", "entry": "500", "stop": "495", "colour": "red"},
        "not an object",
        {
            "symbol": "IWM",
            "direction": "short",
            "entry": "200",
            "stop": "202",
            "metadata": {"a": 1},
        },
    ]
    path.write_text(json.dumps(rows))
    result = import_signals_file(store, path, NOW, source="desk")
    accepted = stored(store, result.accepted)
    assert [s.symbol for s in accepted] == ["AAPL", "IWM"]
    assert accepted[1].metadata == {"a": 1}
    assert all(s.source == "desk" for s in accepted)
    reasons = {i: reason for i, _, reason in result.rejected}
    assert "stop 579 must be above entry 580" in reasons[1]
    assert "unknown fields: colour" in reasons[2]
    assert reasons[3] == "a signal must be an object"


def test_json_object_with_signals_key(tmp_path):
    path = tmp_path / "s.json"
    path.write_text(json.dumps({"signals": [{"symbol": "AAPL"}]}))
    assert read_signals_file(path) == [{"symbol": "AAPL"}]


def test_csv_extra_cells_and_blank_lines(store, tmp_path):
    path = tmp_path / "s.csv"
    path.write_text(
        "\ufeffSymbol, Direction ,entry,stop\n\nAAPL,long,10,9\nAAPL,long,10,9,surprise\n"
    )
    result = import_signals_file(store, path, NOW)
    assert len(result.accepted) == 1
    ((_, _, reason),) = result.rejected
    assert "unknown fields: column 5 (no header)" in reason


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("s.json", "[{", "malformed JSON at line 1"),
        ("s.json", '{"symbol": "AAPL"}', "expected a JSON list"),
        ("s.csv", "", "empty file"),
        ("s.csv", "symbol,,entry\n", "header column 2 has no name"),
        ("s.csv", "symbol,symbol\n", "duplicate header columns: symbol"),
        ("s.txt", "whatever", "unsupported file type '.txt'"),
    ],
)
def test_unreadable_files_raise_and_store_nothing(store, tmp_path, name, content, message):
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(SignalFileError, match=message):
        import_signals_file(store, path, NOW)
    assert all_signals(store) == []


def test_missing_and_binary_files(tmp_path):
    with pytest.raises(SignalFileError, match="no such file"):
        read_signals_file(tmp_path / "nope.csv")
    binary = tmp_path / "b.csv"
    binary.write_bytes(b"symbol\n\xff\xfe\x00")
    with pytest.raises(SignalFileError, match="not UTF-8"):
        read_signals_file(binary)
