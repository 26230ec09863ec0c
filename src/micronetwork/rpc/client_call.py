"""The caller's side of one RPC call (trio): :class:`ClientCall`.

Theory of operation. There is no task per call: ``send`` writes, ``receive`` reads, each under
the call's deadline. Frames that must follow each other go out in one write (the Open waits
for the first Data; in a unary or server-stream call the request waits for its End), so a
unary call is one write each way. Reads happen only in ``receive`` (or, when a write fails, to
pick up the Status the server sent before resetting), so the yamux window is the only
buffer between a fast server and a slow reader.

Ending. The server's Status ends the call: ``receive`` then raises ``trio.EndOfChannel``
(``async for`` stops) or the error the Status names. Whatever else ends it early - our
deadline, ``cancel()``, the calling task being cancelled, the ``async with`` block left
before the Status, a malformed or oversized frame from the server - sends Cancel, half-closes
and resets the stream, and the server's handler is cancelled. A stream that breaks or ends
before the Status raises :class:`CallCancelled`: a call never waits for something that cannot
come.
"""

from __future__ import annotations

import math
from collections import Counter, deque
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any, TypeVar

import trio

from ..errors import (
    CallCancelled,
    DeadlineExceeded,
    LocalProtocolError,
    MessageTooLarge,
    MicronetworkError,
    RemoteProtocolError,
)
from ..identity.peerid import PeerId
from ._io import (
    ABORT_TIMEOUT,
    StreamBroken,
    close_quietly,
    read_chunk,
    reset_quietly,
    status_error,
    write,
)
from .call import RpcCall
from .frames import Cancel, Data, End, Frame, Kind, Status

__all__ = ["ClientCall"]

T = TypeVar("T")
_ONE_REQUEST = ("unary", "server_stream")


class ClientCall:
    """One outgoing call; made by :meth:`RpcTransport.open_call`, used as ``async with``."""

    def __init__(
        self,
        peer: PeerId,
        stream: Any,
        state: RpcCall,
        open_bytes: bytes,
        counters: Counter[str],
    ) -> None:
        assert state.open is not None
        self.peer = peer
        self.service = state.open.service
        self.endpoint = state.open.endpoint
        self.kind: Kind = state.open.kind
        self.call_id = state.open.call_id
        self._stream = stream
        self._state = state
        self._counters = counters
        self._pending = bytearray(open_bytes)  # frames not yet written
        self._opened = False  # the Open has been written
        self._inbox: deque[Any] = deque()  # bodies read but not yet received
        self._send_lock = trio.Lock()
        self._recv_lock = trio.Lock()
        self._error: MicronetworkError | None = None  # the call ended on our side: why
        self._stream_done = False
        self._reads = 0

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
        self._pending += self._encode(Data(body))
        if self.kind not in _ONE_REQUEST:
            await self._guard(self._flush)

    async def end(self) -> None:
        """No more messages from us (half-close of our direction)."""
        self._raise_if_failed()
        if self._state.over:
            self._raise_if_status_error()
            return
        self._pending += self._encode(End())
        await self._guard(self._flush)

    async def receive(self) -> Any:
        """The next message from the server. At the end of its stream (Status "ok") raises
        ``trio.EndOfChannel``; a failed call raises :class:`RemoteError` (the handler's code),
        :class:`DeadlineExceeded`, :class:`MessageTooLarge` or :class:`CallCancelled`."""
        if self._inbox:
            await self._guard(trio.lowlevel.checkpoint_if_cancelled)
            return self._inbox.popleft()
        self._raise_if_failed()
        if self._pending:
            await self._guard(self._flush)
        while not self._inbox:
            if self._state.over:
                self._raise_if_status_error()
                raise trio.EndOfChannel
            await self._guard(self._read_more)
        return self._inbox.popleft()

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
        await self.end()
        response = await self.receive()
        try:
            await self.receive()
        except trio.EndOfChannel:
            return response
        raise RemoteProtocolError("more than one response to a unary call")  # pragma: no cover

    async def cancel(self, reason: str = "cancelled") -> None:
        """Abandon the call: the server is told (Cancel), the stream is reset, and the
        handler is cancelled. Later calls on this object raise :class:`CallCancelled`."""
        if self._state.over or self._error is not None:
            await self._finish_stream()
            return
        await self._abort(reason, CallCancelled(f"the call was cancelled: {reason}"))

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
            self._counters["streams_broken"] += 1
            raise await self._abort(
                None, CallCancelled(f"the stream to {self.peer} broke: {exc}")
            ) from None
        self._counters["deadline_exceeded"] += 1
        raise await self._abort(
            "deadline_exceeded",
            DeadlineExceeded(f"{self.service}.{self.endpoint} passed its deadline"),
        )

    async def _flush(self) -> None:
        async with self._send_lock:
            if not self._pending:
                return
            data = bytes(self._pending)
            self._pending.clear()
            try:
                await write(self._stream, data, self._counters)
                self._opened = True
            except StreamBroken:
                self._opened = True
                # The server may have answered and reset (it finished early, or our message
                # was over its limit): its Status is still buffered on our side.
                await self._salvage_status()
                if not self._state.over:
                    raise
            if self._state.over:
                await self._finish_stream()
                self._raise_if_status_error()

    async def _salvage_status(self) -> None:
        # py-libp2p's NetStream refuses reads once a write has failed (it marks itself
        # reset), but the yamux stream underneath still yields what arrived before the RST.
        muxed = getattr(self._stream, "muxed_stream", self._stream)
        with trio.move_on_after(ABORT_TIMEOUT):
            try:
                while not self._state.over:
                    await self._read_more(muxed)
            except (StreamBroken, CallCancelled):
                pass

    async def _read_more(self, source: Any = None) -> None:
        """Read once and queue what arrived; raise on a broken or malformed stream."""
        reads = self._reads
        async with self._recv_lock:
            if self._state.over or self._reads != reads:
                return  # another task read while we waited for the lock
            self._reads += 1
            chunk = await read_chunk(self._stream if source is None else source)
            if chunk is None:
                if not self._state.receive_eof():
                    raise StreamBroken("the server closed the stream before the call ended")
                return
            self._counters["bytes_received"] += len(chunk)
            self._state.receive_data(chunk)
            try:
                while (frame := self._state.next_frame(trio.current_time())) is not None:
                    self._counters["frames_received"] += 1
                    if isinstance(frame, Data):
                        self._inbox.append(frame.body)
                    elif isinstance(frame, Status):
                        if not frame.ok:
                            self._counters["errors_received"] += 1
            except MessageTooLarge as exc:
                self._counters["too_large_received"] += 1
                raise await self._abort("message_too_large", MessageTooLarge(str(exc))) from None
            except RemoteProtocolError as exc:
                self._counters["protocol_errors"] += 1
                raise await self._abort(
                    "protocol_error", RemoteProtocolError(str(exc))
                ) from None
            if self._state.over:
                await self._finish_stream()

    async def _abort(self, reason: str | None, error: MicronetworkError) -> MicronetworkError:
        """End the call on our side: Cancel (if the server has seen the Open), FIN, RST.
        Returns the error the call ended with (the first one, if it had already ended)."""
        if self._error is None:
            self._error = error
        if self._stream_done:
            return self._error
        self._stream_done = True
        with trio.CancelScope(shield=True, deadline=trio.current_time() + ABORT_TIMEOUT):
            if reason is not None and self._opened and not self._state.over:
                try:
                    data = self._encode(Cancel(reason[:200]))
                    if not self._send_lock.locked():  # never interleave with a blocked write
                        await write(self._stream, data, self._counters)
                        self._counters["cancels_sent"] += 1
                except (StreamBroken, LocalProtocolError):
                    pass
            await close_quietly(self._stream)
            await reset_quietly(self._stream)
        return self._error

    async def _finish_stream(self) -> None:
        """The call is over (Status received): half-close our side, which ends the stream."""
        if self._stream_done:
            return
        self._stream_done = True
        with trio.CancelScope(shield=True, deadline=trio.current_time() + ABORT_TIMEOUT):
            await close_quietly(self._stream)
