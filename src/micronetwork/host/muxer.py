"""Our yamux, driven by trio, in place of py-libp2p's (``/yamux/1.0.0``, same wire format).

Why: py-libp2p's yamux spends most of the CPU of a busy connection (measured: a 64 KiB RPC
cost ~25 frame writes, ~40 frame reads, and a lock round and scheduler pass per frame; half of
a gossip connection's frames were window updates, one per read). This module keeps the
protocol rules in :class:`~micronetwork.yamux.session.YamuxSession` (sans-IO) and adds only
the I/O:

* one reader task per connection: it reads whole decrypted Noise messages (not frame by
  frame; all that arrived at once, through :mod:`._noiseio`), feeds them to the session,
  and hands data to the streams' buffers;
* one writer task per connection: frames queued by any stream while the last write was in
  flight go out together in one write (so many small frames share a Noise message), and no
  stream task ever writes to the socket itself, so cancelling a stream's write cannot tear
  the connection's framing;
* back-pressure: a stream's write waits for the peer's window (ours: 1 MiB per stream, so
  16 calls of 64 KiB in flight on one stream do not wait for credit), and for
  the connection's queued output to fall under ``HIGH_WATER``; a write whose window stays
  shut for ``STALL_TIMEOUT`` (a peer that stopped reading) resets the stream, so a stalled
  reader cannot hold a writer (an RPC handler) forever.

It implements py-libp2p's ``IMuxedConn`` / ``IMuxedStream``, so the swarm, identify, and
every protocol on top run unchanged; :func:`install` swaps it into a host's upgrader.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from types import TracebackType
from typing import Any

import multiaddr
import trio
from libp2p.abc import IMuxedConn, IMuxedStream, ISecureConn
from libp2p.connection_types import ConnectionType
from libp2p.peer.id import ID
from libp2p.stream_muxer.exceptions import (
    MuxedConnUnavailable,
    MuxedStreamClosed,
    MuxedStreamEOF,
    MuxedStreamReset,
)
from libp2p.stream_muxer.muxer_multistream import MuxerMultistream

from .._buffers import after
from ..errors import RemoteProtocolError
from ..yamux.session import (
    GO_AWAY_NORMAL,
    GoAway,
    StreamData,
    StreamEnded,
    StreamOpened,
    StreamReset,
    WindowOpened,
    YamuxSession,
)
from ._noiseio import NoiseFrames

__all__ = ["PROTOCOL_ID", "YamuxConnection", "YamuxStream", "install"]

log = logging.getLogger(__name__)

PROTOCOL_ID = "/yamux/1.0.0"
ACCEPT_BACKLOG = 256  # inbound streams waiting for the swarm to accept them
HIGH_WATER = 1 << 20  # queued output (bytes) above which writers wait
CLOSE_TIMEOUT = 1.0  # how long a closing connection tries to send its GO_AWAY
RECEIVE_WINDOW = 1 << 20  # per stream; announced with SYN/ACK (the spec's initial is 256 KiB)
STALL_TIMEOUT = 10.0  # a write waiting this long for the peer's window resets the stream


def _as_bytes(data: bytes | memoryview) -> bytes:
    return data if type(data) is bytes else bytes(data)


class YamuxStream(IMuxedStream):
    """One yamux stream: ``read`` returns what has arrived (at most ``n`` bytes), ``close``
    half-closes (FIN), ``reset`` aborts both ways (RST)."""

    def __init__(self, conn: YamuxConnection, stream_id: int, is_initiator: bool) -> None:
        self.muxed_conn = conn
        self.conn = conn
        self.stream_id = stream_id
        self.is_initiator = is_initiator
        self._chunks: deque[bytes | memoryview] = deque()  # views of decrypted messages
        self._buffered = 0
        self._eof = False  # the peer sent FIN
        self._reset = False  # RST either way, or the connection died
        self._send_closed = False
        self._readable = trio.Event()
        self._writable = trio.Event()

    # -- reading --------------------------------------------------------------------------

    async def read(self, n: int | None = None) -> bytes:
        if n == 0:
            await trio.lowlevel.checkpoint()
            return b""
        waited = await self._wait_readable()
        data = self._take(n)
        self._consumed(len(data))
        if not waited:
            await trio.lowlevel.checkpoint()
        return data

    async def read_chunks(self, n: int) -> list[bytes | memoryview]:
        """As :meth:`read` (at most ``n`` bytes, ``n`` > 0), but the chunks as they arrived,
        not joined into one, and views of the decrypted messages they came in (no copy at
        all): whole chunks while they fit, at least one."""
        waited = await self._wait_readable()
        chunks = self._chunks
        first = chunks[0]
        if len(first) > n:
            out, chunks[0] = [first[:n]], first[n:]
            size = n
        else:
            out, size = self._pop_whole(n)
        self._buffered -= size
        self._consumed(size)
        if not waited:
            await trio.lowlevel.checkpoint()
        return out

    async def _wait_readable(self) -> bool:
        """Until data has arrived (EOF / reset errors as :meth:`read`); whether it waited."""
        waited = False
        while not self._chunks:
            if self._reset:
                raise MuxedStreamReset(f"yamux stream {self.stream_id} was reset")
            if self._eof:
                raise MuxedStreamEOF(f"yamux stream {self.stream_id} ended")
            self._readable = trio.Event()
            await self._readable.wait()
            waited = True
        return waited

    def _pop_whole(self, n: int) -> tuple[list[bytes | memoryview], int]:
        """Whole chunks from the front while they fit in ``n`` bytes, and their size."""
        chunks = self._chunks
        out: list[bytes | memoryview] = []
        size = 0
        while chunks and size + len(chunks[0]) <= n:
            part = chunks.popleft()
            out.append(part)
            size += len(part)
        return out, size

    def _consumed(self, n: int) -> None:
        conn = self.conn
        conn.session.consumed(self.stream_id, n)
        conn.kick()

    def _take(self, n: int | None) -> bytes:
        chunks = self._chunks
        if n is None or n < 0 or n >= self._buffered:
            data = _as_bytes(chunks[0]) if len(chunks) == 1 else b"".join(chunks)
            chunks.clear()
        else:
            first = chunks[0]
            if len(first) > n:
                data, chunks[0] = _as_bytes(first[:n]), first[n:]
            else:
                data = b"".join(self._pop_whole(n)[0])
        self._buffered -= len(data)
        return data

    def _on_data(self, data: bytes | memoryview) -> None:
        self._chunks.append(data)
        self._buffered += len(data)
        self._readable.set()

    # -- writing --------------------------------------------------------------------------

    async def write(self, data: bytes) -> None:
        await self.write_parts((data,))

    async def write_parts(self, parts: Sequence[bytes | memoryview]) -> None:
        """:meth:`write` of ``parts`` as one byte string, without joining them: the session
        cuts frames across them and queues views of immutable bytes (no copy until each
        Noise message is gathered)."""
        conn = self.conn
        waited = False
        rest = parts
        left = sum(map(len, parts))
        while left:
            self._check_writable()
            if conn.session.output_size >= HIGH_WATER:
                await conn.wait_for_space()
                waited = True
                continue
            try:
                sent = conn.session.send_parts(self.stream_id, rest)
            except RemoteProtocolError as exc:
                self._check_writable()
                raise MuxedStreamClosed(str(exc)) from exc
            if sent:
                left -= sent
                if left:
                    rest = after(rest, sent)
                conn.kick()
                continue
            self._writable = trio.Event()
            with trio.move_on_after(STALL_TIMEOUT) as stalled:
                await self._writable.wait()
            waited = True
            if stalled.cancelled_caught:  # the peer stopped reading: give the writer back
                await self.reset()
                raise MuxedStreamReset(
                    f"yamux stream {self.stream_id}: the peer read nothing for "
                    f"{STALL_TIMEOUT:.0f} s (window closed); the stream was reset")
        if not waited:
            await trio.lowlevel.checkpoint()

    def _check_writable(self) -> None:
        if self._reset:
            raise MuxedStreamReset(f"yamux stream {self.stream_id} was reset")
        if self._send_closed:
            raise MuxedStreamClosed(f"yamux stream {self.stream_id} is closed for writing")
        if self.conn.is_closed:
            raise MuxedStreamReset("the connection is closed")

    # -- ending ---------------------------------------------------------------------------

    async def close(self) -> None:
        """Half-close: what was written is still delivered; reading goes on."""
        if not self._send_closed and not self._reset and not self.conn.is_closed:
            self._send_closed = True
            if self.conn.session.close_stream(self.stream_id):
                self.conn.forget(self.stream_id)
            self.conn.kick()
        self._send_closed = True
        await trio.lowlevel.checkpoint()

    async def reset(self) -> None:
        if not self._reset:
            if not self.conn.is_closed:
                self.conn.session.reset_stream(self.stream_id)
                self.conn.kick()
            self.conn.forget(self.stream_id)
            self._on_reset()
        await trio.lowlevel.checkpoint()

    def _on_reset(self) -> None:
        self._reset = True
        self._readable.set()
        self._writable.set()

    def _on_end(self) -> None:
        self._eof = True
        self._readable.set()

    def set_deadline(self, ttl: int) -> None:
        raise NotImplementedError("yamux streams have no deadlines; use trio cancel scopes")

    def get_remote_address(self) -> tuple[str, int] | None:
        return self.conn.get_remote_address()

    async def __aenter__(self) -> YamuxStream:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc_val: BaseException | None, exc_tb: TracebackType | None) -> None:
        await self.close()


class YamuxConnection(IMuxedConn):
    """A yamux session over a secured (Noise) connection."""

    def __init__(self, secured_conn: ISecureConn, peer_id: ID,
                 is_initiator: bool | None = None,
                 on_close: Callable[[], Awaitable[Any]] | None = None) -> None:
        self.secured_conn = secured_conn
        self.peer_id = peer_id
        self._initiator = secured_conn.is_initiator if is_initiator is None else is_initiator
        self.session = YamuxSession(is_initiator=self._initiator, window=RECEIVE_WINDOW)
        frames = NoiseFrames.attach(secured_conn)  # None: use the session's read and write
        # each Noise message's plaintext apart: the session takes them one by one (no join)
        self._read: Callable[[], Awaitable[list[bytes]]] = \
            frames.read_parts if frames is not None else self._read_secured
        # NoiseFrames takes the session's output pieces as they are (each Noise message is
        # gathered from them with one join); py-libp2p's sessions want one bytes
        self._write: Callable[[list[bytes | memoryview]], Awaitable[None]] = \
            frames.write if frames is not None else self._write_joined
        self.on_close = on_close
        self.event_started = trio.Event()
        self.event_closed = trio.Event()
        self.streams: dict[int, YamuxStream] = {}
        self._accept_send, self._accept_recv = trio.open_memory_channel[YamuxStream](
            ACCEPT_BACKLOG)
        self._output = trio.Event()
        self._space = trio.lowlevel.ParkingLot()
        self._write_lock = trio.Lock()
        self._scope: trio.CancelScope | None = None
        self._closing = False

    @property
    def is_initiator(self) -> bool:
        return self._initiator

    @property
    def is_established(self) -> bool:
        return self.event_started.is_set() and not self._closing

    @property
    def is_closed(self) -> bool:
        return self._closing

    async def _write_joined(self, parts: list[bytes | memoryview]) -> None:
        await self.secured_conn.write(b"".join(parts))

    async def _read_secured(self) -> list[bytes]:
        data: bytes = await self.secured_conn.read()
        return [data] if data else []

    # -- the tasks ------------------------------------------------------------------------

    async def start(self) -> None:
        """Run the connection until it closes (the swarm runs this as a task)."""
        if self.event_started.is_set():
            return
        try:
            async with trio.open_nursery() as nursery:
                self._scope = nursery.cancel_scope
                nursery.start_soon(self._writer)
                self.event_started.set()
                await self._reader()
                nursery.cancel_scope.cancel()
        finally:
            with trio.CancelScope(shield=True):
                await self._shutdown()

    async def _reader(self) -> None:
        read = self._read
        session = self.session
        streams = self.streams
        while True:
            try:
                parts = await read()
            except trio.Cancelled:
                raise
            except Exception as exc:
                log.debug("yamux %s: read ended: %r", self.peer_id, exc)
                return
            if not parts:
                return
            try:
                events = session.receive(parts[0])
                for part in parts[1:]:
                    events += session.receive(part)
            except RemoteProtocolError as exc:
                log.info("yamux %s: protocol error, closing: %s", self.peer_id, exc)
                await self._flush_last()
                return
            for ev in events:
                match ev:
                    case StreamData(sid, data):
                        st = streams.get(sid)
                        if st is not None:
                            st._on_data(data)
                    case WindowOpened(sid):
                        st = streams.get(sid)
                        if st is not None:
                            st._writable.set()
                    case StreamOpened(sid):
                        self._on_opened(sid)
                    case StreamEnded(sid):
                        st = streams.get(sid)
                        if st is not None:
                            st._on_end()
                            if not session.is_open(sid):
                                del streams[sid]
                    case StreamReset(sid):
                        st = streams.pop(sid, None)
                        if st is not None:
                            st._on_reset()
                    case GoAway(code):
                        log.debug("yamux %s: the peer goes away (code %d)", self.peer_id, code)
            self.kick()

    def _on_opened(self, sid: int) -> None:
        st = YamuxStream(self, sid, is_initiator=False)
        try:
            self._accept_send.send_nowait(st)
        except (trio.WouldBlock, trio.ClosedResourceError, trio.BrokenResourceError):
            self.session.reset_stream(sid)  # nobody accepts streams this fast: refuse it
            return
        self.streams[sid] = st

    async def _writer(self) -> None:
        session = self.session
        while True:
            if not session.output_size:
                self._output = trio.Event()
                await self._output.wait()
                continue
            lock = self._write_lock
            try:
                lock.acquire_nowait()  # free unless closing: no scheduler pass for it
            except trio.WouldBlock:
                await lock.acquire()
            try:
                data = session.take_output_parts()
                self._space.unpark_all()
                try:
                    await self._write(data)
                except trio.Cancelled:
                    raise
                except Exception as exc:
                    log.debug("yamux %s: write failed: %r", self.peer_id, exc)
                    if self._scope is not None:
                        self._scope.cancel()
                    return
            finally:
                lock.release()

    def kick(self) -> None:
        """Wake the writer if frames are queued."""
        if self.session.output_size:
            self._output.set()

    async def wait_for_space(self) -> None:
        if self.session.output_size >= HIGH_WATER and not self._closing:
            await self._space.park()

    async def _flush_last(self) -> None:
        """Write what is queued (a GO_AWAY) when the writer is idle, within CLOSE_TIMEOUT."""
        with trio.CancelScope(shield=True), trio.move_on_after(CLOSE_TIMEOUT):
            async with self._write_lock:
                data = self.session.take_output_parts()
                if data:
                    try:
                        await self._write(data)
                    except Exception:
                        pass

    # -- streams ------------------------------------------------------------------------------

    async def open_stream(self) -> YamuxStream:
        if self._closing:
            raise MuxedConnUnavailable("the connection is closed")
        try:
            sid = self.session.open_stream()
        except RemoteProtocolError as exc:
            raise MuxedConnUnavailable(str(exc)) from exc
        st = self.streams[sid] = YamuxStream(self, sid, is_initiator=True)
        self.kick()
        await trio.lowlevel.checkpoint()
        return st

    async def accept_stream(self) -> IMuxedStream:
        try:
            return await self._accept_recv.receive()
        except (trio.EndOfChannel, trio.ClosedResourceError) as exc:
            raise MuxedConnUnavailable("the connection is closed") from exc

    def forget(self, stream_id: int) -> None:
        self.streams.pop(stream_id, None)

    # -- closing ------------------------------------------------------------------------------

    async def close(self, error_code: int = GO_AWAY_NORMAL) -> None:
        if self._closing:
            return
        self.session.go_away(error_code)
        await self._flush_last()
        if self._scope is not None:
            self._scope.cancel()
        await self._shutdown()

    async def _shutdown(self) -> None:
        if self._closing:
            return
        self._closing = True
        for st in list(self.streams.values()):
            st._on_reset()
        self.streams.clear()
        self._accept_send.close()
        self._space.unpark_all()
        with trio.CancelScope(shield=True):
            try:
                await self.secured_conn.close()
            except Exception:
                pass
            self.event_closed.set()
            if self.on_close is not None:
                try:
                    await self.on_close()
                except Exception:
                    log.debug("yamux %s: on_close failed", self.peer_id, exc_info=True)

    # -- what py-libp2p asks of a connection ------------------------------------------------

    def get_transport_addresses(self) -> list[multiaddr.Multiaddr]:
        return self.secured_conn.get_transport_addresses()

    def get_connection_type(self) -> ConnectionType:
        return self.secured_conn.get_connection_type()

    def get_remote_address(self) -> tuple[str, int] | None:
        return self.secured_conn.get_remote_address()


class _Multistream(MuxerMultistream):
    """py-libp2p's muxer negotiation builds its own Yamux for ``/yamux/1.0.0`` whatever the
    options say; this one builds the class it was given."""

    async def new_conn(self, conn: ISecureConn, peer_id: ID) -> IMuxedConn:
        protocol, transport_class = await self._selector.select(
            conn, conn.is_initiator, self.negotiate_timeout)
        muxed = YamuxConnection(conn, peer_id, is_initiator=conn.is_initiator) \
            if protocol == PROTOCOL_ID else transport_class(conn, peer_id)
        return self._annotate_connection(muxed, conn, protocol)


def install(host: Any) -> None:
    """Negotiate ``/yamux/1.0.0`` on ``host``'s new connections and run it with
    :class:`YamuxConnection`."""
    from libp2p.custom_types import TProtocol

    upgrader = host.get_network().upgrader
    old = upgrader.muxer_multistream
    upgrader.muxer_multistream = _Multistream(
        {TProtocol(PROTOCOL_ID): YamuxConnection},
        negotiate_timeout=old.negotiate_timeout)
