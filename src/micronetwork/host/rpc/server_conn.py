"""One inbound RPC stream and the calls on it (trio): :func:`serve_stream`.

Theory of operation. A reader task splits the stream into per-call frames
(:class:`~.stream.StreamCore`): an Open starts the call's handler as a task of its own
(:class:`~.server_call.ServerCall`), Data and End go to that call's inbox, a Cancel cancels its
handler. Every call's answers go through the stream's :class:`~._outbox.Outbox`, whose one
writer sends what all handlers queued together.

Flow control. A shared stream carries unary calls: one request each, which the reader hands
over without waiting, so no handler holds up the others; at most ``max_calls`` run at once
(more are refused with "overloaded"), and the reader stops reading while the outbox is over
its high-water mark (a client that does not read its answers is held back by the yamux
window). A single stream carries one streaming call: the reader stops once ``read_ahead``
requests wait unread, and the yamux window holds that client back.

Ending. A shared stream ends when the client half-closes it with no call in flight (we then
FIN too), when it stays idle ``idle_timeout`` (we reset it), or when it breaks (reset, FIN with
calls in flight, undecodable bytes): the handlers of its calls are then cancelled. A single
stream is half-closed after its call's Status, and reset too if the client may still be
sending. At shutdown (the transport's nursery cancelled) handlers are cancelled, their
"cancelled" Statuses written if the stream allows, and the stream reset.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import trio

from ...errors import MessageTooLarge, RemoteProtocolError
from ...identity.peerid import PeerId
from ...rpc.call import Direction, Role
from ...rpc.frames import Cancel, Data, End, Status, encode_frame
from ...rpc.stream import CallFailed, CallOpened, CallRefused, FrameReceived, StreamCore
from .._streamio import muxed_of
from ._io import StreamBroken, read_chunks, reset_quietly
from ._outbox import Outbox
from .server_call import Handler, ServerCall

__all__ = ["ServerLimits", "serve_stream"]


@dataclass(frozen=True, slots=True)
class ServerLimits:
    max_message_size: int
    open_timeout: float  # until the first Open
    read_ahead: int  # requests of a streaming call read ahead of its handler
    max_calls: int  # calls at once on a shared stream
    idle_timeout: float  # a shared stream with no call in flight this long is reset


async def serve_stream(
    stream: Any,
    peer: PeerId,
    handler: Handler,
    limits: ServerLimits,
    counters: Counter[str],
    served: Callable[[int], None],
) -> None:
    """Serve the calls an inbound stream carries, until it ends."""
    counters["streams_served"] += 1
    await ServerStream(stream, peer, handler, limits, counters, served).run()


class ServerStream:
    def __init__(
        self,
        stream: Any,
        peer: PeerId,
        handler: Handler,
        limits: ServerLimits,
        counters: Counter[str],
        served: Callable[[int], None],
    ) -> None:
        self.stream = stream
        self.peer = peer
        self.handler = handler
        self.limits = limits
        self.counters = counters
        self.served = served
        self.core = StreamCore(Role.SERVER, max_message_size=limits.max_message_size,
                               max_calls=limits.max_calls)
        self.outbox = Outbox(stream, counters, on_fail=self._write_failed)
        self.calls: dict[int, ServerCall] = {}
        self.broken: str | None = None
        self._reset = False  # reset after the last write (the client may still be sending)
        self._stop_reading = False
        self._read_scope: trio.CancelScope | None = None
        self._nursery: trio.Nursery | None = None

    # -- called by the calls ----------------------------------------------------------------

    def call_ended(self, call: ServerCall) -> None:
        """``call``'s handler is done and its Status (if any) queued."""
        self.core.forget(call._state)
        if self.calls.get(call.call_id) is call:
            del self.calls[call.call_id]
        if self.core.shared is False:  # a single stream ends with its call
            self.outbox.close()
            if (
                call._state.client_state is Direction.OPEN or self.broken is not None
                or self.outbox.broken is not None
            ):
                self._reset = True
                self._stop()
                return
        if not self.calls and self._read_scope is not None:
            self._read_scope.deadline = trio.current_time() + self.limits.idle_timeout

    # -- the tasks ------------------------------------------------------------------------------

    async def run(self) -> None:
        try:
            async with trio.open_nursery() as writer:
                writer.start_soon(self.outbox.run)
                try:
                    async with trio.open_nursery() as nursery:
                        self._nursery = nursery
                        await self._read_loop()
                finally:
                    if self.broken is not None:
                        self.outbox.fail(self.broken)
                    else:
                        self.outbox.close()  # FIN once the last answers are written
        finally:
            with trio.CancelScope(shield=True):
                if not self.outbox.finished.is_set() or self.outbox.broken is not None:
                    self._reset = True
                    await self.outbox.flush_quietly()  # shutdown: the handlers' last Statuses
                if self._reset:
                    await reset_quietly(self.stream)

    def _write_failed(self, reason: str) -> None:
        """A write failed (the client stopped reading, or the stream died): the stream is
        done for every call on it."""
        self.counters["streams_broken"] += 1
        self._break(f"the stream broke: {reason}")
        self._stop()

    def _stop(self) -> None:
        self._stop_reading = True
        if self._read_scope is not None:
            self._read_scope.cancel()

    async def _read_loop(self) -> None:
        muxed = muxed_of(self.stream)
        deadline = trio.current_time() + self.limits.open_timeout
        while not self._stop_reading:
            with trio.CancelScope(deadline=deadline) as scope:
                self._read_scope = scope
                await self._read_until_end(muxed)
                return
            self._read_scope = None
            if self._stop_reading:
                return
            if self.calls:  # a call started just as the deadline passed
                deadline = math.inf
                continue
            if self.core.opened == 0:
                self.counters["open_failures"] += 1
            else:
                self.counters["streams_closed_idle"] += 1
            self._reset = True
            return

    async def _read_until_end(self, muxed: Any) -> None:
        core, counters = self.core, self.counters
        try:
            while True:
                if self.outbox.buffered > self.outbox.high_water:
                    await self.outbox.drain()
                while (event := core.next_event(trio.current_time())) is not None:
                    if isinstance(event, FrameReceived):
                        await self._deliver(event)
                    elif isinstance(event, CallOpened):
                        self._start(event)
                    elif isinstance(event, CallRefused):
                        counters["calls_refused"] += 1
                        counters["errors_sent"] += 1
                        self.outbox.put(event.data)
                    else:
                        self._call_failed(event)
                chunks = await read_chunks(muxed)
                if chunks is None:
                    for state in core.receive_eof():
                        call = self.calls.get(state.call_id or 0)
                        if call is not None:
                            call._client_gone("the client closed the stream before the call ended")
                    return
                for chunk in chunks:
                    counters["bytes_received"] += len(chunk)
                    core.receive_data(chunk)
        except StreamBroken as exc:
            if self.calls:
                counters["streams_broken"] += 1
            self._break(f"the stream broke: {exc}")
        except MessageTooLarge as exc:
            counters["too_large_received"] += 1
            self._reject_stream("message_too_large", str(exc))
        except RemoteProtocolError as exc:
            counters["protocol_errors"] += 1
            self._reject_stream("protocol_error", str(exc))

    def _start(self, event: CallOpened) -> None:
        self.counters["frames_received"] += 1
        self.counters["calls_served"] += 1
        call = ServerCall(self.peer, self, event.call, self.counters, self.limits.read_ahead)
        self.calls[call.call_id] = call
        if self._read_scope is not None:
            self._read_scope.deadline = math.inf
        assert self._nursery is not None
        self._nursery.start_soon(call._run, self.handler)

    async def _deliver(self, event: FrameReceived) -> None:
        self.counters["frames_received"] += 1
        call = self.calls.get(event.call.call_id or 0)
        if call is None:
            return
        frame = event.frame
        if isinstance(frame, Data):
            await call._deliver(frame.body)
        elif isinstance(frame, End):
            call._end_of_requests()
        elif isinstance(frame, Cancel):
            call._client_gone(f"the client cancelled: {frame.reason}")

    def _call_failed(self, event: CallFailed) -> None:
        key = "too_large_received" if event.code == "message_too_large" else "protocol_errors"
        self.counters[key] += 1
        call = self.calls.get(event.call.call_id or 0)
        if call is not None:
            call._reject(event.code, str(event.error))

    def _break(self, reason: str) -> None:
        if self.broken is None:
            self.broken = reason
        self._reset = True
        for call in list(self.calls.values()):
            call._client_gone(reason)

    def _reject_stream(self, code: str, message: str) -> None:
        """The client sent bytes we cannot frame or decode: tell it (as call 0), end every call
        on the stream, FIN and reset."""
        for call in list(self.calls.values()):
            call._client_gone(message)
        try:
            self.outbox.put(encode_frame(Status(code, message[:1000]), call_id=0))
            self.counters["errors_sent"] += 1
        except StreamBroken:
            pass
        self._reset = True

