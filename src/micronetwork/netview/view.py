"""``node.netview``: the network view as the application sees it (trio).

The sans-IO :class:`~micronetwork.netview.NetviewCore` keeps the records; this facade measures
round-trip times to the directly connected peers (libp2p ping, ``/ipfs/ping/1.0.0``, timed
here with sub-millisecond resolution, since py-libp2p's own ping rounds to whole ms), hands
them to the core (they travel with the node's next announcement), and builds the views:
:meth:`nodes` (one row per node) and :meth:`graph` (networkx, depth-limited from this node).
"""

from __future__ import annotations

import math
import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import trio

from ..identity.peerid import PeerId
from .core import NetviewCore, NodeExpired, NodeSeen

if TYPE_CHECKING:
    import networkx as nx

    from ..node import Node

__all__ = ["NetworkView", "NodeView"]

_PING = "/ipfs/ping/1.0.0"
_RTT_MAX_AGE_INTERVALS = 4  # an RTT is re-measured after this many announce intervals
_PING_TIMEOUT = 2.0
_MAX_PINGS = 64  # peers measured at once


@dataclass(frozen=True, slots=True)
class NodeView:
    """One node of the network as this node sees it."""

    peer_id: PeerId
    role: str  # "super" | "peer" | "unknown" (only named as someone's peer so far)
    addrs: tuple[str, ...]
    latency_ms: float | None  # measured round trip from this node (direct peers only)
    last_seen: float | None  # seconds since its record arrived (0: this node)
    services: tuple[str, ...]
    hops: int  # distance from this node in the graph
    local: bool

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.peer_id.to_base58(), "role": self.role, "addrs": list(self.addrs),
            "latency_ms": self.latency_ms, "last_seen": self.last_seen,
            "services": list(self.services), "hops": self.hops, "local": self.local,
        }


class NetworkView:
    def __init__(self, node: Node) -> None:
        self._node = node
        self._changed = trio.Event()
        self._measured: dict[PeerId, float] = {}  # peer -> when its RTT was last measured

    @property
    def _core(self) -> NetviewCore:
        core = self._node._core.netview
        assert core is not None, "the node was built without a network view"
        return core

    def on_event(self, event: NodeSeen | NodeExpired) -> None:
        self._changed.set()
        self._changed = trio.Event()

    async def changed(self) -> None:
        """Return at the next change of the view (a node appeared, changed or went away)."""
        await self._changed.wait()

    # -- measuring ------------------------------------------------------------------------------

    async def run(self) -> None:
        """Background task: measure a new direct peer at once, then every
        ``_RTT_MAX_AGE_INTERVALS`` announce intervals (each ping is a new stream with its
        protocol negotiation, on both ends: cheap, but not free when a node has many peers)."""
        interval = self._core.config.interval
        while not self._node._closed:
            await self.measure(max_age=interval * _RTT_MAX_AGE_INTERVALS)
            await trio.sleep(interval / 3)

    async def measure(self, max_age: float = 15.0) -> None:
        """Ping the directly connected peers whose RTT is older than ``max_age`` seconds
        (concurrently, each bounded); failures leave the RTT unknown."""
        node = self._node
        if node._closed:
            return
        now = trio.current_time()
        due = [p for p in list(self._core.direct)
               if now - self._measured.get(p, -math.inf) >= max_age][:_MAX_PINGS]
        if not due:
            return
        async with trio.open_nursery() as nursery:
            for peer in due:
                nursery.start_soon(self._measure_one, peer)

    async def _measure_one(self, peer: PeerId) -> None:
        node = self._node
        try:
            with trio.fail_after(_PING_TIMEOUT):
                rtt = await _ping(node._host, peer)
        except Exception:  # unreachable, no ping protocol, reset: the RTT stays unknown
            # A failure counts as a measurement too: it is retried after max_age like a
            # success, not on every pass (a peer without ping would cost a stream every 10 s).
            # (Set only once the ping has ended: a caller of measure() must not skip a peer
            # whose first ping is still in flight, or it answers without its RTT.)
            self._measured[peer] = trio.current_time()
            return
        if node._closed:
            return
        self._measured[peer] = trio.current_time()
        self._node._core.on_rtt(peer, rtt, trio.current_time())

    # -- views ----------------------------------------------------------------------------------

    def graph(self, depth: int | None = 3) -> nx.Graph:
        """The peer graph within ``depth`` hops of this node (None: all of it)."""
        from .graph import build_graph

        return build_graph(self._core.snapshot(trio.current_time()), self._node.peer_id, depth)

    def nodes(self, depth: int | None = None) -> list[NodeView]:
        """Every node this node knows of (within ``depth`` hops), this node first."""
        g = self.graph(depth)
        local = self._node.peer_id
        direct = self._core.direct
        out = []
        for n, a in g.nodes(data=True):
            peer = PeerId.from_base58(n)
            out.append(NodeView(
                peer, str(a["role"]), tuple(a["addrs"]),
                direct.get(peer) if peer != local else None,
                a["last_seen"], tuple(a["services"]), int(a["hops"]), peer == local,
            ))
        out.sort(key=lambda v: (not v.local, v.hops, v.role != "super", v.peer_id.to_base58()))
        return out


async def _ping(host: Any, peer: PeerId) -> float:
    """Two 32-byte echoes on one ping stream; the faster round trip, in seconds."""
    from ..host.driver import to_libp2p_id

    stream = await host.new_stream(to_libp2p_id(peer), [_PING])
    try:
        best = math.inf
        for _ in range(2):
            payload = secrets.token_bytes(32)
            start = trio.current_time()
            await stream.write(payload)
            got = b""
            while len(got) < 32:
                chunk = await stream.read(32 - len(got))
                if not chunk:
                    raise EOFError("ping stream closed")
                got += chunk
            if got != payload:
                raise ValueError("ping answer does not match")
            best = min(best, trio.current_time() - start)
        return best
    finally:
        with trio.move_on_after(0.5):
            await stream.close()
