"""The shared RPC streams to each peer, and when to open, reuse and close them (trio).

A unary call takes a slot on one of the peer's shared streams (:class:`~.client_conn.
ClientStream`): the least loaded one with fewer than ``max_calls_per_stream`` calls; if all
are full, a new stream, up to ``max_streams_per_peer``; beyond that the call waits for a slot.
Only one stream to a peer is being opened at a time: the calls that arrive meanwhile wait for
it rather than each opening their own.

A stream leaves the pool when it breaks or ends (it is never handed out again), when it has
been idle ``idle_timeout`` seconds (it closes itself: FIN), when it becomes idle while
``max_idle_streams_per_peer`` other idle streams to the peer exist, and when the peer
disconnects (:meth:`StreamPool.drop_peer`: its streams are reset).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import trio

from ...identity.peerid import PeerId
from .client_conn import ClientStream

__all__ = ["PoolConfig", "StreamPool"]


@dataclass(frozen=True, slots=True)
class PoolConfig:
    """How unary calls share streams (see docs/rpc.md)."""

    max_calls_per_stream: int = 64  # also the server's limit per shared stream
    max_streams_per_peer: int = 4
    max_idle_streams_per_peer: int = 1
    idle_timeout: float = 60.0  # the client closes a shared stream idle this long
    server_idle_timeout: float = 300.0  # the server resets a shared stream idle this long


class _Peer:
    __slots__ = ("streams", "opening", "changed")

    def __init__(self) -> None:
        self.streams: list[ClientStream] = []
        self.opening = False
        self.changed = trio.Event()

    def notify(self) -> None:
        self.changed.set()
        self.changed = trio.Event()


class StreamPool:
    """Shared streams per peer; ``open_stream(peer)`` opens and starts a new one."""

    def __init__(
        self, config: PoolConfig, open_stream: Callable[[PeerId], Awaitable[ClientStream]]
    ) -> None:
        self.config = config
        self._open_stream = open_stream
        self._peers: dict[PeerId, _Peer] = {}

    def peers(self) -> list[PeerId]:
        return list(self._peers)

    def streams(self, peer: PeerId) -> list[ClientStream]:
        entry = self._peers.get(peer)
        return [] if entry is None else list(entry.streams)

    def idle_count(self) -> int:
        return sum(1 for e in self._peers.values() for s in e.streams if s.load == 0)

    def try_acquire(self, peer: PeerId) -> ClientStream | None:
        """A shared stream to ``peer`` with a slot taken, if one has room now."""
        entry = self._peers.get(peer)
        if entry is None:
            return None
        best: ClientStream | None = None
        for conn in entry.streams:
            if conn.usable and (best is None or conn.load < best.load):
                best = conn
        if best is not None and best.load < self.config.max_calls_per_stream:
            best.take_slot()
            return best
        return None

    async def acquire(self, peer: PeerId) -> ClientStream:
        """A shared stream to ``peer`` with a slot taken for one call (opening one, or
        waiting for a slot, if none has room)."""
        cfg = self.config
        while True:
            conn = self.try_acquire(peer)
            if conn is not None:
                return conn
            entry = self._peers.get(peer)
            if entry is None:
                entry = self._peers[peer] = _Peer()
            if entry.opening or len(entry.streams) >= cfg.max_streams_per_peer:
                await entry.changed.wait()
                continue
            entry.opening = True
            try:
                conn = await self._open_stream(peer)
            finally:
                entry.opening = False
                entry.notify()
            conn.on_done(self._remove)
            if not conn.done.is_set():
                entry.streams.append(conn)
            conn.take_slot()
            return conn

    def release(self, conn: ClientStream) -> None:
        """A call gave back its slot on ``conn``."""
        conn.release_slot(trio.current_time() + self.config.idle_timeout)
        entry = self._peers.get(conn.peer)
        if entry is None:
            return
        if conn.load == 0 and conn.usable:
            idle = [s for s in entry.streams if s.load == 0 and s.usable]
            if len(idle) > self.config.max_idle_streams_per_peer:
                conn.finish()
                self._remove(conn)
        entry.notify()

    def drop_peer(self, peer: PeerId) -> None:
        """The peer disconnected: forget its streams (they are broken or about to be)."""
        entry = self._peers.pop(peer, None)
        if entry is None:
            return
        for conn in entry.streams:
            conn.finish()
            conn.closing = True
        entry.notify()

    def _remove(self, conn: ClientStream) -> None:
        entry = self._peers.get(conn.peer)
        if entry is None:
            return
        if conn in entry.streams:
            entry.streams.remove(conn)
        if not entry.streams and not entry.opening:
            del self._peers[conn.peer]
        entry.notify()
