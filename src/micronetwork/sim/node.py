"""Simulated nodes and the hook that replaces a node's behaviour (adversaries, faults).

Theory of operation. A :class:`SimNode` is one peer of the simulation: a number (its index,
used by the latency model), a peer id, its Kademlia key, the real :class:`KademliaCore` it
runs, and the driver-side state the simulator keeps for it (alive, CPU queue, uplink queue,
scheduled timer, slowness factor). Nodes never talk to each other directly; the
:class:`~.network.Simulator` carries every message.

A :class:`Behaviour` decides how a node answers an inbound request. The default hands it to the
core. :class:`Colluding` nodes answer every lookup with the members of their coalition closest
to the key (so a lookup that meets only colluders never leaves the coalition) and store
nothing; :class:`Silent` nodes accept connections and never answer. Write your own by
subclassing :class:`Behaviour` and passing it to ``Simulator.add_node(behaviour=...)``.
"""

from __future__ import annotations

from bisect import bisect_left
from typing import TYPE_CHECKING

from ..identity.peerid import PeerId
from ..kademlia import KademliaCore
from ..kademlia.keyspace import kad_key
from ..kademlia.messages import KadMessage, MessageType, PeerInfo

if TYPE_CHECKING:
    from .network import Simulator

__all__ = ["Behaviour", "Coalition", "Colluding", "Honest", "Silent", "SimNode"]

INF = float("inf")


class Behaviour:
    """How a node answers requests. The base class is honest: the core answers."""

    name = "honest"

    def on_request(
        self, sim: Simulator, node: SimNode, src: SimNode, token: int, msg: KadMessage
    ) -> None:
        node.core.on_request(src.peer_id, token, msg, sim.now)


Honest = Behaviour


class Silent(Behaviour):
    """Never answers: every request to this node times out at the requester."""

    name = "silent"

    def on_request(
        self, sim: Simulator, node: SimNode, src: SimNode, token: int, msg: KadMessage
    ) -> None:
        sim.drop_token(token)


class Coalition:
    """The members of a colluding group, sorted by key, to answer 'who is closest to x'."""

    def __init__(self, k: int = 20) -> None:
        self.k = k
        self.members: set[PeerId] = set()
        self._keys: list[int] = []
        self._infos: list[PeerInfo] = []

    def add(self, node: SimNode) -> None:
        i = bisect_left(self._keys, node.key)
        self._keys.insert(i, node.key)
        self._infos.insert(i, PeerInfo(node.peer_id, node.addrs))
        self.members.add(node.peer_id)

    def closest(self, target: int, exclude: PeerId | None = None) -> tuple[PeerInfo, ...]:
        """The ``k`` members nearest ``target``: XOR-nearest keys lie around its sort position."""
        i = bisect_left(self._keys, target)
        lo, hi = max(0, i - 2 * self.k), min(len(self._keys), i + 2 * self.k)
        window = sorted(range(lo, hi), key=lambda j: self._keys[j] ^ target)
        out = [self._infos[j] for j in window if self._infos[j].peer_id != exclude]
        return tuple(out[: self.k])


class Colluding(Behaviour):
    """Answers lookups with fellow colluders only; accepts and discards stores."""

    name = "colluding"

    def __init__(self, coalition: Coalition) -> None:
        self.coalition = coalition

    def on_request(
        self, sim: Simulator, node: SimNode, src: SimNode, token: int, msg: KadMessage
    ) -> None:
        t = msg.type
        if t in (MessageType.FIND_NODE, MessageType.GET_VALUE, MessageType.GET_PROVIDERS):
            closer = self.coalition.closest(kad_key(msg.key), exclude=node.peer_id)
            sim.respond(node, token, KadMessage(t, key=msg.key, closer_peers=closer))
        elif t is MessageType.PUT_VALUE:
            sim.respond(node, token, msg)  # claims to have stored it
        elif t is MessageType.ADD_PROVIDER:
            sim.respond(node, token, None)
        else:
            node.core.on_request(src.peer_id, token, msg, sim.now)


class SimNode:
    """One simulated peer (see the module docstring)."""

    __slots__ = (
        "idx", "peer_id", "key", "addrs", "core", "alive", "server", "role", "behaviour",
        "slow", "timer_at", "cpu_free", "up_free", "joined", "left", "served", "busy",
        "wait_max",
    )

    def __init__(
        self, idx: int, peer_id: PeerId, key: int, addrs: tuple[bytes, ...], core: KademliaCore,
        role: str, now: float,
    ) -> None:
        self.idx = idx
        self.peer_id = peer_id
        self.key = key
        self.addrs = addrs
        self.core = core
        self.alive = True
        self.server = core.config.mode == "server"
        self.role = role
        self.behaviour: Behaviour | None = None
        self.slow = 1.0  # multiplies this node's CPU costs
        self.timer_at = INF
        self.cpu_free = 0.0
        self.up_free = 0.0
        self.joined = now
        self.left = INF
        self.served = 0  # inbound requests handled
        self.busy = 0.0  # CPU seconds spent on them
        self.wait_max = 0.0  # longest wait for the CPU since the last look (load.LoadMonitor)

    def __repr__(self) -> str:
        state = "up" if self.alive else "down"
        return f"SimNode({self.idx}, {self.role}, {state})"
