"""The calls on one stream, for one side (sans-IO): :class:`StreamCore`.

Theory of operation. Every frame names its call (``call_id``), so one stream can carry many
calls; this core splits a stream's bytes into per-call frames, keeps one
:class:`~.call.RpcCall` per call in flight, and states which calls may share a stream. The
trio drivers (``client_conn.py``, ``server_conn.py``) only move bytes and run handlers.

Rules (``/micronetwork/rpc/1.1.0``):

* A stream is either *shared*, carrying unary calls only, any number of them, concurrently and
  one after another; or *single*, carrying exactly one call of another kind (server stream,
  client stream, bidi), which keeps the stream's flow control (the yamux window) to itself.
  The first Open decides. A non-unary Open on a shared stream, or a second Open on a single
  stream, is a protocol error for the whole stream.
* The client picks call ids; ours number the calls of a stream 1, 2, 3, ... An Open whose id
  is in flight on the stream is a protocol error for the whole stream.
* A call is forgotten once it is over (Status sent or received, or Cancel). A frame for a call
  id not in flight is dropped: it crossed our final frame on the wire, or followed the peer's
  (harmless: that call is gone on both sides).
* The server runs at most ``max_calls`` calls at once on a shared stream; an Open beyond that
  is answered at once with Status "overloaded" (our client never sends one: it opens another
  stream or waits).
* A frame that breaks one call's rules, or is over the size limit (the reader skips it), ends
  that call only: Status (server) or Cancel (client) "protocol_error" / "message_too_large".
  Bytes that cannot be framed or decoded end the whole stream.
* The end of the stream (the peer's FIN) is clean when no call is in flight; the calls still
  in flight then were abandoned. A shared stream is reusable exactly as long as it is neither
  ended nor broken; a call's own errors, cancellation or deadline do not touch it.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import LocalProtocolError, MessageTooLarge, RemoteProtocolError
from .call import Role, RpcCall
from .frame_reader import FrameReader
from .frames import (
    DEFAULT_MAX_MESSAGE_SIZE,
    Frame,
    Open,
    OversizedFrame,
    Status,
    encode_frame,
)

__all__ = ["CallFailed", "CallOpened", "CallRefused", "FrameReceived", "StreamCore"]

_OPEN_TYPE = 0


@dataclass(frozen=True, slots=True)
class CallOpened:
    """Server: a new call was accepted (its Open is in ``call.open``)."""

    call: RpcCall


@dataclass(frozen=True, slots=True)
class CallRefused:
    """Server: an Open was refused at once; write ``data`` (its Status)."""

    call_id: int
    data: bytes
    code: str


@dataclass(frozen=True, slots=True)
class FrameReceived:
    """A frame for a call in flight, already checked against the call's rules."""

    call: RpcCall
    frame: Frame


@dataclass(frozen=True, slots=True)
class CallFailed:
    """A frame for ``call`` broke its rules or was over the limit: end that call."""

    call: RpcCall
    error: MessageTooLarge | RemoteProtocolError

    @property
    def code(self) -> str:
        return "message_too_large" if isinstance(self.error, MessageTooLarge) else "protocol_error"


Event = CallOpened | CallRefused | FrameReceived | CallFailed


class StreamCore:
    """The calls on one stream as seen by ``role``."""

    __slots__ = (
        "role", "max_message_size", "max_calls", "shared", "calls", "opened", "eof",
        "_reader", "_next_id",
    )

    def __init__(
        self,
        role: Role,
        *,
        max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
        max_calls: int = 64,
    ) -> None:
        self.role = role
        self.max_message_size = max_message_size
        self.max_calls = max_calls
        self.shared: bool | None = None  # decided by the first Open
        self.calls: dict[int, RpcCall] = {}  # in flight
        self.opened = 0  # calls ever opened on this stream
        self.eof = False
        self._reader = FrameReader(max_message_size, skip_oversized=True)
        self._next_id = 1

    @property
    def idle(self) -> bool:
        return not self.calls

    def takes(self, kind: str) -> bool:
        """Client: may a call of ``kind`` go on this stream now?"""
        if self.eof:
            return False
        if self.shared is None:
            return True
        return self.shared and kind == "unary"

    # -- client ---------------------------------------------------------------------------------

    def next_call_id(self) -> int:
        return self._next_id

    def open_call(self, call: RpcCall, frame: Open) -> bytes:
        """Client: start ``call`` with ``frame`` (whose id is :meth:`next_call_id`); returns
        the Open's bytes. LocalProtocolError if the call may not go on this stream."""
        if self.role is not Role.CLIENT:
            raise LocalProtocolError("only the client opens calls")
        if not self.takes(frame.kind):
            raise LocalProtocolError(f"a {frame.kind} call may not go on this stream")
        if frame.call_id != self._next_id:
            raise LocalProtocolError(f"call id {frame.call_id} is not the stream's next")
        data = call.send(frame)
        self._next_id += 1
        self.shared = frame.kind == "unary"
        self.calls[frame.call_id] = call
        self.opened += 1
        return data

    # -- both sides -----------------------------------------------------------------------------

    def send(self, call: RpcCall, frame: Frame) -> bytes:
        """The bytes of ``frame`` for ``call`` (see :meth:`RpcCall.send`); a call that is over
        afterwards is forgotten."""
        data = call.send(frame)
        if call.over:
            self.forget(call)
        return data

    def forget(self, call: RpcCall) -> None:
        """Stop routing frames to ``call`` (it ended, or we gave up on it)."""
        call_id = call.call_id
        if call_id is not None and self.calls.get(call_id) is call:
            del self.calls[call_id]

    def receive_data(self, data: bytes | memoryview) -> None:
        self._reader.feed(data)

    def next_event(self, now: float) -> Event | None:
        """The next event from the bytes received; None when more are needed. Raises
        :class:`RemoteProtocolError` or :class:`MessageTooLarge` when the stream cannot go on
        (every call on it is then broken)."""
        while True:
            try:
                item = self._reader.next_item()
            except OversizedFrame as exc:
                event = self._oversized(exc)
                if event is None:
                    continue
                return event
            if item is None:
                return None
            call_id, frame = item
            if isinstance(frame, Open):
                return self._open(frame, now)
            call = self.calls.get(call_id)
            if call is None:
                if call_id >= self._next_id and self.role is Role.CLIENT:
                    raise RemoteProtocolError(f"a frame for call {call_id}, never opened")
                continue  # the call is over: this frame crossed or followed its end
            try:
                if not call.receive_frame(frame, now):
                    continue
            except RemoteProtocolError as exc:
                return CallFailed(call, exc)
            if call.over:
                self.forget(call)
            return FrameReceived(call, frame)

    def receive_eof(self) -> list[RpcCall]:
        """The peer closed its side. Returns the calls it abandoned (none: a clean end)."""
        if self._reader.buffered:
            raise RemoteProtocolError("the stream ended inside a frame")
        self.eof = True
        abandoned = list(self.calls.values())
        for call in abandoned:
            call.eof = True
        self.calls.clear()
        return abandoned

    # -- internals ------------------------------------------------------------------------------

    def _open(self, frame: Open, now: float) -> Event:
        if self.role is Role.CLIENT:
            raise RemoteProtocolError("the server sent an Open")
        unary = frame.kind == "unary"
        if frame.call_id in self.calls:
            raise RemoteProtocolError(f"call id {frame.call_id} is already in flight")
        if self.shared is None:
            self.shared = unary
        elif not self.shared:
            raise RemoteProtocolError("a second call on a single-call stream")
        elif not unary:
            raise RemoteProtocolError(f"a {frame.kind} call on a stream of unary calls")
        self.opened += 1
        call = RpcCall(Role.SERVER, max_message_size=self.max_message_size)
        call.receive_frame(frame, now)
        if len(self.calls) >= self.max_calls:
            status = Status("overloaded", f"more than {self.max_calls} calls on one stream")
            return CallRefused(frame.call_id, call.send(status), status.code)
        self.calls[frame.call_id] = call
        return CallOpened(call)

    def _oversized(self, exc: OversizedFrame) -> Event | None:
        call = self.calls.get(exc.call_id)
        if call is not None:
            return CallFailed(call, exc)
        if self.role is Role.SERVER and exc.frame_type == _OPEN_TYPE:
            status = Status("message_too_large", str(exc)[:1000])
            return CallRefused(exc.call_id, encode_frame(status, call_id=exc.call_id),
                               status.code)
        return None  # for a call that is over: dropped like any other frame

