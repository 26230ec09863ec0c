"""The connections gossip cores ask for in the simulator: PX ``Dial`` and ``FindPeers``.

:class:`DialsMixin` is part of :class:`~.gossip.GossipSimulator` (kept apart to keep that
module small): a PX dial becomes a connection after the handshake (``DialModel.handshake_rtts``
round trips on the new link) unless the nodes are linked already or at the cap; a
``FindPeers(topic, count)`` is a modelled discovery service: one lookup
(``DialModel.lookup_rounds`` round trips, each to a random node, as a DHT lookup of the topic's
provider records), then up to ``count`` random subscribers of the topic that the node is not
linked to (honest or not), each connected after the handshake as the asking node's dial. Draws
come from ``dial_rng``, seeded apart from the main stream, so dials never shift the main
stream's later draws (publishers, loss).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from heapq import heappush
from typing import TYPE_CHECKING

from ..commands import FindPeers
from ..identity.peerid import PeerId

if TYPE_CHECKING:
    from .gossip import GossipSimNode
    from .loop import EventLoop
    from .metrics import Metrics
    from .models import NetworkModel

__all__ = ["DialModel", "DialsMixin"]


@dataclass(frozen=True, slots=True)
class DialModel:
    """How the simulator makes the connections the cores ask for (PX ``Dial``, ``FindPeers``).

    A discovery lookup costs ``lookup_rounds`` round trips, each to a random node (simulated
    Kademlia lookups take 2.8 rounds on average at 10k nodes, docs/simulator.md); a new
    connection costs ``handshake_rtts`` round trips on its own link (TCP, then Noise and
    yamux negotiation). ``max_links``: no node gets more connections than this through dials
    (None: no cap)."""

    lookup_rounds: int = 3
    handshake_rtts: int = 2
    max_links: int | None = None



class DialsMixin:
    """The dial half of :class:`~.gossip.GossipSimulator` (see the module docstring)."""

    loop: EventLoop
    network: NetworkModel
    metrics: Metrics
    nodes: list[GossipSimNode]
    by_id: dict[PeerId, GossipSimNode]
    dial: DialModel
    dial_rng: random.Random
    K_FOUND: int
    K_DIALED: int

    def connect(self, a: GossipSimNode, b: GossipSimNode) -> None:  # pragma: no cover
        raise NotImplementedError

    def _can_link(self, a: GossipSimNode, b: GossipSimNode) -> bool:
        cap = self.dial.max_links
        return (b.alive and b is not a and b.peer_id not in a.links
                and (cap is None or (len(a.links) < cap and len(b.links) < cap)))

    def _dial_later(self, a: GossipSimNode, b: GossipSimNode, why: str) -> None:
        lat = self.network.latency
        rtt = lat.latency(a.idx, b.idx) + lat.latency(b.idx, a.idx)
        loop = self.loop
        heappush(loop.heap, (loop.now + self.dial.handshake_rtts * rtt, next(loop.counter),
                             self.K_DIALED, a, b, why))

    def _px_dial(self, node: GossipSimNode, peer: PeerId) -> None:
        c = self.metrics.counters
        c["px_dials"] += 1
        target = self.by_id.get(peer)
        if target is None or not self._can_link(node, target):
            c["px_dials_skipped"] += 1
            return
        self._dial_later(node, target, "px")

    def _find_peers(self, node: GossipSimNode, cmd: FindPeers) -> None:
        self.metrics.counters["find_peers"] += 1
        lat = self.network.latency
        rng = self.dial_rng
        n = len(self.nodes)
        delay = sum(2 * lat.latency(node.idx, rng.randrange(n))
                    for _ in range(self.dial.lookup_rounds))
        loop = self.loop
        heappush(loop.heap, (loop.now + delay, next(loop.counter), self.K_FOUND, node,
                             cmd.topic, cmd.count))

    def _on_found(self, node: GossipSimNode, topic: str, count: int) -> None:
        """The lookup is done: up to ``count`` random subscribers of ``topic`` not linked yet
        (rejection sampling over all nodes, at most ``4 * count + 16`` draws)."""
        if not node.alive:
            return
        nodes = self.nodes
        rng = self.dial_rng
        tried = {node.idx}
        found = 0
        for _ in range(4 * count + 16):
            if found >= count:
                break
            m = nodes[rng.randrange(len(nodes))]
            if m.idx in tried:
                continue
            tried.add(m.idx)
            if topic in m.core.mesh and self._can_link(node, m):
                found += 1
                self._dial_later(node, m, "found")
        self.metrics.counters["find_peers_found"] += found

    def _on_dialed(self, a: GossipSimNode, b: GossipSimNode, why: str) -> None:
        if a.alive and self._can_link(a, b):
            self.metrics.counters[f"connections_{why}"] += 1
            self.connect(a, b)

