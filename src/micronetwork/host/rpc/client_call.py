"""The caller's side of one RPC call (trio): :class:`ClientCall`.

Theory of operation. There is no task per call: ``send`` queues frames on the call's stream
(:class:`~.client_conn.ClientStream`, whose writer sends them, together with other calls'
frames when several are queued at once) and ``receive`` waits for the frames the stream's
reader hands over, each wait under the call's deadline. Frames that must follow each other are
queued together (the Open waits for the first Data; in a unary or server-stream call the
request waits for its End), so a unary call is one write each way, often shared with other
calls.

Ending. The server's Status ends the call: ``receive`` then raises ``trio.EndOfChannel``
(``async for`` stops) or the error the Status names. Whatever else ends it early - our
deadline, ``cancel()``, the calling task being cancelled, the ``async with`` block left
before the Status, a malformed or oversized frame from the server - sends Cancel, and the
server's handler is cancelled. On a shared stream that is all (the stream goes on carrying
other calls; late frames of this one are dropped); a call on its own stream also half-closes
and resets it. A stream that breaks or ends before the Status raises :class:`CallCancelled`:
a call never waits for something that cannot come.
"""

from __future__ import annotations

import math
from collections import Counter, deque
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

import trio

from ...errors import (
    CallCancelled,
    DeadlineExceeded,
    LocalProtocolError,
    MicronetworkError,
    RemoteProtocolError,
)
from ...identity.peerid import PeerId
from ...rpc.call import RpcCall
from ...rpc.frames import END, Cancel, Data, Frame, Kind, Status
from ._io import ABORT_TIMEOUT, StreamBroken, status_error

if TYPE_CHECKING:
    from .client_conn import ClientStream

__all__ = ["ClientCall"]

T = TypeVar("T")
_ONE_REQUEST = ("unary", "server_stream")


class ClientCall:
    """One outgoing call; made by :meth:`RpcTransport.open_call`, used as ``async with``."""

    def __init__(
        self,
        peer: PeerId,
        conn: ClientStream,
        state: RpcCall,
        open_bytes: bytes,
        counters: Counter[str],
        release: Callable[[ClientStream], None] | None = None,
    ) -> None:
        assert state.open is not None
        self.peer = peer
        self.service = state.open.service
        self.endpoint = state.open.endpoint
        self.kind: Kind = state.open.kind
        self.call_id = state.open.call_id
        self._conn = conn
        self._state = state
        self._counters = counters
        self._release = release
        # frames not yet queued on the stream (queued together; a list: no copies)
        self._pending: list[bytes] = [open_bytes] if open_bytes else []
        self._opened = False  # the Open has been queued
        self._inbox: deque[Any] = deque()  # bodies read but not yet received
        self._event = trio.Event()  # set when a frame arrives or the stream breaks
        self._room: trio.Event | None = None  # the reader waits on it for inbox room
        self._error: MicronetworkError | None = None  # the call ended on our side: why
        self._broken: str | None = None  # the stream broke: why
        self._ended = False  # we are done with the stream (slot released)

    # -- public API -----------------------------------------------------------------------------

    @property
    def deadline(self) -> float | None:
        """The call's deadline on the trio clock, or None."""
        return self._state.deadline

    @property
    def status(self) -> Status | None:
        """The server's final Status once it has arrived."""
        return self._state.status

    @property
    def done(self) -> bool:
        return self._state.over or self._error is not None

    async def __aenter__(self) -> ClientCall:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._state.over or self._error is not None:
            await self._finish_stream()
        else:
            await self.cancel("the caller left the call" if exc is None else f"caller: {exc!r}")

    async def send(self, body: Any) -> None:
        """Send one message. Raises :class:`MessageTooLarge` before writing anything if the body
        is over the limit. After the server has answered "ok" (it stopped reading early), the
        message is dropped; after an error Status, that error is raised."""
        self._raise_if_failed()
        if self._state.over:
            self._raise_if_status_error()
            return
        self._pending.append(self._encode(Data(body)))
        if self.kind not in _ONE_REQUEST and not self._queue():
            await self._guard(self._flush)

    async def end(self) -> None:
        """No more messages from us (half-close of our direction)."""
        await self._end(drain=True)

    async def _end(self, *, drain: bool) -> None:
        self._raise_if_failed()
        if self._state.over:
            self._raise_if_status_error()
            return
        self._pending.append(self._encode(END))
        if not self._queue():
            outbox = self._conn.outbox
            if drain or outbox.broken is not None or outbox.closing or self._state.over:
                await self._guard(self._flush)

    async def receive(self) -> Any:
        """The next message from the server. At the end of its stream (Status "ok") raises
        ``trio.EndOfChannel``; a failed call raises :class:`RemoteError` (the handler's code),
        :class:`DeadlineExceeded`, :class:`MessageTooLarge` or :class:`CallCancelled`."""
        self._raise_if_failed()
        if self._inbox:
            try:
                await trio.lowlevel.checkpoint_if_cancelled()
            except trio.Cancelled:
                await self._abort("cancelled", CallCancelled("the calling task was cancelled"))
                raise
        else:
            if self._pending and not self._queue():
                await self._guard(self._flush)
            while not self._inbox:
                self._raise_if_failed()
                if self._state.over:
                    self._end_on_stream()
                    self._raise_if_status_error()
                    raise trio.EndOfChannel
                await self._guard(self._wait)
        body = self._inbox.popleft()
        if self._room is not None:
            self._room.set()
        return body

    def __aiter__(self) -> ClientCall:
        return self

    async def __anext__(self) -> Any:
        try:
            return await self.receive()
        except trio.EndOfChannel:
            raise StopAsyncIteration from None

    async def unary(self, body: Any) -> Any:
        """Send ``body``, end, and return the one response once the Status said "ok"."""
        await self.send(body)
        # Not waiting here for the queue to drain: the response cannot come before the
        # request is written, and receive() waits for it under the same deadline, with the
        # same errors (a failed write breaks the stream, which ends the wait).
        await self._end(drain=False)
        response = await self.receive()
        try:
            await self.receive()
        except trio.EndOfChannel:
            return response
        raise RemoteProtocolError("more than one response to a unary call")  # pragma: no cover

    async def cancel(self, reason: str = "cancelled") -> None:
        """Abandon the call: the server is told (Cancel) and the handler is cancelled (a call
        with a stream of its own also resets it). Later calls on this object raise
        :class:`CallCancelled`."""
        if self._state.over or self._error is not None:
            await self._finish_stream()
            return
        await self._abort(reason, CallCancelled(f"the call was cancelled: {reason}"))

    # -- called by the stream -------------------------------------------------------------------

    def _wake(self) -> None:
        self._event.set()

    async def _wait_room(self) -> None:
        while len(self._inbox) >= self._conn.read_ahead and not self._ended:
            self._room = trio.Event()
            await self._room.wait()

    def _stream_broken(self, reason: str) -> None:
        self._broken = reason
        self._event.set()
        if self._room is not None:
            self._room.set()

    def _fail(self, error: MicronetworkError) -> None:
        """The stream ended the call for us (an oversized or malformed frame; Cancel sent)."""
        if self._error is None:
            self._error = error
        self._end_on_stream()
        self._event.set()

    # -- internals ------------------------------------------------------------------------------

    def _encode(self, frame: Frame) -> bytes:
        data = self._state.send(frame)  # LocalProtocolError / MessageTooLarge: nothing sent
        self._counters["frames_sent"] += 1
        return data

    def _raise_if_failed(self) -> None:
        if self._error is not None:
            raise self._error

    def _raise_if_status_error(self) -> None:
        status = self._state.status
        if status is not None and not status.ok:
            raise status_error(status)
        if self._state.cancelled:
            raise CallCancelled("the call was cancelled")

    async def _guard(self, op: Callable[[], Awaitable[T]]) -> T:
        """Run one wait of the call under its deadline; convert how it can end."""
        deadline = self._state.deadline
        try:
            with trio.move_on_at(math.inf if deadline is None else deadline):
                return await op()
        except trio.Cancelled:
            await self._abort("cancelled", CallCancelled("the calling task was cancelled"))
            raise
        except StreamBroken as exc:
            self._counters["calls_broken"] += 1
            raise await self._abort(
                None, CallCancelled(f"the stream to {self.peer} broke: {exc}")
            ) from None
        self._counters["deadline_exceeded"] += 1
        raise await self._abort(
            "deadline_exceeded",
            DeadlineExceeded(f"{self.service}.{self.endpoint} passed its deadline"),
        )

    def _queue(self) -> bool:
        """Queue the pending frames if that needs no wait; False if :meth:`_flush` must run
        (the outbox is full, the stream broke, or the call is over)."""
        conn = self._conn
        outbox = conn.outbox
        if outbox.broken is not None or outbox.closing or self._state.over:
            return False
        if self._pending:
            outbox.put_many(self._pending)
            self._pending.clear()
            self._opened = True
        return outbox.buffered <= outbox.high_water

    async def _flush(self) -> None:
        conn = self._conn
        if self._pending:
            chunks, self._pending = self._pending, []
            try:
                conn.put_many(chunks)
            except StreamBroken:
                await self._salvage_status()
                if not self._state.over:
                    raise
            else:
                self._opened = True
        if conn.outbox.buffered > conn.outbox.high_water:
            try:
                await conn.outbox.drain()
            except StreamBroken:
                await self._salvage_status()
                if not self._state.over:
                    raise
        if self._state.over:
            self._end_on_stream()
            self._raise_if_status_error()

    async def _salvage_status(self) -> None:
        # The server may have answered and reset (it finished early, or our message was
        # over its limit): its Status may still be on its way to the reader.
        with trio.move_on_after(ABORT_TIMEOUT):
            await self._conn.done.wait()

    async def _wait(self) -> None:
        """Until the stream's reader hands us something (or the stream breaks)."""
        if self._broken is None:
            self._event = trio.Event()
            await self._event.wait()
        if self._broken is not None and not self._inbox and not self._state.over:
            if self._error is None:
                raise StreamBroken(self._broken)

    async def _abort(self, reason: str | None, error: MicronetworkError) -> MicronetworkError:
        """End the call on our side: Cancel (if the server has seen the Open); a call with a
        stream of its own also resets it. Returns the error the call ended with (the first
        one, if it had already ended)."""
        if self._error is None:
            self._error = error
        if self._ended:
            return self._error
        conn = self._conn
        data = b""
        if reason is not None and self._opened and not self._state.over:
            try:
                data = self._encode(Cancel(reason[:200]))
            except LocalProtocolError:
                pass
        if data:
            try:
                conn.put(data)
                self._counters["cancels_sent"] += 1
            except StreamBroken:
                pass
        self._end_on_stream()
        if conn.core.shared is False:  # the stream was the call's own: reset it
            await conn.abort(f"the call ended: {error}")
        return self._error

    def _end_on_stream(self) -> None:
        """We are done with the stream: stop routing frames to us, give back the slot."""
        if self._ended:
            return
        self._ended = True
        if self._room is not None:
            self._room.set()
        self._conn.call_ended(self)
        if self._release is not None:
            self._release(self._conn)

    async def _finish_stream(self) -> None:
        """The call is over (Status received, or ended by us)."""
        self._end_on_stream()
        await trio.lowlevel.checkpoint_if_cancelled()
