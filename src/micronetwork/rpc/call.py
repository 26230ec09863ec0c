"""The state of one RPC call, for either side (sans-IO, in the manner of h11).

Rules. A call is one stream; each side may send::

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
from .frames import (
    DEFAULT_MAX_MESSAGE_SIZE,
    Cancel,
    Data,
    End,
    Frame,
    FrameReader,
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


class Direction(enum.Enum):
    """The state of what one side has sent."""

    IDLE = "idle"
    OPEN = "open"
    ENDED = "ended"
    CANCELLED = "cancelled"
    CLOSED = "closed"


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
        "requests", "responses", "eof", "_states", "_reader",
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
        self._states = {Role.CLIENT: _IDLE, Role.SERVER: _IDLE}
        self._reader = FrameReader(max_message_size)

    # -- state ----------------------------------------------------------------------------------

    @property
    def peer_role(self) -> Role:
        return _S if self.role is _C else _C

    @property
    def our_state(self) -> Direction:
        return self._states[self.role]

    @property
    def their_state(self) -> Direction:
        return self._states[self.peer_role]

    @property
    def client_state(self) -> Direction:
        return self._states[_C]

    @property
    def server_state(self) -> Direction:
        return self._states[_S]

    @property
    def kind(self) -> Kind | None:
        return None if self.open is None else self.open.kind

    @property
    def over(self) -> bool:
        """The call has ended: the server sent its Status or the client cancelled."""
        return self._states[_S] is _CLOSED or self._states[_C] is _CANCELLED

    @property
    def cancelled(self) -> bool:
        return self._states[_C] is _CANCELLED

    @property
    def ended_by_us(self) -> bool:
        if self.role is _S:
            return self._states[_S] is _CLOSED
        return self._states[_C] is _CANCELLED

    def remaining(self, now: float) -> float | None:
        return None if self.deadline is None else self.deadline - now

    def remaining_ms(self, now: float) -> int | None:
        """What an Open sent at ``now`` carries as its deadline."""
        return deadline_ms(self.remaining(now))

    def expired(self, now: float) -> bool:
        return self.deadline is not None and now >= self.deadline

    # -- transitions ----------------------------------------------------------------------------

    def _check(self, sender: Role, frame: Frame, err: type[ProtocolError]) -> Direction:
        who = sender.value
        if self.over:
            raise err(f"{who} sent {type(frame).__name__} after the call ended")
        if sender is _S and self._states[_S] is _IDLE:
            raise err(f"the server sent {type(frame).__name__} before the call was opened")
        state = self._states[sender]
        new = _TRANSITIONS.get((sender, state, type(frame)))
        if new is None:
            raise err(f"{who} may not send {type(frame).__name__} after {state.value}")
        kind = self.kind
        if sender is _C:
            if isinstance(frame, Data) and kind in _ONE_REQUEST and self.requests >= 1:
                raise err(f"a {kind} call carries exactly one request")
            if isinstance(frame, End) and kind in _ONE_REQUEST and self.requests != 1:
                raise err(f"a {kind} call carries exactly one request, not {self.requests}")
        else:
            if isinstance(frame, Data) and kind in _ONE_RESPONSE and self.responses >= 1:
                raise err(f"a {kind} call carries exactly one response")
            if (
                isinstance(frame, Status) and frame.ok and kind in _ONE_RESPONSE
                and self.responses != 1
            ):
                raise err(
                    f"a {kind} call succeeds with exactly one response, not {self.responses}"
                )
        return new

    def _commit(self, sender: Role, frame: Frame, new: Direction, now: float | None) -> None:
        if isinstance(frame, Open):
            self.open = frame
            self._states[_S] = _OPEN
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
        self._states[sender] = new

    def send(self, frame: Frame) -> bytes:
        """Check that we may send ``frame`` now and return its bytes (length prefix included).

        Raises :class:`LocalProtocolError` (illegal here, or malformed) or
        :class:`~micronetwork.errors.MessageTooLarge`; the state is unchanged then.
        """
        new = self._check(self.role, frame, LocalProtocolError)
        data = encode_frame(frame, self.max_message_size)
        self._commit(self.role, frame, new, None)
        return data

    def receive_data(self, data: bytes) -> None:
        """Bytes read from the stream (use :meth:`receive_eof` for the end of the stream)."""
        self._reader.feed(data)

    def next_frame(self, now: float) -> Frame | None:
        """The next frame the peer sent, checked against the rules; None if more bytes are
        needed. Raises :class:`RemoteProtocolError` or
        :class:`~micronetwork.errors.MessageTooLarge` (the call cannot go on after either)."""
        while True:
            frame = self._reader.next_frame()
            if frame is None:
                return None
            if self.over and self.ended_by_us:
                continue  # it crossed our Status / Cancel on the wire
            new = self._check(self.peer_role, frame, RemoteProtocolError)
            self._commit(self.peer_role, frame, new, now)
            return frame

    def receive_eof(self) -> bool:
        """The peer closed its side of the stream. True if that was a clean end (the call was
        over); False if the peer abandoned the call."""
        if self._reader.buffered:
            raise RemoteProtocolError("the stream ended inside a frame")
        self.eof = True
        return self.over
