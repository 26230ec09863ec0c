"""RPC calls over libp2p streams (trio): :class:`RpcTransport`.

Theory of operation. All streams to a peer run on the one connection to it. Unary calls share
streams: a pool (:mod:`._pool`) keeps a few long-lived streams per peer, each carrying many
calls at once and one after another (every frame names its call), so a call costs no stream
negotiation and the frames of calls in flight together travel in the same writes. A streaming
call (server stream, client stream, bidi) takes a stream of its own, whose yamux window is its
flow control. The wire protocol and its rules are in :mod:`.frames`, :mod:`.call` and
:mod:`.stream`; the caller's half is :class:`~.client_call.ClientCall` on a
:class:`~.client_conn.ClientStream`, the server's :class:`~.server_call.ServerCall` on
:func:`~.server_conn.serve_stream`.

``attach(nursery)`` registers the stream handler and runs every stream's tasks in that nursery
(cancelling it cancels every handler, and their clients hear "cancelled"). With no ``handler``
the transport is client-only: the protocol is not registered, and a peer that opens a call to
us fails to negotiate it.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import trio
from libp2p.abc import INetConn, INetStream, INotifee
from libp2p.peer.id import ID

from ...errors import ConfigError, DeadlineExceeded, NetworkError
from ...identity.peerid import PeerId
from ...rpc.call import Role, RpcCall
from ...rpc.frames import DEFAULT_MAX_MESSAGE_SIZE, Kind, Open, check_open
from ._io import reset_quietly
from ._pool import PoolConfig, StreamPool
from .client_call import ClientCall
from .client_conn import ClientStream
from .server_call import ServerCall
from .server_conn import ServerLimits, serve_stream

__all__ = ["RPC_PROTOCOL", "PoolConfig", "RpcTransport"]

RPC_PROTOCOL = "/micronetwork/rpc/1.1.0"
_MIN_MESSAGE_SIZE = 1024


class RpcTransport:
    """Opens calls to peers and serves the calls peers open to us.

    ``max_message_size`` bounds one message (the CBOR body of a Data frame) both ways: we
    refuse to send a larger one (:class:`MessageTooLarge`, nothing written) and a peer that
    sends one gets Status / Cancel "message_too_large" for that call. ``open_timeout`` bounds
    how long an inbound stream may take to send its first Open; ``read_ahead`` is how many
    messages of a streaming call are read ahead of its reader (handler or caller); ``pool``
    says how unary calls share streams.
    """

    def __init__(
        self,
        host: Any,
        *,
        protocol: str = RPC_PROTOCOL,
        max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
        handler: Callable[[ServerCall], Awaitable[None]] | None = None,
        open_timeout: float = 10.0,
        read_ahead: int = 4,
        pool: PoolConfig | None = None,
    ) -> None:
        if max_message_size < _MIN_MESSAGE_SIZE:
            raise ConfigError(f"max_message_size must be at least {_MIN_MESSAGE_SIZE} bytes")
        if read_ahead < 0:
            raise ConfigError("read_ahead must not be negative")
        pool = pool or PoolConfig()
        if pool.max_calls_per_stream < 1 or pool.max_streams_per_peer < 1:
            raise ConfigError("a pool needs at least one stream per peer and one call each")
        self.host = host
        self.protocol = protocol
        self.max_message_size = max_message_size
        self.handler = handler
        self.open_timeout = open_timeout
        self.read_ahead = read_ahead
        self.pool_config = pool
        self.counters: Counter[str] = Counter()
        self._nursery: trio.Nursery | None = None
        self._serving = 0
        self._pool = StreamPool(pool, self._open_shared)
        self._limits = ServerLimits(
            max_message_size=max_message_size, open_timeout=open_timeout,
            read_ahead=read_ahead, max_calls=pool.max_calls_per_stream,
            idle_timeout=pool.server_idle_timeout,
        )

    def attach(self, nursery: trio.Nursery) -> None:
        """Run streams' tasks in ``nursery`` and serve inbound calls (if there is a
        handler)."""
        self._nursery = nursery
        self.host.get_network().register_notifee(_Notifee(self))
        if self.handler is not None:
            self.host.set_stream_handler(self.protocol, self._on_stream)

    def has_stream(self, peer: PeerId) -> bool:
        """A shared stream to ``peer`` is open and usable (so the connection is up)."""
        return any(conn.usable for conn in self._pool.streams(peer))

    def peer_disconnected(self, peer: PeerId) -> None:
        """Drop the pooled streams to ``peer`` (its last connection closed)."""
        self._pool.drop_peer(peer)

    def stats(self) -> dict[str, int]:
        """Counters: calls_opened, calls_served, frames_/bytes_ sent and received, errors_sent
        and errors_received (non-ok Status), cancels_sent, calls_cancelled_by_client,
        deadline_exceeded, too_large_received, protocol_errors, streams_broken, calls_broken,
        open_failures, calls_refused; streams_opened (outbound streams: shared and single),
        streams_served (inbound), streams_closed_idle; and the gauges in_flight (calls being
        served now), pooled_streams and idle_streams (shared streams in the pool)."""
        out = dict(self.counters)
        out["in_flight"] = self._serving
        out["pooled_streams"] = sum(len(self._pool.streams(p)) for p in self._pool.peers())
        out["idle_streams"] = self._pool.idle_count()
        return out

    async def open_call(
        self,
        peer: PeerId,
        service: str,
        endpoint: str,
        *,
        kind: Kind | str,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,
    ) -> ClientCall:
        """Open a call to ``peer`` (dialled if not connected, from the peerstore's addresses):
        a unary call on a pooled shared stream, any other kind on a new stream of its own.
        Use the result as ``async with``. Raises :class:`NetworkError` if no stream could be
        opened, :class:`DeadlineExceeded` if ``timeout`` passed first,
        :class:`LocalProtocolError` for a malformed Open (unknown kind, empty names, too many
        or too large headers)."""
        now = trio.current_time()
        deadline = None if timeout is None else now + timeout
        hdrs = dict(headers) if headers else {}
        shared = kind == "unary"
        conn = self._pool.try_acquire(peer) if shared else None
        if conn is None:  # a stream must be opened (or a slot waited for)
            check_open(Open(1, service, endpoint, kind, None, hdrs))  # type: ignore[arg-type]
            if self._nursery is None:
                raise ConfigError("RpcTransport.attach(nursery) must be called before open_call")
            with trio.move_on_at(math.inf if deadline is None else deadline):
                conn = await (self._pool.acquire(peer) if shared else self._open_stream(peer))
            if conn is None:
                self.counters["deadline_exceeded"] += 1
                raise DeadlineExceeded(
                    f"{service}.{endpoint}: no stream to {peer} within {timeout} s"
                )
            now = trio.current_time()
        state = RpcCall(Role.CLIENT, max_message_size=self.max_message_size, deadline=deadline)
        frame = Open(
            conn.core.next_call_id(), service, endpoint, kind,  # type: ignore[arg-type]
            state.remaining_ms(now), hdrs,
        )
        try:
            open_bytes = conn.core.open_call(state, frame)
        except BaseException:
            if shared:
                self._pool.release(conn)
            else:
                conn.finish()
            raise
        counters = self.counters
        counters["frames_sent"] += 1
        counters["calls_opened"] += 1
        call = ClientCall(peer, conn, state, open_bytes, counters,
                          self._pool.release if shared else None)
        conn.add(call)
        return call

    async def _open_shared(self, peer: PeerId) -> ClientStream:
        return await self._open_stream(peer, self.pool_config.idle_timeout)

    async def _open_stream(self, peer: PeerId, idle: float = math.inf) -> ClientStream:
        """A new outbound stream to ``peer``, its tasks started."""
        try:
            stream = await self.host.new_stream(ID(bytes(peer)), [self.protocol])
        except (trio.Cancelled, trio.TooSlowError):
            raise
        except Exception as exc:
            self.counters["open_failures"] += 1
            raise NetworkError(f"could not open an RPC stream to {peer}: {exc}") from exc
        self.counters["streams_opened"] += 1
        conn = ClientStream(
            peer, stream, max_message_size=self.max_message_size,
            max_calls=self.pool_config.max_calls_per_stream, read_ahead=self.read_ahead,
            counters=self.counters,
        )
        nursery = self._nursery
        if nursery is None:  # pragma: no cover - checked by open_call
            await reset_quietly(stream)
            raise ConfigError("the transport is not attached")
        deadline = trio.current_time() + idle if math.isfinite(idle) else math.inf
        try:
            nursery.start_soon(conn.run, deadline)
        except RuntimeError:  # the nursery is closed: we are shutting down
            await reset_quietly(stream)
            raise NetworkError("the RPC transport is shutting down") from None
        return conn

    async def _on_stream(self, stream: Any) -> None:
        nursery, handler = self._nursery, self.handler
        if nursery is None or handler is None:
            await reset_quietly(stream)
            return
        peer = PeerId(stream.muxed_conn.peer_id.to_bytes())
        done = trio.Event()

        async def run() -> None:
            try:
                await serve_stream(stream, peer, handler, self._limits, self.counters,
                                   self._served)
            finally:
                done.set()

        try:
            nursery.start_soon(run)
        except RuntimeError:  # the nursery is closed: we are shutting down
            await reset_quietly(stream)
            return
        # py-libp2p counts the stream as open while its handler runs.
        await done.wait()

    def _served(self, delta: int) -> None:
        self._serving += delta


class _Notifee(INotifee):
    """Drops a peer's pooled streams when its last connection closes."""

    def __init__(self, transport: RpcTransport) -> None:
        self._transport = transport

    async def opened_stream(self, network: Any, stream: INetStream) -> None:
        pass

    async def closed_stream(self, network: Any, stream: INetStream) -> None:
        pass

    async def connected(self, network: Any, conn: INetConn) -> None:
        pass

    async def disconnected(self, network: Any, conn: INetConn) -> None:
        peer = getattr(conn.muxed_conn, "peer_id", None)
        if peer is not None and not network.get_connections(peer):
            self._transport.peer_disconnected(PeerId(peer.to_bytes()))

    async def listen(self, network: Any, ma: Any) -> None:
        pass

    async def listen_close(self, network: Any, ma: Any) -> None:
        pass
