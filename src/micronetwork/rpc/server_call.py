"""The serving side of one RPC call (trio): :class:`ServerCall` and :func:`serve_stream`.

Theory of operation. Each inbound stream is one call, run by :func:`serve_stream` as two
tasks: the handler, inside a cancel scope whose deadline is the client's, and a reader that
decodes the client's frames and hands Data to the handler through a small channel
(``read_ahead`` messages; beyond that the reader stops reading and yamux's window holds the
client back). The reader is what notices the client leaving - a Cancel, a reset, a FIN before
End, the connection dying - and cancels the handler's scope at once, so a handler blocked
anywhere is cancelled (its ``finally`` runs) rather than left behind.

How the call ends. A handler that returns gets "ok" sent for it (when the kind allows: a unary
handler that sent nothing gets "internal"). A :class:`RemoteError` travels with its code;
:class:`MessageTooLarge` is "message_too_large"; :class:`DeadlineExceeded` is
"deadline_exceeded"; any other exception is "internal" with its message. When the deadline
passes the handler is cancelled and "deadline_exceeded" is sent; when the client is gone
nothing is sent. After the Status the stream is half-closed (FIN), and also reset if the client
had not ended its requests, which stops it sending; the client still reads the Status (data
delivered before a FIN survives a later RST in yamux).
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

import trio

from ..errors import (
    CallCancelled,
    DeadlineExceeded,
    LocalProtocolError,
    MessageTooLarge,
    RemoteError,
    RemoteProtocolError,
)
from ..identity.peerid import PeerId
from ._io import ABORT_TIMEOUT, StreamBroken, close_quietly, read_chunk, reset_quietly, write
from .call import Direction, Role, RpcCall
from .frames import MAX_STATUS_MESSAGE, Cancel, Data, End, Frame, Kind, Status, encode_frame

__all__ = ["ServerCall", "serve_stream"]

log = logging.getLogger(__name__)

_ONE_RESPONSE = ("unary", "client_stream")

Handler = Callable[["ServerCall"], Awaitable[None]]


class ServerCall:
    """One inbound call, as the handler sees it."""

    def __init__(
        self, peer: PeerId, stream: Any, state: RpcCall, counters: Counter[str], read_ahead: int
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
        self._stream = stream
        self._state = state
        self._counters = counters
        self._inbox_send, self._inbox_recv = trio.open_memory_channel[Any](read_ahead)
        self._pending = bytearray()
        self._send_lock = trio.Lock()
        self._scope: trio.CancelScope | None = None
        self._torn = False  # a write stopped half-way: nothing more can be framed
        self._stream_done = False

    @property
    def finished(self) -> bool:
        """The Status has been sent."""
        return self._state.server_state is Direction.CLOSED

    # -- the handler's API ----------------------------------------------------------------------

    async def receive(self) -> Any:
        """The next request. ``trio.EndOfChannel`` after the client's End;
        :class:`CallCancelled` if the client cancelled or went away."""
        try:
            return await self._inbox_recv.receive()
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
        self._pending += self._encode(Data(body))
        if self.kind not in _ONE_RESPONSE:
            await self._flush()

    async def end(self) -> None:
        """Optional: no more responses; the Status follows."""
        self._check_live()
        self._pending += self._encode(End())
        await self._flush()

    async def finish(self) -> None:
        """End the call successfully (Status "ok")."""
        await self._send_status(Status())

    async def fail(self, code: str, message: str, details: Any = None) -> None:
        """End the call with an error the client sees as ``RemoteError(code, message, details)``
        (codes "deadline_exceeded", "cancelled" and "message_too_large" map to their own
        exceptions)."""
        await self._send_status(Status(code, message[:MAX_STATUS_MESSAGE], details))

    # -- internals ------------------------------------------------------------------------------

    def _check_live(self) -> None:
        if self.cancelled:
            raise CallCancelled(self.cancel_reason or "the client cancelled")

    def _encode(self, frame: Frame) -> bytes:
        data = self._state.send(frame)
        self._counters["frames_sent"] += 1
        return data

    async def _flush(self) -> None:
        async with self._send_lock:
            if not self._pending or self._torn:
                return
            data = bytes(self._pending)
            self._pending.clear()
            done = False
            try:
                await write(self._stream, data, self._counters)
                done = True
            except StreamBroken as exc:
                self._counters["streams_broken"] += 1
                self._client_gone(f"the stream broke: {exc}")
                raise CallCancelled(self.cancel_reason or "the stream broke") from None
            finally:
                self._torn = self._torn or not done

    async def _send_status(self, status: Status) -> None:
        self._check_live()
        self._pending += self._encode(status)  # LocalProtocolError if not allowed now
        if not status.ok:
            self._counters["errors_sent"] += 1
        await self._flush()
        await self._close_stream()

    def _client_gone(self, reason: str) -> None:
        if self.cancelled or self._state.ended_by_us:
            return
        self.cancelled = True
        self.cancel_reason = reason
        self._counters["calls_cancelled_by_client"] += 1
        self._inbox_send.close()
        if self._scope is not None:
            self._scope.cancel()

    async def _close_stream(self) -> None:
        """FIN after our last frame; RST too if the client may still be sending (or we could
        not say anything)."""
        if self._stream_done:
            return
        self._stream_done = True
        with trio.CancelScope(shield=True, deadline=trio.current_time() + ABORT_TIMEOUT):
            if self._state.over and not self._torn:
                await close_quietly(self._stream)
                if self._state.client_state is Direction.OPEN:
                    await reset_quietly(self._stream)
            else:
                await reset_quietly(self._stream)

    async def _status_quietly(self, status: Status) -> None:
        """Best effort at the end of a call: a Status, bounded in time, then the close."""
        if not self._state.over and not self.cancelled and not self._torn:
            with trio.CancelScope(shield=True, deadline=trio.current_time() + ABORT_TIMEOUT):
                try:
                    self._pending.clear()  # an unsent response of a failed call is dropped
                    await self._send_status(status)
                except (CallCancelled, LocalProtocolError):
                    pass
        await self._close_stream()

    # -- the two tasks --------------------------------------------------------------------------

    async def _read_loop(self) -> None:
        state = self._state
        try:
            while True:
                while (frame := state.next_frame(trio.current_time())) is not None:
                    self._counters["frames_received"] += 1
                    if isinstance(frame, Data):
                        await self._inbox_send.send(frame.body)
                    elif isinstance(frame, End):
                        self._inbox_send.close()
                    elif isinstance(frame, Cancel):
                        self._client_gone(f"the client cancelled: {frame.reason}")
                        return
                if state.over:
                    return
                chunk = await read_chunk(self._stream)
                if chunk is None:
                    if not state.receive_eof():
                        self._client_gone("the client closed the stream before the call ended")
                    return
                self._counters["bytes_received"] += len(chunk)
                state.receive_data(chunk)
        except StreamBroken as exc:
            if not state.over:
                self._counters["streams_broken"] += 1
                self._client_gone(f"the stream broke: {exc}")
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass  # the handler is gone; nobody reads requests any more
        except MessageTooLarge as exc:
            self._counters["too_large_received"] += 1
            await self._reject("message_too_large", str(exc))
        except RemoteProtocolError as exc:
            self._counters["protocol_errors"] += 1
            await self._reject("protocol_error", str(exc))

    async def _reject(self, code: str, message: str) -> None:
        """The client sent something we cannot take: stop the handler, tell the client."""
        self._client_gone(message)
        with trio.CancelScope(shield=True, deadline=trio.current_time() + ABORT_TIMEOUT):
            async with self._send_lock:
                if not self._state.over and not self._torn:
                    self._pending.clear()
                    try:
                        data = self._encode(Status(code, message[:MAX_STATUS_MESSAGE]))
                        self._counters["errors_sent"] += 1
                        await write(self._stream, data, self._counters)
                    except (StreamBroken, LocalProtocolError):
                        pass
        await self._close_stream()

    async def _run(self, handler: Handler) -> None:
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._read_loop)
                await self._run_handler(handler)
                nursery.cancel_scope.cancel()
        finally:
            await self._status_quietly(Status("cancelled", "the server stopped the call"))

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
        await self._status_quietly(error)


async def serve_stream(
    stream: Any,
    peer: PeerId,
    handler: Handler,
    *,
    max_message_size: int,
    counters: Counter[str],
    open_timeout: float,
    read_ahead: int,
) -> None:
    """Serve the one call an inbound stream carries: read the Open, then run the handler."""
    state = RpcCall(Role.SERVER, max_message_size=max_message_size)
    try:
        with trio.fail_after(open_timeout):
            while state.open is None:
                if state.next_frame(trio.current_time()) is not None:
                    break
                chunk = await read_chunk(stream)
                if chunk is None:
                    raise StreamBroken("the stream ended before the Open")
                counters["bytes_received"] += len(chunk)
                state.receive_data(chunk)
    except (trio.TooSlowError, StreamBroken):
        counters["open_failures"] += 1
        await reset_quietly(stream)
        return
    except (MessageTooLarge, RemoteProtocolError) as exc:
        code = "message_too_large" if isinstance(exc, MessageTooLarge) else "protocol_error"
        counters["protocol_errors" if code == "protocol_error" else "too_large_received"] += 1
        with trio.move_on_after(ABORT_TIMEOUT):
            try:
                await write(stream, encode_frame(Status(code, str(exc)[:1000])), counters)
            except StreamBroken:
                pass
            await close_quietly(stream)
        await reset_quietly(stream)
        return
    counters["frames_received"] += 1
    counters["calls_served"] += 1
    call = ServerCall(peer, stream, state, counters, read_ahead)
    await call._run(handler)
