"""Interactive Brokers: :class:`IBKRBroker` implements :class:`core.ports.Broker` on ib_insync.

The adapter talks to Trader Workstation or IB Gateway over the TWS API socket, inside the
caller's asyncio loop (ib_insync's async API: ``connectAsync`` and the ``*Async`` requests).

Connection
    ``IBKRBroker(host, port, client_id)``; the usual ports are named below (paper TWS 7497,
    paper Gateway 4002, live TWS 7496, live Gateway 4001). ``connect()`` runs ib_insync's
    startup sync (positions, open and completed orders, account updates, executions), then
    requests open orders and executions again and adopts every order carrying an ``orderRef``.

Orders
    ``orderRef`` carries our ``client_order_id``; bracket legs carry the ids of
    :func:`core.domain.bracket_leg_ids`. Market ``MKT``, limit ``LMT`` (``LOC`` with time in
    force ``cls``), stop ``STP``, stop-limit ``STP LMT``, trailing stop ``TRAIL`` (percent or
    amount), market-on-close ``MOC``. A bracket is the entry (``MKT``, or ``LMT`` with
    ``limit_price``, transmit off), the take-profit ``LMT`` (parentId = entry, transmit off)
    and the stop-loss ``STP`` (parentId = entry, transmit on: it releases the group).
    ``submit_order`` waits for TWS to acknowledge (``ack_timeout``) and returns the
    acknowledgement with status ``accepted``; fills and final statuses arrive via ``updates()``.
    A rejection that arrives while waiting raises :class:`OrderRejected`; no answer in time
    raises :class:`BrokerUnavailable` (the order may exist: look it up with ``get_order``).

Fills
    One :class:`core.domain.Fill` per execution: ``fill_id`` is the ``execId``, the
    commission comes from the execution's commission report, ``broker_order_id`` is the
    ``permId``. A fill is reported once its commission report is in (or ``commission_wait``
    seconds after the execution, with zero commission, if the report never comes). Each
    ``execId`` is reported at most once, whether it arrives live or is replayed by
    ``reqExecutions``. Events are produced for orders this adapter placed or adopted.

Errors
    TWS codes become clear reasons (:func:`describe_ib_error`): an order-level error while an
    order is being acknowledged raises ``OrderRejected(reason, code)`` with the IB code as
    text (``"201"`` rejected, ``"110"`` price off the tick, ...); later it becomes a
    ``rejected`` event. ``202`` confirms a cancel. Cancel refusals: ``10147``/``135`` (no such
    order) raise :class:`UnknownOrder`, ``10148``/``161`` (already final) make
    ``cancel_order`` return False. Informational codes (2100-2199 such as 2104/2106/2158, and
    399, 404, 434, 492, 10167, 10197) are notices, never errors. ``1100`` (TWS lost IB) makes
    calls raise :class:`BrokerUnavailable` until ``1101``/``1102``.

    :class:`~core.brokers.router.BrokerNotReached` (a ``BrokerUnavailable`` that lets the
    order router send a new order to a fallback broker) is raised only when nothing was sent
    to TWS: a failed ``connect()``, any call while disconnected or reconnecting (ib_insync
    sends nothing on a closed socket), any call while TWS reports ``1100`` (the adapter then
    refuses before sending; an order sent before the ``1100`` arrived stays ambiguous), a
    submit whose contract lookup failed before the order was placed, and a submit whose first
    ``placeOrder`` found the socket already closed. Anything after an order went out
    (no acknowledgement in time, the connection lost while waiting) is plain
    ``BrokerUnavailable``: the order may exist, look it up by client order id.

    Notional (dollar amount) orders are refused with :class:`OrderRejected` (``unsupported``)
    before anything is sent: the TWS API orders take a quantity.

Options
    An option order names the contract by its compact OCC symbol (``SPY261120C00590000``) with
    ``instrument_type`` option. The adapter builds ``Option(underlying, 'YYYYMMDD', strike,
    'C'|'P', exchange, multiplier='100', currency)`` and qualifies it (``reqContractDetails``;
    cached by symbol); a contract TWS does not know (error ``200``) is refused with
    :class:`OrderRejected` (``unknown_symbol``) carrying TWS's reason, before any order is
    placed. Quantities are whole contracts, prices per share of premium; option orders are
    market or limit ``day`` orders, checked before anything is sent (see
    :func:`option_contract`). Executions, orders and positions of ``OPT`` contracts are
    reported under the compact OCC symbol (from the contract's ``localSymbol``, else its
    fields); a position's average price is per share (TWS's ``avgCost`` of an option is per
    contract: it is divided by the multiplier), positions carry ``instrument_type`` option.

Disconnects
    On ib_insync's ``disconnectedEvent`` (unless ``close()`` caused it) the adapter reconnects
    in the background with exponential backoff (``reconnect_delay`` doubling up to
    ``max_reconnect_delay``), then requests executions and open orders again, so fills made
    while disconnected are reported exactly once (keyed by ``execId``) and cancels made
    meanwhile become events. While disconnected every call raises :class:`BrokerUnavailable`.

Money and quantities are :class:`~decimal.Decimal` (ib_insync's floats go through ``str``);
times are timezone-aware UTC.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from ib_insync import IB, Contract, ExecutionFilter, Option, Stock, Trade
from ib_insync import Fill as IbFill
from ib_insync import Order as IbOrder

from core.brokers.router import BrokerNotReached
from core.domain import (
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
)
from core.options.occ import MULTIPLIER, OptionContract, Right, is_occ, parse_occ
from core.options.orders import option_contract
from core.ports import BrokerUnavailable, OrderRejected, UnknownOrder, UnknownSymbol

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Default API ports of Trader Workstation and IB Gateway.
PAPER_TWS_PORT = 7497
PAPER_GATEWAY_PORT = 4002
LIVE_TWS_PORT = 7496
LIVE_GATEWAY_PORT = 4001

#: Codes that are notices, not errors: 2100-2199 (data farm status such as 2104, 2106,
#: 2158), 165 (historical data service message), 399 (order warning), 404 (order held until
#: shares to borrow are found), 492 (order held), 10167 and 10197 (delayed or no live data).
NOTICE_CODES: frozenset[int] = frozenset(range(2100, 2200)) | {165, 399, 404, 492, 10167, 10197}
#: TWS lost / regained its connection to IB's servers.
CONNECTIVITY_LOST = 1100
CONNECTIVITY_RESTORED: frozenset[int] = frozenset({1101, 1102})
#: Cancel refusals: the order is unknown to TWS.
CANCEL_UNKNOWN: frozenset[int] = frozenset({10147, 135})
#: Cancel refusals: the order is already final (or not cancellable in its state).
CANCEL_TOO_LATE: frozenset[int] = frozenset({10148, 161})
#: The cancel confirmation ("Order Canceled - reason:").
CANCEL_CONFIRMED = 202

#: What TWS error codes mean, for the reasons we store.
ERROR_LABELS: dict[int, str] = {
    103: "duplicate order id",
    104: "a filled order cannot be modified",
    105: "the modified order does not match the original",
    110: "price does not conform to the minimum price variation (tick size)",
    135: "no order with that id at IB",
    136: "the order cannot be cancelled",
    161: "the order is not in a cancellable state",
    200: "no security definition (unknown contract)",
    201: "order rejected",
    202: "order cancelled",
    203: "the security is not available or allowed for this account",
    321: "the request failed validation",
    326: "client id already in use",
    354: "no market data subscription",
    383: "order size exceeds the limit",
    387: "unsupported order type",
    388: "order size is below the minimum",
    434: "order size cannot be zero",
    502: "cannot connect to TWS",
    504: "not connected to TWS",
    1100: "TWS lost its connection to IB",
    10147: "the order to cancel was not found",
    10148: "the order cannot be cancelled in its current state",
}

_IB_ACTION = {Side.BUY: "BUY", Side.SELL: "SELL"}
_IB_TIF = {
    TimeInForce.DAY: "DAY",
    TimeInForce.GTC: "GTC",
    TimeInForce.IOC: "IOC",
    TimeInForce.CLS: "DAY",
}
_FROM_IB_TYPE = {
    "MKT": OrderType.MARKET,
    "LMT": OrderType.LIMIT,
    "LOC": OrderType.LIMIT,
    "STP": OrderType.STOP,
    "STP LMT": OrderType.STOP_LIMIT,
    "TRAIL": OrderType.TRAILING_STOP,
    "TRAIL LIMIT": OrderType.TRAILING_STOP,
    "MOC": OrderType.MARKET_ON_CLOSE,
}
#: Option contracts trade until the close of their expiry date, New York time.
_NEW_YORK = ZoneInfo("America/New_York")
_UNACKNOWLEDGED = frozenset({"", "PendingSubmit", "ApiPending"})
_CANCELLED = frozenset({"Cancelled", "ApiCancelled"})
_UNSET_LIMIT = 1e300


def describe_ib_error(code: int, message: str) -> str:
    """A readable reason for a TWS error: what the code means, then TWS's own text."""
    label = ERROR_LABELS.get(code, "IB error")
    text = message.strip()
    return f"{label} (IB {code}): {text}" if text else f"{label} (IB {code})"


def is_notice(code: int) -> bool:
    """True for informational codes (farm connections, order warnings): never errors."""
    return code in NOTICE_CODES or code in CONNECTIVITY_RESTORED


def to_decimal(value: Any) -> Decimal:
    """An ib_insync number as an exact Decimal (floats through ``str``); unset values are 0."""
    if value is None:
        return ZERO
    if isinstance(value, Decimal):
        return value
    if isinstance(value, float) and (value != value or abs(value) >= _UNSET_LIMIT):
        return ZERO
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return ZERO


def _now() -> datetime:
    return datetime.now(UTC)


def contract_symbol(contract: Contract) -> str:
    """Our symbol for an IB contract: the ticker of a stock, the compact OCC symbol of an
    option (from its ``localSymbol``, else from its expiry, strike and right)."""
    if contract.secType != "OPT":
        return contract.symbol
    try:
        if contract.localSymbol:
            return parse_occ(contract.localSymbol).symbol
        expiry = datetime.strptime(contract.lastTradeDateOrContractMonth[:8], "%Y%m%d").date()
        right = Right.from_letter(contract.right)
        return OptionContract(contract.symbol, expiry, to_decimal(contract.strike), right).symbol
    except ValueError:
        return contract.localSymbol or contract.symbol


@dataclass(slots=True)
class _Tracked:
    """What the adapter knows about one of its orders (keyed by client order id)."""

    client_order_id: str
    symbol: str
    side: Side
    qty: Decimal
    order_type: OrderType
    request: OrderRequest | None = None
    parent_id: str | None = None  # parent client order id of a bracket leg
    order_id: int = 0
    perm_id: int = 0
    ib_status: str = ""
    status: OrderStatus = OrderStatus.PENDING_SUBMIT
    filled_qty: Decimal = ZERO
    fill_value: Decimal = ZERO
    reason: str | None = None
    error_code: int | None = None
    cancel_error: tuple[int, str] | None = None
    submitted_at: datetime | None = None
    expected_price: Decimal | None = None
    acknowledged: bool = False
    final: bool = False
    cancel_requested: bool = False
    legs_activated: bool = False
    #: The connection epoch the order was sent on (0: not sent by this adapter).
    sent_epoch: int = 0
    leg_ids: tuple[str, ...] = field(default_factory=tuple)

    @property
    def broker_order_id(self) -> str:
        return str(self.perm_id or self.order_id)


class IBKRBroker:
    """An Interactive Brokers account through TWS or IB Gateway (see the module docstring).

    ``IBKRBroker(host="127.0.0.1", port=PAPER_TWS_PORT, client_id=1, *, account="",
    name="ibkr", exchange="SMART", currency="USD", connect_timeout=4.0, request_timeout=10.0,
    ack_timeout=5.0, reconnect=True, reconnect_delay=0.5, max_reconnect_delay=30.0,
    max_reconnect_attempts=None, commission_wait=2.0, ib=None)``

    ``account`` selects one of several managed accounts (default: the only one). ``ib`` lets
    tests or a market data adapter share one ``ib_insync.IB``. Use :meth:`paper` and
    :meth:`live` for the standard ports.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = PAPER_TWS_PORT,
        client_id: int = 1,
        *,
        account: str = "",
        name: str = "ibkr",
        exchange: str = "SMART",
        currency: str = "USD",
        connect_timeout: float = 4.0,
        request_timeout: float = 10.0,
        ack_timeout: float = 5.0,
        reconnect: bool = True,
        reconnect_delay: float = 0.5,
        max_reconnect_delay: float = 30.0,
        max_reconnect_attempts: int | None = None,
        commission_wait: float = 2.0,
        ib: IB | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.client_id = client_id
        self.account = account
        self.name = name
        self.exchange = exchange
        self.currency = currency
        self.connect_timeout = connect_timeout
        self.request_timeout = request_timeout
        self.ack_timeout = ack_timeout
        self.reconnect = reconnect
        self.reconnect_delay = reconnect_delay
        self.max_reconnect_delay = max_reconnect_delay
        self.max_reconnect_attempts = max_reconnect_attempts
        self.commission_wait = commission_wait
        self._owns_ib = ib is None
        self.ib = ib if ib is not None else IB()
        #: Reconnect attempts made and reconnects that succeeded (for monitoring).
        self.reconnect_attempts = 0
        self.reconnects = 0
        #: The last error TWS reported that was not tied to one of our orders.
        self.last_error: tuple[int, str] | None = None

        self._orders: dict[str, _Tracked] = {}
        self._by_order_id: dict[int, str] = {}
        self._contracts: dict[str, Contract] = {}
        self._events: list[BrokerEvent] = []
        self._fills: dict[str, Fill] = {}
        self._reported: set[str] = set()
        self._pending: dict[str, tuple[IbFill, float]] = {}
        self._epoch = 0
        self._synced = False
        self._closing = False
        self._want_connection = False
        self._upstream_ok = True
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wakeup: asyncio.Event | None = None
        self._request_lock: asyncio.Lock | None = None
        self._reconnect_task: asyncio.Task[None] | None = None

        ib_ = self.ib
        ib_.orderStatusEvent += self._on_order_status
        ib_.openOrderEvent += self._on_order_status
        ib_.execDetailsEvent += self._on_exec_details
        ib_.commissionReportEvent += self._on_commission_report
        ib_.errorEvent += self._on_error
        ib_.disconnectedEvent += self._on_disconnected

    @classmethod
    def paper(
        cls, host: str = "127.0.0.1", client_id: int = 1, *, gateway: bool = False, **kw: Any
    ) -> IBKRBroker:
        """A paper account on TWS (7497) or IB Gateway (4002)."""
        port = PAPER_GATEWAY_PORT if gateway else PAPER_TWS_PORT
        return cls(host, port, client_id, **kw)

    @classmethod
    def live(
        cls, host: str = "127.0.0.1", client_id: int = 1, *, gateway: bool = False, **kw: Any
    ) -> IBKRBroker:
        """A live account on TWS (7496) or IB Gateway (4001)."""
        port = LIVE_GATEWAY_PORT if gateway else LIVE_TWS_PORT
        return cls(host, port, client_id, **kw)

    # ------------------------------------------------------------------ connection
    @property
    def connected(self) -> bool:
        """Connected and synchronised (false while reconnecting)."""
        return self._synced and self.ib.isConnected()

    @property
    def reconnecting(self) -> bool:
        return self._reconnect_task is not None and not self._reconnect_task.done()

    def _bind_loop(self) -> None:
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            self._loop = loop
            self._wakeup = asyncio.Event()
            self._request_lock = asyncio.Lock()

    async def connect(self) -> None:
        """Connect and synchronise; raises :class:`BrokerNotReached` (a
        :class:`BrokerUnavailable`) if TWS cannot be reached."""
        self._bind_loop()
        if self.connected:
            return
        await self._stop_reconnecting()
        self._closing = False
        try:
            await self._connect_once()
        except BrokerUnavailable:
            if self._want_connection:
                self._start_reconnecting()
            raise
        self._want_connection = True

    async def _connect_api(self) -> None:
        """ib_insync's connect, ended early when the client reports an API error (refused
        connection, socket closed by TWS, e.g. after 326 client id in use)."""
        assert self._loop is not None
        failed: asyncio.Future[str] = self._loop.create_future()

        def on_api_error(message: str) -> None:
            if not failed.done():
                failed.set_result(message)

        self.ib.client.apiError += on_api_error
        connecting = asyncio.ensure_future(
            self.ib.connectAsync(
                self.host,
                self.port,
                clientId=self.client_id,
                timeout=self.connect_timeout,
                account=self.account,
            )
        )
        try:
            await asyncio.wait({connecting, failed}, return_when=asyncio.FIRST_COMPLETED)
            if not connecting.done():
                connecting.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await connecting
                detail = failed.result()
                if self.last_error is not None and self.last_error[0] == 326:
                    detail = describe_ib_error(*self.last_error)
                raise ConnectionError(detail)
            connecting.result()
        finally:
            self.ib.client.apiError -= on_api_error
            if not connecting.done():
                connecting.cancel()

    async def _connect_once(self) -> None:
        self.last_error = None
        try:
            await self._connect_api()
            await self._synchronise()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self._synced = False
            if self.ib.isConnected():
                self.ib.disconnect()
            raise BrokerNotReached(
                f"{self.name}: cannot connect to TWS/IB Gateway at {self.host}:{self.port} "
                f"(client id {self.client_id}): {exc!r}"
            ) from exc

    async def close(self) -> None:
        """Disconnect (no reconnect follows) and wait for the socket to close."""
        self._closing = True
        self._want_connection = False
        await self._stop_reconnecting()
        self._synced = False
        conn = self.ib.client.conn
        if self.ib.isConnected():
            self.ib.disconnect()
        for _ in range(100):  # the transport closes on the next loop iterations
            if conn.transport is None:
                break
            await asyncio.sleep(0.01)
        if self._owns_ib:  # as ib_insync does when TWS drops the socket: no stale trades
            self.ib.wrapper.reset()

    async def _stop_reconnecting(self) -> None:
        task, self._reconnect_task = self._reconnect_task, None
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def _on_disconnected(self) -> None:
        self._synced = False
        self._notify()
        if self._closing or not self.reconnect or not self._want_connection:
            return
        log.warning("%s: lost the connection to TWS at %s:%s", self.name, self.host, self.port)
        self._start_reconnecting()

    def _start_reconnecting(self) -> None:
        if self.reconnecting or self._loop is None or self._loop.is_closed():
            return
        self._reconnect_task = self._loop.create_task(self._reconnect_loop())

    async def _reconnect_loop(self) -> None:
        delay = self.reconnect_delay
        attempts = 0
        while not self._closing:
            await asyncio.sleep(delay)
            attempts += 1
            self.reconnect_attempts += 1
            try:
                await self._connect_once()
            except BrokerUnavailable as exc:
                log.warning("%s: reconnect attempt %d failed: %s", self.name, attempts, exc)
                if self.max_reconnect_attempts and attempts >= self.max_reconnect_attempts:
                    log.error("%s: giving up after %d reconnect attempts", self.name, attempts)
                    return
                delay = min(delay * 2, self.max_reconnect_delay)
                continue
            self.reconnects += 1
            log.info("%s: reconnected after %d attempt(s)", self.name, attempts)
            return

    async def _synchronise(self) -> None:
        """After every connect: apply the synced order states (orders cancelled meanwhile
        become events), adopt open orders, recover executions."""
        self._epoch += 1
        self._upstream_ok = True
        for trade in self.ib.trades():  # completed orders are adopted only on request
            self._observe(trade, adopt=not trade.isDone())
        open_trades = await self._request(self.ib.reqOpenOrdersAsync, exclusive=True)
        for trade in open_trades:
            self._observe(trade)
        await self._recover_executions()
        self._synced = True
        self._notify()

    async def _recover_executions(self) -> list[IbFill]:
        """Replay today's executions: unreported fills of our orders become events."""
        replies = await self._request(lambda: self.ib.reqExecutionsAsync(ExecutionFilter()))
        known = {f.execution.execId: f for f in self.ib.fills()}
        fills = [known.get(f.execution.execId, f) for f in replies]
        fills.sort(key=lambda f: (f.execution.time, f.execution.execId))
        for fill in fills:
            self._take_execution(fill, final=True)
        return fills

    def _require_connected(self) -> None:
        """Refuse a call before anything is sent: while disconnected or reconnecting, and while
        TWS has lost IB (1100). Nothing left this process, so it is :class:`BrokerNotReached`."""
        if not self.connected:
            state = "reconnecting" if self.reconnecting else "not connected"
            raise BrokerNotReached(
                f"{self.name}: {state} to TWS/IB Gateway at {self.host}:{self.port}"
            )
        if not self._upstream_ok:
            raise BrokerNotReached(
                f"{self.name}: TWS has lost its connection to IB (1100); nothing was sent"
            )

    async def _request(self, start: Callable[[], Awaitable[T]], *, exclusive: bool = False) -> T:
        """Send an ib_insync request (``start`` sends it) and await the answer within
        ``request_timeout``; failures are unavailability. ``exclusive`` requests (open and
        completed orders, which ib_insync keys by name) are sent one at a time."""
        assert self._request_lock is not None
        try:
            if exclusive:
                async with self._request_lock:
                    return await asyncio.wait_for(start(), self.request_timeout)
            return await asyncio.wait_for(start(), self.request_timeout)
        except (TimeoutError, ConnectionError, OSError) as exc:
            raise BrokerUnavailable(f"{self.name}: request to TWS failed: {exc!r}") from exc

    def _notify(self) -> None:
        if self._wakeup is not None:
            self._wakeup.set()

    async def _wait_changes(self, deadline: float) -> bool:
        """Wait for any order update until ``deadline`` (loop time); False on timeout."""
        assert self._wakeup is not None and self._loop is not None
        remaining = deadline - self._loop.time()
        if remaining <= 0:
            return False
        self._wakeup.clear()
        try:
            await asyncio.wait_for(self._wakeup.wait(), remaining)
        except TimeoutError:
            return False
        return True

    # ------------------------------------------------------------------ account and positions
    def _account_name(self) -> str:
        if self.account:
            return self.account
        accounts = self.ib.managedAccounts()
        return accounts[0] if len(accounts) == 1 else ""

    def _values(self, values: Iterable[Any]) -> dict[str, Decimal]:
        """Numeric account values by tag, preferring BASE, then our currency, then none."""
        rank = {"BASE": 0, self.currency: 1, "": 2}
        chosen: dict[str, tuple[int, Decimal]] = {}
        for v in values:
            if v.currency not in rank or v.modelCode:
                continue
            try:
                number = Decimal(v.value)
            except (InvalidOperation, TypeError):
                continue
            previous = chosen.get(v.tag)
            if previous is None or rank[v.currency] < previous[0]:
                chosen[v.tag] = (rank[v.currency], number)
        return {tag: number for tag, (_, number) in chosen.items()}

    async def get_account(self) -> AccountState:
        """The account from TWS's account values (NetLiquidation, TotalCashValue, BuyingPower,
        InitMarginReq, DayTradesRemaining; daily P&L is EquityWithLoanValue minus
        PreviousDayEquityWithLoanValue)."""
        self._require_connected()
        account = self._account_name()
        values = self._values(self.ib.accountValues(account))
        if "NetLiquidation" not in values:
            summary = await self._request(lambda: self.ib.accountSummaryAsync(account))
            values = self._values(summary)
        if "NetLiquidation" not in values:
            raise BrokerUnavailable(f"{self.name}: TWS has not sent the account values yet")
        long_value = short_value = ZERO
        for item in self.ib.portfolio(account) if account else self.ib.portfolio():
            value = to_decimal(item.marketValue)
            if value >= 0:
                long_value += value
            else:
                short_value += value
        day_trades = values.get("DayTradesRemaining")
        daily = ZERO
        if "EquityWithLoanValue" in values and "PreviousDayEquityWithLoanValue" in values:
            daily = values["EquityWithLoanValue"] - values["PreviousDayEquityWithLoanValue"]
        return AccountState(
            equity=values["NetLiquidation"],
            cash=values.get("TotalCashValue", ZERO),
            buying_power=values.get("BuyingPower", ZERO),
            margin_used=values.get("InitMarginReq", ZERO),
            day_trades_remaining=(
                None if day_trades is None or day_trades < 0 else int(day_trades)
            ),
            long_market_value=long_value,
            short_market_value=short_value,
            daily_pnl=daily,
            at=_now(),
        )

    async def get_positions(self) -> list[Position]:
        """Open positions; prices from the portfolio stream where TWS sent one. Options come
        under their compact OCC symbol, in contracts, with prices per share."""
        self._require_connected()
        account = self._account_name()
        items = self.ib.portfolio(account) if account else self.ib.portfolio()
        prices = {item.contract.conId: to_decimal(item.marketPrice) for item in items}
        positions = []
        for p in self.ib.positions(account) if account else self.ib.positions():
            qty = to_decimal(p.position)
            if qty == 0:
                continue
            contract = p.contract
            multiplier = to_decimal(contract.multiplier) if contract.multiplier else Decimal(1)
            if contract.secType == "OPT" and not multiplier:
                multiplier = MULTIPLIER
            price = prices.get(contract.conId)
            positions.append(
                Position(
                    symbol=contract_symbol(contract),
                    qty=qty,
                    avg_entry_price=to_decimal(p.avgCost) / (multiplier or Decimal(1)),
                    current_price=price if price else None,
                    instrument_type=(
                        InstrumentType.OPTION if contract.secType == "OPT" else InstrumentType.STOCK
                    ),
                )
            )
        return positions

    # ------------------------------------------------------------------ orders
    async def qualify(self, symbol: str) -> Contract:
        """The qualified IB contract for one of our symbols: a stock ticker, or the OCC symbol
        of an option. Raises :class:`UnknownSymbol` (with TWS's reason) if IB has none, and
        :class:`BrokerUnavailable` if TWS cannot be asked."""
        self._require_connected()
        option = parse_occ(symbol) if is_occ(symbol) else None
        return await self._contract(symbol, option)

    async def _contract(self, symbol: str, option: OptionContract | None = None) -> Contract:
        """The qualified contract (cached): a stock, or ``option``; :class:`UnknownSymbol` if
        IB has none."""
        contract = self._contracts.get(symbol)
        if contract is not None:
            return contract
        candidate: Contract
        if option is None:
            candidate = Stock(symbol, self.exchange, self.currency)
            what = f"{self.currency} stock {symbol!r} on {self.exchange}"
        else:
            candidate = Option(
                option.underlying,
                f"{option.expiry:%Y%m%d}",
                float(option.strike),
                option.right.letter,
                self.exchange,
                multiplier=str(int(MULTIPLIER)),
                currency=self.currency,
            )
            what = f"{self.currency} option {option.symbol} ({option}) on {self.exchange}"
        errors: list[tuple[int, str]] = []

        def on_error(req_id: int, code: int, message: str, about: Any = None) -> None:
            if about is candidate:
                errors.append((code, message))

        self.ib.errorEvent += on_error
        try:
            qualified = await self._request(lambda: self.ib.qualifyContractsAsync(candidate))
        finally:
            self.ib.errorEvent -= on_error
        if not qualified:
            detail = f": {describe_ib_error(*errors[-1])}" if errors else ""
            raise UnknownSymbol(f"IB has no {what}{detail}")
        self._contracts[symbol] = qualified[0]
        return qualified[0]

    def _ib_orders(self, request: OrderRequest) -> list[tuple[str, IbOrder, str | None]]:
        """The IB orders for a request: ``(client order id, order, parent client order id)``."""
        coid = request.client_order_id
        action = _IB_ACTION[request.side]
        opposite = _IB_ACTION[request.side.opposite]
        tif = _IB_TIF[request.time_in_force]
        qty = float(request.qty)

        def order(order_type: str, ref: str, side: str = action, **kw: Any) -> IbOrder:
            return IbOrder(
                action=side,
                totalQuantity=qty,
                orderType=order_type,
                tif=tif,
                orderRef=ref,
                account=self.account,
                **kw,
            )

        t = request.order_type
        lmt = None if request.limit_price is None else float(request.limit_price)
        stop = None if request.stop_price is None else float(request.stop_price)
        if t is OrderType.MARKET:
            return [(coid, order("MKT", coid), None)]
        if t is OrderType.LIMIT:
            kind = "LOC" if request.time_in_force is TimeInForce.CLS else "LMT"
            return [(coid, order(kind, coid, lmtPrice=lmt), None)]
        if t is OrderType.STOP:
            return [(coid, order("STP", coid, auxPrice=stop), None)]
        if t is OrderType.STOP_LIMIT:
            return [(coid, order("STP LMT", coid, lmtPrice=lmt, auxPrice=stop), None)]
        if t is OrderType.TRAILING_STOP:
            if request.trail_percent is not None:
                trail = order("TRAIL", coid, trailingPercent=float(request.trail_percent))
            else:
                assert request.trail_price is not None
                trail = order("TRAIL", coid, auxPrice=float(request.trail_price))
            return [(coid, trail, None)]
        if t is OrderType.MARKET_ON_CLOSE:
            return [(coid, order("MOC", coid), None)]
        if t is OrderType.BRACKET:
            assert request.take_profit_price is not None and request.stop_loss_price is not None
            tp_id, sl_id = bracket_leg_ids(coid)
            entry = (
                order("MKT", coid, transmit=False)
                if lmt is None
                else order("LMT", coid, lmtPrice=lmt, transmit=False)
            )
            take_profit = order(
                "LMT",
                tp_id,
                opposite,
                lmtPrice=float(request.take_profit_price),
                transmit=False,
            )
            stop_loss = order(
                "STP", sl_id, opposite, auxPrice=float(request.stop_loss_price), transmit=True
            )
            return [(coid, entry, None), (tp_id, take_profit, coid), (sl_id, stop_loss, coid)]
        raise OrderRejected(f"order type {t.value} is not supported by IB", "unsupported")

    @staticmethod
    def _expected_price(request: OrderRequest, ref: str) -> Decimal | None:
        if ref != request.client_order_id:
            tp_id, _ = bracket_leg_ids(request.client_order_id)
            return request.take_profit_price if ref == tp_id else request.stop_loss_price
        return request.limit_price or request.stop_price

    async def submit_order(self, request: OrderRequest) -> BrokerOrder:
        """Place the order (a bracket as three linked orders) and wait for TWS to take it.

        Raises :class:`OrderRejected` for a duplicate client order id (``duplicate``; the id of
        a rejected order may be used again), an unknown symbol or option contract
        (``unknown_symbol``, with TWS's reason), an option order outside the option rules
        (:func:`option_contract`) and any TWS rejection while acknowledging (the IB code);
        :class:`BrokerUnavailable` when TWS cannot be reached or does not answer within
        ``ack_timeout`` (the order may exist: look it up by client order id).
        """
        option = option_contract(request)
        if request.notional is not None:
            raise OrderRejected(
                "notional (dollar amount) orders are not supported by Interactive Brokers; "
                "send a quantity",
                "unsupported",
            )
        self._require_connected()
        coid = request.client_order_id
        ids = [coid]
        if request.order_type is OrderType.BRACKET:
            ids.extend(bracket_leg_ids(coid))
        for c in ids:
            known = self._orders.get(c)
            if known is not None and known.status is not OrderStatus.REJECTED:
                raise OrderRejected(
                    f"duplicate client_order_id {c!r}: an order with this id was already sent",
                    "duplicate",
                )
        try:
            contract = await self._contract(request.symbol, option)
        except UnknownSymbol as exc:
            what = "option contract" if option is not None else "symbol"
            raise OrderRejected(
                f"unknown {what} {request.symbol!r}: {exc}", "unknown_symbol"
            ) from exc
        except BrokerUnavailable as exc:  # only the contract was asked for
            raise BrokerNotReached(
                f"{self.name}: {coid} was not sent: the contract lookup for {request.symbol} "
                f"failed: {exc}"
            ) from exc
        legs = self._ib_orders(request)
        now = _now()
        records: list[_Tracked] = []
        order_ids: dict[str, int] = {}
        replaced: dict[str, _Tracked | None] = {}  # earlier records of reused (rejected) ids
        placed = 0
        try:
            for ref, ib_order, parent in legs:
                ib_order.orderId = self.ib.client.getReqId()
                order_ids[ref] = ib_order.orderId
                if parent is not None:
                    ib_order.parentId = order_ids[parent]
                rec = _Tracked(
                    client_order_id=ref,
                    symbol=request.symbol,
                    side=request.side if parent is None else request.side.opposite,
                    qty=request.qty,
                    order_type=(
                        request.order_type
                        if parent is None
                        else _FROM_IB_TYPE.get(ib_order.orderType, OrderType.LIMIT)
                    ),
                    request=request if parent is None else None,
                    parent_id=parent,
                    order_id=ib_order.orderId,
                    submitted_at=now,
                    expected_price=self._expected_price(request, ref),
                    sent_epoch=self._epoch,
                )
                if parent is None and len(legs) > 1:
                    rec.leg_ids = tuple(r for r, _, p in legs if p == ref)
                replaced[ref] = self._orders.get(ref)
                self._orders[ref] = rec
                self._by_order_id[ib_order.orderId] = ref
                records.append(rec)
                self.ib.placeOrder(contract, ib_order)
                placed += 1
        except ConnectionError as exc:
            if placed == 0:  # the socket was closed before the first order: nothing went out
                for rec in records:
                    self._by_order_id.pop(rec.order_id, None)
                    earlier = replaced.get(rec.client_order_id)
                    if earlier is None:
                        self._orders.pop(rec.client_order_id, None)
                    else:
                        self._orders[rec.client_order_id] = earlier
                raise BrokerNotReached(
                    f"{self.name}: {coid} was not sent: the connection to TWS is closed ({exc})"
                ) from exc
            raise BrokerUnavailable(
                f"{self.name}: connection lost while sending {coid}; look it up by client "
                f"order id: {exc}"
            ) from exc
        await self._await_ack(records)
        parent_rec = records[0]
        return BrokerOrder(
            client_order_id=coid,
            broker_order_id=parent_rec.broker_order_id,
            symbol=request.symbol,
            side=request.side,
            qty=request.qty,
            status=OrderStatus.ACCEPTED,
            order_type=request.order_type,
            submitted_at=now,
        )

    async def _await_ack(self, records: list[_Tracked]) -> None:
        assert self._loop is not None
        deadline = self._loop.time() + self.ack_timeout
        parent = records[0]
        while True:
            rejected = next((r for r in records if r.status is OrderStatus.REJECTED), None)
            if rejected is not None:
                for r in records:
                    r.acknowledged = True
                    if not r.final:
                        r.status, r.final = OrderStatus.REJECTED, True
                        r.reason = rejected.reason
                reason = rejected.reason or "rejected by IB"
                if rejected is not parent:
                    reason = f"bracket leg {rejected.client_order_id} rejected: {reason}"
                raise OrderRejected(reason, str(rejected.error_code or "rejected"))
            if all(r.ib_status not in _UNACKNOWLEDGED or r.final for r in records):
                for r in records:
                    r.acknowledged = True
                return
            if not self.ib.isConnected():
                for r in records:
                    r.acknowledged = True
                raise BrokerUnavailable(
                    f"{self.name}: connection lost before TWS acknowledged "
                    f"{parent.client_order_id}; look it up by client order id"
                )
            if not await self._wait_changes(deadline) and self._loop.time() >= deadline:
                for r in records:  # later answers become events
                    r.acknowledged = True
                raise BrokerUnavailable(
                    f"{self.name}: TWS did not acknowledge {parent.client_order_id} within "
                    f"{self.ack_timeout:g} s; it may still be working: look it up by client "
                    "order id"
                )

    # ------------------------------------------------------------------ order state from IB
    def _record_for(self, trade: Trade, adopt: bool = True) -> _Tracked | None:
        """Our record of a trade; with ``adopt``, orders with an orderRef that this adapter did
        not place (earlier sessions) are tracked from now on (a final one as final)."""
        ref = trade.order.orderRef
        if not ref:
            return None
        rec = self._orders.get(ref)
        if rec is None:
            if not adopt:
                return None
            rec = _Tracked(
                client_order_id=ref,
                symbol=contract_symbol(trade.contract),
                side=Side.BUY if trade.order.action == "BUY" else Side.SELL,
                qty=to_decimal(trade.order.totalQuantity),
                order_type=_FROM_IB_TYPE.get(trade.order.orderType, OrderType.MARKET),
                acknowledged=True,
                ib_status=trade.orderStatus.status,
            )
            if trade.isDone():
                rec.final = True
                rec.status = (
                    OrderStatus.FILLED
                    if trade.orderStatus.status == "Filled"
                    else OrderStatus.CANCELLED
                )
            self._orders[ref] = rec
        if trade.order.orderId > 0:
            rec.order_id = trade.order.orderId
            self._by_order_id[rec.order_id] = ref
        perm = trade.order.permId or trade.orderStatus.permId
        if perm:
            rec.perm_id = perm
        return rec

    def _observe(self, trade: Trade, adopt: bool = True) -> None:
        """Apply a trade's current IB status to our record."""
        rec = self._record_for(trade, adopt)
        if rec is None:
            return
        status = trade.orderStatus.status
        rec.ib_status = status
        if status in _CANCELLED and not rec.final:
            code = trade.log[-1].errorCode if trade.log else 0
            if code in CANCEL_UNKNOWN or code in CANCEL_TOO_LATE:
                pass  # ib_insync marks the trade cancelled on a cancel refusal; TWS did not
            elif code and code != CANCEL_CONFIRMED and not is_notice(code):
                pass  # an order error: _on_error follows with the code and text
            else:
                reason = "cancelled by request" if rec.cancel_requested else "cancelled by IB"
                parent = self._orders.get(rec.parent_id or "")
                if parent is not None and parent.cancel_requested:
                    reason = "parent cancelled"
                elif parent is not None and self._sibling_filled(rec):
                    reason = "OCA: the bracket's other leg filled"
                self._finish(rec, OrderStatus.CANCELLED, reason)
        self._notify()

    def _sibling_filled(self, rec: _Tracked) -> bool:
        parent = self._orders.get(rec.parent_id or "")
        if parent is None:
            return False
        for leg_id in parent.leg_ids:
            leg = self._orders.get(leg_id)
            if leg is not None and leg is not rec and leg.ib_status == "Filled":
                return True
        return False

    def _on_order_status(self, trade: Trade) -> None:
        self._observe(trade)

    def _finish(self, rec: _Tracked, status: OrderStatus, reason: str) -> None:
        """A final status other than filled: recorded once, reported unless submit raises."""
        if rec.final:
            return
        rec.status, rec.reason, rec.final = status, reason, True
        if status is OrderStatus.REJECTED and not rec.acknowledged:
            return  # submit_order raises OrderRejected instead
        kind = {
            OrderStatus.CANCELLED: EventKind.CANCELLED,
            OrderStatus.REJECTED: EventKind.REJECTED,
            OrderStatus.EXPIRED: EventKind.EXPIRED,
        }[status]
        self._events.append(
            BrokerEvent(
                kind,
                rec.client_order_id,
                _now(),
                rec.broker_order_id,
                status=status,
                reason=reason,
            )
        )

    def _on_error(self, req_id: int, code: int, message: str, contract: Any = None) -> None:
        if code == CONNECTIVITY_LOST:
            self._upstream_ok = False
            self.last_error = (code, message)
            log.warning("%s: %s", self.name, describe_ib_error(code, message))
            self._notify()
            return
        if code in CONNECTIVITY_RESTORED:
            self._upstream_ok = True
            log.info("%s: %s", self.name, message)
            return
        if is_notice(code):
            log.debug("%s: notice %s: %s", self.name, code, message)
            return
        ref = self._by_order_id.get(req_id)
        rec = self._orders.get(ref) if ref is not None else None
        if rec is None:
            self.last_error = (code, message)
            log.warning("%s: %s (request %s)", self.name, describe_ib_error(code, message), req_id)
            return
        if code == CANCEL_CONFIRMED:
            return
        if code in CANCEL_UNKNOWN or code in CANCEL_TOO_LATE:
            rec.cancel_error = (code, message)
        elif not rec.final:
            rec.error_code = code
            self._finish(rec, OrderStatus.REJECTED, describe_ib_error(code, message))
        self._notify()

    # ------------------------------------------------------------------ fills
    def _on_exec_details(self, trade: Trade, fill: IbFill) -> None:
        self._take_execution(fill)

    def _on_commission_report(self, trade: Trade, fill: IbFill, report: Any) -> None:
        self._take_execution(fill)

    def _to_fill(self, fill: IbFill, rec: _Tracked | None) -> Fill:
        ex = fill.execution
        report = fill.commissionReport
        has_report = report.execId == ex.execId and abs(report.commission) < _UNSET_LIMIT
        when = ex.time if ex.time.tzinfo is not None else fill.time
        return Fill(
            fill_id=ex.execId,
            client_order_id=ex.orderRef or f"ibkr-{ex.permId}",
            symbol=contract_symbol(fill.contract),
            side=Side.BUY if ex.side == "BOT" else Side.SELL,
            qty=to_decimal(ex.shares),
            price=to_decimal(ex.price),
            at=when.astimezone(UTC),
            broker=self.name,
            expected_price=rec.expected_price if rec is not None else None,
            commission=to_decimal(report.commission) if has_report else ZERO,
            broker_order_id=str(ex.permId or ex.orderId),
        )

    def _take_execution(self, fill: IbFill, final: bool = False) -> None:
        """Record an execution; report it (once per execId) when its commission is in."""
        ex = fill.execution
        exec_id = ex.execId
        if not exec_id or exec_id in self._reported:
            return
        has_report = fill.commissionReport.execId == exec_id
        if not has_report and not final:
            self._pending.setdefault(exec_id, (fill, time.monotonic()))
            return
        self._pending.pop(exec_id, None)
        rec = self._orders.get(ex.orderRef) if ex.orderRef else None
        domain = self._to_fill(fill, rec)
        self._fills[exec_id] = domain
        if rec is None:
            return  # not one of ours: available through get_fills only
        self._reported.add(exec_id)
        rec.filled_qty += domain.qty
        rec.fill_value += domain.qty * domain.price
        status = OrderStatus.FILLED if rec.filled_qty >= rec.qty else OrderStatus.PARTIALLY_FILLED
        if status is OrderStatus.FILLED and not rec.final:
            rec.status, rec.final = OrderStatus.FILLED, True
        elif not rec.final:
            rec.status = status
        self._events.append(
            BrokerEvent(
                EventKind.FILL,
                rec.client_order_id,
                domain.at,
                domain.broker_order_id,
                fill=domain,
                status=status,
            )
        )
        if status is OrderStatus.FILLED and rec.leg_ids and not rec.legs_activated:
            rec.legs_activated = True
            for leg_id in rec.leg_ids:
                leg = self._orders.get(leg_id)
                if leg is not None and not leg.final:
                    self._events.append(
                        BrokerEvent(
                            EventKind.ACCEPTED,
                            leg_id,
                            domain.at,
                            leg.broker_order_id,
                            status=OrderStatus.ACCEPTED,
                            reason="bracket leg activated by the entry fill",
                        )
                    )
        self._notify()

    def _flush_stale_fills(self) -> None:
        """Report executions whose commission report did not come within commission_wait."""
        cutoff = time.monotonic() - self.commission_wait
        for exec_id, (fill, seen) in list(self._pending.items()):
            if seen <= cutoff:
                log.warning("%s: no commission report for %s; reported without", self.name, exec_id)
                self._take_execution(fill, final=True)

    async def updates(self) -> list[BrokerEvent]:
        """Events since the last call, oldest first (non-blocking)."""
        self._require_connected()
        self._flush_stale_fills()
        events, self._events = self._events, []
        return events

    async def get_fills(
        self, client_order_id: str | None = None, since: datetime | None = None
    ) -> list[Fill]:
        """Executions from TWS (``reqExecutions``) plus those seen earlier, optionally of one
        order and at or after ``since``, ordered by time, broker order id and fill id. Any
        execution of our orders not reported yet is also reported through ``updates()``."""
        self._require_connected()
        for fill in await self._recover_executions():
            exec_id = fill.execution.execId
            if exec_id not in self._fills or fill.commissionReport.execId == exec_id:
                rec = self._orders.get(fill.execution.orderRef)
                self._fills[exec_id] = self._to_fill(fill, rec)
        fills = [
            f
            for f in self._fills.values()
            if (client_order_id is None or f.client_order_id == client_order_id)
            and (since is None or f.at >= since)
        ]
        return sorted(fills, key=lambda f: (f.at, f.broker_order_id or "", f.fill_id))

    # ------------------------------------------------------------------ order lookups
    def _trades_for(self, client_order_id: str, trades: Iterable[Trade]) -> Trade | None:
        matches = [t for t in trades if t.order.orderRef == client_order_id]
        if not matches:
            return None
        return max(matches, key=lambda t: (t.order.orderId > 0, t.order.orderId, t.order.permId))

    async def _completed(self) -> list[Trade]:
        return await self._request(lambda: self.ib.reqCompletedOrdersAsync(False), exclusive=True)

    def _view(self, client_order_id: str, trade: Trade | None, rec: _Tracked | None) -> BrokerOrder:
        """A BrokerOrder from IB's trade and/or our record (ours wins for final statuses)."""
        ib_filled = ZERO
        avg: Decimal | None = None
        if trade is not None:
            order, status = trade.order, trade.orderStatus
            fills_qty = sum((to_decimal(f.execution.shares) for f in trade.fills), ZERO)
            ib_filled = max(to_decimal(status.filled), fills_qty, to_decimal(order.filledQuantity))
            if status.avgFillPrice:
                avg = to_decimal(status.avgFillPrice)
            elif fills_qty:
                value = sum(
                    (
                        to_decimal(f.execution.shares) * to_decimal(f.execution.price)
                        for f in trade.fills
                    ),
                    ZERO,
                )
                avg = value / fills_qty
        if rec is not None:
            filled = max(ib_filled, rec.filled_qty)
            if avg is None and rec.filled_qty:
                avg = rec.fill_value / rec.filled_qty
            ib_status = trade.orderStatus.status if trade is not None else rec.ib_status
            status = rec.status if rec.final else self._status(ib_status, filled, rec.qty, rec)
            return BrokerOrder(
                client_order_id=client_order_id,
                broker_order_id=rec.broker_order_id,
                symbol=rec.symbol,
                side=rec.side,
                qty=rec.qty,
                status=status,
                filled_qty=filled,
                avg_fill_price=avg,
                order_type=rec.order_type,
                reason=rec.reason,
                submitted_at=rec.submitted_at,
            )
        assert trade is not None
        order = trade.order
        qty = to_decimal(order.totalQuantity)
        submitted = trade.log[0].time if trade.log else None
        return BrokerOrder(
            client_order_id=client_order_id,
            broker_order_id=str(order.permId or order.orderId),
            symbol=contract_symbol(trade.contract),
            side=Side.BUY if order.action == "BUY" else Side.SELL,
            qty=qty,
            status=self._status(trade.orderStatus.status, ib_filled, qty, None),
            filled_qty=ib_filled,
            avg_fill_price=avg,
            order_type=_FROM_IB_TYPE.get(order.orderType, OrderType.MARKET),
            submitted_at=submitted,
        )

    @staticmethod
    def _status(ib_status: str, filled: Decimal, qty: Decimal, rec: _Tracked | None) -> OrderStatus:
        if ib_status == "Filled":
            return OrderStatus.FILLED
        if ib_status in _CANCELLED:
            return OrderStatus.CANCELLED
        if ib_status == "Inactive" and rec is not None and rec.error_code is not None:
            return OrderStatus.REJECTED
        if ib_status in _UNACKNOWLEDGED:
            return OrderStatus.PENDING_SUBMIT
        if filled >= qty > 0:
            return OrderStatus.FILLED
        return OrderStatus.PARTIALLY_FILLED if filled > 0 else OrderStatus.ACCEPTED

    async def get_order(self, client_order_id: str) -> BrokerOrder | None:
        """Look the order up by orderRef: this connection's trades (open orders included) and
        orders sent on it, then TWS's completed orders, then final states we recorded
        (rejections); None if IB never saw it or no longer has it."""
        self._require_connected()
        rec = self._orders.get(client_order_id)
        trade = self._trades_for(client_order_id, self.ib.trades())
        if trade is not None:
            return self._view(client_order_id, trade, self._record_for(trade))
        if rec is not None and rec.sent_epoch == self._epoch and not rec.final:
            return self._view(client_order_id, None, rec)  # sent on this connection, in flight
        trade = self._trades_for(client_order_id, await self._completed())
        if trade is not None:
            return self._view(client_order_id, trade, self._record_for(trade))
        if rec is not None and rec.final:
            return self._view(client_order_id, None, rec)  # e.g. rejected: never in TWS's books
        return None

    async def get_orders(self, status: str = "open") -> list[BrokerOrder]:
        """Orders by ``status``: ``open``, ``closed`` (final) or ``all``; orders without an
        orderRef (placed in TWS by hand) appear as ``ibkr-<permId>``."""
        if status not in ("open", "closed", "all"):
            raise ValueError(f"status must be 'open', 'closed' or 'all', got {status!r}")
        self._require_connected()
        trades = list(self.ib.trades())
        if status != "open":
            trades.extend(await self._completed())
        views: dict[str, tuple[tuple[bool, int, int], BrokerOrder]] = {}
        for trade in trades:
            order = trade.order
            coid = order.orderRef or f"ibkr-{order.permId or order.orderId}"
            rank = (order.orderId > 0, order.orderId, order.permId)
            if coid in views and views[coid][0] >= rank:
                continue
            rec = self._record_for(trade, adopt=False)
            views[coid] = (rank, self._view(coid, trade, rec))
        if status != "open":
            for coid, rec in self._orders.items():
                if coid not in views and rec.final:
                    views[coid] = ((False, 0, 0), self._view(coid, None, rec))
        chosen = [
            view
            for _, view in views.values()
            if status == "all" or (view.status.is_terminal == (status == "closed"))
        ]
        epoch = datetime.min.replace(tzinfo=UTC)
        return sorted(chosen, key=lambda o: (o.submitted_at or epoch, o.broker_order_id))

    # ------------------------------------------------------------------ cancels
    async def cancel_order(self, client_order_id: str) -> bool:
        """Cancel an order (a bracket entry's working legs too). True if a cancel was
        requested and not refused, False if the order is already final; :class:`UnknownOrder`
        if IB has no such order."""
        self._require_connected()
        rec = self._orders.get(client_order_id)
        trade = self._trades_for(client_order_id, self.ib.trades())
        targets: list[Trade] = []
        if trade is not None and not trade.isDone() and not (rec is not None and rec.final):
            targets.append(trade)  # TWS cancels a working entry's legs with it
        elif rec is not None:  # the entry is final: cancel its working legs
            for leg_id in rec.leg_ids:
                leg_trade = self._trades_for(leg_id, self.ib.trades())
                leg = self._orders.get(leg_id)
                if leg_trade is not None and not leg_trade.isDone() and not (leg and leg.final):
                    targets.append(leg_trade)
        if not targets:
            if trade is not None or (rec is not None and rec.final):
                return False
            if self._trades_for(client_order_id, await self._completed()) is not None:
                return False
            raise UnknownOrder(f"IB has no order with orderRef {client_order_id!r}")
        outcomes = [await self._cancel_trade(t) for t in targets]
        return any(outcomes)

    async def _cancel_trade(self, trade: Trade) -> bool:
        rec = self._record_for(trade)
        if rec is not None:
            rec.cancel_requested = True
            rec.cancel_error = None
        self.ib.cancelOrder(trade.order)
        assert self._loop is not None
        deadline = self._loop.time() + self.ack_timeout
        while True:
            if rec is not None and rec.cancel_error is not None:
                code, message = rec.cancel_error
                if code in CANCEL_UNKNOWN:
                    self._finish(rec, OrderStatus.CANCELLED, describe_ib_error(code, message))
                    raise UnknownOrder(describe_ib_error(code, message))
                return False  # already final at IB; its final status follows
            status = trade.orderStatus.status
            if status in _CANCELLED:
                return True
            if status == "Filled":
                return False
            if not self.ib.isConnected():
                raise BrokerUnavailable(f"{self.name}: connection lost while cancelling")
            if not await self._wait_changes(deadline) and self._loop.time() >= deadline:
                return True  # requested; the outcome arrives through updates()

    async def cancel_all(self) -> int:
        """Cancel every working order of this client (a bracket's legs go with their entry);
        returns how many orders were working."""
        self._require_connected()
        working = []
        for trade in self.ib.openTrades():
            rec = self._record_for(trade)
            if rec is not None and rec.final:
                continue
            working.append(trade)
        ids = {t.order.orderId for t in working}
        roots = [t for t in working if t.order.parentId not in ids]
        for trade in roots:
            with contextlib.suppress(UnknownOrder):
                await self._cancel_trade(trade)
        return len(working)
