"""Gossipsub in the simulator: many real :class:`GossipCore` routers on one virtual clock.

Theory of operation. :class:`GossipSimulator` is the gossip twin of :class:`~.network.Simulator`:
it owns an :class:`~.loop.EventLoop`, a :class:`~.models.NetworkModel` (link latency, loss,
bandwidth, partitions) and one seeded RNG, and it drives the *unchanged* sans-IO gossipsub core
of every node. Gossip needs connections, not requests: the scenario connects nodes along the
edges of a graph (a random regular graph by default, :mod:`.topology`), which calls
``on_peer_connected`` on both ends (one side is the dialer, ``outbound``); later the cores'
own dials (PX, topic discovery) add connections the same way. After every input the simulator
*pumps* the core:

* ``Send(peer, protocol, rpc)`` -> an RPC event at ``peer`` after the link's one-way delay (the
  RPC object itself travels; its wire size is estimated from its shape, or exact with
  ``exact_sizes``); a node's :class:`GossipBehaviour` may rewrite or swallow it first (this is
  the adversary hook: silent Sybils drop what they should forward);
* ``Emit(ValidateMessage)`` -> validation is asynchronous: the message waits in the node's CPU
  queue for ``crypto.verify_cost * node.slow`` seconds (10 ms by default), then the simulator
  answers ``report_validation`` with the verdict of :attr:`GossipSimulator.verdict` (data that
  starts with ``INVALID`` is rejected). Only new messages cost CPU; duplicates are dropped by
  id before validation, as the core does;
* ``Emit(Message)`` -> the delivery time of that message at that node is recorded;
* ``Dial(peer, ())`` (peer exchange) -> a new connection after the handshake
  (``DialModel.handshake_rtts`` round trips), unless already connected or at the cap;
* ``FindPeers(topic, count)`` (topic discovery) -> a modelled discovery service: after one
  lookup (``DialModel.lookup_rounds`` round trips, each to a random node, as a DHT lookup of
  the topic's provider records) up to ``count`` random nodes subscribed to the topic that the
  node is not connected to (honest or not, drawn from ``dial_rng``, seeded from the seed
  apart from the main stream so that dials never shift later draws), each connected after
  the handshake as a dial by the asking node (``outbound``). ``DialModel.max_links`` caps the
  connections of every node (None: no cap).

Signatures. In ``crypto.mode == "model"`` (the default, any size) keys are stand-ins: the id is a
well-formed Ed25519 peer id with random key bytes, a signature is 64 fixed bytes and the
StrictSign check only checks the fields are present (``GossipCore.verify`` is swapped); the CPU
cost is in ``verify_cost``. ``mode="execute"`` uses real key pairs, real signing and real
verification (small runs).

Records. :meth:`GossipSimulator.publish` returns a :class:`MsgRecord`: per node, the time the
message was delivered to the application (``inf``: never) and the number of copies that
arrived (in a ``publish`` entry of any RPC: mesh forwarding, flood publishing, IWANT answers).
"""

from __future__ import annotations

import heapq
import random
from array import array
from collections.abc import Callable, Iterable, Sequence
from heapq import heappush
from typing import Any, cast

from ..commands import Dial, Disconnect, Emit, FindPeers
from ..errors import SignatureError
from ..gossip import (
    RPC,
    Control,
    GossipConfig,
    GossipCore,
    Message,
    Outcome,
    PubMessage,
    Send,
    ValidateMessage,
)
from ..identity.keys import KeyPair
from ..identity.peerid import PeerId
from .crypto import CryptoModel, model_peer_id
from .gossip_dials import DialModel, DialsMixin
from .loop import EventLoop
from .metrics import Metrics
from .models import NetworkModel

__all__ = [
    "DialModel",
    "FlashSybil",
    "GossipBehaviour",
    "GossipSimNode",
    "GossipSimulator",
    "MsgRecord",
    "ModelKey",
    "SilentSybil",
    "model_verify",
    "rpc_size",
    "shortest_path_bound",
]

INF = float("inf")
_MODEL_SIG = b"\x5a" * 64
INVALID_PREFIX = b"INVALID"


class ModelKey:
    """A stand-in for a :class:`KeyPair` at scale: a well-formed id; signing is not computed."""

    __slots__ = ("peer_id", "encoded_public_key")

    def __init__(self, peer_id: PeerId) -> None:
        self.peer_id = peer_id
        self.encoded_public_key = bytes(peer_id)[2:]

    def sign(self, data: bytes) -> bytes:
        return _MODEL_SIG


def model_verify(msg: PubMessage) -> None:
    """The modelled StrictSign check: author, seqno and a 64-byte signature must be there."""
    if not msg.from_peer or not msg.seqno or len(msg.signature) != 64:
        raise SignatureError("unsigned message (modelled StrictSign)")


def rpc_size(rpc: RPC) -> int:
    """Estimated protobuf size of an RPC plus its varint length prefix."""
    size = 4
    for s in rpc.subscriptions:
        size += 6 + len(s.topic)
    for m in rpc.publish:
        size += (14 + len(m.data) + len(m.from_peer) + len(m.seqno) + len(m.signature)
                 + len(m.key) + len(m.topic))
    c = rpc.control
    if c is not None:
        size += 2
        for ih in c.ihave:
            size += 4 + len(ih.topic) + sum(2 + len(i) for i in ih.message_ids)
        for iw in c.iwant:
            size += 2 + sum(2 + len(i) for i in iw.message_ids)
        for g in c.graft:
            size += 4 + len(g.topic)
        for p in c.prune:
            size += 8 + len(p.topic) + sum(4 + len(x.peer_id) for x in p.peers)
        for d in c.idontwant:
            size += 2 + sum(2 + len(i) for i in d.message_ids)
    return size


class GossipBehaviour:
    """How a node talks to its peers. The base class is honest: what the core says, is sent."""

    name = "honest"
    dials = True  # does the simulator connect the peers this node's core asks for?

    def outbound(self, sim: GossipSimulator, node: GossipSimNode, peer: PeerId,
                 rpc: RPC) -> RPC | None:
        """The RPC that really leaves (None: nothing)."""
        return rpc


class SilentSybil(GossipBehaviour):
    """Subscribes and grafts like anyone, but never forwards or gossips a message.

    From ``silent_from`` on (0: always) only subscriptions, GRAFT and PRUNE leave the node:
    no message (no forwarding, no flood publish, no IWANT answers), no IHAVE/IWANT/IDONTWANT.
    It accepts every connection; with ``dials`` its core's PX dials and topic discovery are
    honoured too (a Sybil that seeks more honest peers), by default they are not: the attack
    keeps the connections it was given.
    """

    name = "silent-sybil"

    def __init__(self, silent_from: float = 0.0, dials: bool = False) -> None:
        self.silent_from = silent_from
        self.dials = dials

    def outbound(self, sim: GossipSimulator, node: GossipSimNode, peer: PeerId,
                 rpc: RPC) -> RPC | None:
        if sim.now < self.silent_from:
            return rpc
        c = rpc.control
        if not rpc.publish and (c is None or not (c.ihave or c.iwant or c.idontwant)):
            return rpc
        graft = c.graft if c is not None else ()
        prune = c.prune if c is not None else ()
        if not rpc.subscriptions and not graft and not prune:
            return None
        ctl = Control(graft=graft, prune=prune) if graft or prune else None
        return RPC(subscriptions=rpc.subscriptions, control=ctl)


class FlashSybil(SilentSybil):
    """Behaves honestly (forwards, gossips, earns score) until ``silent_from``, then is silent."""

    name = "flash-sybil"


class MsgRecord:
    """One published message: per node, delivery time (``inf``: never) and copies received."""

    __slots__ = ("mid", "publisher", "t0", "tag", "first", "copies", "validations", "invalid")

    def __init__(self, mid: bytes, publisher: int, t0: float, tag: str, n: int,
                 invalid: bool) -> None:
        self.mid = mid
        self.publisher = publisher
        self.t0 = t0
        self.tag = tag
        self.first = array("d", [INF]) * n
        self.copies = array("H", [0]) * n
        self.validations = 0  # nodes that spent CPU validating it
        self.invalid = invalid

    def grow(self, n: int) -> None:
        """Nodes added after the message was published never get it."""
        if len(self.first) < n:
            extra = n - len(self.first)
            self.first.extend(array("d", [INF]) * extra)
            self.copies.extend(array("H", [0]) * extra)


class GossipSimNode:
    """One simulated gossip peer."""

    __slots__ = ("idx", "peer_id", "core", "alive", "role", "behaviour", "slow", "timer_at",
                 "cpu_free", "up_free", "neighbours", "links")

    def __init__(self, idx: int, peer_id: PeerId, core: GossipCore, role: str) -> None:
        self.idx = idx
        self.peer_id = peer_id
        self.core = core
        self.alive = True
        self.role = role
        self.behaviour: GossipBehaviour | None = None
        self.slow = 1.0
        self.timer_at = INF
        self.cpu_free = 0.0
        self.up_free = 0.0
        self.neighbours: list[int] = []
        self.links: dict[PeerId, tuple[GossipSimNode, float]] = {}  # peer -> (node, latency)

    def __repr__(self) -> str:
        return f"GossipSimNode({self.idx}, {self.role}, {'up' if self.alive else 'down'})"


Verdict = Callable[[Message], Outcome]


def default_verdict(msg: Message) -> Outcome:
    """Data starting with ``INVALID`` is rejected (the spammer's), everything else accepted."""
    return Outcome.REJECT if msg.data.startswith(INVALID_PREFIX) else Outcome.ACCEPT


class GossipSimulator(DialsMixin):
    """N gossipsub routers in virtual time, connected along a graph and by the dials their cores
    ask for (see the module docstring)."""

    def __init__(
        self,
        seed: int = 0,
        *,
        network: NetworkModel | None = None,
        gossip: GossipConfig | None = None,
        crypto: CryptoModel | None = None,
        topic: str = "/sim/blocks/1",
        exact_sizes: bool = False,
    ) -> None:
        self.seed = seed
        self.rng = random.Random(seed)
        self.loop = EventLoop()
        self.network = network or NetworkModel()
        self.config = gossip or GossipConfig()
        self.crypto = crypto or CryptoModel()
        self.topic = topic
        self.exact_sizes = exact_sizes or self.crypto.mode == "execute"
        self.metrics = Metrics()
        self.nodes: list[GossipSimNode] = []
        self.by_id: dict[PeerId, GossipSimNode] = {}
        self.records: dict[bytes, MsgRecord] = {}
        self.published: list[MsgRecord] = []
        self.verdict: Verdict = default_verdict
        self.dial = DialModel()
        # Dials draw from their own seeded stream: what a run dials then never shifts the
        # main stream's later draws (publishers, loss), so runs with and without discovery
        # publish the same messages from the same nodes and compare pair by pair.
        self.dial_rng = random.Random(f"dial/{seed}")
        self._seqno = 0
        self._last_rpc: RPC | None = None
        self._last_size = 0
        loop = self.loop
        self.K_RPC = loop.register(self._on_rpc)
        self.K_TIMER = loop.register(self._on_timer)
        self.K_VALID = loop.register(self._on_valid)
        self.K_FOUND = loop.register(self._on_found)
        self.K_DIALED = loop.register(self._on_dialed)

    @property
    def now(self) -> float:
        return self.loop.now

    # == building ==============================================================================

    def add_node(
        self,
        *,
        role: str = "peer",
        behaviour: GossipBehaviour | None = None,
        config: GossipConfig | None = None,
        slow: float = 1.0,
    ) -> GossipSimNode:
        idx = len(self.nodes)
        key: Any
        if self.crypto.mode == "execute":
            key = KeyPair.from_seed(self.rng.randbytes(32))
        else:
            key = ModelKey(model_peer_id(self.rng))
        cfg = config or self.config
        core = GossipCore(cast(KeyPair, key), config=cfg,
                          rng=random.Random(self.rng.getrandbits(64)), now=self.now)
        if self.crypto.mode != "execute":
            core.verify = model_verify
        # Heartbeats of different nodes are not in phase.
        core.next_heartbeat = self.now + self.rng.random() * cfg.heartbeat_interval
        core.set_validator(self.topic, None)  # asynchronous: the simulator charges the CPU
        node = GossipSimNode(idx, key.peer_id, core, role)
        node.behaviour = behaviour
        node.slow = slow
        self.nodes.append(node)
        self.by_id[node.peer_id] = node
        self.metrics.counters["nodes_added"] += 1
        for rec in self.published:
            rec.grow(len(self.nodes))
        self._pump(node)
        return node

    def connect(self, a: GossipSimNode, b: GossipSimNode) -> None:
        """``a`` dials ``b``: both cores see the connection (``a`` outbound)."""
        now = self.now
        a.neighbours.append(b.idx)
        b.neighbours.append(a.idx)
        lat = self.network.latency
        a.links[b.peer_id] = (b, lat.latency(a.idx, b.idx))
        b.links[a.peer_id] = (a, lat.latency(b.idx, a.idx))
        a.core.on_peer_connected(b.peer_id, b.core.config.protocols, True, now)
        b.core.on_peer_connected(a.peer_id, a.core.config.protocols, False, now)
        rtt = a.links[b.peer_id][1] + b.links[a.peer_id][1]  # as a ping would measure it
        a.core.set_peer_rtt(b.peer_id, rtt)
        b.core.set_peer_rtt(a.peer_id, rtt)
        self._pump(a)
        self._pump(b)

    def connect_edges(self, edges: Iterable[tuple[int, int]]) -> None:
        """Connect along ``edges``; the dialing side of each edge is drawn from the RNG."""
        nodes = self.nodes
        rng = self.rng
        for u, v in edges:
            if rng.random() < 0.5:
                u, v = v, u
            self.connect(nodes[u], nodes[v])

    def subscribe(self, node: GossipSimNode) -> None:
        node.core.subscribe(self.topic, self.now)
        self._pump(node)

    def disconnect(self, a: GossipSimNode, b: GossipSimNode) -> None:
        now = self.now
        if b.idx in a.neighbours:
            a.neighbours.remove(b.idx)
            b.neighbours.remove(a.idx)
            del a.links[b.peer_id], b.links[a.peer_id]
        a.core.on_peer_disconnected(b.peer_id, now)
        b.core.on_peer_disconnected(a.peer_id, now)
        self._pump(a)
        self._pump(b)

    # == publishing ============================================================================

    def publish(self, node: GossipSimNode, size: int = 2048, tag: str = "msg",
                invalid: bool = False) -> MsgRecord:
        """``node`` publishes ``size`` bytes on the topic; returns the message's record."""
        self._seqno += 1
        head = (INVALID_PREFIX if invalid else b"MSG") + self._seqno.to_bytes(8, "big")
        data = head + bytes(max(0, size - len(head)))
        mid = node.core.publish(self.topic, data, self.now)
        rec = MsgRecord(mid, node.idx, self.now, tag, len(self.nodes), invalid)
        self.records[mid] = rec
        rec.first[node.idx] = self.now
        self.published.append(rec)
        self.metrics.counters["published"] += 1
        self._pump(node)
        return rec

    # == running ===============================================================================

    def run_for(self, seconds: float) -> int:
        return self.loop.run_until(self.now + seconds)

    def run_until(self, t: float) -> int:
        return self.loop.run_until(t)

    # == driver: commands -> events ============================================================

    def _pump(self, node: GossipSimNode) -> None:
        core = node.core
        for cmd in core.drain():
            t = type(cmd)
            if t is Send:
                self._send(node, cmd)  # type: ignore[arg-type]
            elif t is Emit:
                ev = cmd.event  # type: ignore[union-attr]
                te = type(ev)
                if te is ValidateMessage:
                    self._validate(node, ev)
                elif te is Message:
                    rec = self.records.get(ev.msg_id)
                    if rec is not None and rec.first[node.idx] == INF:
                        rec.first[node.idx] = self.loop.now
            elif t is Dial or t is FindPeers:
                if node.behaviour is not None and not node.behaviour.dials:
                    self.metrics.counters["dials_withheld"] += 1
                elif t is Dial:
                    self._px_dial(node, cmd.peer)  # type: ignore[union-attr]
                else:
                    self._find_peers(node, cmd)  # type: ignore[arg-type]
            elif t is Disconnect:
                self.metrics.counters["disconnects_asked"] += 1
        d = core.next_deadline()
        if d is not None and d < node.timer_at:
            node.timer_at = d
            loop = self.loop
            heappush(loop.heap, (d if d > loop.now else loop.now, next(loop.counter),
                                 self.K_TIMER, node, d, None))

    def _send(self, node: GossipSimNode, cmd: Send) -> None:
        rpc = cmd.message
        beh = node.behaviour
        c = self.metrics.counters
        if beh is not None:
            changed = beh.outbound(self, node, cmd.peer, rpc)
            if changed is None:
                c["rpcs_withheld"] += 1
                return
            rpc = changed
        link = node.links.get(cmd.peer)
        if link is None or not link[0].alive:
            c["rpcs_to_dead"] += 1
            return
        dst, delay = link
        if rpc is self._last_rpc:  # one RPC object forwarded to every mesh peer
            size = self._last_size
        else:
            size = len(GossipCore.encode(rpc)) + 4 if self.exact_sizes else rpc_size(rpc)
            self._last_rpc, self._last_size = rpc, size
        c["rpcs"] += 1
        c["bytes"] += size
        if rpc.publish:
            c["rpcs_with_messages"] += 1
            c["messages_sent"] += len(rpc.publish)
        net = self.network
        loop = self.loop
        if (net.groups is not None and net.blocked(node.idx, dst.idx)) or (
            net.loss > 0.0 and self.rng.random() < net.loss
        ):
            c["rpcs_lost"] += 1
            return
        if net.jitter:
            delay += self.rng.random() * net.jitter
        if net.bandwidth is not None:
            now = loop.now
            start = node.up_free if node.up_free > now else now
            node.up_free = start + size / net.bandwidth
            delay += node.up_free - now
        heappush(loop.heap, (loop.now + delay, next(loop.counter), self.K_RPC, dst, node, rpc))

    def _validate(self, node: GossipSimNode, ev: ValidateMessage) -> None:
        loop = self.loop
        now = loop.now
        cost = self.crypto.verify_cost * node.slow
        start = node.cpu_free if node.cpu_free > now else now
        node.cpu_free = start + cost
        rec = self.records.get(ev.msg_id)
        if rec is not None:
            rec.validations += 1
        self.metrics.counters["validations"] += 1
        heappush(loop.heap, (node.cpu_free, next(loop.counter), self.K_VALID, node, ev.msg_id,
                             self.verdict(ev.message)))

    # == driver: events -> core ================================================================

    def _on_rpc(self, dst: GossipSimNode, src: GossipSimNode, rpc: RPC) -> None:
        if not dst.alive:
            return
        if rpc.publish:
            records = self.records
            i = dst.idx
            for m in rpc.publish:
                rec = records.get(m.from_peer + m.seqno)
                if rec is not None:
                    rec.copies[i] += 1
        dst.core.on_rpc(src.peer_id, rpc, self.loop.now)
        self._pump(dst)

    def _on_valid(self, node: GossipSimNode, mid: bytes, outcome: Outcome) -> None:
        if node.alive:
            node.core.report_validation(mid, outcome, self.loop.now)
            self._pump(node)

    def _on_timer(self, node: GossipSimNode, when: float, _c: Any) -> None:
        if not node.alive or node.timer_at != when:
            return
        node.timer_at = INF
        node.core.on_timer(self.loop.now)
        self._pump(node)

    # == views =================================================================================

    def mesh_share(self, nodes: Sequence[GossipSimNode], bad: set[PeerId]) -> float:
        """Fraction of the mesh slots of ``nodes`` held by peers in ``bad``."""
        total = held = 0
        for n in nodes:
            mesh = n.core.mesh.get(self.topic, set())
            total += len(mesh)
            held += sum(1 for p in mesh if p in bad)
        return held / total if total else 0.0


def shortest_path_bound(
    sim: GossipSimulator, source: int, per_hop: float,
    allowed: Callable[[int], bool] | None = None,
) -> list[float]:
    """Earliest possible delivery time at every node of a message ``source`` publishes.

    Dijkstra over the connections, each hop costing the link's one-way latency plus
    ``per_hop`` (the receiver validates before it delivers and forwards). Nodes for which
    ``allowed`` is false neither receive nor relay (``inf``).
    """
    nodes = sim.nodes
    lat = sim.network.latency.latency
    dist = [INF] * len(nodes)
    dist[source] = 0.0
    heap = [(0.0, source)]
    while heap:
        d, u = heapq.heappop(heap)
        if d > dist[u]:
            continue
        for v in nodes[u].neighbours:
            if allowed is not None and not allowed(v):
                continue
            nd = d + lat(u, v) + per_hop
            if nd < dist[v]:
                dist[v] = nd
                heapq.heappush(heap, (nd, v))
    return dist
