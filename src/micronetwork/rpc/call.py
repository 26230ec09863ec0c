"""The state of one RPC call, for either side (sans-IO, in the manner of h11).

Rules. Each side of a call may send (every frame names the call by its id, so a stream can
carry several calls; which calls may share a stream is :mod:`.stream`'s business)::

    client -> server:   Open  Data*  End             and, at any point after Open, Cancel
    server -> client:   Data*  [End]  Status

One state per direction, moved only by this table (anything not in it is illegal)::

    sender  state   frame   -> state
    client  IDLE    Open    -> OPEN        (the server direction becomes OPEN too)
    client  OPEN    Data    -> OPEN
    client  OPEN    End     -> ENDED
    client  OPEN    Cancel  -> CANCELLED
    client  ENDED   Cancel  -> CANCELLED
    server  OPEN    Data    -> OPEN
    server  OPEN    End     -> ENDED       (optional: "no more Data", the Status follows)
    server  OPEN    Status  -> CLOSED
    server  ENDED   Status  -> CLOSED

* The kind bounds the Data frames. unary and server_stream: exactly one request (End after
  zero, or a second Data, is illegal). unary and client_stream: at most one response, and a
  Status "ok" needs exactly one (an error Status may come after none).
* The call is over once the server direction is CLOSED (Status) or the client direction
  CANCELLED. A frame that arrives after *we* ended the call crossed ours on the wire and is
  dropped; one that arrives after the *peer* ended it is a :class:`RemoteProtocolError`;
  whatever we try to send then is a :class:`LocalProtocolError`.
* End of stream (the peer's FIN) is clean only once the call is over. Each side keeps its
  write half open until then (End, not FIN, is the half-close), so a FIN before the Status
  means the peer abandoned the call: py-libp2p also reports a dead connection as a FIN.
* Time is passed in. The client sets ``deadline`` on its own clock; Open carries the remaining
  milliseconds; the server's deadline is its ``now`` when the Open arrived plus that.
"""

from __future__ import annotations

import enum

from ..errors import LocalProtocolError, ProtocolError, RemoteProtocolError
from .frame_reader import FrameReader
from .frames import (
    DEFAULT_MAX_MESSAGE_SIZE,
    Cancel,
    Data,
    End,
    Frame,
    Kind,
    Open,
    Status,
    deadline_ms,
    encode_frame,
)

__all__ = ["Direction", "Role", "RpcCall"]


class Role(enum.Enum):
    CLIENT = "client"
    SERVER = "server"

    __hash__ = object.__hash__  # members are singletons; Enum's own hash is slow Python


class Direction(enum.Enum):
    """The state of what one side has sent."""

    IDLE = "idle"
    OPEN = "open"
    ENDED = "ended"
    CANCELLED = "cancelled"
    CLOSED = "closed"

    __hash__ = object.__hash__


_C, _S = Role.CLIENT, Role.SERVER
_IDLE, _OPEN, _ENDED = Direction.IDLE, Direction.OPEN, Direction.ENDED
_CANCELLED, _CLOSED = Direction.CANCELLED, Direction.CLOSED

_TRANSITIONS: dict[tuple[Role, Direction, type[Frame]], Direction] = {
    (_C, _IDLE, Open): _OPEN,
    (_C, _OPEN, Data): _OPEN,
    (_C, _OPEN, End): _ENDED,
    (_C, _OPEN, Cancel): _CANCELLED,
    (_C, _ENDED, Cancel): _CANCELLED,
    (_S, _OPEN, Data): _OPEN,
    (_S, _OPEN, End): _ENDED,
    (_S, _OPEN, Status): _CLOSED,
    (_S, _ENDED, Status): _CLOSED,
}

_ONE_REQUEST: frozenset[str] = frozenset({"unary", "server_stream"})
_ONE_RESPONSE: frozenset[str] = frozenset({"unary", "client_stream"})


class RpcCall:
    """One call as seen by ``role``: ``send(frame)`` gives the bytes to write; received bytes go
    to ``receive_data`` and come out of ``next_frame(now)`` as checked frames."""

    __slots__ = (
        "role", "max_message_size", "deadline", "open", "status", "cancel_reason",
        "requests", "responses", "eof", "_client", "_server", "_reader_",
    )

    def __init__(
        self,
        role: Role,
        *,
        max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
        deadline: float | None = None,
    ) -> None:
        self.role = role
        self.max_message_size = max_message_size
        self.deadline = deadline  # client: set by the caller; server: from the Open
        self.open: Open | None = None
        self.status: Status | None = None
        self.cancel_reason: str | None = None
        self.requests = 0  # Data frames the client sent
        self.responses = 0  # Data frames the server sent
        self.eof = False
        self._client = _IDLE  # what the client has sent
        self._server = _IDLE  # what the server has sent
        self._reader_: FrameReader | None = None  # made when bytes are fed to the call itself

    # -- state ----------------------------------------------------------------------------------

    @property
    def peer_role(self) -> Role:
        return _S if self.role is _C else _C

    @property
    def our_state(self) -> Direction:
        return self._client if self.role is _C else self._server

    @property
    def their_state(self) -> Direction:
        return self._server if self.role is _C else self._client

    @property
    def client_state(self) -> Direction:
        return self._client

    @property
    def server_state(self) -> Direction:
        return self._server

    @property
    def _reader(self) -> FrameReader:
        if self._reader_ is None:
            self._reader_ = FrameReader(self.max_message_size)
        return self._reader_

    @property
    def call_id(self) -> int | None:
        return None if self.open is None else self.open.call_id

    @property
    def kind(self) -> Kind | None:
        return None if self.open is None else self.open.kind

    @property
    def over(self) -> bool:
        """The call has ended: the server sent its Status or the client cancelled."""
        return self._server is _CLOSED or self._client is _CANCELLED

    @property
    def cancelled(self) -> bool:
        return self._client is _CANCELLED

    @property
    def ended_by_us(self) -> bool:
        if self.role is _S:
            return self._server is _CLOSED
        return self._client is _CANCELLED

    def remaining(self, now: float) -> float | None:
        return None if self.deadline is None else self.deadline - now

    def remaining_ms(self, now: float) -> int | None:
        """What an Open sent at ``now`` carries as its deadline."""
        return deadline_ms(self.remaining(now))

    def expired(self, now: float) -> bool:
        return self.deadline is not None and now >= self.deadline

    # -- transitions ----------------------------------------------------------------------------

    def _check(self, sender: Role, frame: Frame, err: type[ProtocolError]) -> Direction:
        server = self._server
        ftype = type(frame)
        if server is _CLOSED or self._client is _CANCELLED:
            raise err(f"{sender.value} sent {ftype.__name__} after the call ended")
        if sender is _S and server is _IDLE:
            raise err(f"the server sent {ftype.__name__} before the call was opened")
        state = self._client if sender is _C else server
        new = _TRANSITIONS.get((sender, state, ftype))
        if new is None:
            raise err(f"{sender.value} may not send {ftype.__name__} after {state.value}")
        if ftype is Open:
            return new
        kind = self.open.kind if self.open is not None else None
        if sender is _C:
            if kind in _ONE_REQUEST:
                if ftype is Data and self.requests >= 1:
                    raise err(f"a {kind} call carries exactly one request")
                if ftype is End and self.requests != 1:
                    raise err(f"a {kind} call carries exactly one request, not {self.requests}")
        elif kind in _ONE_RESPONSE:
            if ftype is Data and self.responses >= 1:
                raise err(f"a {kind} call carries exactly one response")
            if ftype is Status and frame.ok and self.responses != 1:  # type: ignore[union-attr]
                raise err(
                    f"a {kind} call succeeds with exactly one response, not {self.responses}"
                )
        return new

    def _commit(self, sender: Role, frame: Frame, new: Direction, now: float | None) -> None:
        if isinstance(frame, Open):
            self.open = frame
            self._server = _OPEN
            if self.role is _S and frame.deadline_ms is not None:
                if now is None:
                    raise LocalProtocolError("receiving an Open needs `now`")
                self.deadline = now + frame.deadline_ms / 1000
        elif isinstance(frame, Data):
            if sender is _C:
                self.requests += 1
            else:
                self.responses += 1
        elif isinstance(frame, Status):
            self.status = frame
        elif isinstance(frame, Cancel):
            self.cancel_reason = frame.reason
        if sender is _C:
            self._client = new
        else:
            self._server = new

    def send(self, frame: Frame) -> bytes:
        """Check that we may send ``frame`` now and return its bytes (length prefix included).

        Raises :class:`LocalProtocolError` (illegal here, or malformed) or
        :class:`~micronetwork.errors.MessageTooLarge`; the state is unchanged then.
        """
        new = self._check(self.role, frame, LocalProtocolError)
        open_ = self.open
        data = encode_frame(
            frame, self.max_message_size, None if open_ is None else open_.call_id
        )
        self._commit(self.role, frame, new, None)
        return data

    def receive_frame(self, frame: Frame, now: float) -> bool:
        """A frame the peer sent for this call (split off the stream by :mod:`.stream`):
        checked against the rules and applied. False if it was dropped (it crossed our own
        final frame). Raises :class:`RemoteProtocolError` if it breaks the rules."""
        peer = _S if self.role is _C else _C
        if (self._client is _CANCELLED) if peer is _S else (self._server is _CLOSED):
            return False  # it crossed our Status / Cancel on the wire
        new = self._check(peer, frame, RemoteProtocolError)
        self._commit(peer, frame, new, now)
        return True

    def receive_data(self, data: bytes) -> None:
        """Bytes read from the stream (use :meth:`receive_eof` for the end of the stream)."""
        self._reader.feed(data)

    def next_frame(self, now: float) -> Frame | None:
        """The next frame the peer sent, checked against the rules; None if more bytes are
        needed. Raises :class:`RemoteProtocolError` or
        :class:`~micronetwork.errors.MessageTooLarge` (the call cannot go on after either)."""
        while True:
            item = self._reader.next_item()
            if item is None:
                return None
            call_id, frame = item
            if self.open is not None and call_id != self.open.call_id:
                raise RemoteProtocolError(
                    f"a frame for call {call_id} on call {self.open.call_id}"
                )
            if self.receive_frame(frame, now):  # else it crossed our Status / Cancel
                return frame

    def receive_eof(self) -> bool:
        """The peer closed its side of the stream. True if that was a clean end (the call was
        over); False if the peer abandoned the call."""
        if self._reader.buffered:
            raise RemoteProtocolError("the stream ended inside a frame")
        self.eof = True
        return self.over
