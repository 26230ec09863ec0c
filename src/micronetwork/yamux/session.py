"""The yamux session as a sans-IO state machine (hashicorp/yamux spec.md, as libp2p uses it).

Bytes in (:meth:`YamuxSession.receive`) give events; the application's actions (open, send,
consume, close, reset, ping, go away) queue frames; :meth:`YamuxSession.take_output` hands
the bytes to write. No clock, no I/O, no locks: the trio driver in ``host/muxer.py`` owns
those.

Frame header (12 bytes, big endian): version (0), type, flags, stream id, length.
Types: DATA (length = payload bytes that follow), WINDOW_UPDATE (length = credit added),
PING (length = opaque value), GO_AWAY (length = error code). Flags: SYN opens a stream,
ACK accepts it, FIN half-closes, RST resets. Each stream starts with 256 KiB of credit in
each direction; a receiver grants more with WINDOW_UPDATE as the application consumes data.
The dialer's streams have odd ids, the listener's even ones.

Credit policy: the receiver returns consumed bytes once they reach half the window (as
go-yamux does), so a steady stream costs one WINDOW_UPDATE per 128 KiB, not one per read.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass

from ..errors import RemoteProtocolError

__all__ = [
    "ACK",
    "DATA",
    "FIN",
    "GO_AWAY",
    "HEADER",
    "INITIAL_WINDOW",
    "PING",
    "RST",
    "SYN",
    "WINDOW_UPDATE",
    "GoAway",
    "Pong",
    "StreamData",
    "StreamEnded",
    "StreamOpened",
    "StreamReset",
    "WindowOpened",
    "YamuxEvent",
    "YamuxSession",
]

HEADER = struct.Struct(">BBHII")
HEADER_SIZE = HEADER.size
DATA, WINDOW_UPDATE, PING, GO_AWAY = 0, 1, 2, 3
SYN, ACK, FIN, RST = 1, 2, 4, 8
INITIAL_WINDOW = 256 * 1024
MAX_FRAME_DATA = 65519 - HEADER_SIZE  # one frame fits one Noise message (64 KiB - 17)
GO_AWAY_NORMAL, GO_AWAY_PROTOCOL_ERROR = 0, 1
_SMALL = 4096  # received bytes appended to an unfinished frame at once, not just what it lacks
# Bodies at least this large stay views of the bytes received (no copy); smaller ones are
# copied, so that a little unread data never holds a whole large message in memory (a view
# holds all of what it views: at most twice its size from here on, as messages are < 64 KiB).
_VIEW_MIN = 32 * 1024


@dataclass(frozen=True, slots=True)
class StreamOpened:
    """The peer opened stream ``stream_id`` (SYN)."""

    stream_id: int


@dataclass(frozen=True, slots=True)
class StreamData:
    """Bytes of a stream: a large body is a view of the bytes given to
    :meth:`YamuxSession.receive` when those were ``bytes`` (immutable: no copy is made),
    anything else a copy."""

    stream_id: int
    data: bytes | memoryview


@dataclass(frozen=True, slots=True)
class StreamEnded:
    """The peer half-closed (FIN): no more data will come on this stream."""

    stream_id: int


@dataclass(frozen=True, slots=True)
class StreamReset:
    stream_id: int


@dataclass(frozen=True, slots=True)
class WindowOpened:
    """The peer granted credit on a stream: writes waiting for it can go on."""

    stream_id: int


@dataclass(frozen=True, slots=True)
class Pong:
    value: int


@dataclass(frozen=True, slots=True)
class GoAway:
    code: int


YamuxEvent = StreamOpened | StreamData | StreamEnded | StreamReset | WindowOpened | Pong | GoAway


def _immutable(data: bytes | memoryview) -> bytes | memoryview:
    """``data`` if nobody can change it (bytes, a view of bytes), else a copy."""
    if type(data) is bytes or (type(data) is memoryview and type(data.obj) is bytes):
        return data
    return bytes(data)


class _Stream:
    __slots__ = ("consumed", "recv_credit", "recv_closed", "send_closed", "send_credit")

    def __init__(self, window: int) -> None:
        self.send_credit = INITIAL_WINDOW  # what we may still send
        self.recv_credit = window  # what the peer may still send us
        self.consumed = 0  # read by the application, not yet returned as credit
        self.send_closed = False
        self.recv_closed = False


class YamuxSession:
    """One yamux connection's protocol state.

    ``window`` is the receive window per stream (at least the spec's 256 KiB; more is
    announced with the SYN/ACK). ``max_streams`` bounds the streams open at once: a SYN
    beyond it is answered with RST.
    """

    def __init__(self, *, is_initiator: bool, window: int = INITIAL_WINDOW,
                 max_streams: int = 1024) -> None:
        if window < INITIAL_WINDOW:
            raise ValueError(f"the yamux window is at least {INITIAL_WINDOW} bytes")
        self.is_initiator = is_initiator
        self.window = window
        self.max_streams = max_streams
        self._next_id = 1 if is_initiator else 2
        self._streams: dict[int, _Stream] = {}
        # queued output: frame headers and bodies as they were given (views of immutable
        # bytes), joined only where they are written (one copy, into each Noise message)
        self._out: list[bytes | memoryview] = []
        self._out_size = 0
        self._in = bytearray()
        self._ping_id = 0
        self.local_go_away = False
        self.remote_go_away = False
        self.frames_in = 0
        self.frames_out = 0

    # -- the application's side -----------------------------------------------------------

    def open_stream(self) -> int:
        """A new outbound stream's id; its SYN is queued."""
        if self.remote_go_away or self.local_go_away:
            raise RemoteProtocolError("the yamux session is going away")
        sid = self._next_id
        if sid > 0xFFFFFFFF:
            raise RemoteProtocolError("yamux stream ids are exhausted on this connection")
        self._next_id += 2
        self._streams[sid] = _Stream(self.window)
        self._frame(WINDOW_UPDATE, SYN, sid, self.window - INITIAL_WINDOW)
        return sid

    def send_credit(self, stream_id: int) -> int:
        st = self._streams.get(stream_id)
        return 0 if st is None else st.send_credit

    def send(self, stream_id: int, data: bytes | memoryview) -> int:
        """Queue as much of ``data`` as the peer's window allows; how many bytes that was.
        Zero means: wait for :class:`WindowOpened`."""
        return self.send_parts(stream_id, (data,))

    def send_parts(self, stream_id: int, parts: Sequence[bytes | memoryview]) -> int:
        """:meth:`send` of ``parts`` as one byte string, without joining them: frames are cut
        from it as from one (each up to ``MAX_FRAME_DATA``) and queued as views of the parts.
        Parts that are views of mutable buffers (or bytearrays) are copied first: the caller
        may change them."""
        st = self._live(stream_id)
        if st.send_closed:
            raise RemoteProtocolError(f"yamux stream {stream_id} is closed for sending")
        total = sum(map(len, parts))
        left = n = min(total, st.send_credit)
        if not n:
            return 0
        out = self._out
        if n == total and n <= MAX_FRAME_DATA:  # one frame of whole parts (small writes)
            out.append(HEADER.pack(0, DATA, 0, stream_id, n))
            for p in parts:
                if type(p) is bytes:
                    out.append(p)
                elif p:
                    out.append(_immutable(p))
            self.frames_out += 1
            self._out_size += n + HEADER_SIZE
            st.send_credit -= n
            return n
        i = off = 0  # the part being queued, and how far
        part = _immutable(parts[0])
        while left:
            size = min(left, MAX_FRAME_DATA)
            out.append(HEADER.pack(0, DATA, 0, stream_id, size))
            self.frames_out += 1
            left -= size
            while size:
                have = len(part) - off
                if not have:
                    i, off = i + 1, 0
                    part = _immutable(parts[i])
                    continue
                take = min(have, size)
                if take == len(part):
                    out.append(part)
                else:
                    if type(part) is bytes:
                        part = memoryview(part)  # slices of it are views, not copies
                    out.append(part[off:off + take])
                off += take
                size -= take
        self._out_size += n + HEADER_SIZE * ((n + MAX_FRAME_DATA - 1) // MAX_FRAME_DATA)
        st.send_credit -= n
        return n

    def consumed(self, stream_id: int, n: int) -> None:
        """The application read ``n`` bytes of the stream: give the credit back once it
        reaches half the window."""
        st = self._streams.get(stream_id)
        if st is None or st.recv_closed:
            return
        st.consumed += n
        if st.consumed >= self.window // 2:
            self._frame(WINDOW_UPDATE, 0, stream_id, st.consumed)
            st.recv_credit += st.consumed
            st.consumed = 0

    def close_stream(self, stream_id: int) -> bool:
        """Half-close (FIN). True when the stream is now closed both ways (forgotten)."""
        st = self._streams.get(stream_id)
        if st is None or st.send_closed:
            return st is None
        st.send_closed = True
        self._frame(WINDOW_UPDATE, FIN, stream_id, 0)
        return self._forget_if_done(stream_id, st)

    def reset_stream(self, stream_id: int) -> None:
        if self._streams.pop(stream_id, None) is not None:
            self._frame(WINDOW_UPDATE, RST, stream_id, 0)

    def ping(self) -> int:
        self._ping_id = (self._ping_id + 1) & 0xFFFFFFFF
        self._frame(PING, SYN, 0, self._ping_id)
        return self._ping_id

    def go_away(self, code: int = GO_AWAY_NORMAL) -> None:
        if not self.local_go_away:
            self.local_go_away = True
            self._frame(GO_AWAY, 0, 0, code)

    def take_output(self) -> bytes:
        """Everything queued, as one bytes (joined: a copy)."""
        return b"".join(self.take_output_parts())

    def take_output_parts(self) -> list[bytes | memoryview]:
        """:meth:`take_output` without the join: the queued pieces (frame headers, and
        bodies that are the senders' bytes or views of them), in order."""
        out, self._out = self._out, []
        self._out_size = 0
        return out

    @property
    def output_size(self) -> int:
        return self._out_size

    @property
    def open_streams(self) -> int:
        return len(self._streams)

    def is_open(self, stream_id: int) -> bool:
        return stream_id in self._streams

    # -- the peer's side -------------------------------------------------------------------

    def receive(self, data: bytes | memoryview) -> list[YamuxEvent]:
        """Feed bytes read from the connection; the events they complete, in order.
        Raises :class:`RemoteProtocolError` on a violation (the connection must close;
        a GO_AWAY with the protocol-error code is queued)."""
        # Frames are read from ``data`` itself: a frame begun in an earlier call is completed
        # in ``_in`` with only the bytes it lacks; a body is copied once (out of a view); an
        # unfinished frame at the end is kept in ``_in``.
        buf = self._in
        events: list[YamuxEvent] = []
        pos, end = 0, len(data)
        if buf and end < self._lacking(buf):  # still not a whole frame
            buf += data
            return events
        try:
            if buf and end <= _SMALL:  # copying a little is cheaper
                buf += data
                del buf[:self._parse(buf, 0, events)]
                return events
            if buf:
                with memoryview(data) as view:
                    while pos < end and (lack := self._lacking(buf)):
                        take = min(lack, end - pos)
                        buf += view[pos:pos + take]
                        pos += take
                if self._lacking(buf):
                    return events
                self._parse(buf, 0, events)
                buf.clear()
            done = self._parse(data, pos, events)
            if done < end:
                buf += memoryview(data)[done:]
        except RemoteProtocolError:
            self.go_away(GO_AWAY_PROTOCOL_ERROR)
            raise
        return events

    @staticmethod
    def _lacking(buf: bytearray) -> int:
        """Bytes the frame begun in ``buf`` still lacks (0: it is whole)."""
        have = len(buf)
        if have < HEADER_SIZE:
            return HEADER_SIZE - have
        if buf[1] != DATA:
            return 0
        return HEADER_SIZE + int.from_bytes(buf[8:12], "big") - have

    def _parse(self, src: bytes | bytearray | memoryview, pos: int,
               events: list[YamuxEvent]) -> int:
        """Handle the whole frames in ``src`` from ``pos``; where the first unfinished one
        starts."""
        end = len(src)
        keep = type(src) is bytes  # bodies may stay views of it
        with memoryview(src) as view:
            while end - pos >= HEADER_SIZE:
                version, typ, flags, sid, length = HEADER.unpack_from(src, pos)
                if version != 0:
                    raise RemoteProtocolError(f"yamux version {version} is not supported")
                if typ == DATA:
                    if end - pos - HEADER_SIZE < length:
                        break
                    body: bytes | memoryview = view[pos + HEADER_SIZE:pos + HEADER_SIZE + length]
                    if not keep or length < _VIEW_MIN:
                        body = bytes(body)
                    pos += HEADER_SIZE + length
                    self.frames_in += 1
                    self._on_stream_frame(events, flags, sid, body, 0)
                    continue
                pos += HEADER_SIZE
                self.frames_in += 1
                if typ == WINDOW_UPDATE:
                    self._on_stream_frame(events, flags, sid, b"", length)
                elif typ == PING:
                    if flags & SYN:
                        self._frame(PING, ACK, 0, length)
                    elif flags & ACK:
                        events.append(Pong(length))
                elif typ == GO_AWAY:
                    self.remote_go_away = True
                    events.append(GoAway(length))
                else:
                    raise RemoteProtocolError(f"unknown yamux frame type {typ}")
        return pos

    def _on_stream_frame(self, events: list[YamuxEvent], flags: int, sid: int,
                         body: bytes | memoryview, delta: int) -> None:
        st = self._streams.get(sid)
        if flags & SYN:
            if st is not None:
                raise RemoteProtocolError(f"yamux SYN for stream {sid}, which is open")
            if sid == 0 or (sid % 2 == 1) == self.is_initiator:
                raise RemoteProtocolError(f"yamux stream id {sid} has the wrong parity")
            if self.local_go_away or len(self._streams) >= self.max_streams:
                self._frame(WINDOW_UPDATE, RST, sid, 0)
                return
            st = self._streams[sid] = _Stream(self.window)
            self._frame(WINDOW_UPDATE, ACK, sid, self.window - INITIAL_WINDOW)
            events.append(StreamOpened(sid))
        if st is None:
            return  # a frame for a stream we forgot (reset, or closed both ways): ignore it
        if flags & RST:
            del self._streams[sid]
            events.append(StreamReset(sid))
            return
        if body:
            if st.recv_closed:
                raise RemoteProtocolError(f"yamux data on stream {sid} after its FIN")
            if len(body) > st.recv_credit:
                raise RemoteProtocolError(
                    f"yamux stream {sid} sent {len(body)} bytes over its window "
                    f"({st.recv_credit})")
            st.recv_credit -= len(body)
            events.append(StreamData(sid, body))
        if delta:
            st.send_credit += delta
            events.append(WindowOpened(sid))
        if flags & FIN and not st.recv_closed:
            st.recv_closed = True
            events.append(StreamEnded(sid))
            self._forget_if_done(sid, st)

    # -- helpers -----------------------------------------------------------------------------

    def _live(self, stream_id: int) -> _Stream:
        st = self._streams.get(stream_id)
        if st is None:
            raise RemoteProtocolError(f"yamux stream {stream_id} is not open")
        return st

    def _forget_if_done(self, sid: int, st: _Stream) -> bool:
        if st.send_closed and st.recv_closed:
            del self._streams[sid]
            return True
        return False

    def _frame(self, typ: int, flags: int, sid: int, length: int) -> None:
        self._out.append(HEADER.pack(0, typ, flags, sid, length))
        self._out_size += HEADER_SIZE
        self.frames_out += 1
