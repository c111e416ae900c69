from __future__ import annotations

import asyncio
import csv
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from core.domain import Bar
from core.marketdata.calendar import ManualClock
from core.marketdata.replay import (
    SAMPLE_PATH,
    ReplayClock,
    ReplayDataError,
    ReplayMarket,
    load_sample,
    read_bars,
)
from core.ports import MarketData, UnknownSymbol

OPEN = datetime(2026, 11, 20, 14, 30, tzinfo=UTC)
CLOSE = datetime(2026, 11, 20, 21, 0, tzinfo=UTC)
HEADER = "timestamp,symbol,open,high,low,close,volume"


def sample_rows() -> list[dict[str, str]]:
    with SAMPLE_PATH.open(newline="") as fh:
        return list(csv.DictReader(fh))


def all_bars(market: ReplayMarket, timeframe: str = "1Min") -> dict[str, list[Bar]]:
    market.advance_to(market.data_end)
    return {s: market.bars_sync(s, timeframe) for s in sorted(market.symbols())}


def write_csv(tmp_path: Path, *lines: str, name: str = "bars.csv") -> Path:
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n")
    return path


# -- the sample --------------------------------------------------------------------------------


def test_sample_loads_exactly() -> None:
    market = load_sample()
    assert isinstance(market, MarketData)
    assert market.symbols() == frozenset({"AAPL", "SPY", "TQQQ"})
    assert market.interval == timedelta(minutes=1)
    assert (market.data_start, market.data_end) == (OPEN, CLOSE)
    assert market.clock.now() == OPEN
    bars = all_bars(market)
    rows = sample_rows()
    assert sum(len(b) for b in bars.values()) == len(rows) == 3 * 390
    by_key = {(r["symbol"], r["timestamp"]): r for r in rows}
    for series in bars.values():
        assert len(series) == 390
        for bar in series:
            row = by_key[(bar.symbol, bar.start.strftime("%Y-%m-%dT%H:%M:%SZ"))]
            # exact text round trip: no float anywhere on the way
            assert [str(bar.open), str(bar.high), str(bar.low), str(bar.close)] == [
                row["open"],
                row["high"],
                row["low"],
                row["close"],
            ]
            assert str(bar.volume) == row["volume"]
            assert bar.end - bar.start == timedelta(minutes=1)
            assert bar.low <= min(bar.open, bar.close) <= max(bar.open, bar.close) <= bar.high


def test_sample_file_is_what_the_script_makes(tmp_path: Path) -> None:
    from core.marketdata.data import make_sample

    out = tmp_path / "again.csv"
    assert make_sample.main(out) == 3 * 390
    assert out.read_bytes() == SAMPLE_PATH.read_bytes()


def test_parquet_with_text_columns_reads_the_same_bars(tmp_path: Path) -> None:
    frame = pd.read_csv(SAMPLE_PATH, dtype=str)
    path = tmp_path / "bars.parquet"
    frame.to_parquet(path, index=False)
    assert all_bars(ReplayMarket.from_file(path)) == all_bars(load_sample())


def test_parquet_with_typed_columns_reads_the_same_bars(tmp_path: Path) -> None:
    frame = pd.read_csv(SAMPLE_PATH)
    frame["timestamp"] = pd.to_datetime(frame["timestamp"], utc=True)
    assert frame["open"].dtype == "float64" and frame["volume"].dtype == "int64"
    path = tmp_path / "bars.parquet"
    frame.to_parquet(path, index=False)
    assert all_bars(ReplayMarket.from_file(path)) == all_bars(load_sample())


def test_parquet_with_naive_timestamps_is_refused(tmp_path: Path) -> None:
    frame = pd.read_csv(SAMPLE_PATH)
    frame["timestamp"] = pd.to_datetime(frame["timestamp"], utc=True).dt.tz_localize(None)
    path = tmp_path / "naive.parquet"
    frame.to_parquet(path, index=False)
    with pytest.raises(ReplayDataError, match="timestamp has no time zone"):
        read_bars(path)


def test_parquet_errors_name_the_row(tmp_path: Path) -> None:
    table = pa.table(
        {
            "timestamp": ["2026-11-20T14:30:00Z", "2026-11-20T14:31:00Z"],
            "symbol": ["AAPL", "AAPL"],
            "open": [10.0, 10.0],
            "high": [10.5, 9.0],
            "low": [9.5, 9.5],
            "close": [10.0, 9.2],
            "volume": [100, 100],
        }
    )
    path = tmp_path / "bad.parquet"
    pq.write_table(table, path)
    with pytest.raises(ReplayDataError, match=r"bad\.parquet row 2: high 9 is below low 9\.5"):
        read_bars(path)


# -- validation --------------------------------------------------------------------------------

GOOD = "2026-11-20T14:30:00Z,AAPL,10.00,10.50,9.50,10.20,1000"
NEXT = "2026-11-20T14:31:00Z,AAPL,10.20,10.30,10.10,10.25,800"


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        (
            ("timestamp,symbol,open,high,low,close", GOOD[:-5]),
            r"bars.csv: missing column\(s\) volume; need timestamp, symbol",
        ),
        ((HEADER, GOOD, "2026-11-20T14:31:00Z,AAPL,abc,10.3,10.1,10.2,5"), "line 3: open 'abc'"),
        ((HEADER, GOOD, "2026-11-20T14:31:00Z,AAPL,10.2,10.3,10.1,,5"), "line 3: close is empty"),
        ((HEADER, "2026-11-20T14:30:00Z,AAPL,0,10.5,0,10.2,5"), "line 2: open must be positive"),
        ((HEADER, "2026-11-20T14:30:00Z,AAPL,10,10.5,-1,10.2,5"), "line 2: low must be positive"),
        ((HEADER, "2026-11-20T14:30:00Z,AAPL,10,9,9.5,9.2,5"), "line 2: high 9 is below low 9.5"),
        (
            (HEADER, "2026-11-20T14:30:00Z,AAPL,11,10.5,9.5,10,5"),
            r"line 2: open 11 is outside the bar's range 9.5..10.5",
        ),
        ((HEADER, "2026-11-20T14:30:00Z,AAPL,10,10.5,9.5,10,-5"), "line 2: volume must not be"),
        ((HEADER, "2026-11-20T14:30:00Z,AAPL,10,10.5,9.5,10,NaN"), "line 2: volume 'NaN' is not"),
        ((HEADER, GOOD, NEXT, GOOD), r"line 4: duplicate bar for AAPL .* \(first at line 2\)"),
        (
            (HEADER, "2026-11-20T14:30:00,AAPL,10,10.5,9.5,10,5"),
            "line 2: timestamp .* no UTC offset",
        ),
        ((HEADER, "yesterday,AAPL,10,10.5,9.5,10,5"), "line 2: timestamp 'yesterday' is not ISO"),
        ((HEADER, "2026-11-20T14:30:00Z,,10,10.5,9.5,10,5"), "line 2: symbol is empty"),
        ((HEADER,), "bars.csv: no bars"),
        ((HEADER, GOOD), "cannot detect the bar interval"),
        (
            (HEADER, GOOD, "2026-11-20T14:30:30Z,AAPL,10,10.5,9.5,10,5"),
            "line 3: bars 0:00:30 apart",
        ),
    ],
)
def test_bad_files_give_clear_errors(tmp_path: Path, lines: tuple[str, ...], message: str) -> None:
    path = write_csv(tmp_path, *lines)
    with pytest.raises(ReplayDataError, match=message):
        read_bars(path)


def test_given_interval_must_fit_the_data(tmp_path: Path) -> None:
    path = write_csv(tmp_path, HEADER, GOOD, NEXT)
    with pytest.raises(ReplayDataError, match=r"line 3: bar starts 0:01:00 after .* 0:05:00"):
        read_bars(path, interval="5Min")
    with pytest.raises(ValueError, match="interval must be one of"):
        read_bars(path, interval="1Day")
    single = write_csv(tmp_path, HEADER, GOOD, name="one.csv")
    assert read_bars(single, interval="5Min").bars[0].end == OPEN + timedelta(minutes=5)


def test_unsupported_file_type(tmp_path: Path) -> None:
    path = tmp_path / "bars.json"
    path.write_text("[]")
    with pytest.raises(ReplayDataError, match=r"unsupported file type '\.json'"):
        read_bars(path)


def test_rows_in_any_order_and_offsets_are_normalised(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path,
        "Timestamp,Symbol,Open,High,Low,Close,Volume,extra",
        "2026-11-20T09:31:00-05:00,aapl,10.20,10.30,10.10,10.25,800,x",
        "2026-11-20T09:30:00-05:00,aapl,10.00,10.50,9.50,10.20,1000,y",
    )
    data = read_bars(path)
    assert [b.start for b in data.bars] == [OPEN, OPEN + timedelta(minutes=1)]
    assert {b.symbol for b in data.bars} == {"AAPL"}


# -- time --------------------------------------------------------------------------------------


def test_advance_step_and_exhausted() -> None:
    market = load_sample()
    assert not market.exhausted
    assert market.bars_sync("SPY") == []
    assert market.bars_sync("SPY", end=CLOSE) == []  # asking for later bars shows nothing yet
    # before any bar completes, last is the first bar's open
    assert market.quote_sync("SPY").last == Decimal(sample_rows()[1]["open"])

    assert market.advance() == OPEN + timedelta(minutes=1)
    bars = market.bars_sync("SPY")
    assert len(bars) == 1
    assert market.quote_sync("SPY").last == bars[0].close
    assert market.step(9) == OPEN + timedelta(minutes=10)
    assert len(market.bars_sync("SPY")) == 10
    market.advance_to(OPEN + timedelta(minutes=12, seconds=30))
    assert len(market.bars_sync("SPY")) == 12
    assert market.advance() == OPEN + timedelta(minutes=13)
    with pytest.raises(ValueError, match="cannot move a replay back"):
        market.advance_to(OPEN)
    steps = 0
    while not market.exhausted:
        market.advance()
        steps += 1
    assert steps == 390 - 13
    assert market.clock.now() == CLOSE
    assert market.advance() == CLOSE  # no-op once exhausted
    assert len(market.bars_sync("SPY")) == 390


def test_start_option_and_a_given_clock() -> None:
    at = OPEN + timedelta(minutes=30)
    market = ReplayMarket.from_file(SAMPLE_PATH, start=at)
    assert len(market.bars_sync("AAPL")) == 30
    clock = ManualClock(at)
    shared = ReplayMarket(read_bars(SAMPLE_PATH), clock=clock)
    assert shared.clock is clock
    assert shared.bars_sync("AAPL") == market.bars_sync("AAPL")


def test_replay_clock_runs_at_a_speed() -> None:
    wall = ManualClock(datetime(2030, 1, 1, tzinfo=UTC))
    clock = ReplayClock(OPEN, speed=60.0, wall=wall)
    wall.advance(10)
    assert clock.now() == OPEN + timedelta(minutes=10)
    clock.set(OPEN + timedelta(hours=1))
    wall.advance(1)
    assert clock.now() == OPEN + timedelta(hours=1, minutes=1)
    still = ReplayClock(OPEN)
    assert still.advance(90) == OPEN + timedelta(seconds=90)
    with pytest.raises(ValueError, match="speed"):
        ReplayClock(OPEN, speed=0)


# -- bars, quotes, volume ----------------------------------------------------------------------


def test_ten_minute_bars_are_their_minute_bars() -> None:
    market = load_sample()
    market.advance_to(market.data_end)
    minutes = market.bars_sync("TQQQ")
    tens = market.bars_sync("TQQQ", "10Min")
    assert len(tens) == 39
    for k, bar in enumerate(tens):
        parts = minutes[10 * k : 10 * k + 10]
        assert (bar.start, bar.end) == (parts[0].start, parts[-1].end)
        assert bar.open == parts[0].open and bar.close == parts[-1].close
        assert bar.high == max(p.high for p in parts)
        assert bar.low == min(p.low for p in parts)
        assert bar.volume == sum(p.volume for p in parts)
    hours = market.bars_sync("TQQQ", "1Hour")
    assert [(h.end - h.start) for h in hours] == [timedelta(minutes=30)] + [timedelta(hours=1)] * 6
    (day,) = market.bars_sync("TQQQ", "1Day")
    assert (day.start, day.end, day.volume) == (OPEN, CLOSE, sum(b.volume for b in minutes))


def test_partial_buckets_are_not_visible_yet() -> None:
    market = load_sample(start=OPEN + timedelta(minutes=17))
    assert market.bars_sync("AAPL", "5Min")[-1].end == OPEN + timedelta(minutes=15)
    assert market.bars_sync("AAPL", "1Day") == []
    assert market.bars_sync("AAPL", "1Min", limit=2)[-1].end == OPEN + timedelta(minutes=17)
    after = market.bars_sync("AAPL", start=OPEN + timedelta(minutes=15))
    assert [b.end for b in after] == [OPEN + timedelta(minutes=16), OPEN + timedelta(minutes=17)]


def test_timeframes_finer_than_the_file_are_refused(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path,
        HEADER,
        "2026-11-20T14:30:00Z,AAPL,10,10.5,9.5,10,5",
        "2026-11-20T14:35:00Z,AAPL,10,10.5,9.5,10,5",
        "2026-11-20T14:40:00Z,AAPL,10,10.5,9.5,10,5",
    )
    market = ReplayMarket.from_file(path, start=CLOSE)
    assert market.interval == timedelta(minutes=5)
    assert len(market.bars_sync("AAPL", "5Min")) == 3
    assert len(market.bars_sync("AAPL", "15Min")) == 1
    with pytest.raises(ValueError, match="cannot build 1Min bars from 5-minute bars"):
        market.bars_sync("AAPL", "1Min")
    with pytest.raises(ValueError, match="unknown timeframe"):
        market.bars_sync("AAPL", "3Min")
    with pytest.raises(UnknownSymbol):
        market.bars_sync("MSFT", "5Min")


def test_quotes_follow_the_clock_with_the_configured_spread() -> None:
    market = load_sample(spread_bps="20", start=OPEN + timedelta(minutes=45, seconds=10))
    for symbol in sorted(market.symbols()):
        quote = asyncio.run(market.quote(symbol))
        last_bar = market.bars_sync(symbol, limit=1)[0]
        assert quote.last == last_bar.close
        assert quote.at == market.clock.now()
        assert quote.bid < quote.last < quote.ask
        assert quote.ask - quote.bid <= quote.last * Decimal("0.002") + Decimal("0.02")
        assert quote.ask - quote.bid >= quote.last * Decimal("0.002") - Decimal("0.02")
    with pytest.raises(UnknownSymbol):
        market.quote_sync("MSFT")


def test_average_daily_volume_is_the_files_mean_or_the_override() -> None:
    market = load_sample(adv={"SPY": 50_000_000})
    total = sum(Decimal(r["volume"]) for r in sample_rows() if r["symbol"] == "AAPL")
    assert asyncio.run(market.average_daily_volume("AAPL")) == total  # one session in the file
    assert market.average_daily_volume_sync("SPY") == Decimal(50_000_000)
    with pytest.raises(UnknownSymbol):
        market.average_daily_volume_sync("MSFT")
