"""A loopback Alpaca emulator: the trading REST API, the market-data REST API and the
``trade_updates`` websocket on one port, speaking the wire contract alpaca-py consumes.

Run it by hand with ``python -m tests.emulators.alpaca [--port N]`` and point the adapters at
``http://127.0.0.1:N`` (REST, trading and data) and ``ws://127.0.0.1:N/stream`` (trade updates).
In tests use it as a context manager::

    with AlpacaEmulator() as emu:
        broker = AlpacaBroker(emu.api_key, emu.secret_key, base_url=emu.base_url,
                              stream_url=emu.stream_url)

Fidelity (see the Alpaca wire contract):

* trading decimals are JSON strings, market-data and portfolio-history values JSON numbers;
  ids are UUIDs; timestamps RFC-3339 UTC; enums only the values the SDK accepts;
* errors are ``{"code": <int>, "message": "<str>"}`` (market data: ``{"message"}`` only);
* ``client_order_id`` is unique per account forever (422 ``client_order_id must be unique``);
  insufficient buying power is 403; invalid orders 422; unknown orders 404; a cancel of a final
  order 422 ``order is not cancelable``;
* a submit answers ``accepted``; the order becomes ``new`` and fills asynchronously, and every
  change is pushed on the stream (``new``, ``partial_fill``, ``fill``, ``canceled``, ``expired``,
  ``rejected``) after the ``authenticate`` -> ``authorization`` / ``listen`` -> ``listening``
  handshake. Each execution is also an account activity (``/v2/account/activities/FILL``) with
  its ``cum_qty``.

Options (``us_option``): a contract is named by its compact OCC symbol (``SPY261120C00590000``)
and is listed once a test gives it a quote (:meth:`AlpacaEmulator.set_option_quote`, or
``set_price`` / ``set_quote`` / ``prices`` with the OCC symbol); prices are per share of premium,
quantities whole contracts, and money moves by price x contracts x 100 (cash, position market
value and cost basis, buying power). Submits follow Alpaca's options rules, each refusal a 422:
an unlisted contract is ``asset ... not found``, one past its expiry date ``asset ... is not
active``; ``qty`` must be a whole number and ``notional`` is refused; types market, limit, stop
and stop_limit only (no trailing stops), ``order_class`` simple only (no brackets, OCO or OTO),
time in force ``day`` or ``gtc``, no extended hours, prices in whole cents. Buying options is
paid from cash (403 ``insufficient options buying power``); selling contracts not held needs the
underlying shares for a call (403 ``insufficient underlying qty available for covered call``) or
the strike in cash for a put; a ``position_intent`` of ``*_to_close`` is refused (403) beyond
the contracts held. Positions report ``asset_class: us_option`` (exchange empty, not
marginable); trade updates and FILL activities carry the OCC symbol, contracts and the price per
share. Alpaca charges no commission on options and none is modelled.

Fills: market orders fill at the touch (ask for buys, bid for sells); limit orders when the touch
is at or through the limit; stop, stop-limit and trailing-stop orders trigger on the last price;
on-close (``cls``) orders fill at :meth:`AlpacaEmulator.end_of_day`, which also expires ``day``
orders. A bracket's legs are ``held`` until the entry fills; then both work (take-profit ``new``,
stop-loss ``held``) and the first to fill cancels the other. ``fill_parts`` splits each fill
into that many executions; ``auto_fill=False`` leaves fills to :meth:`AlpacaEmulator.fill`.

Fault injection: :meth:`fail_next` (N requests answer a status such as 429 or 500, optionally
after committing), :meth:`delay_next` (slow responses), :meth:`lose_next_response` (processed,
then the connection is dropped without an answer), :meth:`reject_next_order` (accepted, then
rejected on the stream), :meth:`drop_stream` / :meth:`drop_stream_before_next` (the websocket is
cut, now or instead of delivering the next event of a kind) and :meth:`pause_stream` /
:meth:`resume_stream` (cut and refuse reconnects until resumed).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import itertools
import json
import logging
import math
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_DOWN, Decimal, InvalidOperation
from http import HTTPStatus
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

from websockets.frames import Opcode
from websockets.protocol import State
from websockets.server import ServerProtocol

from core.marketdata.calendar import default_calendar
from core.options.occ import MULTIPLIER, is_occ, parse_occ

T = TypeVar("T")

#: Frames (the authentication frame with the keys included) are logged at DEBUG by the
#: websocket library; the emulator's connections log here, at INFO and above only.
_websocket_log = logging.getLogger("tests.emulators.alpaca.websocket")
_websocket_log.setLevel(logging.INFO)

DEFAULT_API_KEY = "emulator-key"
DEFAULT_SECRET_KEY = "emulator-secret"
DEFAULT_PRICES: dict[str, str] = {
    "AAPL": "190.00",
    "MSFT": "410.00",
    "SPY": "475.00",
    "TSLA": "240.00",
    "QQQ": "405.00",
}
EASTERN = ZoneInfo("America/New_York")
ZERO = Decimal(0)
CENT = Decimal("0.01")
HALF_CENT = Decimal("0.005")

ORDER_TYPES = frozenset({"market", "limit", "stop", "stop_limit", "trailing_stop"})
TIME_IN_FORCE = frozenset({"day", "gtc", "opg", "cls", "ioc", "fok"})
ORDER_CLASSES = frozenset({"", "simple", "bracket", "oco", "oto", "mleg"})
POSITION_INTENTS = frozenset({"buy_to_open", "buy_to_close", "sell_to_open", "sell_to_close"})
#: What Alpaca takes for single-leg option orders.
OPTION_ORDER_TYPES = frozenset({"market", "limit", "stop", "stop_limit"})
OPTION_TIME_IN_FORCE = frozenset({"day", "gtc"})
FINAL_STATUSES = frozenset({"filled", "canceled", "expired", "rejected", "replaced"})
DATA_FEEDS = frozenset({"iex", "sip", "delayed_sip", "otc", "boats", "overnight"})


def _now() -> datetime:
    return datetime.now(UTC)


def _ts(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _s(value: Decimal | None) -> str | None:
    """A decimal as Alpaca sends it: a plain string without exponent or trailing zeros."""
    if value is None:
        return None
    text = format(value.normalize(), "f")
    return "0" if text in ("-0", "") else text


def _num(value: Any, name: str) -> Decimal:
    """A JSON number or numeric string from a request body as a Decimal."""
    if isinstance(value, bool) or value is None:
        raise ApiError(422, 40010001, f"invalid {name}")
    try:
        result = Decimal(str(value).strip())
    except InvalidOperation:
        raise ApiError(422, 40010001, f"invalid {name}") from None
    if not result.is_finite():
        raise ApiError(422, 40010001, f"invalid {name}")
    return result


def _truthy(value: str | None) -> bool:
    """Query booleans arrive as ``True``/``False`` (Python spelling); compare case-blind."""
    return value is not None and value.strip().lower() in ("true", "1", "yes")


def _parse_time(value: str, name: str) -> datetime:
    try:
        if len(value) == 10:
            return datetime.combine(date.fromisoformat(value), time(0), UTC)
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ApiError(422, 40010001, f"invalid {name}: {value}") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def _is_option(symbol: Any) -> bool:
    """A compact OCC symbol (how Alpaca names option contracts)."""
    return isinstance(symbol, str) and " " not in symbol and is_occ(symbol)


def _multiplier(symbol: str) -> Decimal:
    """Money per unit of quantity per unit of price: 100 for option contracts, else 1."""
    return MULTIPLIER if _is_option(symbol) else Decimal(1)


def _sub_penny(price: Decimal, option: bool = False) -> bool:
    places = 2 if price >= 1 or option else 4
    return price != price.quantize(Decimal(1).scaleb(-places))


def _asset_id(symbol: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"alpaca-emulator/asset/{symbol}"))


class ApiError(Exception):
    """An error answer: HTTP status and Alpaca's ``{code, message}`` body (plus extra keys)."""

    def __init__(self, status: int, code: int | None, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.extra = extra

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"message": self.message}
        if self.code is not None:
            body = {"code": self.code, "message": self.message}
        body.update(self.extra)
        return body


# ---------------------------------------------------------------------------------------------
# State
# ---------------------------------------------------------------------------------------------


@dataclass(slots=True)
class QuoteState:
    bid: Decimal
    ask: Decimal
    last: Decimal
    at: datetime


@dataclass(slots=True)
class EmuOrder:
    """An order (or a bracket leg) as the emulator keeps it."""

    id: str
    client_order_id: str
    symbol: str
    side: str
    type: str
    time_in_force: str
    qty: Decimal | None
    notional: Decimal | None
    created_at: datetime
    limit_price: Decimal | None = None
    stop_price: Decimal | None = None
    trail_price: Decimal | None = None
    trail_percent: Decimal | None = None
    hwm: Decimal | None = None
    order_class: str = "simple"
    status: str = "accepted"
    filled_qty: Decimal = ZERO
    filled_avg_price: Decimal | None = None
    extended_hours: bool = False
    position_intent: str | None = None
    updated_at: datetime | None = None
    filled_at: datetime | None = None
    canceled_at: datetime | None = None
    expired_at: datetime | None = None
    failed_at: datetime | None = None
    legs: list[str] = field(default_factory=list)
    parent_id: str | None = None
    role: str | None = None  # take_profit | stop_loss for bracket legs
    active: bool = True  # bracket legs work only once the entry has filled
    triggered: bool = False  # stop-limit: the stop was reached
    fills_done: int = 0

    @property
    def is_open(self) -> bool:
        return self.status not in FINAL_STATUSES

    @property
    def remaining(self) -> Decimal:
        return (self.qty or ZERO) - self.filled_qty


@dataclass(slots=True)
class Fault:
    """One injected fault, applied to the next ``remaining`` matching requests."""

    kind: str  # status | delay | drop
    remaining: int
    method: str | None
    path: str | None
    status: int = 500
    seconds: float = 0.0
    commit: bool = False
    message: str | None = None
    code: int | None = None

    def matches(self, method: str, path: str) -> bool:
        if self.remaining <= 0:
            return False
        if self.method is not None and self.method != method:
            return False
        if self.path is None:
            return True
        if self.path.endswith("*"):
            return path.startswith(self.path[:-1])
        return path == self.path


@dataclass(eq=False, slots=True)
class _StreamClient:
    proto: ServerProtocol
    writer: asyncio.StreamWriter
    authorized: bool = False
    listening: bool = False


_DEFAULT_STATUS_MESSAGES = {
    400: (40010000, "request body format is invalid"),
    401: (40110000, "request is not authorized"),
    403: (40310000, "insufficient buying power"),
    404: (40410000, "not found"),
    422: (40010001, "invalid request"),
    429: (42910000, "rate limit exceeded"),
    500: (50010000, "internal server error occurred"),
    502: (50210000, "bad gateway"),
    503: (50310000, "service unavailable"),
    504: (50410000, "gateway timeout"),
}


class AlpacaEmulator:
    """The emulator (see the module docstring). Start with :meth:`start` or ``with``.

    ``prices`` sets each symbol's last price (the quote is last -/+ one cent); ``cash`` the
    account's starting cash; ``fill_delay`` the seconds between accepting an order and working
    it (and between split executions); ``fill_parts`` how many executions a fill takes;
    ``auto_fill=False`` leaves fills to :meth:`fill`; ``rate_limit`` answers 429 beyond that many
    requests per rolling minute (off by default).
    """

    def __init__(
        self,
        *,
        api_key: str = DEFAULT_API_KEY,
        secret_key: str = DEFAULT_SECRET_KEY,
        host: str = "127.0.0.1",
        port: int = 0,
        prices: Mapping[str, Decimal | str | int] | None = None,
        cash: Decimal | str | int = "100000",
        multiplier: Decimal | str | int = "2",
        daily_volume: int = 1_000_000,
        fill_delay: float = 0.01,
        fill_parts: int = 1,
        auto_fill: bool = True,
        shorting_enabled: bool = True,
        non_fractionable: frozenset[str] = frozenset(),
        rate_limit: int | None = None,
    ) -> None:
        if fill_parts < 1:
            raise ValueError("fill_parts must be at least 1")
        self.api_key = api_key
        self.secret_key = secret_key
        self.host = host
        self._requested_port = port
        self.port: int | None = None
        self.fill_delay = fill_delay
        self.fill_parts = fill_parts
        self.auto_fill = auto_fill
        self.daily_volume = daily_volume
        self.rate_limit = rate_limit
        self.non_fractionable = frozenset(non_fractionable)
        self.account_id = str(uuid.uuid4())
        now = _now()
        self.quotes: dict[str, QuoteState] = {}
        for symbol, price in (prices or DEFAULT_PRICES).items():
            last = Decimal(str(price))
            self.quotes[symbol] = QuoteState(last - CENT, last + CENT, last, now)
        self.cash = Decimal(str(cash))
        self.last_equity = self.cash
        self.multiplier = Decimal(str(multiplier))
        self.shorting_enabled = shorting_enabled
        self.daytrade_count = 0
        self.pattern_day_trader = False
        self.positions: dict[str, list[Decimal]] = {}  # symbol -> [signed qty, avg entry]
        self.orders: dict[str, EmuOrder] = {}
        self.by_client_id: dict[str, str] = {}
        self.activities: list[dict[str, Any]] = []
        self.history: list[tuple[datetime, Decimal]] = [(now, self.cash)]
        self.requests: list[tuple[str, str]] = []
        self._faults: list[Fault] = []
        self._reject_next: list[str] = []
        self._drop_before: set[str] = set()
        self._stream_paused = False
        self._stream_clients: set[_StreamClient] = set()
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._rate_window: list[float] = []
        self._trade_ids = itertools.count(1)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.AbstractServer | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._stopped: asyncio.Event | None = None
        self._start_error: BaseException | None = None

    # ------------------------------------------------------------------ lifecycle
    @property
    def base_url(self) -> str:
        """The REST base for ``url_override`` (trading and data): ``http://host:port``."""
        if self.port is None:
            raise RuntimeError("the emulator is not running")
        return f"http://{self.host}:{self.port}"

    @property
    def stream_url(self) -> str:
        """The complete trade-updates websocket URL."""
        if self.port is None:
            raise RuntimeError("the emulator is not running")
        return f"ws://{self.host}:{self.port}/stream"

    def start(self) -> AlpacaEmulator:
        """Serve in a background thread; returns once the port is bound."""
        if self._thread is not None:
            return self
        self._thread = threading.Thread(target=self._run, name="alpaca-emulator", daemon=True)
        self._thread.start()
        self._ready.wait(10)
        if self._start_error is not None:
            raise RuntimeError(f"emulator failed to start: {self._start_error}")
        return self

    def stop(self) -> None:
        """Close every connection, stop the server and join its thread."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        if loop.is_running() and self._stopped is not None:
            loop.call_soon_threadsafe(self._stopped.set)
        thread.join(10)
        self._thread = None
        self._loop = None
        self.port = None

    def __enter__(self) -> AlpacaEmulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # surfaced by start()
            self._start_error = exc
            self._ready.set()

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopped = asyncio.Event()
        self._server = await asyncio.start_server(
            self._serve_connection, self.host, self._requested_port
        )
        self.port = self._server.sockets[0].getsockname()[1]
        self._ready.set()
        await self._stopped.wait()
        self._server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        if self._tasks:  # aborted connections end their handlers; cancel only stragglers
            _done, pending = await asyncio.wait(set(self._tasks), timeout=2)
            for task in pending:
                task.cancel()
        await self._server.wait_closed()

    def _call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run ``fn`` on the emulator's loop (its state lives there) and return the result."""
        loop = self._loop
        if loop is None:
            return fn(*args, **kwargs)
        try:
            if asyncio.get_running_loop() is loop:
                return fn(*args, **kwargs)
        except RuntimeError:
            pass

        async def call() -> T:
            return fn(*args, **kwargs)

        return asyncio.run_coroutine_threadsafe(call(), loop).result(10)

    def _later(self, delay: float, fn: Callable[..., Any], *args: Any) -> None:
        assert self._loop is not None
        if delay <= 0:
            self._loop.call_soon(fn, *args)
        else:
            self._loop.call_later(delay, fn, *args)

    # ------------------------------------------------------------------ controls
    def set_quote(
        self,
        symbol: str,
        bid: Decimal | str,
        ask: Decimal | str,
        last: Decimal | str | None = None,
    ) -> None:
        """Move a symbol's market; working orders are evaluated against it."""

        def apply() -> None:
            b, a = Decimal(str(bid)), Decimal(str(ask))
            px = Decimal(str(last)) if last is not None else ((b + a) / 2).quantize(CENT)
            self.quotes[symbol] = QuoteState(b, a, px, _now())
            self._evaluate_all(symbol)

        self._call(apply)

    def set_price(self, symbol: str, last: Decimal | str) -> None:
        """Set the last price with the quote one cent either side."""
        px = Decimal(str(last))
        self.set_quote(symbol, px - CENT, px + CENT, px)

    def set_option_quote(
        self,
        symbol: str,
        bid: Decimal | str,
        ask: Decimal | str,
        last: Decimal | str | None = None,
    ) -> None:
        """List an option contract (compact OCC symbol) or move its market: bid and ask per
        share of premium; ``last`` defaults to the mid."""
        if not _is_option(symbol):
            raise ValueError(f"not a compact OCC option symbol: {symbol!r}")
        self.set_quote(symbol, bid, ask, last)

    def set_account(
        self,
        *,
        cash: Decimal | str | None = None,
        daytrade_count: int | None = None,
        pattern_day_trader: bool | None = None,
        last_equity: Decimal | str | None = None,
    ) -> None:
        def apply() -> None:
            if cash is not None:
                self.cash = Decimal(str(cash))
            if daytrade_count is not None:
                self.daytrade_count = daytrade_count
            if pattern_day_trader is not None:
                self.pattern_day_trader = pattern_day_trader
            if last_equity is not None:
                self.last_equity = Decimal(str(last_equity))

        self._call(apply)

    def fail_next(
        self,
        n: int = 1,
        status: int = 500,
        *,
        method: str | None = None,
        path: str | None = None,
        commit: bool = False,
        message: str | None = None,
        code: int | None = None,
    ) -> None:
        """The next ``n`` matching requests answer ``status`` with an Alpaca error body.

        ``path`` matches exactly, or as a prefix when it ends with ``*``. Without ``commit``
        nothing is done (the contract for 429/504: the order is not created); with it the request
        is processed first and only the answer is an error (a gateway failing after the order
        went through).
        """
        self._call(
            self._faults.append,
            Fault("status", n, method, path, status, commit=commit, message=message, code=code),
        )

    def delay_next(
        self, n: int, seconds: float, *, method: str | None = None, path: str | None = None
    ) -> None:
        """The next ``n`` matching requests are processed, then answered ``seconds`` late."""
        self._call(self._faults.append, Fault("delay", n, method, path, seconds=seconds))

    def lose_next_response(
        self, n: int = 1, *, method: str | None = "POST", path: str | None = "/v2/orders"
    ) -> None:
        """The next ``n`` matching requests are committed, then the connection is dropped
        without an answer (by default: order submits)."""
        self._call(self._faults.append, Fault("drop", n, method, path))

    def reject_next_order(self, reason: str = "order rejected by the exchange") -> None:
        """The next order submitted is accepted, then rejected on the stream."""
        self._call(self._reject_next.append, reason)

    def drop_stream(self) -> None:
        """Cut every stream connection now (clients reconnect by themselves)."""
        self._call(self._drop_streams)

    def drop_stream_before_next(self, event: str = "fill") -> None:
        """Instead of delivering the next ``event`` (``fill`` also covers ``partial_fill``),
        cut the stream connections: the change happened, its message is lost."""
        self._call(self._drop_before.add, event)

    def pause_stream(self) -> None:
        """Cut the stream and refuse new stream connections until :meth:`resume_stream`."""

        def apply() -> None:
            self._stream_paused = True
            self._drop_streams()

        self._call(apply)

    def resume_stream(self) -> None:
        self._call(setattr, self, "_stream_paused", False)

    def fill(
        self,
        order: str,
        qty: Decimal | str | None = None,
        price: Decimal | str | None = None,
    ) -> None:
        """Execute ``qty`` (default: the rest) of an order, by id or client order id, at
        ``price`` (default: the touch)."""

        def apply() -> None:
            o = self._find(order)
            if o is None or not o.is_open:
                raise ValueError(f"no working order {order!r}")
            q = self.quotes[o.symbol]
            px = Decimal(str(price)) if price is not None else (q.ask if o.side == "buy" else q.bid)
            amount = Decimal(str(qty)) if qty is not None else o.remaining
            self._execute(o, amount, px)

        self._call(apply)

    def end_of_day(self) -> None:
        """The close: on-close orders fill at the touch (a limit-on-close only if marketable),
        then every working ``day`` order expires."""
        self._call(self._end_of_day)

    def order(self, order: str) -> dict[str, Any] | None:
        """An order's JSON (by id or client order id), legs included."""

        def get() -> dict[str, Any] | None:
            o = self._find(order)
            return None if o is None else self._order_json(o, nested=True)

        return self._call(get)

    def all_orders(self) -> list[dict[str, Any]]:
        """Every order's JSON (legs as their own rows), in submission order."""
        return self._call(lambda: [self._order_json(o) for o in self.orders.values()])

    def request_log(self) -> list[tuple[str, str]]:
        """``(method, path)`` of every request served so far."""
        return self._call(lambda: list(self.requests))

    def count_requests(self, method: str, path: str) -> int:
        return sum(1 for m, p in self.request_log() if m == method and p == path)

    @property
    def stream_clients(self) -> int:
        """How many stream connections are listening to trade updates."""
        return self._call(lambda: sum(1 for c in self._stream_clients if c.listening))

    # ------------------------------------------------------------------ connections
    async def _serve_connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)  # type: ignore[arg-type]
        self._writers.add(writer)
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
                    return
                lines = head.decode("latin-1").split("\r\n")
                try:
                    method, target, _version = lines[0].split(" ", 2)
                except ValueError:
                    return
                headers: dict[str, str] = {}
                for line in lines[1:]:
                    if ":" in line:
                        name, value = line.split(":", 1)
                        headers[name.strip().lower()] = value.strip()
                if headers.get("upgrade", "").lower() == "websocket":
                    await self._serve_websocket(head, target, reader, writer)
                    return
                length = int(headers.get("content-length") or 0)
                body = await reader.readexactly(length) if length else b""
                if not await self._serve_http(method.upper(), target, headers, body, writer):
                    return
                if headers.get("connection", "").lower() == "close":
                    return
        except (asyncio.IncompleteReadError, ConnectionError):
            return
        finally:
            self._writers.discard(writer)
            self._tasks.discard(task)  # type: ignore[arg-type]
            with contextlib.suppress(Exception):
                writer.close()

    async def _serve_http(
        self,
        method: str,
        target: str,
        headers: Mapping[str, str],
        body: bytes,
        writer: asyncio.StreamWriter,
    ) -> bool:
        parts = urlsplit(target)
        path = parts.path
        query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        self.requests.append((method, path))
        data_api = path.startswith("/v2/stocks")
        fault = next((f for f in self._faults if f.matches(method, path)), None)
        if fault is not None:
            fault.remaining -= 1
            self._faults = [f for f in self._faults if f.remaining > 0]
        status: int
        payload: Any
        if fault is not None and fault.kind == "status" and not fault.commit:
            status, payload = fault.status, self._fault_body(fault, data_api)
        elif self._rate_limited():
            status, payload = 429, ApiError(429, 42910000, "rate limit exceeded").body()
        else:
            status, payload = self._handle(method, path, query, headers, body, data_api)
            if fault is not None and fault.kind == "status":
                status, payload = fault.status, self._fault_body(fault, data_api)
        if fault is not None and fault.kind == "drop":
            writer.transport.abort()
            return False
        if fault is not None and fault.kind == "delay":
            await asyncio.sleep(fault.seconds)
            if writer.transport.is_closing():
                return False
        raw = b"" if payload is None else json.dumps(payload).encode()
        try:
            reason = HTTPStatus(status).phrase
        except ValueError:
            reason = "Status"
        head = (
            f"HTTP/1.1 {status} {reason}\r\n"
            f"Content-Length: {len(raw)}\r\n"
            + ("Content-Type: application/json; charset=UTF-8\r\n" if raw else "")
            + "Connection: keep-alive\r\n\r\n"
        )
        writer.write(head.encode("latin-1") + raw)
        with contextlib.suppress(ConnectionError):
            await writer.drain()
        return True

    def _fault_body(self, fault: Fault, data_api: bool) -> dict[str, Any]:
        code, message = _DEFAULT_STATUS_MESSAGES.get(fault.status, (fault.status * 100000, "error"))
        error = ApiError(
            fault.status,
            None if data_api else (fault.code or code),
            fault.message or message,
        )
        return error.body()

    def _rate_limited(self) -> bool:
        if self.rate_limit is None:
            return False
        now = asyncio.get_running_loop().time()
        self._rate_window = [t for t in self._rate_window if now - t < 60]
        if len(self._rate_window) >= self.rate_limit:
            return True
        self._rate_window.append(now)
        return False

    def _handle(
        self,
        method: str,
        path: str,
        query: dict[str, str],
        headers: Mapping[str, str],
        body: bytes,
        data_api: bool,
    ) -> tuple[int, Any]:
        if (
            headers.get("apca-api-key-id") != self.api_key
            or headers.get("apca-api-secret-key") != self.secret_key
        ):
            if data_api:
                return 401, {"message": "unauthorized"}
            return 401, ApiError(401, 40110000, "request is not authorized").body()
        try:
            return self._route(method, path, query, body)
        except ApiError as err:
            if data_api:
                return err.status, {"message": err.message}
            return err.status, err.body()

    # ------------------------------------------------------------------ routing
    def _route(self, method: str, path: str, query: dict[str, str], body: bytes) -> tuple[int, Any]:
        segments = path.split("/")
        if method == "GET" and path == "/v2/account":
            return 200, self._account_json()
        if method == "GET" and path == "/v2/account/portfolio/history":
            return 200, self._portfolio_history(query)
        if method == "GET" and path in ("/v2/account/activities/FILL", "/v2/account/activities"):
            types = query.get("activity_types", "FILL") if path.endswith("activities") else "FILL"
            if "FILL" not in types.split(","):
                return 200, []
            return 200, self._activities(query)
        if method == "GET" and path == "/v2/clock":
            return 200, self._clock_json()
        if method == "GET" and len(segments) == 4 and segments[2] == "assets":
            return 200, self._asset_json(segments[3])
        if path == "/v2/orders:by_client_order_id" and method == "GET":
            coid = query.get("client_order_id", "")
            oid = self.by_client_id.get(coid)
            if oid is None:
                raise ApiError(404, 40410000, "order not found")
            return 200, self._order_json(self.orders[oid], nested=True)
        if path == "/v2/orders":
            if method == "POST":
                return 200, self._submit(body)
            if method == "GET":
                return 200, self._list_orders(query)
            if method == "DELETE":
                return 207, self._cancel_all()
        if len(segments) == 4 and segments[2] == "orders":
            order = self._order_by_path(segments[3])
            if method == "GET":
                return 200, self._order_json(order, nested=_truthy(query.get("nested")))
            if method == "DELETE":
                self._cancel(order)
                return 204, None
        if method == "GET" and path == "/v2/positions":
            return 200, [self._position_json(s) for s in sorted(self.positions)]
        if method == "GET" and len(segments) == 4 and segments[2] == "positions":
            if segments[3] not in self.positions:
                raise ApiError(404, 40410000, "position does not exist")
            return 200, self._position_json(segments[3])
        if method == "GET" and path == "/v2/stocks/bars":
            return 200, self._bars(query)
        if method == "GET" and path == "/v2/stocks/quotes/latest":
            return 200, self._latest_quotes(query)
        if method == "GET" and path == "/v2/stocks/trades/latest":
            return 200, self._latest_trades(query)
        raise ApiError(404, 40410000, f"endpoint not found: {method} {path}")

    def _order_by_path(self, segment: str) -> EmuOrder:
        try:
            oid = str(uuid.UUID(segment))
        except ValueError:
            raise ApiError(422, 40010001, f"invalid order id {segment}") from None
        order = self.orders.get(oid)
        if order is None:
            raise ApiError(404, 40410000, "order not found")
        return order

    def _find(self, key: str) -> EmuOrder | None:
        if key in self.orders:
            return self.orders[key]
        oid = self.by_client_id.get(key)
        return None if oid is None else self.orders[oid]

    # ------------------------------------------------------------------ account
    def _market_values(self) -> tuple[Decimal, Decimal]:
        long_value = short_value = ZERO
        for symbol, (qty, _avg) in self.positions.items():
            value = qty * self.quotes[symbol].last * _multiplier(symbol)
            if qty > 0:
                long_value += value
            else:
                short_value += value
        return long_value, short_value

    def _equity(self) -> Decimal:
        long_value, short_value = self._market_values()
        return self.cash + long_value + short_value

    def _buying_power(self) -> Decimal:
        long_value, short_value = self._market_values()
        gross = long_value - short_value
        return max(ZERO, self._equity() * self.multiplier - gross)

    def _account_json(self) -> dict[str, Any]:
        long_value, short_value = self._market_values()
        equity = self._equity()
        gross = long_value - short_value
        bp = self._buying_power()
        initial = gross / 2 if self.multiplier > 1 else gross
        return {
            "id": self.account_id,
            "account_number": "PA1EMULATOR",
            "status": "ACTIVE",
            "crypto_status": "ACTIVE",
            "currency": "USD",
            "cash": _s(self.cash),
            "buying_power": _s(bp),
            "regt_buying_power": _s(bp),
            "daytrading_buying_power": "0",
            "non_marginable_buying_power": _s(max(ZERO, self.cash)),
            "options_buying_power": _s(max(ZERO, self.cash)),
            "equity": _s(equity),
            "last_equity": _s(self.last_equity),
            "portfolio_value": _s(equity),
            "long_market_value": _s(long_value),
            "short_market_value": _s(short_value),
            "initial_margin": _s(initial),
            "maintenance_margin": _s(initial / 2 if self.multiplier > 1 else initial),
            "last_maintenance_margin": "0",
            "sma": "0",
            "multiplier": _s(self.multiplier),
            "accrued_fees": "0",
            "pending_transfer_in": "0",
            "pending_transfer_out": "0",
            "pattern_day_trader": self.pattern_day_trader,
            "trading_blocked": False,
            "transfers_blocked": False,
            "account_blocked": False,
            "trade_suspended_by_user": False,
            "shorting_enabled": self.shorting_enabled,
            "daytrade_count": self.daytrade_count,
            "created_at": "2024-01-01T00:00:00Z",
            "options_approved_level": 0,
            "options_trading_level": 0,
        }

    def _position_json(self, symbol: str) -> dict[str, Any]:
        """A position; for an option ``qty`` is contracts, prices are per share and the money
        fields (market value, cost basis, P&L) are x 100."""
        qty, avg = self.positions[symbol]
        quote = self.quotes[symbol]
        option = _is_option(symbol)
        market_value = qty * quote.last * _multiplier(symbol)
        cost = qty * avg * _multiplier(symbol)
        pl = market_value - cost
        plpc = ZERO if cost == 0 else (pl / abs(cost)).quantize(Decimal("0.0000000001"))
        return {
            "asset_id": _asset_id(symbol),
            "symbol": symbol,
            "exchange": "" if option else "NASDAQ",
            "asset_class": "us_option" if option else "us_equity",
            "asset_marginable": not option,
            "qty": _s(qty),
            "qty_available": _s(qty - self._held_qty(symbol)),
            "avg_entry_price": _s(avg),
            "side": "long" if qty > 0 else "short",
            "market_value": _s(market_value),
            "cost_basis": _s(cost),
            "unrealized_pl": _s(pl),
            "unrealized_plpc": _s(plpc),
            "unrealized_intraday_pl": _s(pl),
            "unrealized_intraday_plpc": _s(plpc),
            "current_price": _s(quote.last),
            "lastday_price": _s(quote.last),
            "change_today": "0",
        }

    def _held_qty(self, symbol: str) -> Decimal:
        return sum(
            (
                o.remaining
                for o in self.orders.values()
                if o.symbol == symbol and o.side == "sell" and o.is_open and o.parent_id is None
            ),
            ZERO,
        )

    def _clock_json(self) -> dict[str, Any]:
        calendar = default_calendar()
        now = _now()
        next_open = calendar.next_open(now)
        session = calendar.session_date(now)
        close_day = session if session is not None else calendar.session_date(next_open)
        assert close_day is not None
        return {
            "timestamp": now.astimezone(EASTERN).isoformat(),
            "is_open": session is not None,
            "next_open": next_open.astimezone(EASTERN).isoformat(),
            "next_close": calendar.session_close(close_day).astimezone(EASTERN).isoformat(),
        }

    def _asset_json(self, symbol: str) -> dict[str, Any]:
        if symbol not in self.quotes:
            raise ApiError(404, 40410000, f"asset not found for {symbol}")
        if _is_option(symbol):
            contract = parse_occ(symbol)
            active = contract.expiry >= self._session_day()
            return {
                "id": _asset_id(symbol),
                "class": "us_option",
                "exchange": "",
                "symbol": symbol,
                "name": str(contract),
                "status": "active" if active else "inactive",
                "tradable": active,
                "marginable": False,
                "shortable": False,
                "easy_to_borrow": False,
                "fractionable": False,
                "attributes": [],
            }
        return {
            "id": _asset_id(symbol),
            "class": "us_equity",
            "exchange": "NASDAQ",
            "symbol": symbol,
            "name": f"{symbol} Common Stock",
            "status": "active",
            "tradable": True,
            "marginable": True,
            "shortable": True,
            "easy_to_borrow": True,
            "fractionable": symbol not in self.non_fractionable,
            "attributes": [],
        }

    @staticmethod
    def _session_day() -> date:
        """Today in New York: option contracts trade until the close of their expiry date."""
        return _now().astimezone(EASTERN).date()

    def _portfolio_history(self, query: dict[str, str]) -> dict[str, Any]:
        timeframe = query.get("timeframe") or "1D"
        if timeframe not in ("1Min", "5Min", "15Min", "1H", "1D"):
            raise ApiError(422, 40010001, f"invalid timeframe {timeframe}")
        samples = [*self.history, (_now(), self._equity())]
        base = samples[0][1]
        points: dict[int, Decimal] = {}
        for at, equity in samples:
            points[int(at.timestamp())] = equity  # the last sample of a second wins
        stamps = sorted(points)
        equities = [points[t] for t in stamps]
        return {
            "timestamp": stamps,
            "equity": [float(e) for e in equities],
            "profit_loss": [float(e - base) for e in equities],
            "profit_loss_pct": [None if base == 0 else float((e - base) / base) for e in equities],
            "base_value": float(base),
            "base_value_asof": samples[0][0].date().isoformat(),
            "timeframe": timeframe,
            "cashflow": {},
        }

    def _activities(self, query: dict[str, str]) -> list[dict[str, Any]]:
        after = _parse_time(query["after"], "after") if query.get("after") else None
        until = _parse_time(query["until"], "until") if query.get("until") else None
        direction = query.get("direction", "desc")
        if direction not in ("asc", "desc"):
            raise ApiError(422, 40010001, f"invalid direction {direction}")
        size = int(query.get("page_size") or 100)
        if not 1 <= size <= 100:
            raise ApiError(422, 40010001, "page_size must be between 1 and 100")
        rows = [
            a
            for a in self.activities
            if (after is None or a["_at"] > after) and (until is None or a["_at"] < until)
        ]
        if direction == "desc":
            rows.reverse()
        token = query.get("page_token")
        if token:
            ids = [a["id"] for a in rows]
            rows = rows[ids.index(token) + 1 :] if token in ids else []
        return [{k: v for k, v in a.items() if not k.startswith("_")} for a in rows[:size]]

    # ------------------------------------------------------------------ orders: submit
    def _submit(self, body: bytes) -> dict[str, Any]:
        try:
            data = json.loads(body or b"null")
        except ValueError:
            raise ApiError(400, 40010000, "request body format is invalid") from None
        if not isinstance(data, dict):
            raise ApiError(400, 40010000, "request body format is invalid")
        order_class = data.get("order_class") or "simple"
        if order_class not in ORDER_CLASSES:
            raise ApiError(422, 40010001, f"invalid order_class {order_class}")
        if order_class in ("oco", "oto", "mleg"):
            raise ApiError(422, 40010001, f"order_class {order_class} is not supported here")
        symbol = data.get("symbol")
        option = _is_option(symbol)
        if option:
            self._check_option_contract(symbol)
        elif not isinstance(symbol, str) or symbol not in self.quotes:
            raise ApiError(422, 40010001, f"asset {symbol} is not active")
        side = data.get("side")
        if side not in ("buy", "sell"):
            raise ApiError(422, 40010001, "invalid side")
        otype = data.get("type")
        if otype not in ORDER_TYPES:
            raise ApiError(422, 40010001, "invalid order type")
        tif = data.get("time_in_force")
        if tif not in TIME_IN_FORCE:
            raise ApiError(422, 40010001, "invalid time_in_force")
        intent = data.get("position_intent")
        if intent is not None and intent not in POSITION_INTENTS:
            raise ApiError(422, 40010001, f"invalid position_intent {intent}")
        if intent is not None and not intent.startswith(f"{side}_"):
            raise ApiError(422, 40010001, f"position_intent {intent} does not match side {side}")
        if option:
            self._check_option_order(data, order_class, otype, tif)
        has_qty, has_notional = data.get("qty") is not None, data.get("notional") is not None
        if has_qty == has_notional:
            raise ApiError(422, 40010001, "qty or notional is required, not both")
        qty = _num(data["qty"], "qty") if has_qty else None
        notional = _num(data["notional"], "notional") if has_notional else None
        if qty is not None and qty <= 0:
            raise ApiError(422, 40010001, "qty must be > 0")
        if notional is not None and notional <= 0:
            raise ApiError(422, 40010001, "notional must be > 0")
        fractional = notional is not None or (qty is not None and qty != qty.to_integral_value())
        if fractional:
            if symbol in self.non_fractionable:
                raise ApiError(422, 40010001, f"asset {symbol} is not fractionable")
            if tif != "day":
                raise ApiError(422, 42210000, "fractional orders must be DAY orders")
            if order_class != "simple" or otype == "trailing_stop":
                raise ApiError(
                    422, 42210000, "fractional orders must be simple market, limit or stop orders"
                )
        if notional is not None and otype != "market":
            raise ApiError(422, 42210000, "notional orders must be market orders")
        prices: dict[str, Decimal | None] = {}
        for name in ("limit_price", "stop_price", "trail_price", "trail_percent"):
            prices[name] = _num(data[name], name) if data.get(name) is not None else None
        for name in ("limit_price", "stop_price"):
            value = prices[name]
            if value is not None and (value <= 0 or _sub_penny(value, option)):
                raise ApiError(
                    422,
                    42210000,
                    f"invalid {name} {data[name]}. sub-penny increment does not fulfill "
                    "minimum pricing criteria",
                )
        if otype in ("limit", "stop_limit") and prices["limit_price"] is None:
            raise ApiError(422, 40010001, "limit_price is required")
        if otype in ("stop", "stop_limit") and prices["stop_price"] is None:
            raise ApiError(422, 40010001, "stop_price is required")
        if otype == "trailing_stop" and (prices["trail_price"] is None) == (
            prices["trail_percent"] is None
        ):
            raise ApiError(422, 40010001, "trail_price or trail_percent is required")
        if tif == "cls" and otype not in ("market", "limit"):
            raise ApiError(422, 40010001, "cls orders must be market or limit orders")
        extended = data.get("extended_hours")
        if extended is not None and not isinstance(extended, bool):
            raise ApiError(422, 40010001, "invalid extended_hours")
        if extended and (otype != "limit" or tif != "day"):
            raise ApiError(422, 42210000, "extended hours order must be DAY limit orders")
        take_profit = stop_loss = None
        if order_class == "bracket":
            take_profit, stop_loss = self._check_bracket(data, side, otype, tif, bool(extended))
        coid = data.get("client_order_id")
        if coid is None:
            coid = str(uuid.uuid4())
        if not isinstance(coid, str) or not coid:
            raise ApiError(422, 40010001, "invalid client_order_id")
        if len(coid) > 128:
            raise ApiError(422, 40010001, "client_order_id must be no more than 128 characters")
        if coid in self.by_client_id:
            raise ApiError(422, 40010001, "client_order_id must be unique")
        if option:
            assert qty is not None
            self._check_option_funds(symbol, side, qty, prices, intent)
        else:
            self._check_funds(symbol, side, otype, qty, notional, prices)

        now = _now()
        order = EmuOrder(
            id=str(uuid.uuid4()),
            client_order_id=coid,
            symbol=symbol,
            side=side,
            type=otype,
            time_in_force=tif,
            qty=qty,
            notional=notional,
            created_at=now,
            updated_at=now,
            limit_price=prices["limit_price"],
            stop_price=prices["stop_price"],
            trail_price=prices["trail_price"],
            trail_percent=prices["trail_percent"],
            order_class=order_class,
            extended_hours=bool(extended),
            position_intent=intent,
        )
        if otype == "trailing_stop":  # the water mark starts at the price on arrival
            order.hwm = self.quotes[symbol].last
        self._add(order)
        if take_profit is not None and stop_loss is not None:
            self._add_legs(order, take_profit, stop_loss)
        reject = self._reject_next.pop(0) if self._reject_next else None
        self._later(0, self._accepted, order.id, reject)
        return self._order_json(order, nested=True)

    def _check_option_contract(self, symbol: str) -> None:
        """422 unless the contract is listed (has a quote) and not past its expiry date."""
        if symbol not in self.quotes:
            raise ApiError(422, 40010001, f"asset {symbol} not found")
        if parse_occ(symbol).expiry < self._session_day():
            raise ApiError(422, 40010001, f"asset {symbol} is not active")

    @staticmethod
    def _check_option_order(data: dict[str, Any], order_class: str, otype: str, tif: str) -> None:
        """Alpaca's rules for single-leg option orders (all 422)."""
        if order_class != "simple":
            raise ApiError(422, 40010001, f"order_class {order_class} is not supported for options")
        if otype not in OPTION_ORDER_TYPES:
            raise ApiError(422, 40010001, f"{otype} orders are not supported for options")
        if tif not in OPTION_TIME_IN_FORCE:
            raise ApiError(422, 42210000, f"invalid option time_in_force {tif}")
        if data.get("extended_hours"):
            raise ApiError(422, 42210000, "extended hours are not supported for options")
        if data.get("notional") is not None:
            raise ApiError(422, 40010001, "notional is not supported for options")
        qty = data.get("qty")
        if qty is not None:
            contracts = _num(qty, "qty")
            if contracts != contracts.to_integral_value():
                raise ApiError(422, 40010001, "qty must be integer")

    def _check_option_funds(
        self,
        symbol: str,
        side: str,
        qty: Decimal,
        prices: Mapping[str, Decimal | None],
        intent: str | None,
    ) -> None:
        """403 when an option order cannot be paid for or covered: a buy pays the premium
        (x 100) from cash; contracts sold beyond those held are a covered call (the underlying
        shares) or a cash-secured put (the strike in cash); ``*_to_close`` only closes."""
        quote = self.quotes[symbol]
        position = self.positions.get(symbol, [ZERO, ZERO])[0]
        if intent in ("sell_to_close", "buy_to_close"):
            held = max(ZERO, position) if side == "sell" else max(ZERO, -position)
            held_for_orders = self._held_qty(symbol) if side == "sell" else ZERO
            available = max(ZERO, held - held_for_orders)
            if qty > available:
                raise ApiError(
                    403,
                    40310000,
                    f"insufficient qty available for order (requested: {_s(qty)}, "
                    f"available: {_s(available)})",
                    available=_s(available),
                    existing_qty=_s(position),
                    held_for_orders=_s(held_for_orders),
                    symbol=symbol,
                )
            return
        if side == "buy":
            opening = qty - min(qty, max(ZERO, -position))
            if opening <= 0:
                return
            ref = prices["limit_price"] or prices["stop_price"] or quote.ask
            cost = opening * ref * MULTIPLIER
            available_bp = min(self._buying_power(), max(ZERO, self.cash)) - self._reserved()
            if cost > available_bp:
                raise ApiError(
                    403,
                    40310000,
                    "insufficient options buying power",
                    buying_power=_s(max(ZERO, available_bp)),
                    cost_basis=_s(cost),
                )
            return
        available = max(ZERO, position) - self._held_qty(symbol)
        opening = max(ZERO, qty - max(ZERO, available))
        if opening <= 0:
            return
        contract = parse_occ(symbol)
        required = opening * MULTIPLIER
        if contract.right.letter == "C":
            shares = max(ZERO, self.positions.get(contract.underlying, [ZERO, ZERO])[0])
            if shares < required:
                raise ApiError(
                    403,
                    40310000,
                    f"insufficient underlying qty available for covered call (required: "
                    f"{_s(required)}, available: {_s(shares)})",
                    available_qty=_s(shares),
                    required_qty=_s(required),
                    symbol=symbol,
                    underlying_asset_id=_asset_id(contract.underlying),
                )
            return
        secured = required * contract.strike
        available_cash = max(ZERO, self.cash) - self._reserved()
        if secured > available_cash:
            raise ApiError(
                403,
                40310000,
                f"insufficient options buying power for cash-secured put (required: "
                f"{_s(secured)}, available: {_s(max(ZERO, available_cash))})",
                buying_power=_s(max(ZERO, available_cash)),
                cost_basis=_s(secured),
            )

    def _reserved(self) -> Decimal:
        """What working buy orders commit: remaining x (limit, stop or ask) x multiplier."""
        return sum(
            (
                o.remaining
                * (o.limit_price or o.stop_price or self.quotes[o.symbol].ask)
                * _multiplier(o.symbol)
                for o in self.orders.values()
                if o.is_open and o.side == "buy" and o.parent_id is None and o.qty is not None
            ),
            ZERO,
        )

    def _check_bracket(
        self, data: dict[str, Any], side: str, otype: str, tif: str, extended: bool
    ) -> tuple[Decimal, tuple[Decimal, Decimal | None]]:
        if otype not in ("market", "limit"):
            raise ApiError(422, 40010001, "bracket orders must be market or limit orders")
        if tif not in ("day", "gtc"):
            raise ApiError(422, 40010001, "bracket orders must be DAY or GTC orders")
        if extended:
            raise ApiError(422, 42210000, "bracket orders cannot be extended hours orders")
        tp, sl = data.get("take_profit"), data.get("stop_loss")
        if not isinstance(tp, dict) or not isinstance(sl, dict):
            raise ApiError(422, 40010001, "bracket orders require take_profit and stop_loss")
        tp_limit = _num(tp.get("limit_price"), "take_profit.limit_price")
        sl_stop = _num(sl.get("stop_price"), "stop_loss.stop_price")
        sl_limit = (
            _num(sl["limit_price"], "stop_loss.limit_price")
            if sl.get("limit_price") is not None
            else None
        )
        for name, value in (
            ("take_profit.limit_price", tp_limit),
            ("stop_loss.stop_price", sl_stop),
            ("stop_loss.limit_price", sl_limit),
        ):
            if value is not None and (value <= 0 or _sub_penny(value)):
                raise ApiError(
                    422,
                    42210000,
                    f"invalid {name} {value}. sub-penny increment does not fulfill minimum "
                    "pricing criteria",
                )
        if side == "buy" and not tp_limit > sl_stop:
            raise ApiError(422, 42210000, "take_profit.limit_price must be > stop_loss.stop_price")
        if side == "sell" and not tp_limit < sl_stop:
            raise ApiError(422, 42210000, "take_profit.limit_price must be < stop_loss.stop_price")
        return tp_limit, (sl_stop, sl_limit)

    def _check_funds(
        self,
        symbol: str,
        side: str,
        otype: str,
        qty: Decimal | None,
        notional: Decimal | None,
        prices: Mapping[str, Decimal | None],
    ) -> None:
        quote = self.quotes[symbol]
        position = self.positions.get(symbol, [ZERO, ZERO])[0]
        touch = quote.ask if side == "buy" else quote.bid
        ref = prices["limit_price"] or prices["stop_price"] or touch
        if notional is not None:
            qty = (notional / touch).quantize(Decimal("0.000000001"), ROUND_DOWN)
        assert qty is not None
        if side == "buy":
            opening = qty - min(qty, max(ZERO, -position))
        else:
            available = max(ZERO, position) - self._held_qty(symbol)
            opening = max(ZERO, qty - max(ZERO, available))
            if opening > 0 and not self.shorting_enabled:
                if position > 0:
                    raise ApiError(
                        403,
                        40310000,
                        f"insufficient qty available for order (requested: {_s(qty)}, "
                        f"available: {_s(max(ZERO, available))})",
                        available=_s(max(ZERO, available)),
                        existing_qty=_s(position),
                        held_for_orders=_s(self._held_qty(symbol)),
                        symbol=symbol,
                    )
                raise ApiError(403, 40310000, "account is not allowed to short")
        if opening <= 0:
            return
        reserved = self._reserved()
        cost = opening * ref
        available_bp = self._buying_power() - reserved
        if cost > available_bp:
            raise ApiError(
                403,
                40310000,
                "insufficient buying power",
                buying_power=_s(max(ZERO, available_bp)),
                cost_basis=_s(cost),
            )

    def _add(self, order: EmuOrder) -> None:
        self.orders[order.id] = order
        self.by_client_id[order.client_order_id] = order.id

    def _add_legs(
        self,
        parent: EmuOrder,
        take_profit: Decimal,
        stop_loss: tuple[Decimal, Decimal | None],
    ) -> None:
        exit_side = "sell" if parent.side == "buy" else "buy"
        sl_stop, sl_limit = stop_loss
        legs = (
            ("take_profit", "limit", take_profit, None),
            ("stop_loss", "stop_limit" if sl_limit is not None else "stop", sl_limit, sl_stop),
        )
        for role, otype, limit, stop in legs:
            leg = EmuOrder(
                id=str(uuid.uuid4()),
                client_order_id=str(uuid.uuid4()),
                symbol=parent.symbol,
                side=exit_side,
                type=otype,
                time_in_force=parent.time_in_force,
                qty=parent.qty,
                notional=None,
                created_at=parent.created_at,
                updated_at=parent.created_at,
                limit_price=limit,
                stop_price=stop,
                order_class="bracket",
                status="held",
                parent_id=parent.id,
                role=role,
                active=False,
            )
            self._add(leg)
            parent.legs.append(leg.id)

    # ------------------------------------------------------------------ orders: lifecycle
    def _accepted(self, oid: str, reject: str | None) -> None:
        order = self.orders[oid]
        if not order.is_open:
            return
        if reject is not None:
            now = _now()
            order.status, order.failed_at, order.updated_at = "rejected", now, now
            self._emit("rejected", order)
            for leg_id in order.legs:
                leg = self.orders[leg_id]
                leg.status, leg.failed_at, leg.updated_at = "rejected", now, now
            return
        if order.status == "accepted":
            order.status = "new"
            order.updated_at = _now()
            self._emit("new", order)
        if self.auto_fill:
            self._later(self.fill_delay, self._evaluate, oid)

    def _evaluate_all(self, symbol: str) -> None:
        if not self.auto_fill:
            return
        for order in list(self.orders.values()):
            if order.symbol == symbol and order.is_open:
                self._evaluate(order.id)

    def _evaluate(self, oid: str, closing: bool = False) -> None:
        """Work an order against the current quote: fill what is marketable."""
        order = self.orders[oid]
        if not order.is_open or not order.active or order.status in ("accepted", "pending_cancel"):
            return
        if order.time_in_force == "cls" and not closing:
            return
        price = self._marketable(order)
        if price is None:
            if order.time_in_force in ("ioc", "fok") or closing:
                self._finish(order, "canceled")
            return
        remaining = order.remaining if order.qty is not None else None
        if remaining is None:  # notional: the quantity is set at the fill
            order.qty = (order.notional / price).quantize(Decimal("0.000000001"), ROUND_DOWN)
            remaining = order.qty
        parts = 1 if order.time_in_force in ("ioc", "fok") or closing else self.fill_parts
        chunk = remaining
        if parts > 1 and order.fills_done < parts - 1:
            total = order.qty or remaining
            unit = Decimal(1) if total == total.to_integral_value() else Decimal("0.0001")
            chunk = max(unit, (total / parts).quantize(unit, ROUND_DOWN))
            chunk = min(chunk, remaining)
        self._execute(order, chunk, price)
        if order.is_open and order.remaining > 0:
            self._later(self.fill_delay, self._evaluate, oid)

    def _marketable(self, order: EmuOrder) -> Decimal | None:
        quote = self.quotes[order.symbol]
        buy = order.side == "buy"
        touch = quote.ask if buy else quote.bid
        kind = order.type
        if kind == "market":
            return touch
        if kind == "limit":
            assert order.limit_price is not None
            ok = touch <= order.limit_price if buy else touch >= order.limit_price
            return touch if ok else None
        if kind in ("stop", "stop_limit"):
            assert order.stop_price is not None
            if not order.triggered:
                hit = quote.last >= order.stop_price if buy else quote.last <= order.stop_price
                if not hit:
                    return None
                order.triggered = True
            if kind == "stop":
                return touch
            assert order.limit_price is not None
            ok = touch <= order.limit_price if buy else touch >= order.limit_price
            return touch if ok else None
        # trailing stop: the water mark follows the last price, the stop trails it
        mark = order.hwm if order.hwm is not None else quote.last
        mark = min(mark, quote.last) if buy else max(mark, quote.last)
        order.hwm = mark
        if order.trail_price is not None:
            stop = mark + order.trail_price if buy else mark - order.trail_price
        else:
            assert order.trail_percent is not None
            factor = order.trail_percent / 100
            stop = mark * (1 + factor) if buy else mark * (1 - factor)
        order.stop_price = stop.quantize(CENT)
        hit = quote.last >= order.stop_price if buy else quote.last <= order.stop_price
        return touch if hit else None

    def _execute(self, order: EmuOrder, qty: Decimal, price: Decimal) -> None:
        """One execution: books, order state, the activity and the stream event."""
        if qty <= 0 or qty > order.remaining:
            raise ValueError(f"cannot fill {qty} of {order.client_order_id}")
        now = _now()
        prior_value = (order.filled_avg_price or ZERO) * order.filled_qty
        order.filled_qty += qty
        avg = (prior_value + qty * price) / order.filled_qty
        order.filled_avg_price = avg.quantize(Decimal("0.0001")).normalize()
        order.fills_done += 1
        order.updated_at = now
        done = order.remaining == 0
        order.status = "filled" if done else "partially_filled"
        if done:
            order.filled_at = now
        signed = qty if order.side == "buy" else -qty
        self.cash -= signed * price * _multiplier(order.symbol)
        position = self.positions.get(order.symbol)
        if position is None:
            self.positions[order.symbol] = [signed, price]
        else:
            held, avg_entry = position
            new = held + signed
            if new == 0:
                del self.positions[order.symbol]
            elif (held > 0) == (signed > 0):
                position[1] = (avg_entry * held + price * signed) / new
                position[0] = new
            elif (new > 0) == (held > 0):
                position[0] = new
            else:
                self.positions[order.symbol] = [new, price]
        position_qty = self.positions.get(order.symbol, [ZERO])[0]
        execution_id = str(uuid.uuid4())
        event = "fill" if done else "partial_fill"
        self.activities.append(
            {
                "id": f"{now.strftime('%Y%m%d%H%M%S%f')[:-3]}::{execution_id}",
                "activity_type": "FILL",
                "transaction_time": _ts(now),
                "type": event,
                "price": _s(price),
                "qty": _s(qty),
                "side": order.side,
                "symbol": order.symbol,
                "leaves_qty": _s(order.remaining),
                "order_id": order.id,
                "cum_qty": _s(order.filled_qty),
                "order_status": order.status,
                "_at": now,
            }
        )
        self.history.append((now, self._equity()))
        self._emit(
            event,
            order,
            execution_id=execution_id,
            price=_s(price),
            qty=_s(qty),
            position_qty=_s(position_qty),
        )
        if done and order.legs:
            self._activate_legs(order)
        if done and order.parent_id is not None:
            parent = self.orders[order.parent_id]
            for leg_id in parent.legs:
                sibling = self.orders[leg_id]
                if sibling.id != order.id and sibling.is_open:
                    self._finish(sibling, "canceled")

    def _activate_legs(self, parent: EmuOrder) -> None:
        for leg_id in parent.legs:
            leg = self.orders[leg_id]
            if not leg.is_open:
                continue
            leg.active = True
            leg.qty = parent.filled_qty
            leg.updated_at = _now()
            if leg.role == "take_profit":
                leg.status = "new"
                self._emit("new", leg)
            if self.auto_fill:
                self._later(self.fill_delay, self._evaluate, leg.id)

    def _finish(self, order: EmuOrder, status: str) -> None:
        now = _now()
        order.status = status
        order.updated_at = now
        if status == "canceled":
            order.canceled_at = now
        elif status == "expired":
            order.expired_at = now
        self._emit(status, order)

    def _cancel(self, order: EmuOrder) -> None:
        if not order.is_open or order.status == "pending_cancel":
            raise ApiError(422, 42210000, "order is not cancelable")
        group = [order] + [self.orders[i] for i in order.legs if self.orders[i].is_open]
        for member in group:
            member.status = "pending_cancel"
            member.updated_at = _now()
        self._later(0, self._complete_cancel, [m.id for m in group])

    def _complete_cancel(self, ids: list[str]) -> None:
        for oid in ids:
            order = self.orders[oid]
            if order.status == "pending_cancel":
                self._finish(order, "canceled")

    def _cancel_all(self) -> list[dict[str, Any]]:
        answers = []
        for order in list(self.orders.values()):
            if order.is_open and order.status != "pending_cancel":
                order.status = "pending_cancel"
                order.updated_at = _now()
                answers.append({"id": order.id, "status": 200})
        self._later(0, self._complete_cancel, [a["id"] for a in answers])
        return answers

    def _end_of_day(self) -> None:
        for order in list(self.orders.values()):
            if order.is_open and order.time_in_force == "cls" and order.active:
                self._evaluate(order.id, closing=True)
        for order in list(self.orders.values()):
            if order.is_open and order.time_in_force in ("day", "cls", "opg"):
                self._finish(order, "expired")
        self.last_equity = self._equity()

    def _list_orders(self, query: dict[str, str]) -> list[dict[str, Any]]:
        status = query.get("status", "open")
        if status not in ("open", "closed", "all"):
            raise ApiError(422, 40010001, f"invalid status {status}")
        limit = int(query.get("limit") or 50)
        if not 1 <= limit <= 500:
            raise ApiError(422, 40010001, "limit must be between 1 and 500")
        direction = query.get("direction", "desc")
        if direction not in ("asc", "desc"):
            raise ApiError(422, 40010001, f"invalid direction {direction}")
        nested = _truthy(query.get("nested"))
        after = _parse_time(query["after"], "after") if query.get("after") else None
        until = _parse_time(query["until"], "until") if query.get("until") else None
        side = query.get("side")
        symbols = set(query["symbols"].split(",")) if query.get("symbols") else None

        def wanted(o: EmuOrder) -> bool:
            if status == "all":
                return True
            return o.is_open if status == "open" else not o.is_open

        rows = []
        for order in self.orders.values():
            if nested and order.parent_id is not None:
                continue
            group = [order] + ([self.orders[i] for i in order.legs] if nested else [])
            if not any(wanted(o) for o in group):
                continue
            if after is not None and not order.created_at > after:
                continue
            if until is not None and not order.created_at < until:
                continue
            if side is not None and order.side != side:
                continue
            if symbols is not None and order.symbol not in symbols:
                continue
            rows.append(order)
        rows.sort(key=lambda o: o.created_at, reverse=direction == "desc")
        return [self._order_json(o, nested=nested) for o in rows[:limit]]

    def _order_json(self, order: EmuOrder, nested: bool = False) -> dict[str, Any]:
        legs = None
        if nested and order.legs:
            legs = [self._order_json(self.orders[i]) for i in order.legs]
        return {
            "id": order.id,
            "client_order_id": order.client_order_id,
            "created_at": _ts(order.created_at),
            "updated_at": _ts(order.updated_at or order.created_at),
            "submitted_at": _ts(order.created_at),
            "filled_at": _ts(order.filled_at),
            "expired_at": _ts(order.expired_at),
            "expires_at": None,
            "canceled_at": _ts(order.canceled_at),
            "failed_at": _ts(order.failed_at),
            "replaced_at": None,
            "replaced_by": None,
            "replaces": None,
            "asset_id": _asset_id(order.symbol),
            "symbol": order.symbol,
            "asset_class": "us_option" if _is_option(order.symbol) else "us_equity",
            "notional": _s(order.notional),
            "qty": _s(order.qty),
            "filled_qty": _s(order.filled_qty),
            "filled_avg_price": _s(order.filled_avg_price),
            "order_class": order.order_class,
            "order_type": order.type,
            "type": order.type,
            "side": order.side,
            "position_intent": order.position_intent,
            "time_in_force": order.time_in_force,
            "limit_price": _s(order.limit_price),
            "stop_price": _s(order.stop_price),
            "status": order.status,
            "extended_hours": order.extended_hours,
            "legs": legs,
            "trail_percent": _s(order.trail_percent),
            "trail_price": _s(order.trail_price),
            "hwm": _s(order.hwm),
            "commission": "0",
            "source": None,
            "subtag": None,
        }

    # ------------------------------------------------------------------ market data
    def _data_symbols(self, query: dict[str, str]) -> list[str]:
        raw = query.get("symbols")
        if not raw:
            raise ApiError(422, None, "symbols is required")
        feed = query.get("feed")
        if feed is not None and feed not in DATA_FEEDS:
            raise ApiError(422, None, f"invalid feed {feed}")
        return raw.split(",")

    def _latest_quotes(self, query: dict[str, str]) -> dict[str, Any]:
        quotes = {}
        for symbol in self._data_symbols(query):
            q = self.quotes.get(symbol)
            if q is not None and not _is_option(symbol):  # the stock data API only
                quotes[symbol] = {
                    "t": _ts(q.at),
                    "ax": "V",
                    "ap": float(q.ask),
                    "as": 2,
                    "bx": "V",
                    "bp": float(q.bid),
                    "bs": 3,
                    "c": ["R"],
                    "z": "C",
                }
        return {"quotes": quotes}

    def _latest_trades(self, query: dict[str, str]) -> dict[str, Any]:
        trades = {}
        for symbol in self._data_symbols(query):
            q = self.quotes.get(symbol)
            if q is not None and not _is_option(symbol):  # the stock data API only
                trades[symbol] = {
                    "t": _ts(q.at),
                    "x": "V",
                    "p": float(q.last),
                    "s": 100,
                    "c": ["@"],
                    "i": next(self._trade_ids),
                    "z": "C",
                }
        return {"trades": trades}

    def _bars(self, query: dict[str, str]) -> dict[str, Any]:
        symbols = self._data_symbols(query)
        minutes = _timeframe_minutes(query.get("timeframe", ""))
        now = _now()
        start = (
            _parse_time(query["start"], "start")
            if query.get("start")
            else datetime.combine(now.date(), time(0), UTC)
        )
        end = _parse_time(query["end"], "end") if query.get("end") else now
        limit = int(query.get("limit") or 1000)
        if not 1 <= limit <= 10000:
            raise ApiError(422, None, "invalid limit")
        sort = query.get("sort", "asc")
        if sort not in ("asc", "desc"):
            raise ApiError(422, None, "invalid sort")
        offset = (
            int(base64.urlsafe_b64decode(query["page_token"]).decode())
            if query.get("page_token")
            else 0
        )
        rows: list[tuple[str, dict[str, Any]]] = []
        for symbol in sorted(symbols):
            if symbol not in self.quotes or _is_option(symbol):
                continue
            series = list(self._bar_series(symbol, minutes, start, min(end, now), now))
            if sort == "desc":
                series.reverse()
            rows.extend((symbol, bar) for bar in series)
        page = rows[offset : offset + limit]
        token = None
        if offset + limit < len(rows):
            token = base64.urlsafe_b64encode(str(offset + limit).encode()).decode()
        bars: dict[str, list[dict[str, Any]]] = {}
        for symbol, bar in page:
            bars.setdefault(symbol, []).append(bar)
        return {"bars": bars, "next_page_token": token}

    def _bar_series(
        self, symbol: str, minutes: int | None, start: datetime, end: datetime, now: datetime
    ) -> Iterator[dict[str, Any]]:
        """Deterministic completed bars with ``start <= t <= end`` inside sessions."""
        calendar = default_calendar()
        day = start.astimezone(EASTERN).date() - timedelta(days=1)
        last_day = end.astimezone(EASTERN).date()
        base = self.quotes[symbol].last
        while day <= last_day:
            if not calendar.is_session(day):
                day += timedelta(days=1)
                continue
            open_, close = calendar.session_open(day), calendar.session_close(day)
            if minutes is None:
                t = datetime.combine(day, time(0), EASTERN).astimezone(UTC)
                if start <= t <= end and close <= now:
                    yield self._bar(symbol, base, t, open_, close, Decimal(self.daily_volume))
            else:
                step = timedelta(minutes=minutes)
                midnight = datetime.combine(open_.date(), time(0), UTC)
                offset = (open_ - midnight) // step
                t = midnight + offset * step
                share = Decimal(self.daily_volume) / 390 * minutes
                while t < close:
                    bar_end = min(t + step, close)
                    if start <= t <= end and bar_end <= now:
                        yield self._bar(
                            symbol, base, t, max(t, open_), bar_end, share.quantize(Decimal(1))
                        )
                    t += step
            day += timedelta(days=1)

    @staticmethod
    def _bar(
        symbol: str, base: Decimal, t: datetime, first: datetime, last: datetime, volume: Decimal
    ) -> dict[str, Any]:
        seed = sum(symbol.encode())

        def price(at: datetime) -> float:
            minutes = at.timestamp() / 60
            wave = 0.01 * math.sin(minutes / 97.0 + seed) + 0.004 * math.sin(minutes / 13.0)
            return round(float(base) * (1 + wave), 2)

        o, c = price(first), price(last)
        return {
            "t": _ts(t),
            "o": o,
            "h": round(max(o, c) + 0.05, 2),
            "l": round(min(o, c) - 0.05, 2),
            "c": c,
            "v": float(volume),
            "n": 100,
            "vw": round((o + c) / 2, 4),
        }

    # ------------------------------------------------------------------ trade-update stream
    async def _serve_websocket(
        self,
        head: bytes,
        target: str,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        if urlsplit(target).path != "/stream" or self._stream_paused:
            status = "404 Not Found" if not self._stream_paused else "503 Service Unavailable"
            writer.write(f"HTTP/1.1 {status}\r\nContent-Length: 0\r\n\r\n".encode())
            with contextlib.suppress(ConnectionError):
                await writer.drain()
            return
        proto = ServerProtocol(logger=_websocket_log)
        proto.receive_data(head)
        events = proto.events_received()
        if not events:
            return
        response = proto.accept(events[0])  # type: ignore[arg-type]
        proto.send_response(response)
        client = _StreamClient(proto, writer)
        self._flush(client)
        if response.status_code != 101:
            return
        self._stream_clients.add(client)
        try:
            while proto.state is not State.CLOSED:
                data = await reader.read(65536)
                if not data:
                    proto.receive_eof()
                else:
                    proto.receive_data(data)
                for frame in proto.events_received():
                    if frame.opcode in (Opcode.TEXT, Opcode.BINARY):  # type: ignore[union-attr]
                        self._on_stream_message(client, frame.data)  # type: ignore[union-attr]
                self._flush(client)
                if not data:
                    break
        finally:
            self._stream_clients.discard(client)

    def _flush(self, client: _StreamClient) -> None:
        if client.writer.transport.is_closing():
            return
        for chunk in client.proto.data_to_send():
            if chunk:
                client.writer.write(chunk)
            else:
                client.writer.close()
                return

    def _send(self, client: _StreamClient, message: dict[str, Any]) -> None:
        if client.proto.state is not State.OPEN:
            return
        client.proto.send_binary(json.dumps(message).encode())
        self._flush(client)

    def _on_stream_message(self, client: _StreamClient, data: bytes) -> None:
        try:
            message = json.loads(data)
        except ValueError:
            self._send(client, {"stream": "error", "data": {"error": "invalid syntax"}})
            return
        action = message.get("action") if isinstance(message, dict) else None
        payload = message.get("data") or {} if isinstance(message, dict) else {}
        if action in ("authenticate", "auth"):
            ok = (
                payload.get("key_id") == self.api_key
                and payload.get("secret_key") == self.secret_key
            )
            client.authorized = ok
            reply: dict[str, Any] = {
                "status": "authorized" if ok else "unauthorized",
                "action": "authenticate",
            }
            if not ok:
                reply["message"] = "access key verification failed"
            self._send(client, {"stream": "authorization", "data": reply})
            if not ok:
                client.proto.send_close(1008, "unauthorized")
                self._flush(client)
            return
        if action == "listen":
            if not client.authorized:
                self._send(client, {"stream": "error", "data": {"error": "not authenticated"}})
                return
            streams = [s for s in payload.get("streams", []) if s == "trade_updates"]
            client.listening = bool(streams)
            self._send(client, {"stream": "listening", "data": {"streams": streams}})
            return
        self._send(client, {"stream": "error", "data": {"error": "unrecognized action"}})

    def _emit(self, event: str, order: EmuOrder, **extra: Any) -> None:
        kind = "fill" if event in ("fill", "partial_fill") else event
        if kind in self._drop_before:
            self._drop_before.discard(kind)
            self._drop_streams()
            return
        data = {"event": event, "timestamp": _ts(_now()), "order": self._order_json(order)}
        data.update(extra)
        message = {"stream": "trade_updates", "data": data}
        for client in list(self._stream_clients):
            if client.listening:
                self._send(client, message)

    def _drop_streams(self) -> None:
        for client in list(self._stream_clients):
            client.writer.transport.abort()
        self._stream_clients.clear()


def _timeframe_minutes(timeframe: str) -> int | None:
    """Minutes of a data timeframe (``None`` for one bar per day); 422 if unsupported."""
    units = {"Min": 1, "T": 1, "Hour": 60, "H": 60, "Day": None, "D": None}
    for unit, size in units.items():
        if timeframe.endswith(unit):
            amount = timeframe[: -len(unit)]
            if amount.isdigit() and int(amount) > 0:
                if size is None:
                    if int(amount) == 1:
                        return None
                    break
                total = int(amount) * size
                if total <= 1440:
                    return total
            break
    raise ApiError(422, None, f"invalid timeframe {timeframe}")


def main(argv: list[str] | None = None) -> None:
    """Serve the emulator until interrupted."""
    parser = argparse.ArgumentParser(
        prog="python -m tests.emulators.alpaca",
        description="A loopback Alpaca trading, market-data and trade-stream emulator.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="port (0 picks a free one)")
    parser.add_argument("--key", default=DEFAULT_API_KEY, help="API key id clients must send")
    parser.add_argument(
        "--secret", default=DEFAULT_SECRET_KEY, help="API secret key clients must send"
    )
    parser.add_argument("--cash", default="100000", help="starting cash")
    parser.add_argument(
        "--fill-delay", type=float, default=0.5, help="seconds before an order is worked"
    )
    parser.add_argument("--fill-parts", type=int, default=1, help="executions per fill")
    args = parser.parse_args(argv)
    emulator = AlpacaEmulator(
        api_key=args.key,
        secret_key=args.secret,
        host=args.host,
        port=args.port,
        cash=args.cash,
        fill_delay=args.fill_delay,
        fill_parts=args.fill_parts,
    )
    with emulator:
        print(f"Alpaca emulator on {emulator.base_url}", flush=True)
        print(f"  trading and data REST base: {emulator.base_url}", flush=True)
        print(f"  trade-updates stream:       {emulator.stream_url}", flush=True)
        print(f"  symbols: {', '.join(sorted(emulator.quotes))}", flush=True)
        print("Press Ctrl-C to stop.", flush=True)
        stop = threading.Event()
        try:
            while not stop.wait(1):
                pass
        except KeyboardInterrupt:
            print("stopping", flush=True)


if __name__ == "__main__":
    main()
