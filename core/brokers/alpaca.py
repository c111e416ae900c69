"""The Alpaca broker: :class:`AlpacaBroker` implements :class:`core.ports.Broker` on alpaca-py.

REST calls go through ``TradingClient`` (synchronous, so every call runs in a worker thread via
:func:`asyncio.to_thread`); trade updates come from ``TradingStream`` (a websocket) running in a
background thread of its own. Both base URLs can be overridden, so the adapter can be pointed
at a paper account, a live account or a loopback emulator.

Life of an order:

* ``submit_order`` sends the order and returns Alpaca's acknowledgement (usually ``accepted``).
  Fills and status changes arrive on the trade-update stream and are handed out by
  ``updates()``, oldest first.
* An ambiguous submit (timeout, dropped connection, 5xx, 429 after the SDK's own retries, an
  unreadable answer) is never re-sent: the order is first looked up by its client order id and
  returned if Alpaca has it. Only if Alpaca has no such order does the submit fail
  (:class:`OrderRejected` ``throttled`` for 429, which Alpaca answers before doing anything,
  otherwise :class:`BrokerUnavailable`).
* A submit whose connection could not even be made (refused, DNS lookup failed, connect
  timeout) certainly never reached Alpaca: it raises
  :class:`~core.brokers.router.BrokerNotReached` (no lookup), which lets the order router send
  the order to a fallback broker. So does every call made before ``connect()``.
* A duplicate client order id (422 ``client_order_id must be unique``) returns the existing order
  when it is the same order (symbol, side, quantity), and is rejected as ``duplicate`` otherwise.

Brackets: the entry carries ``take_profit`` and ``stop_loss`` (``order_class=bracket``); Alpaca
creates the legs with client order ids of its own, which the adapter maps to ours
(:func:`core.domain.bracket_leg_ids`: the limit leg is ``-tp``, the stop leg ``-sl``), so events,
``get_order`` and ``get_orders`` speak our ids throughout.

Prices are rounded to Alpaca's tick (a cent, or 0.0001 below one dollar) so they are never
refused as sub-penny: limit prices away from the market (buy down, sell up), stop prices to
the nearest tick. Quantities may be fractional (Alpaca accepts those for ``day`` orders).

Options: an option order names the contract by its compact OCC symbol (``SPY261120C00590000``)
with ``instrument_type`` option; Alpaca trades it as ``us_option``. Quantities are whole
contracts and prices per share of premium (a contract is 100 shares: Alpaca's cost basis and
market value of an option position are price x contracts x 100). Option orders are market or
limit ``day`` orders; limit prices go on the cent. They are checked before sending (see
:func:`option_contract`): a notional amount, a fractional quantity, another order type
(brackets and trailing stops are not supported for options at Alpaca), another time in force, a
symbol that is not a compact OCC symbol or a contract past its expiry date are refused with
:class:`OrderRejected`. A reduce-only option order carries Alpaca's ``position_intent``
(``sell_to_close`` / ``buy_to_close``), so Alpaca refuses it rather than open a position.
Option positions come back with ``instrument_type`` option; orders and fills carry the OCC
symbol.

Notional orders: a request with ``notional`` is sent as a dollar amount (``notional`` instead
of ``qty``; Alpaca takes those as market ``day`` orders and fills a fractional quantity). Alpaca
reports no quantity for them until they fill, so their :class:`~core.domain.BrokerOrder` carries
the ``notional`` and, as ``qty``, the filled quantity once filled, else the request's estimate
(when this adapter sent it) or what has filled so far.

Fills: a fill's id is ``f"{alpaca_order_id}:{cumulative_filled_qty}"``. The trade-update event
(``order.filled_qty`` after the execution) and the account activity of the same execution
(``cum_qty``) give the same id, so a fill seen on the stream and again when recovering is
reported once. Fills are also kept monotonic per order: an observation that does not extend an
order's reported quantity is a duplicate; one that extends it by more than its own execution
(an execution was missed) is reported as one fill for the whole difference at the price that
makes the order's average come out right.

Reconnects: the stream reconnects by itself (exponential backoff). Each time it is listening
again the fills of the gap are recovered from ``/v2/account/activities/FILL`` (per execution,
with ``cum_qty``), and the orders known to be working are re-read for status changes (and for
fills, should the activity feed be unavailable) before any later stream message is applied.
While the stream is down ``updates()`` polls the same way every ``poll_interval`` seconds.

Errors: 403 is insufficient buying power (or shares), 422 an invalid order with Alpaca's
message, 404 an unknown order, 429 throttling; 5xx, timeouts and connection failures are
:class:`BrokerUnavailable` (:class:`~core.brokers.router.BrokerNotReached` when no connection
could be made at all). Idempotent reads are retried (tenacity) on connection failures,
timeouts and 500/502/503 (the SDK retries 429 and 504 itself). Every request is bounded by
``request_timeout`` (the SDK sets none). Amounts are Decimals made from Alpaca's decimal strings
(``Decimal(str(x))`` for the few values the SDK hands out as floats). The API key and secret are
never logged nor put in exception messages: only :func:`mask` of the key appears.

Day trades remaining: unlimited (``None``) at or above the PDT equity threshold ($25,000);
below it 0 for an account flagged as pattern day trader, otherwise ``3 - daytrade_count``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
import warnings
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import pydantic
import requests
from requests.adapters import HTTPAdapter
from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_exponential
from urllib3.exceptions import NewConnectionError

with warnings.catch_warnings():
    # alpaca-py's TradingStream still imports websockets.legacy, which warns on import.
    warnings.simplefilter("ignore", DeprecationWarning)
    from alpaca.common.enums import Sort
    from alpaca.common.exceptions import APIError
    from alpaca.trading.client import TradingClient
    from alpaca.trading.enums import OrderClass, OrderSide, PositionIntent, QueryOrderStatus
    from alpaca.trading.enums import TimeInForce as AlpacaTimeInForce
    from alpaca.trading.models import Order as AlpacaOrder
    from alpaca.trading.models import Position as AlpacaPosition
    from alpaca.trading.models import TradeAccount, TradeUpdate
    from alpaca.trading.requests import (
        GetOrderByIdRequest,
        GetOrdersRequest,
        GetPortfolioHistoryRequest,
        LimitOrderRequest,
        MarketOrderRequest,
        StopLimitOrderRequest,
        StopLossRequest,
        StopOrderRequest,
        TakeProfitRequest,
        TrailingStopOrderRequest,
    )
    from alpaca.trading.requests import OrderRequest as AlpacaOrderRequest
    from alpaca.trading.stream import TradingStream

from core.brokers.paper_account import PDT_DAY_TRADE_LIMIT
from core.brokers.router import BrokerNotReached
from core.domain import (
    PRICE_QUANTUM,
    ZERO,
    AccountState,
    BrokerEvent,
    BrokerOrder,
    EventKind,
    Fill,
    InstrumentType,
    OrderRequest,
    OrderStatus,
    OrderType,
    Position,
    Side,
    TimeInForce,
    bracket_leg_ids,
    utcnow,
)
from core.options.orders import option_contract
from core.ports import BrokerError, BrokerUnavailable, OrderRejected, UnknownOrder

log = logging.getLogger("axion.brokers.alpaca")
#: The websocket library logs every frame at DEBUG, the authentication frame (with the keys)
#: included: its connections log here, at INFO and above only.
_websocket_log = logging.getLogger("axion.brokers.alpaca.websocket")
_websocket_log.setLevel(logging.INFO)

T = TypeVar("T")

__all__ = [
    "PDT_EQUITY_THRESHOLD",
    "AlpacaBroker",
    "PortfolioPoint",
    "map_status",
    "mask",
    "never_connected",
    "option_contract",
]

#: Equity at or above which the pattern-day-trader limit does not apply.
PDT_EQUITY_THRESHOLD = Decimal(25_000)
_CENT = Decimal("0.01")
_SUB_DOLLAR_TICK = Decimal("0.0001")
#: Option contracts trade until the close of their expiry date, New York time.
_NEW_YORK = ZoneInfo("America/New_York")
#: Recovery reads activities from this long before the stream went down (clock skew, messages
#: in flight when the connection broke).
_RECOVERY_SLACK = timedelta(seconds=30)
_ACTIVITY_PAGE = 100
_MAX_ACTIVITY_PAGES = 50
_ORDER_PAGE = 500

_TIME_IN_FORCE = {
    TimeInForce.DAY: AlpacaTimeInForce.DAY,
    TimeInForce.GTC: AlpacaTimeInForce.GTC,
    TimeInForce.IOC: AlpacaTimeInForce.IOC,
    TimeInForce.CLS: AlpacaTimeInForce.CLS,
}
_FINAL = {
    "filled": OrderStatus.FILLED,
    "canceled": OrderStatus.CANCELLED,
    "expired": OrderStatus.EXPIRED,
    "rejected": OrderStatus.REJECTED,
    "replaced": OrderStatus.CANCELLED,
}
#: Not yet working at the venue: received, pending or held (bracket legs before the entry fills).
_NOT_YET_WORKING = frozenset({"pending_new", "accepted_for_bidding", "held", "pending_review"})
_STATUS_EVENTS = {
    "new": EventKind.ACCEPTED,
    "accepted": EventKind.ACCEPTED,
    "pending_new": EventKind.ACCEPTED,
    "canceled": EventKind.CANCELLED,
    "expired": EventKind.EXPIRED,
    "rejected": EventKind.REJECTED,
    "replaced": EventKind.REPLACED,
}
_FILL_EVENTS = frozenset({"fill", "partial_fill"})


def mask(secret: str | None) -> str:
    """A credential as it may be shown: ``****`` and at most its last 4 characters."""
    if not secret:
        return "****"
    return "****" + (secret[-4:] if len(secret) >= 12 else "")


def _text(value: Any) -> str:
    """An SDK enum or plain value as its wire string."""
    return str(getattr(value, "value", value))


def _dec(value: Any) -> Decimal | None:
    """A decimal from Alpaca (a string; or a float the SDK parsed, through its repr)."""
    if value is None or value == "":
        return None
    try:
        result = Decimal(str(value))
    except InvalidOperation:
        return None
    return result if result.is_finite() else None


def _plain(value: Decimal) -> str:
    text = format(value.normalize(), "f")
    return "0" if text == "-0" else text


def _utc(ts: datetime | None) -> datetime | None:
    if ts is None:
        return None
    if ts.tzinfo is None:
        return ts.replace(tzinfo=UTC)
    return ts.astimezone(UTC)


def _tick(price: Decimal, rounding: str, name: str, *, option: bool = False) -> float:
    """``price`` on Alpaca's tick (a cent; 0.0001 below one dollar for shares, a cent at any
    price for option premiums), as the SDK wants it."""
    step = _CENT if price >= 1 or option else _SUB_DOLLAR_TICK
    value = price.quantize(step, rounding=rounding)
    if value <= 0:
        raise OrderRejected(f"invalid order: {name} {price} rounds to zero", "invalid")
    return float(value)


def _limit_rounding(side: Side) -> str:
    """Round a limit price away from the market: a buy never pays more, a sell never gets less."""
    return ROUND_FLOOR if side is Side.BUY else ROUND_CEILING


def map_status(order: AlpacaOrder) -> OrderStatus:
    """Alpaca's order status as ours (a working order with fills is partially filled)."""
    status = _text(order.status)
    final = _FINAL.get(status)
    if final is not None:
        return final
    if (_dec(order.filled_qty) or ZERO) > 0:
        return OrderStatus.PARTIALLY_FILLED
    if status in _NOT_YET_WORKING:
        return OrderStatus.SUBMITTED
    return OrderStatus.ACCEPTED


def _transient(exc: BaseException) -> bool:
    """Worth retrying an idempotent read: connection trouble, timeouts, 500/502/503.
    (429 and 504 the SDK has already retried.)"""
    if isinstance(exc, requests.ConnectionError | requests.Timeout):
        return True
    if isinstance(exc, APIError):
        return (exc.status_code or 0) in (500, 502, 503)
    return False


def never_connected(exc: BaseException) -> bool:
    """True when no connection to the server could be made, so the request was certainly not
    sent: a connect timeout, a refused connection, a failed DNS lookup (urllib3's
    ``NewConnectionError``). Timeouts while reading, connections reset or closed after the
    request went out, proxy and TLS failures are not: they may have reached Alpaca."""
    if isinstance(exc, requests.ConnectTimeout):
        return True
    if not isinstance(exc, requests.ConnectionError) or isinstance(
        exc, requests.exceptions.ProxyError | requests.exceptions.SSLError
    ):
        return False
    pending: list[object] = [exc]
    seen: set[int] = set()
    while pending:
        current = pending.pop()
        if not isinstance(current, BaseException) or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, NewConnectionError):
            return True
        # requests wraps urllib3's MaxRetryError, whose ``reason`` is the failure itself
        pending.extend(current.args)
        pending.extend((getattr(current, "reason", None), current.__cause__, current.__context__))
    return False


def _same_order(order: AlpacaOrder, request: OrderRequest) -> bool:
    """Whether Alpaca's order is this request: symbol, side and size (its dollar amount for a
    notional order, else its quantity)."""
    if request.notional is not None:
        same_size = _dec(order.notional) == request.notional
    else:
        same_size = _dec(order.notional) is None and _dec(order.qty) == request.qty
    return same_size and order.symbol == request.symbol and _text(order.side) == request.side.value


def _describe(request: OrderRequest) -> str:
    """An order's side, size and symbol for messages (``buy $100.50 of AAPL`` for notional)."""
    if request.notional is not None:
        return f"{request.side} ${request.notional} of {request.symbol}"
    if request.instrument_type is InstrumentType.OPTION:
        unit = "contract" if request.qty == 1 else "contracts"
        return f"{request.side} {request.qty} {request.symbol} {unit}"
    return f"{request.side} {request.qty} {request.symbol}"


def _api_message(err: APIError) -> str:
    """Alpaca's error message, or the start of the raw body when it is not JSON."""
    try:
        message = err.message
    except (ValueError, KeyError, TypeError):
        message = str(err)[:200]
    return str(message).strip() or f"HTTP {err.status_code}"


def _api_body(err: APIError) -> dict[str, Any]:
    try:
        body = json.loads(str(err))
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


@dataclass(frozen=True, slots=True)
class PortfolioPoint:
    """One point of the account's equity history (``profit_loss`` against the period's base)."""

    at: datetime
    equity: Decimal
    profit_loss: Decimal
    profit_loss_pct: Decimal | None


class _TimeoutAdapter(HTTPAdapter):
    """Applies a default timeout to every request (alpaca-py sets none)."""

    def __init__(self, timeout: float) -> None:
        super().__init__()
        self._timeout = timeout

    def send(self, request: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self._timeout
        return super().send(request, **kwargs)


def bound_requests(client: Any, timeout: float) -> None:
    """Give every request of an alpaca-py client (trading or data) a default timeout."""
    session = getattr(client, "_session", None)
    if isinstance(session, requests.Session):
        adapter = _TimeoutAdapter(timeout)
        session.mount("http://", adapter)
        session.mount("https://", adapter)


class _TradeUpdateStream(TradingStream):
    """``TradingStream`` that reports when it is listening and when its connection went down,
    with a configurable reconnect backoff."""

    def __init__(
        self,
        api_key: str,
        secret_key: str,
        *,
        paper: bool,
        url_override: str | None,
        backoff: tuple[float, float],
        on_listening: Callable[[], Awaitable[None]],
        on_down: Callable[[], None],
    ) -> None:
        super().__init__(
            api_key,
            secret_key,
            paper=paper,
            url_override=url_override,
            websocket_params={
                "ping_interval": 10,
                "ping_timeout": 180,
                "max_queue": 1024,
                "logger": _websocket_log,
            },
        )
        self._reconnect_min_backoff, self._reconnect_max_backoff = backoff
        self._on_listening = on_listening
        self._on_down = on_down
        self._up = False

    def __repr__(self) -> str:
        return f"<{type(self).__name__} key={mask(self._api_key)}>"

    async def _dispatch(self, msg: dict[str, Any]) -> None:
        if msg.get("stream") == "listening":
            self._up = True
            await self._on_listening()
            return
        await super()._dispatch(msg)

    async def close(self) -> None:
        try:
            await super().close()
        finally:
            if self._up:
                self._up = False
                self._on_down()

    async def shutdown(self) -> None:
        """Stop for good: no reconnect, the socket closed (not reported as a drop)."""
        self._up = False
        await self.stop_ws()
        await self.close()


class AlpacaBroker:
    """An Alpaca account (see the module docstring for the rules).

    ``AlpacaBroker(api_key, secret_key, *, paper=True, base_url=None, stream_url=None,
    name="alpaca", request_timeout=10.0, read_attempts=3, retry_wait=0.2,
    reconnect_backoff=(1.0, 30.0), stream_ready_timeout=5.0, poll_interval=5.0,
    pdt_equity_threshold=Decimal(25_000))``.
    ``base_url`` replaces the trading REST base (``https://paper-api.alpaca.markets`` for paper,
    ``https://api.alpaca.markets`` live) and ``stream_url`` the complete trade-stream URL
    (``wss://paper-api.alpaca.markets/stream`` / ``wss://api.alpaca.markets/stream``). Call
    ``connect()`` before use (methods raise :class:`BrokerUnavailable` otherwise) and
    ``close()`` to stop the stream thread. ``reduce_only`` is not sent for equities (Alpaca has
    no such flag for them, so it is not enforced there); a reduce-only option order is sent
    with a closing ``position_intent``.
    """

    def __init__(
        self,
        api_key: str,
        secret_key: str,
        *,
        paper: bool = True,
        base_url: str | None = None,
        stream_url: str | None = None,
        name: str = "alpaca",
        request_timeout: float = 10.0,
        read_attempts: int = 3,
        retry_wait: float = 0.2,
        reconnect_backoff: tuple[float, float] = (1.0, 30.0),
        stream_ready_timeout: float = 5.0,
        poll_interval: float = 5.0,
        pdt_equity_threshold: Decimal = PDT_EQUITY_THRESHOLD,
    ) -> None:
        if not api_key or not secret_key:
            raise ValueError("Alpaca needs an API key id and a secret key")
        if read_attempts < 1:
            raise ValueError("read_attempts must be at least 1")
        self.name = name
        self.paper = paper
        self._key = api_key
        self._secret = secret_key
        self._base_url = base_url.rstrip("/") if base_url else None
        self._stream_url = stream_url
        self._timeout = request_timeout
        self._read_attempts = read_attempts
        self._retry_wait = retry_wait
        self._backoff = reconnect_backoff
        self._ready_timeout = stream_ready_timeout
        self._poll_interval = poll_interval
        self._pdt_threshold = pdt_equity_threshold
        self._trading = TradingClient(api_key, secret_key, paper=paper, url_override=self._base_url)
        bound_requests(self._trading, request_timeout)
        # The stream thread's recoveries use a client of their own (a requests.Session is not
        # meant to be shared between threads).
        self._recovery_client = TradingClient(
            api_key, secret_key, paper=paper, url_override=self._base_url
        )
        bound_requests(self._recovery_client, request_timeout)
        self._connected = False
        #: False from a request that could not connect until one that could: Alpaca's server
        #: cannot be reached, whatever the cached stream events say.
        self._reachable = True
        self._lock = threading.RLock()
        self._recover_lock = threading.Lock()
        self._events: deque[BrokerEvent] = deque()
        self._coids: dict[str, str] = {}  # Alpaca order id -> our client order id
        self._ids: dict[str, str] = {}  # our client order id -> Alpaca order id
        self._legs: dict[str, list[str]] = {}  # bracket parent id -> leg ids
        self._parents: dict[str, str] = {}  # leg id -> parent id
        self._working: set[str] = set()  # ids of orders last seen working
        self._filled: dict[str, Decimal] = {}  # order id -> quantity reported as filled
        self._estimates: dict[str, Decimal] = {}  # notional order id -> the request's qty
        self._value: dict[str, Decimal] = {}  # order id -> sum of qty * price reported
        self._reported: set[tuple[str, EventKind]] = set()
        self._cancel_requested: set[str] = set()
        self._stream: _TradeUpdateStream | None = None
        self._thread: threading.Thread | None = None
        self._listening = threading.Event()
        self._ever_listened = False
        self._listening_since: datetime | None = None
        self._stream_synced = False
        self._connected_at = utcnow()
        self._covered_until = self._connected_at
        self._recovery_needed = False
        self._last_poll = 0.0

    def __repr__(self) -> str:
        mode = "paper" if self.paper else "live"
        return f"AlpacaBroker(name={self.name!r}, {mode}, key={mask(self._key)})"

    # ------------------------------------------------------------------ plumbing
    @property
    def connected(self) -> bool:
        """Connected, and the last request reached Alpaca's server (a refused connection
        makes the adapter report itself down until ``connect()`` reaches it again)."""
        return self._connected and self._reachable

    @property
    def trading_client(self) -> TradingClient:
        """The underlying alpaca-py client (for calls this adapter does not wrap)."""
        return self._trading

    @property
    def stream_listening(self) -> bool:
        """Whether the trade-update stream is connected and listening."""
        return self._listening.is_set()

    def _require_connected(self) -> None:
        if not self._connected:
            raise BrokerNotReached(f"{self.name} broker is not connected; call connect() first")
        if not self._reachable:
            raise BrokerNotReached(
                f"{self.name}: Alpaca's server could not be reached; connect() tries again"
            )

    def _scrub(self, text: str) -> str:
        for secret in (self._secret, self._key):
            if secret:
                text = text.replace(secret, mask(secret))
        return text

    def _unavailable(self, what: str, exc: BaseException) -> BrokerUnavailable:
        if isinstance(exc, APIError):
            detail = f"HTTP {exc.status_code}: {_api_message(exc)}"
            if exc.status_code == 401:
                detail += f" (check the API key {mask(self._key)} and its secret)"
            elif exc.status_code == 429:
                detail = f"throttled by Alpaca (429): {_api_message(exc)}"
        elif never_connected(exc):
            self._reachable = False
            detail = f"connection failed ({type(exc).__name__}: no connection could be made)"
            return BrokerNotReached(self._scrub(f"{self.name}: {what} failed: {detail}"))
        elif isinstance(exc, requests.Timeout):
            detail = f"no answer within {self._timeout:g}s"
        elif isinstance(exc, requests.ConnectionError):
            detail = f"connection failed ({type(exc).__name__})"
        elif isinstance(exc, pydantic.ValidationError):
            detail = "unexpected answer (it does not match the API's schema)"
        else:
            detail = f"{type(exc).__name__}: {exc}"
        return BrokerUnavailable(self._scrub(f"{self.name}: {what} failed: {detail}"))

    def _read_blocking(
        self, what: str, fn: Callable[..., T], *args: Any, missing_ok: bool = False
    ) -> T | None:
        """An idempotent read with retries. 404 gives None when ``missing_ok``, else
        :class:`UnknownOrder`; other failures :class:`BrokerUnavailable`."""
        retrying = Retrying(
            stop=stop_after_attempt(self._read_attempts),
            wait=wait_exponential(multiplier=self._retry_wait, max=max(self._retry_wait, 2.0)),
            retry=retry_if_exception(_transient),
            reraise=True,
        )
        try:
            for attempt in retrying:
                with attempt:
                    result = fn(*args)
                    self._reachable = True
                    return result
        except APIError as err:
            self._reachable = True  # it answered
            if err.status_code == 404:
                if missing_ok:
                    return None
                raise UnknownOrder(self._scrub(f"{what}: {_api_message(err)}")) from None
            raise self._unavailable(what, err) from None
        except (requests.RequestException, OSError, pydantic.ValidationError, ValueError) as exc:
            raise self._unavailable(what, exc) from None
        raise AssertionError("unreachable")  # pragma: no cover

    async def _read(
        self, what: str, fn: Callable[..., T], *args: Any, missing_ok: bool = False
    ) -> T | None:
        return await asyncio.to_thread(self._read_blocking, what, fn, *args, missing_ok=missing_ok)

    # ------------------------------------------------------------------ connection
    async def connect(self) -> None:
        """Check the account, note the working orders, start the trade-update stream and wait
        (up to ``stream_ready_timeout``) until it is listening."""
        if self._connected:
            if not self._reachable:  # probe: any answer shows the server is back
                await self._read("reading the account", self._trading.get_account)
                log.warning("%s: Alpaca's server answers again", self.name)
                self._recovery_needed = True  # recover what the stream missed meanwhile
            return
        self._connected_at = utcnow()
        with self._lock:
            self._covered_until = self._connected_at
        await self._read("reading the account", self._trading.get_account)
        working = await self._read(
            "listing working orders",
            self._trading.get_orders,
            GetOrdersRequest(status=QueryOrderStatus.OPEN, nested=True, limit=_ORDER_PAGE),
        )
        for order in working or []:
            self._baseline(order)
        self._start_stream()
        self._connected = True
        if not await asyncio.to_thread(self._listening.wait, self._ready_timeout):
            log.warning(
                "%s: the trade-update stream is not listening yet; polling until it is",
                self.name,
            )

    async def close(self) -> None:
        """Stop the trade-update stream and its thread."""
        self._connected = False
        await asyncio.to_thread(self._stop_stream)

    def _baseline(self, order: AlpacaOrder) -> None:
        """Fills an order had before we connected count as reported."""
        self._register(order)
        for o in (order, *(order.legs or [])):
            oid = str(o.id)
            filled = _dec(o.filled_qty) or ZERO
            with self._lock:
                self._filled.setdefault(oid, filled)
                self._value.setdefault(oid, filled * (_dec(o.filled_avg_price) or ZERO))
                if not map_status(o).is_terminal:
                    self._working.add(oid)

    def _start_stream(self) -> None:
        stream = _TradeUpdateStream(
            self._key,
            self._secret,
            paper=self.paper,
            url_override=self._stream_url,
            backoff=self._backoff,
            on_listening=self._stream_listening,
            on_down=self._stream_down,
        )
        stream.subscribe_trade_updates(self._on_trade_update)
        thread = threading.Thread(target=stream.run, name=f"{self.name}-trade-updates", daemon=True)
        self._stream, self._thread = stream, thread
        thread.start()

    def _stop_stream(self) -> None:
        stream, thread = self._stream, self._thread
        self._stream = self._thread = None
        if stream is None or thread is None:
            return
        # The SDK discards stop requests made before its loop runs: wait for the loop first.
        deadline = time.monotonic() + 5
        while (
            thread.is_alive()
            and (stream._loop is None or stream._stop_stream_event is None)
            and time.monotonic() < deadline
        ):
            time.sleep(0.01)
        loop = stream._loop
        if thread.is_alive() and loop is not None and loop.is_running():
            try:
                asyncio.run_coroutine_threadsafe(stream.shutdown(), loop).result(10)
            except Exception as exc:  # the thread is joined below either way
                log.warning("%s: stopping the trade-update stream: %s", self.name, exc)
        thread.join(15)
        if thread.is_alive():
            log.warning("%s: the trade-update stream thread did not stop", self.name)
        self._listening.clear()

    async def _stream_listening(self) -> None:
        """The stream (re)connected: recover what it missed before applying anything newer."""
        first = not self._ever_listened
        self._ever_listened = True
        with self._lock:
            self._listening_since = utcnow()
            self._stream_synced = False
        self._listening.set()
        await asyncio.to_thread(self._recover_blocking, not first, True)

    def _stream_down(self) -> None:
        self._listening.clear()
        with self._lock:
            if self._stream_synced:  # everything before now was delivered or recovered
                self._covered_until = max(self._covered_until, utcnow())
            self._stream_synced = False
        log.warning("%s: trade-update stream disconnected; it reconnects by itself", self.name)

    # ------------------------------------------------------------------ ids and events
    def _register(self, order: AlpacaOrder) -> str:
        """Remember an order's ids (its legs' under our leg ids); returns our client order id."""
        oid = str(order.id)
        with self._lock:
            coid = self._coids.get(oid)
            if coid is None:
                coid = order.client_order_id
                self._coids[oid] = coid
                self._ids.setdefault(coid, oid)
            if order.legs:
                tp_id, sl_id = bracket_leg_ids(coid)
                leg_ids = []
                for leg in order.legs:
                    lid = str(leg.id)
                    leg_coid = tp_id if _text(leg.type) == "limit" else sl_id
                    self._coids[lid] = leg_coid
                    self._ids[leg_coid] = lid
                    self._parents[lid] = oid
                    leg_ids.append(lid)
                self._legs[oid] = leg_ids
        return coid

    def _needs_group(self, order: AlpacaOrder) -> bool:
        """A multi-leg order we cannot yet place (a leg seen before its parent)."""
        if _text(order.order_class) not in ("bracket", "oco", "oto"):
            return False
        with self._lock:
            return str(order.id) not in self._coids and order.client_order_id not in self._ids

    def _resolve_group(self, order: AlpacaOrder, client: TradingClient) -> None:
        """Read the order's group (parent with legs) so its legs get our ids."""
        created = _utc(order.created_at) or utcnow()
        request = GetOrdersRequest(
            status=QueryOrderStatus.ALL,
            nested=True,
            symbols=[order.symbol] if order.symbol else None,
            after=created - timedelta(minutes=1),
            limit=_ORDER_PAGE,
            direction=Sort.ASC,
        )
        try:
            rows = self._read_blocking("reading a bracket", client.get_orders, request)
        except BrokerError as exc:
            log.warning("%s: %s", self.name, exc)
            return
        for row in rows or []:
            self._register(row)

    def _order_type(self, order: AlpacaOrder) -> OrderType:
        oid = str(order.id)
        with self._lock:
            is_leg = oid in self._parents
        if _text(order.order_class) == "bracket" and not is_leg:
            return OrderType.BRACKET
        kind = _text(order.type or order.order_type)
        if kind == "market" and _text(order.time_in_force) == "cls":
            return OrderType.MARKET_ON_CLOSE
        try:
            return OrderType(kind)
        except ValueError:
            return OrderType.MARKET

    def _reason(self, order: AlpacaOrder, status: OrderStatus) -> str | None:
        raw = _text(order.status)
        oid = str(order.id)
        if raw == "replaced":
            return f"replaced by Alpaca order {order.replaced_by}"
        if status is OrderStatus.CANCELLED:
            with self._lock:
                requested = oid in self._cancel_requested
                is_leg = oid in self._parents
            if requested:
                return "cancelled by request"
            if is_leg:
                return "cancelled by Alpaca: the other bracket leg filled or the bracket ended"
            return "cancelled by Alpaca"
        if status is OrderStatus.EXPIRED:
            return f"expired at Alpaca (time in force {_text(order.time_in_force)})"
        if status is OrderStatus.REJECTED:
            return "rejected by Alpaca"
        return None

    def _broker_order(self, order: AlpacaOrder) -> BrokerOrder:
        coid = self._register(order)
        status = map_status(order)
        qty = _dec(order.qty)
        filled = _dec(order.filled_qty) or ZERO
        notional = _dec(order.notional)
        if qty is None and notional is not None and status is not OrderStatus.FILLED:
            with self._lock:
                qty = self._estimates.get(str(order.id))
        return BrokerOrder(
            client_order_id=coid,
            broker_order_id=str(order.id),
            symbol=order.symbol or "",
            side=Side(_text(order.side)),
            qty=qty if qty is not None else filled,
            status=status,
            filled_qty=filled,
            avg_fill_price=_dec(order.filled_avg_price),
            order_type=self._order_type(order),
            reason=self._reason(order, status),
            submitted_at=_utc(order.submitted_at),
            notional=notional,
        )

    def _track(self, order: AlpacaOrder) -> None:
        oid = str(order.id)
        with self._lock:
            if map_status(order).is_terminal:
                self._working.discard(oid)
            else:
                self._working.add(oid)

    def _add_status(self, kind: EventKind, order: AlpacaOrder, at: datetime) -> None:
        """Report a status change, once per order and kind."""
        oid = str(order.id)
        status = map_status(order)
        with self._lock:
            if (oid, kind) in self._reported:
                return
            self._reported.add((oid, kind))
            self._events.append(
                BrokerEvent(
                    kind,
                    self._coids.get(oid, order.client_order_id),
                    at,
                    broker_order_id=oid,
                    status=status,
                    reason=self._reason(order, status),
                )
            )

    def _add_fill(
        self,
        oid: str,
        *,
        symbol: str,
        side: Side,
        cum: Decimal,
        qty: Decimal | None,
        price: Decimal | None,
        avg: Decimal | None,
        at: datetime,
        status: OrderStatus,
    ) -> bool:
        """Report the part of an order's fills up to ``cum`` not reported yet (see the module
        docstring); False if nothing was new."""
        with self._lock:
            done = self._filled.get(oid, ZERO)
            if cum <= done:
                return False
            delta = cum - done
            if qty is not None and price is not None and qty == delta:
                fill_price = price
            elif avg is not None:
                value = avg * cum - self._value.get(oid, ZERO)
                fill_price = (value / delta).quantize(PRICE_QUANTUM)
            elif price is not None:
                fill_price = price
            else:
                log.warning("%s: fill of order %s has no price; not reported", self.name, oid)
                return False
            self._filled[oid] = cum
            self._value[oid] = self._value.get(oid, ZERO) + delta * fill_price
            coid = self._coids.get(oid, oid)
            fill = Fill(
                fill_id=f"{oid}:{_plain(cum)}",
                client_order_id=coid,
                symbol=symbol,
                side=side,
                qty=delta,
                price=fill_price,
                at=at,
                broker=self.name,
                broker_order_id=oid,
            )
            self._events.append(
                BrokerEvent(EventKind.FILL, coid, at, broker_order_id=oid, fill=fill, status=status)
            )
            return True

    def _observe(self, order: AlpacaOrder, at: datetime) -> None:
        """Apply an order's current state read over REST: fills beyond what was reported (when
        the activity feed did not give them) and a final status not reported yet."""
        self._register(order)
        for o in (order, *(order.legs or [])):
            status = map_status(o)
            cum = _dec(o.filled_qty) or ZERO
            if cum > 0:
                self._add_fill(
                    str(o.id),
                    symbol=o.symbol or "",
                    side=Side(_text(o.side)),
                    cum=cum,
                    qty=None,
                    price=None,
                    avg=_dec(o.filled_avg_price),
                    at=_utc(o.filled_at or o.updated_at) or at,
                    status=status,
                )
            kind = _STATUS_EVENTS.get(_text(o.status))
            if status.is_terminal and kind is not None:
                self._add_status(kind, o, _utc(o.updated_at) or at)
            self._track(o)

    async def _on_trade_update(self, update: TradeUpdate) -> None:
        try:
            if self._needs_group(update.order):
                await asyncio.to_thread(self._resolve_group, update.order, self._recovery_client)
            self._apply_update(update)
        except Exception:  # a bad message must not stop the stream
            log.exception("%s: could not apply a trade update", self.name)

    def _apply_update(self, update: TradeUpdate) -> None:
        order = update.order
        event = _text(update.event)
        at = _utc(update.timestamp) or utcnow()
        self._register(order)
        status = map_status(order)
        if event in _FILL_EVENTS:
            cum = _dec(order.filled_qty)
            if cum is not None:
                self._add_fill(
                    str(order.id),
                    symbol=order.symbol or "",
                    side=Side(_text(order.side)),
                    cum=cum,
                    qty=_dec(update.qty),
                    price=_dec(update.price),
                    avg=_dec(order.filled_avg_price),
                    at=at,
                    status=status,
                )
        else:
            kind = _STATUS_EVENTS.get(event)
            if kind is not None:
                self._add_status(kind, order, at)
        self._track(order)

    # ------------------------------------------------------------------ recovery
    def _recover_blocking(self, full: bool = True, wait: bool = False) -> None:
        """Recover fills and final statuses since the stream was last known complete.

        ``full=False`` (the stream's first connection) re-reads the working orders only when
        the activity feed is unavailable. ``wait`` waits for a recovery already running (and
        then runs anyway) instead of skipping."""
        if not self._recover_lock.acquire(blocking=wait):
            return
        client = self._recovery_client
        started = utcnow()
        try:
            with self._lock:
                since = max(self._connected_at, self._covered_until - _RECOVERY_SLACK)
            feed = self._recover_fills(client, since)
            if full or not feed:
                with self._lock:
                    working = sorted(self._working)
                for oid in working:
                    order = self._read_blocking(
                        f"reading order {oid}",
                        client.get_order_by_id,
                        oid,
                        GetOrderByIdRequest(nested=True),
                        missing_ok=True,
                    )
                    if order is not None:
                        self._observe(order, started)
                rows = self._read_blocking(
                    "listing recent orders",
                    client.get_orders,
                    GetOrdersRequest(
                        status=QueryOrderStatus.ALL,
                        nested=True,
                        after=since,
                        limit=_ORDER_PAGE,
                        direction=Sort.ASC,
                    ),
                )
                for order in rows or []:
                    self._observe(order, started)
            with self._lock:
                self._covered_until = max(self._covered_until, started)
                self._recovery_needed = False
                # From here on the stream alone keeps us complete, if it has been listening
                # since before this recovery began.
                listening_since = self._listening_since
                if self._listening.is_set() and listening_since and listening_since <= started:
                    self._stream_synced = True
        except BrokerError as exc:
            self._recovery_needed = True
            log.warning("%s: recovery after a stream gap failed, will retry: %s", self.name, exc)
        finally:
            self._last_poll = time.monotonic()
            self._recover_lock.release()

    def _fill_activities(
        self, client: TradingClient, after: datetime, until: datetime | None = None
    ) -> list[dict[str, Any]] | None:
        """FILL activities after ``after``, oldest first; None if the feed is unavailable."""
        rows: list[dict[str, Any]] = []
        params: dict[str, Any] = {
            "after": after.isoformat(),
            "direction": "asc",
            "page_size": _ACTIVITY_PAGE,
        }
        if until is not None:
            params["until"] = until.isoformat()
        for _ in range(_MAX_ACTIVITY_PAGES):
            try:
                page = self._read_blocking(
                    "reading fill activities",
                    client.get,
                    "/account/activities/FILL",
                    dict(params),
                )
            except UnknownOrder:
                return None
            if not isinstance(page, list):
                break
            rows.extend(a for a in page if isinstance(a, dict))
            if len(page) < _ACTIVITY_PAGE:
                break
            params["page_token"] = page[-1].get("id")
        return rows

    def _activity_fill(self, act: dict[str, Any], client: TradingClient) -> dict[str, Any] | None:
        """The fields of a FILL activity, with the order it belongs to registered."""
        oid = str(act.get("order_id") or "")
        cum, qty, price = _dec(act.get("cum_qty")), _dec(act.get("qty")), _dec(act.get("price"))
        if not oid or cum is None or qty is None or price is None:
            return None
        with self._lock:
            known = oid in self._coids
        if not known:
            order = self._read_blocking(
                f"reading order {oid}", client.get_order_by_id, oid, missing_ok=True
            )
            if order is not None:
                if self._needs_group(order):
                    self._resolve_group(order, client)
                self._register(order)
        raw_status = str(act.get("order_status") or "")
        leaves = _dec(act.get("leaves_qty"))
        if raw_status in _FINAL:
            status = _FINAL[raw_status]
        elif raw_status == "partially_filled" or (leaves is not None and leaves > 0):
            status = OrderStatus.PARTIALLY_FILLED
        else:
            status = OrderStatus.FILLED
        at = _utc(datetime.fromisoformat(str(act["transaction_time"]).replace("Z", "+00:00")))
        return {
            "oid": oid,
            "symbol": str(act.get("symbol") or ""),
            "side": Side(str(act.get("side"))),
            "cum": cum,
            "qty": qty,
            "price": price,
            "at": at,
            "status": status,
        }

    def _recover_fills(self, client: TradingClient, since: datetime) -> bool:
        """Report the fills of the activity feed since ``since``; False if the feed is
        unavailable (the orders' own figures then have to cover the fills)."""
        activities = self._fill_activities(client, since)
        if activities is None:
            return False
        parsed = [p for p in (self._activity_fill(a, client) for a in activities) if p]
        parsed.sort(key=lambda p: (p["at"], p["oid"], p["cum"]))
        for p in parsed:
            self._add_fill(
                p["oid"],
                symbol=p["symbol"],
                side=p["side"],
                cum=p["cum"],
                qty=p["qty"],
                price=p["price"],
                avg=None,
                at=p["at"],
                status=p["status"],
            )
        return True

    # ------------------------------------------------------------------ Broker: reads
    async def get_account(self) -> AccountState:
        """The account; ``margin_used`` is the borrowed part of the gross position value."""
        self._require_connected()
        account = await self._read("reading the account", self._trading.get_account)
        assert isinstance(account, TradeAccount)
        return self._account_state(account)

    def _account_state(self, a: TradeAccount) -> AccountState:
        equity = _dec(a.equity) or ZERO
        long_value = _dec(a.long_market_value) or ZERO
        short_value = _dec(a.short_market_value) or ZERO
        gross = long_value + abs(short_value)
        count = int(a.daytrade_count or 0)
        pdt = bool(a.pattern_day_trader)
        last_equity = _dec(a.last_equity)
        return AccountState(
            equity=equity,
            cash=_dec(a.cash) or ZERO,
            buying_power=_dec(a.buying_power) or ZERO,
            margin_used=max(ZERO, gross - equity),
            day_trades_remaining=self.day_trades_remaining(equity, count, pdt),
            day_trade_count=count,
            pattern_day_trader=pdt,
            long_market_value=long_value,
            short_market_value=-abs(short_value),
            daily_pnl=equity - last_equity if last_equity else ZERO,
            at=utcnow(),
        )

    def day_trades_remaining(
        self, equity: Decimal, count: int, pattern_day_trader: bool
    ) -> int | None:
        """None (unlimited) at or above the PDT equity threshold; below it 0 for a flagged
        pattern day trader, else what is left of the 3 day trades per 5 sessions."""
        if equity >= self._pdt_threshold:
            return None
        if pattern_day_trader:
            return 0
        return max(0, PDT_DAY_TRADE_LIMIT - count)

    async def get_positions(self) -> list[Position]:
        """Open positions at Alpaca's current prices (qty negative for shorts)."""
        self._require_connected()
        rows = await self._read("reading positions", self._trading.get_all_positions)
        return [self._position(p) for p in rows or []]

    @staticmethod
    def _position(p: AlpacaPosition) -> Position:
        qty = _dec(p.qty) or ZERO
        if _text(p.side) == "short" and qty > 0:
            qty = -qty
        kind = (
            InstrumentType.OPTION if _text(p.asset_class) == "us_option" else InstrumentType.STOCK
        )
        return Position(
            symbol=p.symbol,
            qty=qty,
            avg_entry_price=_dec(p.avg_entry_price) or ZERO,
            current_price=_dec(p.current_price),
            instrument_type=kind,
        )

    async def get_orders(self, status: str = "open") -> list[BrokerOrder]:
        """Orders by ``status``: ``open``, ``closed`` or ``all`` (the latest 500, bracket legs
        as their own rows under our leg ids), oldest first."""
        self._require_connected()
        if status not in ("open", "closed", "all"):
            raise ValueError(f"status must be 'open', 'closed' or 'all', got {status!r}")
        rows = await self._read(
            f"listing {status} orders",
            self._trading.get_orders,
            GetOrdersRequest(
                status=QueryOrderStatus(status), nested=True, limit=_ORDER_PAGE, direction=Sort.DESC
            ),
        )
        out: list[BrokerOrder] = []
        for row in reversed(rows or []):
            self._register(row)
            for o in (row, *(row.legs or [])):
                order = self._broker_order(o)
                final = order.status.is_terminal
                if status == "all" or (status == "closed") == final:
                    out.append(order)
        return out

    async def _find(self, client_order_id: str) -> AlpacaOrder | None:
        """Alpaca's order for our client order id (bracket legs included), or None."""
        with self._lock:
            oid = self._ids.get(client_order_id)
        if oid is not None:
            order = await self._read(
                f"reading order {client_order_id!r}",
                self._trading.get_order_by_id,
                oid,
                GetOrderByIdRequest(nested=True),
                missing_ok=True,
            )
            if order is not None:
                self._register(order)
                return order
        order = await self._read(
            f"looking up client_order_id {client_order_id!r}",
            self._trading.get_order_by_client_id,
            client_order_id,
            missing_ok=True,
        )
        if order is not None:
            self._register(order)
            return order
        for suffix in ("-tp", "-sl"):
            if client_order_id.endswith(suffix):
                parent = await self._find(client_order_id[: -len(suffix)])
                if parent is None:
                    return None
                if not parent.legs:
                    parent = await self._read(
                        "reading a bracket",
                        self._trading.get_order_by_id,
                        str(parent.id),
                        GetOrderByIdRequest(nested=True),
                        missing_ok=True,
                    )
                    if parent is None:
                        return None
                    self._register(parent)
                with self._lock:
                    leg_id = self._ids.get(client_order_id)
                for leg in parent.legs or []:
                    if str(leg.id) == leg_id:
                        return leg
        return None

    async def get_order(self, client_order_id: str) -> BrokerOrder | None:
        self._require_connected()
        order = await self._find(client_order_id)
        return None if order is None else self._broker_order(order)

    async def get_fills(
        self, client_order_id: str | None = None, since: datetime | None = None
    ) -> list[Fill]:
        """Executions from Alpaca's FILL activities (one fill per execution, ids as on the
        stream), optionally of one order and/or at or after ``since`` (default: the order's
        submission, or the last 7 days), oldest first."""
        self._require_connected()
        oid: str | None = None
        order: AlpacaOrder | None = None
        after = since - timedelta(microseconds=1) if since is not None else None
        if client_order_id is not None:
            order = await self._find(client_order_id)
            if order is None:
                return []
            oid = str(order.id)
            if after is None:
                submitted = _utc(order.submitted_at) or utcnow()
                after = submitted - timedelta(seconds=1)
        if after is None:
            after = utcnow() - timedelta(days=7)
        activities = await asyncio.to_thread(self._fill_activities, self._trading, after)
        if activities is None:
            if order is None:
                raise BrokerUnavailable(f"{self.name}: the fill activity feed is unavailable")
            return self._fills_from_order(order)
        fills = []
        for act in activities:
            if oid is not None and str(act.get("order_id")) != oid:
                continue
            p = await asyncio.to_thread(self._activity_fill, act, self._trading)
            if p is None or (since is not None and p["at"] < since):
                continue
            with self._lock:
                coid = self._coids.get(p["oid"], p["oid"])
            fills.append(
                Fill(
                    fill_id=f"{p['oid']}:{_plain(p['cum'])}",
                    client_order_id=coid,
                    symbol=p["symbol"],
                    side=p["side"],
                    qty=p["qty"],
                    price=p["price"],
                    at=p["at"],
                    broker=self.name,
                    broker_order_id=p["oid"],
                )
            )
        fills.sort(key=lambda f: (f.at, f.broker_order_id or "", f.fill_id))
        return fills

    def _fills_from_order(self, order: AlpacaOrder) -> list[Fill]:
        cum = _dec(order.filled_qty) or ZERO
        avg = _dec(order.filled_avg_price)
        if cum <= 0 or avg is None:
            return []
        oid = str(order.id)
        with self._lock:
            coid = self._coids.get(oid, order.client_order_id)
        at = _utc(order.filled_at or order.updated_at) or utcnow()
        return [
            Fill(
                f"{oid}:{_plain(cum)}",
                coid,
                order.symbol or "",
                Side(_text(order.side)),
                cum,
                avg,
                at,
                self.name,
                broker_order_id=oid,
            )
        ]

    async def get_portfolio_history(
        self,
        period: str | None = None,
        timeframe: str | None = None,
        *,
        start: datetime | None = None,
        end: datetime | None = None,
    ) -> list[PortfolioPoint]:
        """The account's equity history (``period`` like ``1D``, ``1W``, ``1M``, ``1A``;
        ``timeframe`` ``1Min``, ``5Min``, ``15Min``, ``1H`` or ``1D``), oldest first."""
        self._require_connected()
        history = await self._read(
            "reading portfolio history",
            self._trading.get_portfolio_history,
            GetPortfolioHistoryRequest(period=period, timeframe=timeframe, start=start, end=end),
        )
        if history is None:
            return []
        points = []
        for i, stamp in enumerate(history.timestamp):
            pct = history.profit_loss_pct[i] if i < len(history.profit_loss_pct) else None
            points.append(
                PortfolioPoint(
                    at=datetime.fromtimestamp(stamp, UTC),
                    equity=_dec(history.equity[i]) or ZERO,
                    profit_loss=_dec(history.profit_loss[i]) or ZERO,
                    profit_loss_pct=_dec(pct),
                )
            )
        return points

    # ------------------------------------------------------------------ Broker: orders
    def _sdk_request(self, request: OrderRequest) -> AlpacaOrderRequest:
        """Our order as an alpaca-py request (prices on Alpaca's tick). Option orders are
        checked first (:func:`option_contract`)."""
        side = request.side
        common: dict[str, Any] = {
            "symbol": request.symbol,
            "qty": float(request.qty),
            "side": OrderSide(side.value),
            "time_in_force": _TIME_IN_FORCE[request.time_in_force],
            "client_order_id": request.client_order_id,
        }
        kind = request.order_type
        limit = request.limit_price
        stop = request.stop_price
        if option_contract(request) is not None:
            if request.reduce_only:  # Alpaca then refuses an order that would open a position
                closing = {
                    Side.SELL: PositionIntent.SELL_TO_CLOSE,
                    Side.BUY: PositionIntent.BUY_TO_CLOSE,
                }
                common["position_intent"] = closing[side]
            try:
                if kind is OrderType.LIMIT:
                    assert limit is not None
                    price = _tick(limit, _limit_rounding(side), "limit_price", option=True)
                    return LimitOrderRequest(**common, limit_price=price)
                return MarketOrderRequest(**common)
            except (pydantic.ValidationError, ValueError) as exc:
                raise OrderRejected(
                    f"invalid order: alpaca-py refused it: {self._scrub(str(exc)).splitlines()[0]}",
                    "invalid",
                ) from None
        try:
            if request.notional is not None:
                # a market day order (OrderRequest checks that); whole cents survive the float
                # the SDK sends, as its repr
                del common["qty"]
                return MarketOrderRequest(**common, notional=float(request.notional))
            if kind in (OrderType.MARKET, OrderType.MARKET_ON_CLOSE):
                return MarketOrderRequest(**common)
            if kind is OrderType.LIMIT:
                assert limit is not None
                return LimitOrderRequest(
                    **common, limit_price=_tick(limit, _limit_rounding(side), "limit_price")
                )
            if kind is OrderType.STOP:
                assert stop is not None
                return StopOrderRequest(
                    **common, stop_price=_tick(stop, ROUND_HALF_EVEN, "stop_price")
                )
            if kind is OrderType.STOP_LIMIT:
                assert limit is not None and stop is not None
                return StopLimitOrderRequest(
                    **common,
                    stop_price=_tick(stop, ROUND_HALF_EVEN, "stop_price"),
                    limit_price=_tick(limit, _limit_rounding(side), "limit_price"),
                )
            if kind is OrderType.TRAILING_STOP:
                if request.trail_percent is not None:
                    return TrailingStopOrderRequest(
                        **common, trail_percent=float(request.trail_percent)
                    )
                assert request.trail_price is not None
                return TrailingStopOrderRequest(
                    **common, trail_price=_tick(request.trail_price, ROUND_HALF_EVEN, "trail")
                )
            if kind is OrderType.BRACKET:
                tp, sl = request.take_profit_price, request.stop_loss_price
                assert tp is not None and sl is not None
                legs = {
                    "order_class": OrderClass.BRACKET,
                    "take_profit": TakeProfitRequest(
                        limit_price=_tick(tp, _limit_rounding(side.opposite), "take_profit")
                    ),
                    "stop_loss": StopLossRequest(
                        stop_price=_tick(sl, ROUND_HALF_EVEN, "stop_loss")
                    ),
                }
                if limit is not None:
                    return LimitOrderRequest(
                        **common,
                        **legs,
                        limit_price=_tick(limit, _limit_rounding(side), "limit_price"),
                    )
                return MarketOrderRequest(**common, **legs)
        except (pydantic.ValidationError, ValueError) as exc:
            raise OrderRejected(
                f"invalid order: alpaca-py refused it: {self._scrub(str(exc)).splitlines()[0]}",
                "invalid",
            ) from None
        raise OrderRejected(f"order type {kind.value} is not supported by Alpaca", "unsupported")

    def _acknowledge(self, order: AlpacaOrder, request: OrderRequest | None = None) -> BrokerOrder:
        self._register(order)
        if request is not None and request.notional is not None:
            with self._lock:
                self._estimates[str(order.id)] = request.qty
        for o in (order, *(order.legs or [])):
            self._track(o)
        return self._broker_order(order)

    async def submit_order(self, request: OrderRequest) -> BrokerOrder:
        """Send an order; returns Alpaca's acknowledgement. See the module docstring for what
        happens after an ambiguous failure. Raises :class:`OrderRejected` (with a reason and
        a code: ``buying_power``, ``insufficient_qty``, ``invalid``, ``unknown_symbol``,
        ``duplicate``, ``throttled``, ...) or :class:`BrokerUnavailable`."""
        self._require_connected()
        sdk_request = self._sdk_request(request)
        try:
            order = await asyncio.to_thread(self._trading.submit_order, sdk_request)
        except APIError as err:
            status = err.status_code or 0
            if status == 429 or status >= 500:
                cause = f"HTTP {status}: {_api_message(err)}"
                return await self._after_ambiguous(request, cause, throttled=status == 429)
            message = _api_message(err)
            if status == 422 and "client_order_id" in message and "unique" in message:
                return await self._after_duplicate(request)
            raise self._rejection(err, request) from None
        except (requests.RequestException, OSError, pydantic.ValidationError, ValueError) as exc:
            if never_connected(exc):
                self._reachable = False
                raise BrokerNotReached(
                    self._scrub(
                        f"{self.name}: submit of {request.client_order_id} was not sent: no "
                        f"connection to Alpaca could be made ({type(exc).__name__})"
                    )
                ) from None
            cause = (
                f"no answer within {self._timeout:g}s"
                if isinstance(exc, requests.Timeout)
                else f"{type(exc).__name__}"
            )
            return await self._after_ambiguous(request, cause, throttled=False)
        self._reachable = True
        return self._acknowledge(order, request)

    async def _after_ambiguous(
        self, request: OrderRequest, cause: str, *, throttled: bool
    ) -> BrokerOrder:
        """The submit may or may not have reached Alpaca: look the order up before anything
        else, and never send it again."""
        coid = request.client_order_id
        try:
            existing = await self._read(
                f"looking up client_order_id {coid!r}",
                self._trading.get_order_by_client_id,
                coid,
                missing_ok=True,
            )
        except BrokerError as exc:
            raise BrokerUnavailable(
                self._scrub(
                    f"{self.name}: submit of {coid} ended ambiguously ({cause}) and the lookup "
                    f"by client_order_id failed ({exc}); look it up before sending it again"
                )
            ) from None
        if existing is not None:
            log.warning(
                "%s: submit of %s ended ambiguously (%s); Alpaca has the order: adopted",
                self.name,
                coid,
                cause,
            )
            return self._acknowledge(existing, request)
        if throttled:
            raise OrderRejected(
                f"throttled by Alpaca (429 rate limit, after the SDK's retries): "
                f"{_describe(request)} was not placed (no order with client_order_id {coid!r})",
                "throttled",
            )
        raise BrokerUnavailable(
            self._scrub(
                f"{self.name}: submit of {coid} failed ({cause}); Alpaca has no order with this "
                "client_order_id, so it was not placed"
            )
        )

    async def _after_duplicate(self, request: OrderRequest) -> BrokerOrder:
        coid = request.client_order_id
        existing = await self._read(
            f"looking up client_order_id {coid!r}",
            self._trading.get_order_by_client_id,
            coid,
            missing_ok=True,
        )
        if existing is not None and _same_order(existing, request):
            return self._acknowledge(existing, request)
        raise OrderRejected(
            f"duplicate client_order_id {coid!r}: Alpaca already has a different order with "
            "this id (client order ids are unique forever, cancelled orders included)",
            "duplicate",
        )

    def _rejection(self, err: APIError, request: OrderRequest) -> BrokerError:
        status = err.status_code or 0
        message = self._scrub(_api_message(err))
        what = _describe(request)
        lowered = message.lower()
        if status == 403:
            if "buying power" in lowered:
                body = _api_body(err)
                detail = ""
                if body.get("cost_basis") is not None and body.get("buying_power") is not None:
                    detail = f": needs {body['cost_basis']}, buying power {body['buying_power']}"
                return OrderRejected(
                    f"insufficient buying power for {what}{detail} (Alpaca: {message})",
                    "buying_power",
                )
            if request.instrument_type is InstrumentType.OPTION and (
                "insufficient qty" in lowered or "underlying" in lowered or "short" in lowered
            ):
                return OrderRejected(
                    f"insufficient contracts or cover for {what} (Alpaca: {message})",
                    "insufficient_qty",
                )
            if "insufficient qty" in lowered or "short" in lowered:
                return OrderRejected(
                    f"insufficient shares for {what} (Alpaca: {message})", "insufficient_qty"
                )
            return OrderRejected(
                f"insufficient buying power or permission for {what} (Alpaca 403: {message})",
                "forbidden",
            )
        if status in (400, 422):
            code = "invalid"
            if lowered.startswith("asset") and ("not active" in lowered or "not found" in lowered):
                code = "unknown_symbol"
            return OrderRejected(f"invalid order {what}: {message}", code)
        if status == 401:
            return self._unavailable(f"submit of {request.client_order_id}", err)
        return OrderRejected(f"refused by Alpaca (HTTP {status}) {what}: {message}", "refused")

    async def cancel_order(self, client_order_id: str) -> bool:
        """Request cancellation (a bracket's working legs too). False if nothing was left to
        cancel; :class:`UnknownOrder` if Alpaca has no such order."""
        self._require_connected()
        with self._lock:
            oid = self._ids.get(client_order_id)
        if oid is None:
            order = await self._find(client_order_id)
            if order is None:
                raise UnknownOrder(f"no order with client_order_id {client_order_id!r} at Alpaca")
            oid = str(order.id)
        cancelled = await self._cancel_id(oid, client_order_id)
        with self._lock:
            legs = list(self._legs.get(oid, ()))
        if not cancelled:
            for leg in legs:
                cancelled = (
                    await self._cancel_id(leg, client_order_id, missing_ok=True) or cancelled
                )
        return cancelled

    async def _cancel_id(self, oid: str, coid: str, missing_ok: bool = False) -> bool:
        # Marked before sending: the ``canceled`` message can arrive before the answer does.
        with self._lock:
            marked = {oid, *self._legs.get(oid, ())} - self._cancel_requested
            self._cancel_requested.update(marked)
        try:
            await asyncio.to_thread(self._trading.cancel_order_by_id, oid)
        except APIError as err:
            with self._lock:
                self._cancel_requested.difference_update(marked)
            status = err.status_code or 0
            if status == 404:
                if missing_ok:
                    return False
                raise UnknownOrder(f"no order with client_order_id {coid!r} at Alpaca") from None
            if status == 422:  # not cancelable: already filled, cancelled or expired
                return False
            if status == 429:
                raise OrderRejected(
                    f"throttled by Alpaca (429): the cancel of {coid} was not sent", "throttled"
                ) from None
            if status >= 500 or status == 401:
                raise self._unavailable(f"cancel of {coid}", err) from None
            raise OrderRejected(
                f"cancel of {coid} refused by Alpaca (HTTP {status}): {_api_message(err)}",
                "refused",
            ) from None
        except (requests.RequestException, OSError) as exc:
            raise self._unavailable(f"cancel of {coid}", exc) from None
        return True

    async def cancel_all(self) -> int:
        """Request cancellation of every open order; returns how many Alpaca accepted."""
        self._require_connected()
        with self._lock:
            marked = set(self._working) - self._cancel_requested
            self._cancel_requested.update(marked)
        try:
            answers = await asyncio.to_thread(self._trading.cancel_orders)
        except APIError as err:
            with self._lock:
                self._cancel_requested.difference_update(marked)
            if err.status_code == 429:
                raise OrderRejected(
                    "throttled by Alpaca (429): cancel-all was not sent", "throttled"
                ) from None
            raise self._unavailable("cancel all", err) from None
        except (requests.RequestException, OSError, pydantic.ValidationError) as exc:
            raise self._unavailable("cancel all", exc) from None
        accepted = {str(a.id) for a in answers or [] if 200 <= int(a.status) < 300}
        with self._lock:
            self._cancel_requested.difference_update(marked - accepted)
            self._cancel_requested.update(accepted)
        return len(accepted)

    async def updates(self) -> list[BrokerEvent]:
        """Events since the last call, oldest first. While the stream is down (or after a
        recovery failed) the gap is recovered over REST first, at most every
        ``poll_interval`` seconds."""
        self._require_connected()
        due = time.monotonic() - self._last_poll >= self._poll_interval
        if (self._recovery_needed or not self._listening.is_set()) and due:
            await asyncio.to_thread(self._recover_blocking, True)
        with self._lock:
            events = list(self._events)
            self._events.clear()
        return events
