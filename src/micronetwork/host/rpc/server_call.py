"""The serving side of one RPC call (trio): :class:`ServerCall`.

Theory of operation. The stream's reader (:mod:`.server_conn`) starts each call's handler as a
task, inside a cancel scope whose deadline is the client's, and hands it the client's Data
through a small channel. The reader is what notices the client leaving - a Cancel, a reset, a
FIN before End, the connection dying - and cancels the handler's scope at once, so a handler
blocked anywhere is cancelled (its ``finally`` runs) rather than left behind. Answers are
queued on the stream's outbox; ``send`` waits only while the outbox is over its high-water
mark (the client is not reading).

How the call ends. A handler that returns gets "ok" sent for it (when the kind allows: a unary
handler that sent nothing gets "internal"). A :class:`RemoteError` travels with its code;
:class:`MessageTooLarge` is "message_too_large"; :class:`DeadlineExceeded` is
"deadline_exceeded"; any other exception is "internal" with its message. When the deadline
passes the handler is cancelled and "deadline_exceeded" is sent; when the client is gone
nothing is sent.
"""

from __future__ import annotations

import logging
import math
from collections import Counter, deque
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import trio

from ...errors import (
    CallCancelled,
    DeadlineExceeded,
    LocalProtocolError,
    MessageTooLarge,
    RemoteError,
)
from ...identity.peerid import PeerId
from ...rpc.call import Direction, RpcCall
from ...rpc.frames import END, MAX_STATUS_MESSAGE, OK, Data, Frame, Kind, Status
from ._io import StreamBroken

if TYPE_CHECKING:
    from .server_conn import ServerStream

__all__ = ["ServerCall"]

log = logging.getLogger(__name__)

_ONE_RESPONSE = ("unary", "client_stream")

Handler = Callable[["ServerCall"], Awaitable[None]]


class ServerCall:
    """One inbound call, as the handler sees it."""

    def __init__(
        self,
        peer: PeerId,
        conn: ServerStream,
        state: RpcCall,
        counters: Counter[str],
        read_ahead: int,
    ) -> None:
        assert state.open is not None
        self.peer = peer
        self.service = state.open.service
        self.endpoint = state.open.endpoint
        self.kind: Kind = state.open.kind
        self.call_id = state.open.call_id
        self.headers: dict[str, str] = dict(state.open.headers)
        self.deadline: float | None = state.deadline  # trio clock
        self.cancelled = False  # the client cancelled, went away, or broke the protocol
        self.cancel_reason: str | None = None
        self._conn = conn
        self._state = state
        self._counters = counters
        self._inbox = _Inbox(read_ahead)
        self._pending: list[bytes] = []  # frames not yet queued (queued together)
        self._scope: trio.CancelScope | None = None

    @property
    def finished(self) -> bool:
        """The Status has been sent."""
        return self._state.server_state is Direction.CLOSED

    # -- the handler's API ----------------------------------------------------------------------

    async def receive(self) -> Any:
        """The next request. ``trio.EndOfChannel`` after the client's End;
        :class:`CallCancelled` if the client cancelled or went away."""
        try:
            return await self._inbox.receive()
        except trio.EndOfChannel:
            if self.cancelled:
                raise CallCancelled(self.cancel_reason or "the client cancelled") from None
            raise

    def __aiter__(self) -> ServerCall:
        return self

    async def __anext__(self) -> Any:
        try:
            return await self.receive()
        except trio.EndOfChannel:
            raise StopAsyncIteration from None

    async def send(self, body: Any) -> None:
        """Send one response. :class:`MessageTooLarge` (nothing written) if it is over the
        limit; :class:`CallCancelled` if the client is gone."""
        self._check_live()
        self._pending.append(self._encode(Data(body)))
        if self.kind not in _ONE_RESPONSE:
            await self._flush()

    async def end(self) -> None:
        """Optional: no more responses; the Status follows."""
        self._check_live()
        self._pending.append(self._encode(END))
        await self._flush()

    async def finish(self) -> None:
        """End the call successfully (Status "ok")."""
        await self._send_status(OK)

    async def fail(self, code: str, message: str, details: Any = None) -> None:
        """End the call with an error the client sees as ``RemoteError(code, message, details)``
        (codes "deadline_exceeded", "cancelled" and "message_too_large" map to their own
        exceptions)."""
        await self._send_status(Status(code, message[:MAX_STATUS_MESSAGE], details))

    # -- called by the stream's reader ----------------------------------------------------------

    async def _deliver(self, body: Any) -> None:
        await self._inbox.put(body)

    def _end_of_requests(self) -> None:
        self._inbox.close()

    def _client_gone(self, reason: str) -> None:
        if self.cancelled or self._state.ended_by_us:
            return
        self.cancelled = True
        self.cancel_reason = reason
        self._counters["calls_cancelled_by_client"] += 1
        self._inbox.close()
        if self._scope is not None:
            self._scope.cancel()

    def _reject(self, code: str, message: str) -> None:
        """The client sent something we cannot take for this call: stop the handler, tell
        the client."""
        self._client_gone(message)
        if not self._state.over:
            self._pending.clear()
            try:
                self._pending.append(self._encode(Status(code, message[:MAX_STATUS_MESSAGE])))
                self._counters["errors_sent"] += 1
                self._conn.outbox.put_many(self._pending)
            except (StreamBroken, LocalProtocolError):
                pass
            self._pending.clear()

    # -- internals ------------------------------------------------------------------------------

    def _check_live(self) -> None:
        if self.cancelled:
            raise CallCancelled(self.cancel_reason or "the client cancelled")

    def _encode(self, frame: Frame) -> bytes:
        data = self._state.send(frame)
        self._counters["frames_sent"] += 1
        return data

    async def _flush(self) -> None:
        outbox = self._conn.outbox
        try:
            if self._pending:
                chunks, self._pending = self._pending, []
                outbox.put_many(chunks)
            if outbox.buffered > outbox.high_water:
                await outbox.drain()
        except StreamBroken as exc:
            self._counters["streams_broken"] += 1
            self._client_gone(f"the stream broke: {exc}")
            raise CallCancelled(self.cancel_reason or "the stream broke") from None

    async def _send_status(self, status: Status) -> None:
        self._check_live()
        self._pending.append(self._encode(status))  # LocalProtocolError if not allowed now
        if not status.ok:
            self._counters["errors_sent"] += 1
        await self._flush()

    def _status_quietly(self, status: Status) -> None:
        """Best effort at the end of a call: queue a Status (nothing if the call is over)."""
        if self._state.over or self.cancelled:
            return
        self._pending.clear()  # an unsent response of a failed call is dropped
        try:
            self._pending.append(self._encode(status))
            if not status.ok:
                self._counters["errors_sent"] += 1
            self._conn.outbox.put_many(self._pending)
        except (StreamBroken, LocalProtocolError):
            pass
        self._pending.clear()

    # -- the handler's task ---------------------------------------------------------------------

    async def _run(self, handler: Handler) -> None:
        self._conn.served(1)
        try:
            await self._run_handler(handler)
        finally:
            self._status_quietly(Status("cancelled", "the server stopped the call"))
            self._inbox.close()
            self._conn.call_ended(self)
            self._conn.served(-1)

    async def _run_handler(self, handler: Handler) -> None:
        error: Status | None = None
        deadline = math.inf if self.deadline is None else self.deadline
        with trio.CancelScope(deadline=deadline) as scope:
            self._scope = scope
            if self.cancelled:
                scope.cancel()
            try:
                await handler(self)
            except CallCancelled as exc:
                if not self.cancelled:  # a call the handler made was cancelled, not ours
                    error = Status("cancelled", str(exc)[:MAX_STATUS_MESSAGE])
            except RemoteError as exc:
                error = Status(exc.code, exc.message[:MAX_STATUS_MESSAGE], exc.details)
            except MessageTooLarge as exc:
                error = Status("message_too_large", str(exc)[:MAX_STATUS_MESSAGE])
            except DeadlineExceeded as exc:
                error = Status("deadline_exceeded", str(exc)[:MAX_STATUS_MESSAGE])
            except Exception as exc:
                log.warning("RPC handler for %s.%s failed", self.service, self.endpoint,
                            exc_info=True)
                error = Status("internal", (str(exc) or type(exc).__name__)[:MAX_STATUS_MESSAGE])
        if self.cancelled or self._state.over:
            return
        if scope.cancelled_caught:
            self._counters["deadline_exceeded"] += 1
            error = Status("deadline_exceeded", f"{self.service}.{self.endpoint} passed its "
                           "deadline at the server")
        if error is None:
            try:
                await self.finish()
                return
            except LocalProtocolError as exc:
                error = Status("internal", f"the handler ended without a valid answer: {exc}")
            except CallCancelled:
                return
        self._status_quietly(error)


class _Inbox:
    """The requests read but not yet received by the handler. The reader waits while more
    than ``capacity`` are queued (the handler is behind); a unary call's one request never
    makes it wait."""

    __slots__ = ("_items", "_capacity", "closed", "_readable", "_room")

    def __init__(self, capacity: int) -> None:
        self._items: deque[Any] = deque()
        self._capacity = capacity
        self.closed = False
        self._readable: trio.Event | None = None
        self._room: trio.Event | None = None

    async def put(self, item: Any) -> None:
        if self.closed:
            return  # the handler is gone or stopped reading
        self._items.append(item)
        if self._readable is not None:
            self._readable.set()
        while len(self._items) > self._capacity and not self.closed:
            self._room = trio.Event()
            await self._room.wait()

    async def receive(self) -> Any:
        items = self._items
        if items:
            await trio.lowlevel.checkpoint_if_cancelled()
        while not items:
            if self.closed:
                raise trio.EndOfChannel
            self._readable = trio.Event()
            await self._readable.wait()
        item = items.popleft()
        if self._room is not None:
            self._room.set()
        return item

    def close(self) -> None:
        self.closed = True
        if self._readable is not None:
            self._readable.set()
        if self._room is not None:
            self._room.set()
