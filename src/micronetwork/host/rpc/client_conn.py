"""One outbound RPC stream and the calls on it (trio): :class:`ClientStream`.

Theory of operation. Two tasks per stream: the :class:`~._outbox.Outbox` writer, which sends
what every call on the stream has queued (together, when several calls queue at once), and a
reader that splits what arrives into per-call frames (:class:`~.stream.StreamCore`) and
hands them to the :class:`~.client_call.ClientCall` they belong to. A call's own task only
queues bytes and waits for its frames; it never reads or writes the stream itself.

Flow control. A shared stream carries unary calls only, whose one response each is taken in
as it arrives (bounded: one message per call, ``max_calls`` calls), so a caller that never
reads its answer holds up nobody. A single stream carries one streaming call; the reader
stops once ``read_ahead`` messages wait unread, and the yamux window then holds the server
back, for that call alone.

Ending. A shared stream lives on after its calls: it goes back to the pool
(:mod:`._pool`) and is closed (FIN) once idle for the pool's ``idle_timeout``. A single
stream is half-closed after its call. Either kind breaks on a reset, a FIN with calls in
flight, a frame that cannot be decoded or a failed write: every call on it then ends with
:class:`CallCancelled`, and a broken stream is never used again.
"""

from __future__ import annotations

import math
from collections import Counter
from typing import TYPE_CHECKING, Any

import trio

from ...errors import MessageTooLarge, MicronetworkError, RemoteProtocolError
from ...identity.peerid import PeerId
from ...rpc.call import Role
from ...rpc.frames import Cancel, Data, Status
from ...rpc.stream import CallFailed, FrameReceived, StreamCore
from .._streamio import muxed_of
from ._io import ABORT_TIMEOUT, StreamBroken, read_chunks, reset_quietly
from ._outbox import Outbox

if TYPE_CHECKING:
    from .client_call import ClientCall

__all__ = ["ClientStream"]


class ClientStream:
    """An outbound stream: shared (unary calls) or single (one streaming call)."""

    def __init__(
        self,
        peer: PeerId,
        stream: Any,
        *,
        max_message_size: int,
        max_calls: int,
        read_ahead: int,
        counters: Counter[str],
    ) -> None:
        self.peer = peer
        self.stream = stream
        self.core = StreamCore(Role.CLIENT, max_message_size=max_message_size,
                               max_calls=max_calls)
        self.outbox = Outbox(stream, counters, on_fail=self._write_failed)
        self.read_ahead = max(1, read_ahead)
        self.counters = counters
        self.calls: dict[int, ClientCall] = {}
        self.load = 0  # calls holding a slot here (given out by the pool, not yet released)
        self.idle_since: float | None = None
        self.broken: str | None = None
        self.closing = False  # no new calls: idle-closed, or its one call ended
        self.done = trio.Event()  # the reader has stopped: no more frames will come
        self._read_scope: trio.CancelScope | None = None
        self._on_done: list[Any] = []

    @property
    def usable(self) -> bool:
        return self.broken is None and not self.closing and not self.core.eof

    def add(self, call: ClientCall) -> None:
        self.calls[call.call_id] = call

    def on_done(self, callback: Any) -> None:
        self._on_done.append(callback)

    # -- slots (the pool's bookkeeping) ---------------------------------------------------------

    def take_slot(self) -> None:
        self.load += 1
        self.idle_since = None
        if self._read_scope is not None and not self.closing:
            self._read_scope.deadline = math.inf

    def release_slot(self, idle_deadline: float) -> None:
        self.load -= 1
        if self.load == 0:
            self.idle_since = trio.current_time()
            if self._read_scope is not None and not self.closing:
                self._read_scope.deadline = idle_deadline

    # -- calls ----------------------------------------------------------------------------------

    def put(self, data: bytes) -> None:
        self.outbox.put(data)

    def put_many(self, chunks: list[bytes]) -> None:
        self.outbox.put_many(chunks)

    def call_ended(self, call: ClientCall) -> None:
        """``call`` is over or given up: no more frames go to it."""
        self.core.forget(call._state)
        if self.calls.get(call.call_id) is call:
            del self.calls[call.call_id]
        if self.core.shared is False:  # a single stream ends with its call
            self.finish()

    def finish(self) -> None:
        """No more calls: FIN after what is queued, and give the server a moment to FIN."""
        if self.closing:
            return
        self.closing = True
        self.outbox.close()
        if self._read_scope is not None:
            self._read_scope.deadline = trio.current_time() + ABORT_TIMEOUT

    async def abort(self, reason: str) -> None:
        """Break the stream: write what is queued (briefly), FIN, RST."""
        self.closing = True
        with trio.CancelScope(shield=True, deadline=trio.current_time() + ABORT_TIMEOUT):
            self.outbox.close()
            await self.outbox.finished.wait()
        self._break(reason)
        await reset_quietly(self.stream)

    # -- the tasks ------------------------------------------------------------------------------

    async def run(self, idle_deadline: float = math.inf) -> None:
        """Write and read until the stream ends; then reset it if it did not end cleanly."""
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self.outbox.run)
                await self._read_loop(idle_deadline)
                if self.broken is not None or not self.outbox.finished.is_set():
                    nursery.cancel_scope.cancel()
        finally:
            if self.broken is None and not (self.core.eof and self.outbox.finished.is_set()):
                self._break("the stream was closed")
            if self.broken is not None:
                with trio.CancelScope(shield=True):
                    await reset_quietly(self.stream)
            self.done.set()
            for callback in self._on_done:
                callback(self)

    async def _read_loop(self, deadline: float) -> None:
        """Read until the stream ends; close it when idle (no call holds a slot) too long."""
        muxed = muxed_of(self.stream)
        while True:
            with trio.CancelScope(deadline=deadline) as scope:
                self._read_scope = scope
                await self._read_until_end(muxed)
                return
            self._read_scope = None
            if self.broken is not None:
                return
            if self.closing:
                self._break("the server did not end the stream in time")
                return
            if self.load:  # a call took the stream just as it went idle
                deadline = math.inf
                continue
            self.counters["streams_closed_idle"] += 1
            self.finish()
            deadline = trio.current_time() + ABORT_TIMEOUT

    async def _read_until_end(self, muxed: Any) -> None:
        core, counters = self.core, self.counters
        try:
            while True:
                while (event := core.next_event(trio.current_time())) is not None:
                    if isinstance(event, FrameReceived):
                        await self._deliver(event)
                    elif isinstance(event, CallFailed):
                        self._call_failed(event)
                chunks = await read_chunks(muxed)
                if chunks is None:
                    if core.receive_eof():
                        self._break("the server closed the stream before the call ended")
                    else:
                        self.finish()  # we FIN too; calls not yet written fail at once
                    return
                for chunk in chunks:
                    counters["bytes_received"] += len(chunk)
                    core.receive_data(chunk)
        except StreamBroken as exc:
            counters["streams_broken"] += 1
            self._break(f"the stream to {self.peer} broke: {exc}")
        except (RemoteProtocolError, MessageTooLarge) as exc:
            counters["protocol_errors"] += 1
            self._break(f"the server broke the protocol: {exc}")

    async def _deliver(self, event: FrameReceived) -> None:
        counters = self.counters
        counters["frames_received"] += 1
        frame = event.frame
        call = self.calls.get(event.call.call_id or 0)
        if call is None:
            return
        if isinstance(frame, Data):
            call._inbox.append(frame.body)
        elif isinstance(frame, Status) and not frame.ok:
            counters["errors_received"] += 1
        call._wake()
        if event.call.over:
            del self.calls[call.call_id]
            if self.core.shared is False:
                self.finish()
        elif len(call._inbox) >= self.read_ahead and isinstance(frame, Data):
            await call._wait_room()  # the caller is behind: stop reading (single stream)

    def _call_failed(self, event: CallFailed) -> None:
        call = self.calls.pop(event.call.call_id or 0, None)
        key = "too_large_received" if event.code == "message_too_large" else "protocol_errors"
        self.counters[key] += 1
        data = b""
        try:
            data = self.core.send(event.call, Cancel(event.code))
        except Exception:  # the call may be past sending a Cancel
            self.core.forget(event.call)
        if data and self.broken is None:
            self.counters["cancels_sent"] += 1
            self.outbox.put(data)
        if call is not None:
            error: MicronetworkError = (
                MessageTooLarge(str(event.error)) if event.code == "message_too_large"
                else RemoteProtocolError(str(event.error))
            )
            call._fail(error)
        if self.core.shared is False:
            self.finish()

    def _write_failed(self, reason: str) -> None:
        self._break(f"the stream to {self.peer} broke: {reason}")
        if self._read_scope is not None:
            self._read_scope.cancel()

    def _break(self, reason: str) -> None:
        if self.broken is not None:
            return
        self.broken = reason
        self.outbox.fail(reason)
        calls = list(self.calls.values())
        self.calls.clear()
        for call in calls:
            call._stream_broken(reason)
