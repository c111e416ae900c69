"""A loopback TWS emulator: the TWS API socket protocol at server version 157.

It lets the real ib_insync (and anything built on it, such as :mod:`core.brokers.ibkr` and
:mod:`core.marketdata.ibkr`) run end to end without Trader Workstation, IB Gateway or a network.
The wire format follows ``ib_protocol.md`` (shared reference) field for field: 4-byte
big-endian length framing, NUL-terminated text fields, the ``API\\0`` + ``v157..176``
handshake answered with exactly two fields, and the startup sync (managedAccounts, nextValidId,
farm notices, then the end markers of every startup request).

What it models
--------------
* One account (``DU123456`` by default) with cash, positions, account values and an account
  summary, streamed to subscribed clients after every fill.
* Stocks with a settable last price and a two-sided quote (``set_price``); snapshot and
  streaming market data; deterministic historical bars (regular New York sessions, weekdays).
* Option contracts (``secType`` ``OPT``, multiplier 100) keyed by their compact OCC symbol:
  listed with ``options=`` or :meth:`TwsEmulator.list_option`, priced per share of premium with
  ``set_price``. ``reqContractDetails`` answers an option request (by conId, by localSymbol, or
  by symbol + lastTradeDateOrContractMonth + strike + right) with the conId, the padded OCC
  symbol as localSymbol, multiplier 100, tradingClass and the underlying; a contract not listed
  or past its expiry date is error ``200``. Positions, portfolio values, executions and orders
  carry the full option contract; position ``avgCost`` and portfolio ``averageCost`` are per
  contract (x 100), as TWS sends them; cash and market values move by price x contracts x 100;
  option commissions follow IBKR's fixed pricing (0.65 USD a contract, 0.50 below 0.10 and 0.25
  below 0.05 of premium, at least 1 USD). MOC and LOC are refused for options (``387``).
* Orders: MKT, LMT, STP, STP LMT, TRAIL (amount or percent), MOC, LOC; time in force as sent.
  Market orders fill at the touch at once; limit orders when marketable; stops trigger on the
  last price; on-close orders fill in :meth:`TwsEmulator.run_closing_auction`. Every execution
  sends ``execDetails`` (reqId -1), ``orderStatus``, ``openOrder`` when filled and a
  ``commissionReport`` (IBKR fixed pricing: 0.005 USD a share, at least 1 USD, at most 1% of
  the value), then positions and account updates. ``fill_chunk`` splits fills into partials.
* Brackets: untransmitted orders are held silently until the transmitting order of their group
  arrives; children stay ``PreSubmitted`` until the parent fills, then work as one-cancels-all.
* Cancels (``202``), unknown cancels (``10147``), cancels of final orders (``10148``), global
  cancel, modifications (same order id), duplicate ids (``103``), rejects (``201``), prices off
  the 0.01 tick (``110``), unknown contracts (``200``), client id in use (``326``).
* ``reqExecutions`` replays executions with their commission reports; ``reqOpenOrders`` and
  ``reqCompletedOrders`` replay order state, so a client that reconnects can recover.

Fault injection (thread-safe, for tests)
----------------------------------------
``reject_next_order``, ``drop_next_fill`` (close the socket in the middle of a fill; the fill
still happens, so the client must recover it through ``reqExecutions``), ``set_delay`` (slow
responses), ``withhold_commission_reports``, ``disconnect_clients``, ``pause_listening`` /
``resume_listening`` (refuse connections), ``cancel_orders`` (as in the TWS window),
``purge_orders`` (forget working orders as a TWS restart does), ``send_error`` and
``send_raw``.

Running it
----------
In tests: ``with TwsEmulator() as tws: ...`` runs it on a background thread with its own event
loop (port 0 picks a free port: ``tws.port``). By hand::

    python -m tests.emulators.tws --port 7497

Control methods must be called from a thread other than the emulator's own loop while it runs
on its background thread; they return once the emulator has applied them and queued the
resulting messages.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import contextlib
import itertools
import logging
import math
import re
import struct
import threading
import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, time, timedelta
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

from core.domain import ValidationError
from core.options.occ import MULTIPLIER, OptionContract, Right, parse_occ

log = logging.getLogger(__name__)

SERVER_VERSION = 157
#: The "unset" double as real TWS writes it.
UNSET_DOUBLE = "1.7976931348623157E308"
DEFAULT_ACCOUNT = "DU123456"
NEW_YORK = ZoneInfo("America/New_York")
SESSION_OPEN = time(9, 30)
SESSION_CLOSE = time(16, 0)
CENT = Decimal("0.01")
ZERO = Decimal(0)
_SESSION_MINUTES = 390
#: Notices real TWS sends after the handshake (farm connections OK).
STARTUP_NOTICES: tuple[tuple[int, str], ...] = (
    (2104, "Market data farm connection is OK:usfarm"),
    (2106, "HMDS data farm connection is OK:ushmds"),
    (2158, "Sec-def data farm connection is OK:secdefnj"),
)
_WORKING = ("PreSubmitted", "Submitted")
_FINAL = ("Filled", "Cancelled")
_ORDER_TYPES = ("MKT", "LMT", "STP", "STP LMT", "TRAIL", "MOC", "LOC")
#: What contractDetails lists for option contracts.
_OPTION_ORDER_TYPES = (
    "ACTIVETIM,AD,ADJUST,ALERT,ALLOC,AVGCOST,BASKET,COND,CONDORDER,DAY,DEACT,DEACTDIS,DEACTEOD,"
    "GAT,GTC,GTD,GTT,HID,ICE,IOC,LIT,LMT,MIT,MKT,NONALGO,OCA,OPENCLOSE,PAON,POSTATS,PRICECHK,"
    "REL,RELPCTOFS,RELSTK,SCALE,SCALERST,SNAPMID,SNAPMKT,SNAPREL,STP,STPLMT,TRAIL,TRAILLIT,"
    "TRAILLMT,TRAILMIT,WHATIF"
)
_OPTION_EXCHANGES = (
    "SMART,AMEX,BATS,BOX,CBOE,CBOE2,CBOEOPT,EDGX,EMERALD,GEMINI,IBUSOPT,ISE,MERCURY,MIAX,"
    "NASDAQBX,NASDAQOM,PEARL,PHLX,PSE"
)
#: IBKR fixed pricing for US options: per contract by premium (at least, below), minimum 1 USD.
_OPTION_RATES = ((Decimal("0.10"), Decimal("0.65")), (Decimal("0.05"), Decimal("0.50")))
_OPTION_LOW_RATE = Decimal("0.25")
#: Daily volume as a share of the average, Monday to Friday (any 5 sessions average 1).
_VOLUME_BY_WEEKDAY = tuple(Decimal(x) for x in ("0.8", "0.9", "1.0", "1.1", "1.2"))


class TwsProtocolError(Exception):
    """A client broke the protocol (bad handshake, unsupported version range)."""


# ---------------------------------------------------------------------------------------------
# Model
# ---------------------------------------------------------------------------------------------


@dataclass
class SymbolState:
    """An instrument the emulator knows: contract data, the current price and its liquidity.
    Stocks are keyed by ticker; option contracts (``sec_type`` ``OPT``, see
    :func:`option_state`) by their compact OCC symbol, with ``underlying``, ``expiry``
    (YYYYMMDD), ``strike``, ``right`` (C or P) and a multiplier of 100."""

    symbol: str
    con_id: int
    last: Decimal
    primary_exchange: str = "NASDAQ"
    adv: int = 20_000_000
    long_name: str = ""
    spread: Decimal = Decimal("0.02")
    bid: Decimal | None = None
    ask: Decimal | None = None
    #: The price historical bars are generated around (the initial last price).
    reference: Decimal | None = None
    day_volume: int = 0
    sec_type: str = "STK"
    underlying: str = ""
    expiry: str = ""
    strike: Decimal = ZERO
    right: str = ""
    multiplier: int = 1

    def __post_init__(self) -> None:
        self.last = Decimal(self.last)
        if self.reference is None:
            self.reference = self.last

    @property
    def is_option(self) -> bool:
        return self.sec_type == "OPT"

    @property
    def ticker(self) -> str:
        """The contract's ``symbol`` field: the underlying's for an option."""
        return self.underlying if self.is_option else self.symbol

    @property
    def local_symbol(self) -> str:
        """The padded OCC symbol of an option (root on 6 characters), the ticker of a stock."""
        if not self.is_option:
            return self.symbol
        return parse_occ(self.symbol).occ(padded=True)

    @property
    def trading_class(self) -> str:
        return self.underlying if self.is_option else "NMS"

    @property
    def strike_text(self) -> str:
        return format(self.strike.normalize(), "f") if self.is_option else "0"

    @property
    def multiplier_text(self) -> str:
        return str(self.multiplier) if self.is_option else ""

    def contract(self, exchange: str) -> tuple[Any, ...]:
        """conId, symbol, secType, lastTradeDateOrContractMonth, strike, right, multiplier,
        exchange, currency, localSymbol, tradingClass (as openOrder, completedOrder and
        execDetails carry a contract)."""
        return (
            self.con_id, self.ticker, self.sec_type, self.expiry, self.strike_text, self.right,
            self.multiplier_text, exchange, "USD", self.local_symbol, self.trading_class,
        )  # fmt: skip

    def quote(self) -> tuple[Decimal, Decimal]:
        """Bid and ask: explicit ones if set, else ``last`` -/+ half the spread."""
        half = (self.spread / 2).quantize(CENT, ROUND_HALF_EVEN)
        bid = self.bid if self.bid is not None else max(CENT, self.last - half)
        ask = self.ask if self.ask is not None else self.last + half
        return bid, ask


def option_con_id(symbol: str) -> int:
    """A stable conId for an option contract (from its compact OCC symbol)."""
    return 600_000_000 + zlib.crc32(symbol.encode()) % 100_000_000


def option_state(
    symbol: str, last: Decimal | str, *, con_id: int | None = None, spread: str = "0.02"
) -> SymbolState:
    """An option contract from its OCC symbol (padded or compact; keyed by the compact one)."""
    contract = parse_occ(symbol)
    key = contract.symbol
    return SymbolState(
        key,
        con_id if con_id is not None else option_con_id(key),
        Decimal(last),
        primary_exchange="",
        adv=20_000,
        spread=Decimal(spread),
        sec_type="OPT",
        underlying=contract.underlying,
        expiry=f"{contract.expiry:%Y%m%d}",
        strike=contract.strike,
        right=contract.right.letter,
        multiplier=int(MULTIPLIER),
    )


DEFAULT_SYMBOLS: tuple[SymbolState, ...] = (
    SymbolState("AAPL", 265598, Decimal("190.00"), "NASDAQ", 55_000_000, "APPLE INC"),
    SymbolState("MSFT", 272093, Decimal("410.00"), "NASDAQ", 22_000_000, "MICROSOFT CORP"),
    SymbolState("SPY", 756733, Decimal("510.00"), "ARCA", 75_000_000, "SPDR S&P 500 ETF TRUST"),
)


@dataclass
class EmulatedOrder:
    """An order as the emulator holds it (keyed by client id and order id)."""

    order_id: int
    client_id: int
    perm_id: int
    symbol: str
    action: str
    qty: Decimal
    order_type: str
    lmt_price: Decimal | None
    aux_price: Decimal | None
    tif: str
    order_ref: str
    account: str
    parent_id: int = 0
    transmit: bool = True
    oca_group: str = ""
    trailing_percent: Decimal | None = None
    trail_stop_price: Decimal | None = None
    outside_rth: bool = False
    #: PendingSubmit (held, not transmitted), PreSubmitted, Submitted, Filled or Cancelled.
    status: str = "PendingSubmit"
    filled: Decimal = ZERO
    avg_price: Decimal = ZERO
    last_fill_price: Decimal = ZERO
    triggered: bool = False
    water_mark: Decimal | None = None
    completed_time: str = ""
    completed_status: str = ""

    @property
    def remaining(self) -> Decimal:
        return self.qty - self.filled

    @property
    def is_buy(self) -> bool:
        return self.action == "BUY"

    @property
    def is_final(self) -> bool:
        return self.status in _FINAL


@dataclass(frozen=True)
class EmulatedExecution:
    """One execution with its commission report."""

    exec_id: str
    order_id: int
    client_id: int
    perm_id: int
    symbol: str
    side: str  # BOT / SLD
    shares: Decimal
    price: Decimal
    cum_qty: Decimal
    avg_price: Decimal
    at: datetime
    order_ref: str
    account: str
    commission: Decimal
    realized_pnl: Decimal | None


@dataclass
class _Holding:
    qty: Decimal = ZERO
    avg_cost: Decimal = ZERO
    realized: Decimal = ZERO


# ---------------------------------------------------------------------------------------------
# Wire helpers
# ---------------------------------------------------------------------------------------------


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, float):
        return repr(value)
    return str(value)


def encode_message(fields: Sequence[Any]) -> bytes:
    """One framed message: 4-byte big-endian length, then NUL-terminated text fields."""
    payload = b"".join(_text(f).encode() + b"\0" for f in fields)
    return struct.pack(">I", len(payload)) + payload


def _price(value: Decimal | None) -> str:
    return UNSET_DOUBLE if value is None else format(value, "f")


def _decimal(text: str) -> Decimal | None:
    """A price or quantity field: empty, unset or unparsable become None."""
    if not text:
        return None
    try:
        value = Decimal(text)
    except InvalidOperation:
        return None
    if not value.is_finite() or value >= Decimal("1e300"):
        return None
    return value


def _money(value: Decimal) -> str:
    return format(value.quantize(CENT, ROUND_HALF_EVEN), "f")


def _ib_time(ts: datetime) -> str:
    return ts.astimezone(UTC).strftime("%Y%m%d %H:%M:%S") + " UTC"


def parse_ib_datetime(text: str, default: datetime) -> datetime:
    """``YYYYMMDD HH:MM:SS [zone]``, ``YYYYMMDD-HH:MM:SS`` (UTC) or ``YYYYMMDD``; empty: now."""
    text = text.strip()
    if not text:
        return default
    if re.fullmatch(r"\d{8}", text):
        day = datetime.strptime(text, "%Y%m%d").date()
        return datetime.combine(day, time(23, 59, 59), UTC)
    if re.fullmatch(r"\d{8}-\d{2}:\d{2}:\d{2}", text):
        return datetime.strptime(text, "%Y%m%d-%H:%M:%S").replace(tzinfo=UTC)
    parts = text.split(None, 2)
    stamp = datetime.strptime(parts[0] + parts[1], "%Y%m%d%H:%M:%S")
    zone = ZoneInfo(parts[2]) if len(parts) == 3 else UTC
    return stamp.replace(tzinfo=zone).astimezone(UTC)


_DURATION_UNITS = {"S": 1, "D": 86_400, "W": 7 * 86_400, "M": 30 * 86_400, "Y": 365 * 86_400}
_BAR_UNITS = {"sec": 1, "secs": 1, "min": 60, "mins": 60, "hour": 3600, "hours": 3600}


def parse_duration(text: str) -> timedelta:
    """A TWS duration string (``"3 D"``, ``"3600 S"``, ``"2 W"``, ``"1 M"``, ``"1 Y"``)."""
    number, unit = text.split()
    return timedelta(seconds=int(number) * _DURATION_UNITS[unit.upper()])


def parse_bar_size(text: str) -> int | None:
    """Bar length in seconds, or None for daily bars (``"1 day"``)."""
    number, unit = text.split()
    if unit.lower() in ("day", "days"):
        return None
    return int(number) * _BAR_UNITS[unit.lower()]


# ---------------------------------------------------------------------------------------------
# One client connection
# ---------------------------------------------------------------------------------------------


class _Session:
    """A connected API client."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.client_id: int | None = None
        self.positions_subscribed = False
        self.account_subscribed = False
        self.streams: dict[int, str] = {}  # market data reqId -> symbol
        self.closed = False

    def send(self, *fields: Any) -> None:
        if self.closed or self.writer.is_closing():
            return
        self.writer.write(encode_message(fields))

    def close(self) -> None:
        """Close after flushing what was already written (the client then sees EOF)."""
        self.closed = True
        self.writer.close()


# ---------------------------------------------------------------------------------------------
# The emulator
# ---------------------------------------------------------------------------------------------


class TwsEmulator:
    """A TWS API server on ``host:port`` at server version 157 (see the module docstring).

    ``TwsEmulator(host="127.0.0.1", port=0, *, account="DU123456", cash=Decimal(100000),
    symbols=DEFAULT_SYMBOLS, options=None, positions=None, next_valid_id=1,
    commission_per_share=0.005, min_commission=1, day_trades_remaining=3, fill_chunk=None,
    now=None)``

    ``options`` lists option contracts: OCC symbol -> last price per share of premium.
    ``positions`` maps symbols (an option's compact OCC symbol) to ``(qty, avg_cost)``, the
    average cost per share; ``fill_chunk`` caps the shares (contracts) of one
    execution (larger orders fill in several partial executions); ``now`` replaces the wall
    clock (a callable returning an aware datetime) for execution times and historical bars.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        account: str = DEFAULT_ACCOUNT,
        cash: Decimal | int | str = Decimal(100_000),
        symbols: Iterable[SymbolState] | None = None,
        options: Mapping[str, Decimal | str] | None = None,
        positions: dict[str, tuple[Decimal | int | str, Decimal | int | str]] | None = None,
        next_valid_id: int = 1,
        commission_per_share: Decimal | str = Decimal("0.005"),
        min_commission: Decimal | str = Decimal("1.00"),
        day_trades_remaining: int = 3,
        fill_chunk: Decimal | int | None = None,
        now: Callable[[], datetime] | None = None,
    ) -> None:
        self.host = host
        self._requested_port = port
        self._port: int | None = None
        self.account = account
        self.cash = Decimal(cash)
        self.symbols: dict[str, SymbolState] = {
            s.symbol: replace(s) for s in (symbols if symbols is not None else DEFAULT_SYMBOLS)
        }
        for occ, last in (options or {}).items():
            option = option_state(occ, last)
            self.symbols[option.symbol] = option
        self._holdings: dict[str, _Holding] = {}
        for symbol, (qty, avg) in (positions or {}).items():
            self._holdings[symbol] = _Holding(Decimal(qty), Decimal(avg))
        self.next_valid_id = next_valid_id
        self.commission_per_share = Decimal(commission_per_share)
        self.min_commission = Decimal(min_commission)
        self.day_trades_remaining = day_trades_remaining
        self.fill_chunk = None if fill_chunk is None else Decimal(fill_chunk)
        self._now = now or (lambda: datetime.now(UTC))
        self._start_equity = self._net_liquidation()

        self._orders: dict[tuple[int, int], EmulatedOrder] = {}
        self._rejected_ids: set[tuple[int, int]] = set()
        self._executions: list[EmulatedExecution] = []
        self._perm_ids = itertools.count(424_242_001)
        self._exec_seq = itertools.count(1)
        self._sessions: set[_Session] = set()
        self._requests: list[tuple[int | None, list[str]]] = []
        self._errors: list[str] = []

        self._reject_next: tuple[int, str] | None = None
        self._drop_next_fill: int | None = None
        self._commission_reports = True
        self._delay = 0.0
        self._delay_ids: frozenset[int] | None = None

        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

        self._handlers: dict[int, Callable[[_Session, list[str]], None]] = {
            1: self._req_mkt_data,
            2: self._cancel_mkt_data,
            3: self._place_order,
            4: self._cancel_order,
            5: self._req_open_orders,
            6: self._req_account_updates,
            7: self._req_executions,
            8: self._req_ids,
            9: self._req_contract_details,
            15: self._ignore,  # reqAutoOpenOrders
            16: self._req_all_open_orders,
            20: self._req_historical_data,
            25: self._ignore,  # cancelHistoricalData
            49: self._req_current_time,
            58: self._req_global_cancel,
            59: self._ignore,  # reqMarketDataType
            61: self._req_positions,
            62: self._req_account_summary,
            63: self._ignore,  # cancelAccountSummary
            64: self._cancel_positions,
            71: self._start_api,
            76: self._req_account_updates_multi,
            77: self._ignore,  # cancelAccountUpdatesMulti
            99: self._req_completed_orders,
        }

    # -- lifecycle -----------------------------------------------------------------------------
    @property
    def port(self) -> int:
        """The listening port (the chosen one when started with port 0)."""
        if self._port is None:
            raise RuntimeError("the emulator is not started")
        return self._port

    async def start_async(self) -> None:
        """Start listening in the running event loop."""
        self._loop = asyncio.get_running_loop()
        self._server = await asyncio.start_server(
            self._serve_client, self.host, self._port or self._requested_port
        )
        self._port = self._server.sockets[0].getsockname()[1]
        log.info("TWS emulator listening on %s:%s", self.host, self._port)

    async def stop_async(self) -> None:
        """Stop listening, close every connection and wait for their handlers to end."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for session in list(self._sessions):
            session.close()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    def start(self) -> TwsEmulator:
        """Run on a background thread with its own event loop; returns once listening."""
        if self._thread is not None:
            raise RuntimeError("the emulator is already running")
        ready = threading.Event()
        failure: list[BaseException] = []

        def main() -> None:
            loop = asyncio.new_event_loop()
            try:
                loop.run_until_complete(self.start_async())
            except BaseException as exc:  # reported to the starting thread
                failure.append(exc)
                ready.set()
                loop.close()
                return
            ready.set()
            try:
                loop.run_forever()
            finally:
                loop.run_until_complete(self.stop_async())
                loop.run_until_complete(loop.shutdown_asyncgens())
                loop.close()

        self._thread = threading.Thread(target=main, name="tws-emulator", daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("the TWS emulator did not start within 10 s")
        if failure:
            self._thread.join()
            self._thread = None
            raise failure[0]
        return self

    def stop(self) -> None:
        """Stop the background thread (closing every connection) and wait for it."""
        thread, loop = self._thread, self._loop
        if thread is None or loop is None:
            return
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        if thread.is_alive():
            raise RuntimeError("the TWS emulator thread did not stop")
        self._thread = None
        self._loop = None

    def __enter__(self) -> TwsEmulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _call(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run ``fn`` on the emulator's loop and return its result."""
        loop = self._loop
        if loop is None or self._thread is None or threading.current_thread() is self._thread:
            return fn(*args)
        done: concurrent.futures.Future[Any] = concurrent.futures.Future()

        def run() -> None:
            try:
                done.set_result(fn(*args))
            except BaseException as exc:
                done.set_exception(exc)

        loop.call_soon_threadsafe(run)
        return done.result(timeout=10)

    # -- controls (thread-safe) ----------------------------------------------------------------
    def set_price(
        self,
        symbol: str,
        last: Decimal | str,
        *,
        bid: Decimal | str | None = None,
        ask: Decimal | str | None = None,
    ) -> None:
        """Move a stock or a listed option (its compact OCC symbol; prices per share): update
        its quote, push ticks to streams, work the resting orders."""
        self._call(self._set_price, symbol, Decimal(last), bid, ask)

    def list_option(
        self,
        symbol: str,
        last: Decimal | str,
        *,
        bid: Decimal | str | None = None,
        ask: Decimal | str | None = None,
        con_id: int | None = None,
    ) -> int:
        """List an option contract (OCC symbol, padded or compact) if it is not listed yet and
        set its price (per share of premium); returns its conId. Use its compact OCC symbol
        with ``set_price`` afterwards."""
        option = option_state(symbol, last, con_id=con_id)

        def apply() -> int:
            listed = self.symbols.setdefault(option.symbol, option)
            self._set_price(option.symbol, Decimal(last), bid, ask)
            return listed.con_id

        return self._call(apply)

    def reject_next_order(
        self, reason: str = "Order rejected by the risk system", code: int = 201
    ) -> None:
        """Refuse the next transmitted order (and the rest of its bracket) with ``code``."""
        self._call(setattr, self, "_reject_next", (code, reason))

    def drop_next_fill(self, after_messages: int = 0) -> None:
        """At the next execution, send only the first ``after_messages`` of its messages
        (execDetails, orderStatus, openOrder, commissionReport) to the order's client, then
        close that client's socket. The execution itself still happens."""
        self._call(setattr, self, "_drop_next_fill", after_messages)

    def withhold_commission_reports(self, withhold: bool = True) -> None:
        """Stop (or resume) sending commission reports, live and in execution replays."""
        self._call(setattr, self, "_commission_reports", not withhold)

    def set_delay(self, seconds: float, message_ids: Iterable[int] | None = None) -> None:
        """Wait ``seconds`` before handling each request (only ``message_ids`` if given)."""

        def apply() -> None:
            self._delay = seconds
            self._delay_ids = None if message_ids is None else frozenset(message_ids)

        self._call(apply)

    def disconnect_clients(self) -> None:
        """Close every client connection."""
        self._call(lambda: [s.close() for s in list(self._sessions)])

    def pause_listening(self) -> None:
        """Stop accepting connections (clients get connection refused)."""

        def pause() -> None:
            if self._server is not None:
                self._server.close()
                self._server = None

        self._call(pause)

    def resume_listening(self) -> None:
        """Accept connections again, on the same port."""
        loop = self._loop
        if loop is None or self._thread is None:
            raise RuntimeError("resume_listening needs the emulator running on its thread")
        future = asyncio.run_coroutine_threadsafe(self.start_async(), loop)
        future.result(timeout=10)

    def run_closing_auction(self, symbol: str | None = None) -> None:
        """Fill on-close orders (MOC; LOC when marketable, else cancelled) at the last price."""
        self._call(self._closing_auction, symbol)

    def cancel_orders(self, order_ref: str | None = None) -> None:
        """Cancel working orders (all, or those with ``order_ref``) as a trader does in the TWS
        window; connected owners get the usual orderStatus and 202."""

        def cancel() -> None:
            for order in list(self._orders.values()):
                if not order.is_final and order_ref in (None, order.order_ref):
                    self._cancel(order)

        self._call(cancel)

    def purge_orders(self) -> None:
        """Forget every working and held order, as a TWS restart does with day orders."""
        self._call(self._purge)

    def set_position(self, symbol: str, qty: Decimal | int, avg_cost: Decimal | str) -> None:
        """Set a holding directly (no execution)."""
        self._call(self._holdings.__setitem__, symbol, _Holding(Decimal(qty), Decimal(avg_cost)))

    def send_error(
        self, req_id: int, code: int, message: str, client_id: int | None = None
    ) -> None:
        """Send an error/notice message to every client (or to one client id)."""
        self._call(self._broadcast, client_id, (4, 2, req_id, code, message))

    def send_raw(self, fields: Sequence[Any], client_id: int | None = None) -> None:
        """Send an arbitrary message (for testing how clients cope with malformed data)."""
        self._call(self._broadcast, client_id, tuple(fields))

    # -- inspection (thread-safe) --------------------------------------------------------------
    def requests(self, message_id: int | None = None) -> list[tuple[int | None, list[str]]]:
        """Requests received so far as ``(client_id, fields)``, optionally of one message id."""

        def collect() -> list[tuple[int | None, list[str]]]:
            return [
                (cid, list(f))
                for cid, f in self._requests
                if message_id is None or (f and f[0] == str(message_id))
            ]

        return self._call(collect)

    def orders(self) -> list[EmulatedOrder]:
        """Copies of every order, oldest first."""
        return self._call(lambda: [replace(o) for o in self._orders.values()])

    def order_by_ref(self, order_ref: str) -> EmulatedOrder | None:
        """A copy of the latest order with this ``orderRef``."""
        matches = [o for o in self.orders() if o.order_ref == order_ref]
        return matches[-1] if matches else None

    def executions(self) -> list[EmulatedExecution]:
        return self._call(lambda: list(self._executions))

    def position(self, symbol: str) -> tuple[Decimal, Decimal]:
        """``(qty, avg_cost)`` of a holding (zeros when flat)."""
        holding = self._call(self._holdings.get, symbol) or _Holding()
        return holding.qty, holding.avg_cost

    @property
    def client_count(self) -> int:
        """Connected clients that completed startApi."""
        return self._call(lambda: sum(1 for s in self._sessions if s.client_id is not None))

    @property
    def errors(self) -> list[str]:
        """Internal failures while handling requests (should stay empty)."""
        return self._call(lambda: list(self._errors))

    def account_values(self) -> dict[str, tuple[str, str]]:
        """The account values as sent: tag -> (value, currency)."""
        return self._call(lambda: {tag: (value, cur) for tag, value, cur in self._account_rows()})

    # -- connection handling -------------------------------------------------------------------
    async def _serve_client(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)  # type: ignore[arg-type]
        session = _Session(reader, writer)
        self._sessions.add(session)
        try:
            await self._handshake(session)
            while not session.closed:
                (size,) = struct.unpack(">I", await reader.readexactly(4))
                payload = await reader.readexactly(size)
                fields = payload.decode("utf-8", "backslashreplace").split("\0")
                if fields and fields[-1] == "":
                    fields.pop()
                if not fields:
                    continue
                self._requests.append((session.client_id, fields))
                log.debug("request from client %s: %s", session.client_id, fields)
                msg_id = int(fields[0])
                if self._delay and (self._delay_ids is None or msg_id in self._delay_ids):
                    await asyncio.sleep(self._delay)
                if session.closed:
                    break
                handler = self._handlers.get(msg_id)
                if handler is None:
                    log.info("TWS emulator: unsupported request %s", fields[:3])
                    continue
                try:
                    handler(session, fields)
                except Exception as exc:  # keep serving; tests assert ``errors`` stays empty
                    log.exception("TWS emulator failed on %s", fields)
                    self._errors.append(f"{type(exc).__name__}: {exc} while handling {fields}")
        except (asyncio.IncompleteReadError, ConnectionError, TwsProtocolError) as exc:
            if isinstance(exc, TwsProtocolError):
                log.error("TWS emulator: %s", exc)
                self._errors.append(str(exc))
        finally:
            session.closed = True
            self._sessions.discard(session)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
            if task is not None:
                self._tasks.discard(task)  # type: ignore[arg-type]

    async def _handshake(self, session: _Session) -> None:
        prefix = await session.reader.readexactly(4)
        if prefix != b"API\0":
            raise TwsProtocolError(f"bad handshake prefix {prefix!r}")
        (size,) = struct.unpack(">I", await session.reader.readexactly(4))
        text = (await session.reader.readexactly(size)).decode("ascii", "replace")
        match = re.fullmatch(r"v(\d+)(?:\.\.(\d+))?(?: .*)?", text)
        if match is None:
            raise TwsProtocolError(f"bad version range {text!r}")
        low, high = int(match[1]), int(match[2] or match[1])
        if not low <= SERVER_VERSION <= high:
            raise TwsProtocolError(f"client range {text!r} does not include {SERVER_VERSION}")
        now = self._now().astimezone(UTC)
        session.send(SERVER_VERSION, now.strftime("%Y%m%d %H:%M:%S") + " Greenwich Mean Time")

    def _broadcast(self, client_id: int | None, fields: Sequence[Any]) -> None:
        for session in list(self._sessions):
            if session.client_id is not None and client_id in (None, session.client_id):
                session.send(*fields)

    def _owners(self, client_id: int) -> list[_Session]:
        return [s for s in self._sessions if s.client_id == client_id and not s.closed]

    def _error(self, session: _Session, req_id: int, code: int, message: str) -> None:
        session.send(4, 2, req_id, code, message)

    # -- handlers: session, account, positions -------------------------------------------------
    def _ignore(self, session: _Session, fields: list[str]) -> None:
        return None

    def _start_api(self, session: _Session, fields: list[str]) -> None:
        client_id = int(fields[2])
        if any(s.client_id == client_id and s is not session for s in self._sessions):
            self._error(
                session,
                -1,
                326,
                "Unable to connect as the client id is already in use. "
                "Retry with a unique client id.",
            )
            session.close()
            return
        session.client_id = client_id
        used = [oid for (cid, oid) in self._orders if cid == client_id]
        used += [oid for (cid, oid) in self._rejected_ids if cid == client_id]
        next_id = max([self.next_valid_id, *(oid + 1 for oid in used)])
        session.send(15, 1, self.account)
        session.send(9, 1, next_id)
        for code, text in STARTUP_NOTICES:
            self._error(session, -1, code, text)

    def _req_ids(self, session: _Session, fields: list[str]) -> None:
        cid = session.client_id
        used = [oid for (c, oid) in (*self._orders, *self._rejected_ids) if c == cid]
        session.send(9, 1, max([self.next_valid_id, *(oid + 1 for oid in used)]))

    def _req_current_time(self, session: _Session, fields: list[str]) -> None:
        session.send(49, 1, int(self._now().timestamp()))

    def _req_positions(self, session: _Session, fields: list[str]) -> None:
        session.positions_subscribed = True
        for symbol in self._holdings:
            session.send(*self._position_fields(symbol))
        session.send(62, 1)

    def _cancel_positions(self, session: _Session, fields: list[str]) -> None:
        session.positions_subscribed = False

    def _position_fields(self, symbol: str) -> tuple[Any, ...]:
        """position: ``avgCost`` per share for a stock, per contract (x 100) for an option."""
        sym = self.symbols[symbol]
        holding = self._holdings[symbol]
        return (
            61, 3, self.account, sym.con_id, sym.ticker, sym.sec_type, sym.expiry,
            sym.strike_text, sym.right, sym.multiplier_text, "", "USD", sym.local_symbol,
            sym.trading_class, holding.qty, holding.avg_cost * sym.multiplier,
        )  # fmt: skip

    def _portfolio_fields(self, symbol: str) -> tuple[Any, ...]:
        """updatePortfolio: the market price per share, value and P&L in money, the average
        cost per share (stock) or per contract (option)."""
        sym = self.symbols[symbol]
        holding = self._holdings[symbol]
        value = holding.qty * sym.last * sym.multiplier
        unrealized = (sym.last - holding.avg_cost) * holding.qty * sym.multiplier
        return (
            7, 8, sym.con_id, sym.ticker, sym.sec_type, sym.expiry, sym.strike_text, sym.right,
            sym.multiplier_text, sym.primary_exchange, "USD", sym.local_symbol,
            sym.trading_class, holding.qty, sym.last, _money(value),
            holding.avg_cost * sym.multiplier, _money(unrealized), _money(holding.realized),
            self.account,
        )  # fmt: skip

    def _value(self, symbol: str, qty: Decimal) -> Decimal:
        """``qty`` of a symbol at its last price, in money (x 100 for options)."""
        sym = self.symbols[symbol]
        return qty * sym.last * sym.multiplier

    def _net_liquidation(self) -> Decimal:
        value = sum(
            (self._value(s, h.qty) for s, h in self._holdings.items() if s in self.symbols),
            ZERO,
        )
        return self.cash + value

    def _account_rows(self) -> list[tuple[str, str, str]]:
        """``(tag, value, currency)`` rows, as in updateAccountValue and the account summary."""
        gross = sum((abs(self._value(s, h.qty)) for s, h in self._holdings.items()), ZERO)
        net_liq = self._net_liquidation()
        init_margin = gross * Decimal("0.25")
        maint_margin = gross * Decimal("0.25")
        available = net_liq - init_margin
        excess = net_liq - maint_margin
        buying_power = max(ZERO, available * 4)
        realized = sum((h.realized for h in self._holdings.values()), ZERO)
        unrealized = sum(
            (
                (self.symbols[s].last - h.avg_cost) * h.qty * self.symbols[s].multiplier
                for s, h in self._holdings.items()
            ),
            ZERO,
        )
        usd = "USD"
        return [
            ("AccountType", "INDIVIDUAL", ""),
            ("NetLiquidation", _money(net_liq), usd),
            ("TotalCashValue", _money(self.cash), usd),
            ("CashBalance", _money(self.cash), "BASE"),
            ("CashBalance", _money(self.cash), usd),
            ("SettledCash", _money(self.cash), usd),
            ("BuyingPower", _money(buying_power), usd),
            ("AvailableFunds", _money(available), usd),
            ("ExcessLiquidity", _money(excess), usd),
            ("EquityWithLoanValue", _money(net_liq), usd),
            ("PreviousDayEquityWithLoanValue", _money(self._start_equity), usd),
            ("GrossPositionValue", _money(gross), usd),
            ("InitMarginReq", _money(init_margin), usd),
            ("MaintMarginReq", _money(maint_margin), usd),
            ("DayTradesRemaining", str(self.day_trades_remaining), ""),
            ("RealizedPnL", _money(realized), usd),
            ("UnrealizedPnL", _money(unrealized), usd),
        ]

    def _send_account(self, session: _Session, symbols: Iterable[str] | None = None) -> None:
        for tag, value, currency in self._account_rows():
            session.send(6, 2, tag, value, currency, self.account)
        for symbol in self._holdings if symbols is None else symbols:
            if symbol in self._holdings:
                session.send(*self._portfolio_fields(symbol))
        session.send(8, 1, self._now().astimezone(NEW_YORK).strftime("%H:%M"))

    def _req_account_updates(self, session: _Session, fields: list[str]) -> None:
        subscribe = fields[2] == "1"
        session.account_subscribed = subscribe
        if subscribe:
            self._send_account(session)
            session.send(54, 1, self.account)

    def _req_account_updates_multi(self, session: _Session, fields: list[str]) -> None:
        req_id = int(fields[2])
        model_code = fields[4] if len(fields) > 4 else ""
        for tag, value, currency in self._account_rows():
            session.send(73, 1, req_id, self.account, model_code, tag, value, currency)
        session.send(74, 1, req_id)

    def _req_account_summary(self, session: _Session, fields: list[str]) -> None:
        req_id = int(fields[2])
        wanted = set(fields[4].split(",")) if len(fields) > 4 else set()
        for tag, value, currency in self._account_rows():
            if tag in wanted:
                session.send(63, 1, req_id, self.account, tag, value, currency)
        session.send(64, 1, req_id)

    def _after_trade(self, symbol: str) -> None:
        """Stream the position and the account to subscribed clients after an execution."""
        for session in list(self._sessions):
            if session.closed or session.client_id is None:
                continue
            if session.positions_subscribed and symbol in self._holdings:
                session.send(*self._position_fields(symbol))
            if session.account_subscribed:
                self._send_account(session, [symbol])

    # -- handlers: contracts and market data ---------------------------------------------------
    def _lookup(self, fields: Sequence[str], start: int) -> SymbolState | None:
        """The instrument named by the 12 contract fields at ``fields[start:]`` (conId, symbol,
        secType, lastTradeDateOrContractMonth, strike, right, multiplier, exchange,
        primaryExchange, currency, localSymbol, tradingClass); None when TWS would answer 200
        (unknown, another currency, or an option past its expiry date)."""

        def at(i: int) -> str:
            return fields[start + i] if len(fields) > start + i else ""

        con_id, symbol, sec_type = at(0), at(1).upper(), at(2).upper()
        if at(9) not in ("", "USD"):
            return None
        if con_id and con_id != "0":
            sym = next((s for s in self.symbols.values() if str(s.con_id) == con_id), None)
            if sym is not None and sec_type and sec_type != sym.sec_type:
                return None
        elif sec_type in ("", "STK"):
            sym = self.symbols.get(symbol)
            if sym is not None and sym.is_option:
                return None
        elif sec_type == "OPT":
            if at(6) not in ("", str(int(MULTIPLIER))):
                return None
            key = self._option_key(symbol, at(3), at(4), at(5), at(10))
            sym = self.symbols.get(key) if key is not None else None
        else:
            return None
        if sym is not None and sym.is_option and self._expired(sym):
            return None
        return sym

    @staticmethod
    def _option_key(
        symbol: str, expiry: str, strike: str, right: str, local_symbol: str
    ) -> str | None:
        """The compact OCC symbol an option request names (by localSymbol, else by its
        fields; an expiry must be a full YYYYMMDD date), or None."""
        try:
            if local_symbol:
                return parse_occ(local_symbol).symbol
            if not re.fullmatch(r"\d{8}", expiry):
                return None
            return OptionContract(
                symbol,
                datetime.strptime(expiry, "%Y%m%d").date(),
                Decimal(strike),
                Right.from_letter(right),
            ).symbol
        except (ValidationError, ValueError, InvalidOperation):
            return None

    def _expired(self, sym: SymbolState) -> bool:
        """An option past its expiry date (New York); it trades until that day's close."""
        expiry = datetime.strptime(sym.expiry, "%Y%m%d").date()
        return expiry < self._now().astimezone(NEW_YORK).date()

    def _req_contract_details(self, session: _Session, fields: list[str]) -> None:
        req_id = int(fields[2])
        sym = self._lookup(fields, 3)
        if sym is None:
            self._error(
                session, req_id, 200, "No security definition has been found for the request"
            )
            return
        exchange = fields[10] or "SMART"
        if sym.is_option:
            self._send_option_details(session, req_id, sym, exchange)
            return
        session.send(
            10, 8, req_id, sym.symbol, "STK", "", "0", "", exchange, "USD", sym.symbol, "NMS",
            "NMS", sym.con_id, "0.01", "1", "", "ACTIVETIM,AD,ALERT,ALLOC,AVGCOST,BASKET,GTC,"
            "LIT,LMT,LOC,MIT,MKT,MOC,STP,STPLMT,TRAIL,TRAILLIMIT",
            f"SMART,{sym.primary_exchange},ARCA,BATS,IEX", "1", "0", sym.long_name,
            sym.primary_exchange, "", "Technology", "Computers", "", "US/Eastern",
            "", "", "", "", 0, "1", "", "", "26,26", "", "COMMON",
        )  # fmt: skip
        session.send(52, 1, req_id)

    def _send_option_details(
        self, session: _Session, req_id: int, sym: SymbolState, exchange: str
    ) -> None:
        """contractDetails (v8, with mdSizeMultiplier, as at 157) of an option contract."""
        underlying = self.symbols.get(sym.underlying)
        under_con_id = underlying.con_id if underlying is not None else 0
        long_name = underlying.long_name if underlying is not None else sym.underlying
        session.send(
            10, 8, req_id, sym.ticker, "OPT", sym.expiry, sym.strike_text, sym.right, exchange,
            "USD", sym.local_symbol, sym.trading_class, sym.trading_class, sym.con_id, "0.01",
            "1", sym.multiplier_text, _OPTION_ORDER_TYPES, _OPTION_EXCHANGES, "1",
            under_con_id, long_name, "", sym.expiry[:6], "", "", "", "US/Eastern", "", "", "",
            "", 0, "2", sym.underlying, "STK", "32,109", sym.expiry, "",
        )  # fmt: skip
        session.send(52, 1, req_id)

    def _send_ticks(self, session: _Session, req_id: int, sym: SymbolState) -> None:
        bid, ask = sym.quote()
        session.send(1, 6, req_id, 1, bid, 100, 0)
        session.send(1, 6, req_id, 2, ask, 100, 0)
        session.send(1, 6, req_id, 4, sym.last, 100, 0)
        session.send(1, 6, req_id, 9, sym.reference, 0, 0)
        session.send(2, 6, req_id, 8, sym.day_volume)

    def _req_mkt_data(self, session: _Session, fields: list[str]) -> None:
        req_id = int(fields[2])
        sym = self._lookup(fields, 3)
        if sym is None:
            self._error(
                session, req_id, 200, "No security definition has been found for the request"
            )
            return
        rest = fields[15:]
        if rest and rest[0] == "1":  # delta-neutral contract: three more fields
            rest = rest[3:]
        snapshot = len(rest) > 2 and rest[2] == "1"
        session.send(58, 1, req_id, 1)
        self._send_ticks(session, req_id, sym)
        if snapshot:
            session.send(57, 1, req_id)
        else:
            session.streams[req_id] = sym.symbol

    def _cancel_mkt_data(self, session: _Session, fields: list[str]) -> None:
        session.streams.pop(int(fields[2]), None)

    def _req_historical_data(self, session: _Session, fields: list[str]) -> None:
        req_id = int(fields[1])
        sym = self._lookup(fields, 2)
        if sym is None:
            self._error(
                session, req_id, 200, "No security definition has been found for the request"
            )
            return
        now = self._now().astimezone(UTC)
        end = min(parse_ib_datetime(fields[15], now), now)
        bar_seconds = parse_bar_size(fields[16])
        start = end - parse_duration(fields[17])
        format_date = fields[20] if len(fields) > 20 else "1"
        bars = (
            self._daily_bars(sym, start, end)
            if bar_seconds is None
            else self._intraday_bars(sym, start, end, bar_seconds, format_date)
        )
        out: list[Any] = [17, req_id, _ib_time(start), _ib_time(end), len(bars)]
        for bar in bars:
            out.extend(bar)
        session.send(*out)

    def _model_price(self, sym: SymbolState, at: datetime) -> Decimal:
        minutes = at.timestamp() / 60
        factor = 1 + 0.01 * math.sin(minutes / 1_440 / 3) + 0.004 * math.sin(minutes / 17)
        base = sym.reference if sym.reference is not None else sym.last
        return (base * Decimal(repr(factor))).quantize(CENT, ROUND_HALF_EVEN)

    def _bar(
        self, sym: SymbolState, label: str, start: datetime, end: datetime, volume: int
    ) -> tuple[Any, ...]:
        open_, close = self._model_price(sym, start), self._model_price(sym, end)
        high = (max(open_, close) * Decimal("1.002")).quantize(CENT)
        low = (min(open_, close) * Decimal("0.998")).quantize(CENT)
        wap = ((high + low + close) / 3).quantize(CENT)
        return (label, open_, high, low, close, volume, wap, max(1, volume // 100))

    def _daily_bars(self, sym: SymbolState, start: datetime, end: datetime) -> list[tuple]:
        bars = []
        day = start.astimezone(NEW_YORK).date()
        last_day = end.astimezone(NEW_YORK).date()
        while day <= last_day:
            if day.weekday() < 5:
                s_open = datetime.combine(day, SESSION_OPEN, NEW_YORK)
                s_close = datetime.combine(day, SESSION_CLOSE, NEW_YORK)
                if start < s_close <= end:
                    volume = int(sym.adv * _VOLUME_BY_WEEKDAY[day.weekday()])
                    bars.append(self._bar(sym, day.strftime("%Y%m%d"), s_open, s_close, volume))
            day += timedelta(days=1)
        return bars

    def _intraday_bars(
        self, sym: SymbolState, start: datetime, end: datetime, seconds: int, format_date: str
    ) -> list[tuple]:
        bars = []
        day = start.astimezone(NEW_YORK).date()
        last_day = end.astimezone(NEW_YORK).date()
        per_bar = max(1, int(sym.adv * seconds / 60 / _SESSION_MINUTES))
        while day <= last_day:
            if day.weekday() < 5:
                s_open = datetime.combine(day, SESSION_OPEN, NEW_YORK).astimezone(UTC)
                s_close = datetime.combine(day, SESSION_CLOSE, NEW_YORK).astimezone(UTC)
                epoch = int(s_open.timestamp())
                lo = datetime.fromtimestamp(epoch - epoch % seconds, UTC)
                while lo < s_close:
                    bar_start = max(lo, s_open)
                    bar_end = min(lo + timedelta(seconds=seconds), s_close)
                    if start < bar_end <= end:
                        label = (
                            str(int(bar_start.timestamp()))
                            if format_date == "2"
                            else bar_start.astimezone(NEW_YORK).strftime("%Y%m%d %H:%M:%S")
                            + " US/Eastern"
                        )
                        wave = 1 + 0.2 * math.sin(bar_start.timestamp() / 600)
                        bars.append(self._bar(sym, label, bar_start, bar_end, int(per_bar * wave)))
                    lo += timedelta(seconds=seconds)
            day += timedelta(days=1)
        return bars

    def _set_price(
        self, symbol: str, last: Decimal, bid: Decimal | None, ask: Decimal | None
    ) -> None:
        sym = self.symbols[symbol]
        sym.last = last
        sym.bid = None if bid is None else Decimal(bid)
        sym.ask = None if ask is None else Decimal(ask)
        for session in list(self._sessions):
            for req_id, streamed in list(session.streams.items()):
                if streamed == symbol:
                    self._send_ticks(session, req_id, sym)
        for order in list(self._orders.values()):
            if order.symbol == symbol and order.status == "Submitted":
                self._evaluate(order)

    # -- handlers: orders ----------------------------------------------------------------------
    def _parse_order(self, client_id: int, fields: list[str]) -> tuple[EmulatedOrder, str]:
        """An order from placeOrder fields (index 0 is the message id; see the reference)."""
        dn_offset = 8 if len(fields) > 65 and fields[65] else 0

        def at(i: int) -> str:
            return fields[i] if len(fields) > i else ""

        order = EmulatedOrder(
            order_id=int(fields[1]),
            client_id=client_id,
            perm_id=0,
            symbol=fields[3].upper(),
            action=fields[16],
            qty=_decimal(fields[17]) or ZERO,
            order_type=fields[18],
            lmt_price=_decimal(fields[19]),
            aux_price=_decimal(fields[20]),
            tif=fields[21] or "DAY",
            oca_group=fields[22],
            account=fields[23] or self.account,
            order_ref=fields[26],
            transmit=fields[27] != "0",
            parent_id=int(fields[28] or 0),
            outside_rth=fields[33] == "1",
            trail_stop_price=_decimal(at(69 + dn_offset)),
            trailing_percent=_decimal(at(70 + dn_offset)),
        )
        return order, fields[2]

    def _validate(self, order: EmulatedOrder, sym: SymbolState | None):
        """None if acceptable, else ``(code, message)`` as TWS would answer."""
        if sym is None:
            return 200, "No security definition has been found for the request"
        if order.order_type not in _ORDER_TYPES or (
            sym.is_option and order.order_type in ("MOC", "LOC")
        ):
            return (
                387,
                f"Unsupported order type for this exchange and security type: {order.order_type}",
            )
        if order.action not in ("BUY", "SELL"):
            return 201, f"Order rejected - reason:Invalid action {order.action}"
        if order.qty <= 0:
            return 434, "The order size cannot be zero"
        if order.order_type in ("LMT", "STP LMT", "LOC") and order.lmt_price is None:
            return 201, "Order rejected - reason:A limit price is required"
        if order.order_type in ("STP", "STP LMT") and order.aux_price is None:
            return 201, "Order rejected - reason:A stop price is required"
        if (
            order.order_type == "TRAIL"
            and order.aux_price is None
            and order.trailing_percent is None
        ):
            return 201, "Order rejected - reason:A trailing amount or percent is required"
        for price in (order.lmt_price, order.aux_price if order.order_type != "TRAIL" else None):
            if price is not None and price != price.quantize(CENT):
                return (
                    110,
                    "The price does not conform to the minimum price variation for this contract.",
                )
        return None

    def _buying_power_error(self, order: EmulatedOrder) -> str | None:
        holding = self._holdings.get(order.symbol, _Holding())
        if not order.is_buy or holding.qty >= order.qty or order.parent_id:
            return None
        sym = self.symbols[order.symbol]
        reference = order.lmt_price or order.aux_price or sym.quote()[1]
        needed = (order.qty - max(holding.qty, ZERO)) * reference * sym.multiplier
        rows = {tag: value for tag, value, _ in self._account_rows()}
        buying_power = Decimal(rows["BuyingPower"])
        if needed <= buying_power:
            return None
        return (
            "Order rejected - reason:YOUR ORDER IS NOT ACCEPTED. IN ORDER TO OBTAIN THE DESIRED "
            f"POSITION YOUR BUYING POWER [{_money(buying_power)} USD] MUST EXCEED THE ORDER "
            f"VALUE [{_money(needed)} USD]"
        )

    def _place_order(self, session: _Session, fields: list[str]) -> None:
        client_id = session.client_id if session.client_id is not None else 0
        order, _con_id = self._parse_order(client_id, fields)
        sym = self._lookup(fields, 2)
        if sym is not None:
            order.symbol = sym.symbol  # an option's compact OCC symbol
        key = (client_id, order.order_id)
        existing = self._orders.get(key)
        if existing is not None:
            self._modify(session, existing, order)
            return
        if key in self._rejected_ids:
            self._error(session, order.order_id, 103, f"Duplicate order id {order.order_id}")
            return
        problem = self._validate(order, sym)
        parent_key = (client_id, order.parent_id)
        if problem is None and order.parent_id and parent_key in self._rejected_ids:
            problem = (201, "Order rejected - reason:The parent order was rejected")
        if problem is None and self._reject_next is not None:
            # a bracket's children follow their rejected parent (see the check above)
            problem, self._reject_next = self._reject_next, None
        if problem is None:
            reason = self._buying_power_error(order)
            if reason is not None:
                problem = (201, reason)
        if problem is not None:
            self._rejected_ids.add(key)
            self._error(session, order.order_id, problem[0], problem[1])
            return
        order.perm_id = next(self._perm_ids)
        self._orders[key] = order
        if not order.transmit:
            return  # held until the transmitting order of its group arrives
        group = order.parent_id or order.order_id
        members = sorted(
            (
                o
                for o in self._orders.values()
                if o.client_id == client_id
                and o.status == "PendingSubmit"
                and (o.order_id == group or o.parent_id == group)
            ),
            key=lambda o: o.order_id,
        )
        for member in members:
            parent = self._orders.get((client_id, member.parent_id)) if member.parent_id else None
            member.status = (
                "PreSubmitted" if parent is not None and parent.status != "Filled" else "Submitted"
            )
            if member.order_type in ("TRAIL",):
                member.water_mark = self.symbols[member.symbol].last
            self._send_order_state(member)
        for member in members:
            if member.status == "Submitted":
                self._evaluate(member)

    def _modify(self, session: _Session, order: EmulatedOrder, new: EmulatedOrder) -> None:
        if order.is_final:
            code = 104 if order.status == "Filled" else 103
            text = "Can't modify a filled order" if code == 104 else "Duplicate order id"
            self._error(session, order.order_id, code, text)
            return
        order.qty = new.qty
        order.lmt_price = new.lmt_price
        order.aux_price = new.aux_price
        order.tif = new.tif
        order.trailing_percent = new.trailing_percent
        if order.status == "PendingSubmit" and new.transmit:
            order.transmit = True
            order.status = "Submitted"
        self._send_order_state(order)
        if order.status == "Submitted":
            self._evaluate(order)

    def _order_status_fields(self, o: EmulatedOrder) -> tuple[Any, ...]:
        return (
            3, o.order_id, o.status, o.filled, o.remaining, o.avg_price, o.perm_id,
            o.parent_id, o.last_fill_price, o.client_id, "", 0,
        )  # fmt: skip

    def _open_order_fields(self, o: EmulatedOrder) -> tuple[Any, ...]:
        """openOrder at version 157: 120 fields for a plain stock order."""
        sym = self.symbols[o.symbol]
        unset = UNSET_DOUBLE
        return (
            5, o.order_id,
            # contract (11 fields, no primaryExchange)
            *sym.contract("SMART"),
            # action .. permId
            o.action, o.qty, o.order_type, _price(o.lmt_price), _price(o.aux_price), o.tif,
            o.oca_group, o.account, "O", 0, o.order_ref, o.client_id, o.perm_id,
            # outsideRth, hidden, discretionaryAmt, goodAfterTime, sharesAllocation
            int(o.outside_rth), 0, 0, "", "",
            # faGroup .. exemptCode
            "", "", "", "", "", "", "", "", "", 0, "", -1,
            # auctionStrategy .. minQty
            0, "", "", "", "", "", 0, 0, 0, 0, "",
            # ocaType, eTradeOnly, firmQuoteOnly, nbboPriceCap, parentId, triggerMethod,
            # volatility, volatilityType, deltaNeutralOrderType, deltaNeutralAuxPrice
            3 if o.oca_group else 0, 0, 0, "", o.parent_id, 0, "", 0, "", "",
            # continuousUpdate, referencePriceType, trailStopPrice, trailingPercent,
            # basisPoints, basisPointsType, comboLegsDescrip
            0, 0, _price(o.trail_stop_price), _price(o.trailing_percent), "", "", "",
            # comboLegs, orderComboLegs, smartComboRoutingParams counts
            0, 0, 0,
            # scaleInitLevelSize, scaleSubsLevelSize, scalePriceIncrement, hedgeType
            "", "", "", "",
            # optOutSmartRouting, clearingAccount, clearingIntent, notHeld, dnc flag
            0, "", "", 0, 0,
            # algoStrategy, solicited, whatIf
            "", 0, 0,
            # order state
            o.status, unset, unset, unset, unset, unset, unset, unset, unset, unset,
            unset, unset, unset, "", "",
            # randomizeSize, randomizePrice, conditions count
            0, 0, 0,
            # adjustedOrderType .. usePriceMgmtAlgo
            "", unset, _price(o.trail_stop_price), unset, unset, unset, unset, 0, "", "", "",
            unset, 0, 0, 0, "",
        )  # fmt: skip

    def _completed_order_fields(self, o: EmulatedOrder) -> tuple[Any, ...]:
        """completedOrder at version 157: 92 fields."""
        sym = self.symbols[o.symbol]
        unset = UNSET_DOUBLE
        parent = self._orders.get((o.client_id, o.parent_id)) if o.parent_id else None
        return (
            101,
            *sym.contract("SMART"),
            o.action, o.qty, o.order_type, _price(o.lmt_price), _price(o.aux_price), o.tif,
            o.oca_group, o.account, "O", 0, o.order_ref, o.perm_id,
            int(o.outside_rth), 0, 0, "",
            "", "", "", "", "", "", "", "", "", 0, "", -1,
            "", "", "", "", "", 0, 0, 0, "", 3 if o.oca_group else 0, 0, "", 0, "", "",
            0, 0, _price(o.trail_stop_price), _price(o.trailing_percent), "",
            0, 0, 0,
            "", "", "", "",
            "", "", 0, 0, "",
            0, o.status, 0, 0,
            0,
            _price(o.trail_stop_price), unset, unset, 0, 0, "", o.filled, 0, 0, "", 0, 0,
            parent.perm_id if parent is not None else 0, o.completed_time, o.completed_status,
        )  # fmt: skip

    def _send_order_state(self, o: EmulatedOrder) -> None:
        for session in self._owners(o.client_id):
            session.send(*self._open_order_fields(o))
            session.send(*self._order_status_fields(o))

    def _stop_level(self, o: EmulatedOrder, last: Decimal) -> Decimal | None:
        if o.order_type != "TRAIL":
            return o.aux_price
        mark = o.water_mark if o.water_mark is not None else last
        mark = min(mark, last) if o.is_buy else max(mark, last)
        o.water_mark = mark
        if o.trailing_percent is not None:
            offset = mark * o.trailing_percent / 100
        else:
            offset = o.aux_price or ZERO
        stop = (mark + offset if o.is_buy else mark - offset).quantize(CENT, ROUND_HALF_EVEN)
        o.trail_stop_price = stop
        return stop

    def _evaluate(self, o: EmulatedOrder) -> None:
        """Fill ``o`` if the current price allows it."""
        if o.status != "Submitted" or o.remaining <= 0:
            return
        sym = self.symbols[o.symbol]
        bid, ask = sym.quote()
        touch = ask if o.is_buy else bid
        kind = o.order_type
        if kind in ("MOC", "LOC"):
            return
        if kind in ("STP", "STP LMT", "TRAIL") and not o.triggered:
            stop = self._stop_level(o, sym.last)
            if stop is None:
                return
            if (o.is_buy and sym.last >= stop) or (not o.is_buy and sym.last <= stop):
                o.triggered = True
            else:
                return
        price: Decimal | None = touch
        if kind in ("LMT", "STP LMT"):
            assert o.lmt_price is not None
            marketable = touch <= o.lmt_price if o.is_buy else touch >= o.lmt_price
            price = touch if marketable else None
        if price is not None:
            self._fill(o, price)

    def _fill(self, o: EmulatedOrder, price: Decimal) -> None:
        while o.remaining > 0 and o.status == "Submitted":
            qty = o.remaining if self.fill_chunk is None else min(o.remaining, self.fill_chunk)
            self._execute(o, qty, price)

    def _commission(self, sym: SymbolState, qty: Decimal, price: Decimal) -> Decimal:
        if sym.is_option:
            rate = next((r for floor, r in _OPTION_RATES if price >= floor), _OPTION_LOW_RATE)
            return max(self.min_commission, qty * rate).quantize(CENT, ROUND_HALF_EVEN)
        fee = max(self.min_commission, qty * self.commission_per_share)
        cap = qty * price * Decimal("0.01")
        return min(fee, cap).quantize(CENT, ROUND_HALF_EVEN)

    def _apply_to_holding(self, symbol: str, signed: Decimal, price: Decimal) -> Decimal | None:
        """Book an execution (average cost per share); returns the realized P&L in money."""
        multiplier = self.symbols[symbol].multiplier
        holding = self._holdings.setdefault(symbol, _Holding())
        old = holding.qty
        if old == 0 or (old > 0) == (signed > 0):
            total = old + signed
            holding.avg_cost = (holding.avg_cost * old + price * signed) / total
            holding.qty = total
            return None
        closing = min(abs(signed), abs(old))
        realized = (price - holding.avg_cost) * closing * (1 if old > 0 else -1) * multiplier
        holding.realized += realized
        holding.qty = old + signed
        if holding.qty == 0:
            holding.avg_cost = ZERO
        elif (holding.qty > 0) != (old > 0):
            holding.avg_cost = price
        return realized

    def _execute(self, o: EmulatedOrder, qty: Decimal, price: Decimal) -> None:
        now = self._now()
        seq = next(self._exec_seq)
        exec_id = f"0000e0d5.{0x65F00000 + seq:08x}.01.01"
        signed = qty if o.is_buy else -qty
        sym = self.symbols[o.symbol]
        commission = self._commission(sym, qty, price)
        realized = self._apply_to_holding(o.symbol, signed, price)
        self.cash -= signed * price * sym.multiplier + commission
        self.symbols[o.symbol].day_volume += int(qty)
        o.avg_price = (o.avg_price * o.filled + qty * price) / (o.filled + qty)
        o.filled += qty
        o.last_fill_price = price
        if o.remaining <= 0:
            o.status = "Filled"
            o.completed_time = _ib_time(now)
            o.completed_status = "Filled"
        execution = EmulatedExecution(
            exec_id=exec_id,
            order_id=o.order_id,
            client_id=o.client_id,
            perm_id=o.perm_id,
            symbol=o.symbol,
            side="BOT" if o.is_buy else "SLD",
            shares=qty,
            price=price,
            cum_qty=o.filled,
            avg_price=o.avg_price,
            at=now,
            order_ref=o.order_ref,
            account=o.account,
            commission=commission,
            realized_pnl=realized,
        )
        self._executions.append(execution)
        messages: list[tuple[Any, ...]] = [
            self._exec_details_fields(execution, -1),
            self._order_status_fields(o),
        ]
        if o.status == "Filled":
            messages.append(self._open_order_fields(o))
        if self._commission_reports:
            messages.append(self._commission_fields(execution))
        drop, self._drop_next_fill = self._drop_next_fill, None
        for session in self._owners(o.client_id):
            for message in messages if drop is None else messages[:drop]:
                session.send(*message)
            if drop is not None:
                session.close()
        self._after_trade(o.symbol)
        if o.status == "Filled":
            self._after_filled(o)

    def _exec_details_fields(self, e: EmulatedExecution, req_id: int) -> tuple[Any, ...]:
        sym = self.symbols[e.symbol]
        venue = "ISLAND" if sym.primary_exchange == "NASDAQ" else sym.primary_exchange
        if sym.is_option:
            venue = "CBOE"
        return (
            11, req_id, e.order_id,
            *sym.contract("SMART"),
            e.exec_id, _ib_time(e.at), e.account, venue, e.side, e.shares, e.price, e.perm_id,
            e.client_id, 0, e.cum_qty, e.avg_price, e.order_ref, "", "", "", 1,
        )  # fmt: skip

    def _commission_fields(self, e: EmulatedExecution) -> tuple[Any, ...]:
        realized = UNSET_DOUBLE if e.realized_pnl is None else _money(e.realized_pnl)
        return (59, 1, e.exec_id, e.commission, "USD", realized, UNSET_DOUBLE, "")

    def _after_filled(self, o: EmulatedOrder) -> None:
        children = [
            c
            for c in self._orders.values()
            if c.client_id == o.client_id and c.parent_id == o.order_id
        ]
        for child in children:
            if child.status == "PreSubmitted":
                child.status = "Submitted"
                if child.order_type == "TRAIL":
                    child.water_mark = self.symbols[child.symbol].last
                self._send_order_state(child)
        for child in children:
            self._evaluate(child)
        siblings: list[EmulatedOrder] = []
        if o.parent_id:
            siblings = [
                s
                for s in self._orders.values()
                if s.client_id == o.client_id and s.parent_id == o.parent_id and s is not o
            ]
        if o.oca_group:
            siblings += [
                s for s in self._orders.values() if s.oca_group == o.oca_group and s is not o
            ]
        for sibling in siblings:
            if not sibling.is_final:
                self._cancel(sibling, confirm=False)

    def _cancel(self, o: EmulatedOrder, confirm: bool = True) -> None:
        o.status = "Cancelled"
        o.completed_time = _ib_time(self._now())
        o.completed_status = "Cancelled by Trader" if confirm else "Cancelled by OCA"
        for session in self._owners(o.client_id):
            session.send(*self._order_status_fields(o))
            if confirm:
                self._error(session, o.order_id, 202, "Order Canceled - reason:")
        for child in list(self._orders.values()):
            if (
                child.client_id == o.client_id
                and child.parent_id == o.order_id
                and not child.is_final
            ):
                self._cancel(child, confirm)

    def _cancel_order(self, session: _Session, fields: list[str]) -> None:
        order_id = int(fields[2])
        order = self._orders.get((session.client_id or 0, order_id))
        if order is None:
            self._error(
                session,
                order_id,
                10147,
                f"OrderId {order_id} that needs to be cancelled is not found.",
            )
        elif order.is_final:
            self._error(
                session,
                order_id,
                10148,
                f"OrderId {order_id} that needs to be cancelled cannot be cancelled, "
                f"state: {order.status}.",
            )
        else:
            self._cancel(order)

    def _req_global_cancel(self, session: _Session, fields: list[str]) -> None:
        for order in list(self._orders.values()):
            if not order.is_final:
                self._cancel(order)

    def _closing_auction(self, symbol: str | None) -> None:
        for order in list(self._orders.values()):
            if order.status != "Submitted" or order.order_type not in ("MOC", "LOC"):
                continue
            if symbol is not None and order.symbol != symbol:
                continue
            last = self.symbols[order.symbol].last
            if order.order_type == "LOC":
                assert order.lmt_price is not None
                ok = last <= order.lmt_price if order.is_buy else last >= order.lmt_price
                if not ok:
                    self._cancel(order, confirm=False)
                    continue
            self._fill(order, last)

    def _purge(self) -> None:
        for key, order in list(self._orders.items()):
            if not order.is_final:
                del self._orders[key]

    def _client_orders(self, client_id: int | None) -> list[EmulatedOrder]:
        return [o for o in self._orders.values() if client_id is None or o.client_id == client_id]

    def _req_open_orders(self, session: _Session, fields: list[str]) -> None:
        for o in self._client_orders(session.client_id):
            if not o.is_final and o.status != "PendingSubmit":
                session.send(*self._open_order_fields(o))
                session.send(*self._order_status_fields(o))
        session.send(53, 1)

    def _req_all_open_orders(self, session: _Session, fields: list[str]) -> None:
        for o in self._client_orders(None):
            if not o.is_final and o.status != "PendingSubmit":
                session.send(*self._open_order_fields(o))
                session.send(*self._order_status_fields(o))
        session.send(53, 1)

    def _req_completed_orders(self, session: _Session, fields: list[str]) -> None:
        for o in self._orders.values():
            if o.is_final:
                session.send(*self._completed_order_fields(o))
        session.send(102)

    def _req_executions(self, session: _Session, fields: list[str]) -> None:
        req_id = int(fields[2])
        client_id = int(fields[3] or 0)
        account, since, symbol, sec_type = fields[4], fields[5], fields[6], fields[7]
        side = fields[9]
        start = parse_ib_datetime(since, datetime.min.replace(tzinfo=UTC)) if since else None
        for e in self._executions:
            if client_id and e.client_id != client_id:
                continue
            if account and e.account != account:
                continue
            if start is not None and e.at < start:
                continue
            sym = self.symbols[e.symbol]
            if symbol and symbol.upper() not in (e.symbol, sym.ticker):
                continue
            if sec_type and sec_type.upper() != sym.sec_type:
                continue
            if side and {"BUY": "BOT", "SELL": "SLD"}.get(side.upper(), side.upper()) != e.side:
                continue
            session.send(*self._exec_details_fields(e, req_id))
            if self._commission_reports:
                session.send(*self._commission_fields(e))
        session.send(55, 1, req_id)


# ---------------------------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m tests.emulators.tws``: serve until interrupted."""
    parser = argparse.ArgumentParser(
        prog="python -m tests.emulators.tws",
        description=(
            "Loopback TWS emulator (TWS API socket protocol, server version 157) for trying "
            "the Interactive Brokers adapter without TWS or IB Gateway."
        ),
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (127.0.0.1)")
    parser.add_argument(
        "--port",
        type=int,
        default=7497,
        help="port to listen on (7497, the paper TWS port; 0 picks a free one)",
    )
    parser.add_argument("--account", default=DEFAULT_ACCOUNT, help="account id (DU123456)")
    parser.add_argument("--cash", default="100000", help="starting cash in USD (100000)")
    parser.add_argument("--verbose", action="store_true", help="log every request")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )

    async def serve() -> None:
        emulator = TwsEmulator(args.host, args.port, account=args.account, cash=args.cash)
        await emulator.start_async()
        print(
            f"TWS emulator listening on {args.host}:{emulator.port} "
            f"(server version {SERVER_VERSION}, account {args.account}); Ctrl-C stops it",
            flush=True,
        )
        try:
            await asyncio.Event().wait()
        finally:
            await emulator.stop_async()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
