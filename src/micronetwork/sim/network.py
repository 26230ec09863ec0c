"""The simulation driver: many real KademliaCores on one virtual clock.

Theory of operation. The :class:`Simulator` plays the part the host driver plays on real
sockets, for every node at once. It owns the event loop, the network model, the nodes and one
seeded RNG (shared by every core and every model: events run in a fixed order, so the whole run
is a function of the seed). After anything happens to a core the simulator *pumps* it: it drains
the core's commands and turns each into events —

* ``Request`` -> a REQUEST event at the destination after the link's one-way delay (or, if the
  destination is gone, a FAILED event after ``dead_peer_delay``; if the message is lost or
  crosses a partition, nothing: the core's own deadline fires);
* ``Respond`` -> a RESPONSE event back at the requester (one-way requests such as
  ADD_PROVIDER are reported as delivered at once, as the host driver does);
* ``Emit(QueryFinished)`` -> a :class:`~.metrics.LookupRecord` for queries the scenario asked for;

and it keeps one TIMER event per node at the core's ``next_deadline()``. A delivered request
first identifies its sender at the receiver (``on_peer_identified``, as libp2p's identify does
on a new connection; the simulator has no connection state, so it does so per request), then goes
to the node's :class:`~.node.Behaviour` (honest: the core). A node's CPU is a queue: each inbound
request costs ``crypto.verify_cost * node.slow`` and the answer leaves when the CPU is done.

With ``compact_tables=True`` every core gets a :class:`~.compact_table.CompactTable` (node
numbers in arrays: ~26 bytes per entry, all in, instead of ~120-143) over the simulator's
:class:`~.compact_table.Directory`, where node ``n`` is ``nodes[n]``: the same run, event for
event, in about a quarter of the memory (measured 0.25-0.28x; a million nodes in 11.8 GiB).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from heapq import heappush
from typing import Any

from ..commands import Disconnect, Emit, Request, Respond
from ..identity.peerid import PeerId
from ..kademlia import KademliaConfig, KademliaCore, QueryFinished
from ..kademlia.keyspace import (
    PreimagePool,
    clear_pins,
    peer_key,
    pin_peer_key,
    use_preimage_pool,
)
from ..kademlia.messages import KadMessage
from .compact_table import CompactTable, Directory
from .crypto import CryptoModel, model_peer_id
from .loop import EventLoop
from .metrics import LookupRecord, MessageRecord, Metrics
from .models import NetworkModel
from .node import Behaviour, SimNode

__all__ = ["Simulator", "message_size"]

INF = float("inf")
_PEER_BYTES = 38 + 8 + 8  # peer id + one 8-byte binary multiaddr + protobuf framing
_POOL: PreimagePool | None = None
_Check = Callable[[QueryFinished], "bool | None"]


def message_size(msg: KadMessage | None) -> int:
    """Estimated wire size of a Kademlia message (exact with ``exact_sizes=True``)."""
    if msg is None:
        return 0
    size = 8 + len(msg.key) + _PEER_BYTES * (len(msg.closer_peers) + len(msg.provider_peers))
    if msg.record is not None:
        size += 8 + len(msg.record.key) + len(msg.record.value)
    return size


class Simulator:
    """N nodes running the real Kademlia core in virtual time (see the module docstring)."""

    def __init__(
        self,
        seed: int = 0,
        *,
        network: NetworkModel | None = None,
        kad: KademliaConfig | None = None,
        crypto: CryptoModel | None = None,
        record_messages: bool = False,
        exact_sizes: bool = False,
        compact_tables: bool = False,
    ) -> None:
        global _POOL
        self.seed = seed
        self.rng = random.Random(seed)
        self.loop = EventLoop()
        self.network = network or NetworkModel()
        self.kad = kad or KademliaConfig()
        self.crypto = crypto or CryptoModel()
        self.metrics = Metrics(record_messages)
        self.exact_sizes = exact_sizes or self.crypto.mode == "execute"
        self.nodes: list[SimNode] = []
        self.by_id: dict[PeerId, SimNode] = {}
        self.directory: Directory | None = Directory() if compact_tables else None
        self.alive: list[SimNode] = []
        self._alive_pos: dict[int, int] = {}
        self._tokens: dict[int, tuple[SimNode, int, bool]] = {}
        self._next_token = 1
        self._tracked: dict[tuple[int, int], tuple[str, _Check | None]] = {}
        self._reply_delay = 0.0
        self._keys: dict[int, Any] = {}  # execute mode: node -> KeyPair
        self._protos = [self.kad.protocol_id]
        loop = self.loop
        self.K_REQ = loop.register(self._on_req)
        self.K_RESP = loop.register(self._on_resp)
        self.K_FAIL = loop.register(self._on_fail)
        self.K_TIMER = loop.register(self._on_timer)
        self.K_DISC = loop.register(self._on_disconnected)
        # Ids pinned by an earlier simulation in this process may recur (same seed, same ids):
        # one simulation with chosen-key nodes at a time per process.
        clear_pins()
        if _POOL is None:
            _POOL = PreimagePool(18, seed=0x5EED)
        use_preimage_pool(_POOL)

    # == building ==============================================================================

    @property
    def now(self) -> float:
        return self.loop.now

    def add_node(
        self,
        *,
        role: str = "peer",
        config: KademliaConfig | None = None,
        key: int | None = None,
        behaviour: Behaviour | None = None,
        slow: float = 1.0,
        bootstrap: Sequence[SimNode] = (),
    ) -> SimNode:
        """Create a node (not yet bootstrapped). ``key`` places it at a chosen Kademlia key
        (an attacker that ground its id); otherwise its key is the hash of its peer id."""
        idx = len(self.nodes)
        if self.crypto.mode == "execute":
            from ..identity import KeyPair

            kp = KeyPair.from_seed(self.rng.randbytes(32))
            pid = kp.peer_id
            self._keys[idx] = kp
        else:
            pid = model_peer_id(self.rng)
        if key is not None:
            pin_peer_key(pid, key)
        nkey = peer_key(pid)
        addr = b"\x04" + (0x0A000000 + idx).to_bytes(4, "big") + b"\x06\x0f\xa1"
        cfg = config or self.kad
        table = None
        if self.directory is not None:
            if self.directory.add(pid, nkey, (addr,)) != idx:
                raise ValueError(f"peer id of node {idx} is already in the simulation")
            table = CompactTable(self.directory, pid, cfg.k, nkey, cfg.bucket_spread_bits)
        core = KademliaCore(
            pid, config=cfg, rng=self.rng, now=self.now, local_addrs=(addr,), local_key=nkey,
            table=table,
        )
        node = SimNode(idx, pid, nkey, (addr,), core, role, self.now)
        node.behaviour = behaviour
        node.slow = slow
        self.nodes.append(node)
        self.by_id[pid] = node
        self._alive_pos[idx] = len(self.alive)
        self.alive.append(node)
        for b in bootstrap:
            core.add_bootstrap_peer(b.peer_id, b.addrs)
        self.metrics.counters["nodes_added"] += 1
        self._pump(node)
        return node

    def start_bootstrap(self, node: SimNode, tag: str = "bootstrap") -> int:
        """Bootstrap ``node`` (own-id lookup through its bootstrap peers, then refresh)."""
        return self.query(node, "bootstrap", tag=tag)

    # == queries ===============================================================================

    def query(
        self,
        node: SimNode,
        method: str,
        *args: Any,
        tag: str = "",
        on_done: Callable[[QueryFinished], bool | None] | None = None,
    ) -> int:
        """Start ``node.core.<method>(*args, now)`` and record it as a LookupRecord when done.

        ``on_done(event)`` may return a bool, which overrides the record's ``ok`` (a scenario
        judging success by its own global view, e.g. "the target was among the results").
        """
        qid: int = getattr(node.core, method)(*args, self.now)
        self._tracked[(node.idx, qid)] = (tag or method, on_done)
        self._pump(node)
        return qid

    # == faults ================================================================================

    def crash(self, node: SimNode) -> None:
        """The node vanishes: no goodbye, peers find out through timeouts."""
        if not node.alive:
            return
        node.alive = False
        node.left = self.now
        self._unlist(node)
        self.metrics.counters["crashes"] += 1

    def leave(self, node: SimNode) -> None:
        """Graceful leave: connections close, peers that know it are told and ping it."""
        if not node.alive:
            return
        self.crash(node)
        self.metrics.counters["crashes"] -= 1
        self.metrics.counters["leaves"] += 1
        net = self.network
        for peer in node.core.table.peers():
            other = self.by_id.get(peer)
            if other is not None and other.alive:
                d = net.delay(node.idx, other.idx, self.rng)
                self.loop.push(self.now + d, self.K_DISC, other, node.peer_id)

    def _unlist(self, node: SimNode) -> None:
        pos = self._alive_pos.pop(node.idx)
        last = self.alive.pop()
        if last is not node:
            self.alive[pos] = last
            self._alive_pos[last.idx] = pos

    def random_alive(self, exclude_roles: tuple[str, ...] = ()) -> SimNode:
        for _ in range(1000):
            n = self.alive[self.rng.randrange(len(self.alive))]
            if n.role not in exclude_roles:
                return n
        raise RuntimeError("no alive node outside the excluded roles")

    # == running ===============================================================================

    def run_for(self, seconds: float) -> int:
        return self.loop.run_until(self.now + seconds)

    def run_until(self, t: float) -> int:
        return self.loop.run_until(t)

    def settle(self, tracked_only: bool = True, limit: float = 600.0) -> None:
        """Run until every tracked query finished (or ``limit`` virtual seconds passed)."""
        end = self.now + limit
        while self._tracked and self.now < end:
            self.loop.run_until(min(end, self.now + 1.0))

    @property
    def running_queries(self) -> int:
        """Queries started through :meth:`query` that have not finished yet."""
        return len(self._tracked)

    def finish_tracked(self, reason: str = "unfinished") -> None:
        """Record every query still running as failed (the scenario stops waiting)."""
        for (idx, _qid), (tag, _) in list(self._tracked.items()):
            self.metrics.lookups.append(
                LookupRecord(idx, "unknown", tag, self.now, 0.0, 0, 0, 0, 0, False, 0, reason)
            )
        self._tracked.clear()

    # == driver: commands -> events ============================================================

    def _pump(self, node: SimNode) -> None:
        core = node.core
        cmds = core.drain()
        for cmd in cmds:
            t = type(cmd)
            if t is Request:
                self._send_request(node, cmd)  # type: ignore[arg-type]
            elif t is Respond:
                self._send_response(node, cmd.token, cmd.message)  # type: ignore[union-attr]
            elif t is Emit:
                ev = cmd.event  # type: ignore[union-attr]
                if type(ev) is QueryFinished:
                    self._finished(node, ev)
            elif t is Disconnect:
                self.metrics.counters["disconnects"] += 1
        d = core.next_deadline()
        if d is not None and d < node.timer_at:
            node.timer_at = d
            loop = self.loop
            heappush(loop.heap, (d if d > loop.now else loop.now, next(loop.counter),
                                 self.K_TIMER, node, d, None))

    def _send_request(self, node: SimNode, cmd: Request) -> None:
        c = self.metrics.counters
        c["requests"] += 1
        dst = self.by_id.get(cmd.peer)
        net = self.network
        loop = self.loop
        if dst is None or not dst.alive:
            c["requests_to_dead"] += 1
            loop.push(loop.now + net.dead_peer_delay, self.K_FAIL, node, cmd.peer, cmd.request_id)
            return
        delay = self._transit(node, dst, cmd.message)
        if delay < 0:
            return
        heappush(loop.heap, (loop.now + delay, next(loop.counter), self.K_REQ, dst, node, cmd))

    def _transit(self, src: SimNode, dst: SimNode, msg: KadMessage | None) -> float:
        """Delay of one message src -> dst, or -1 if it is lost or blocked."""
        net = self.network
        rng = self.rng
        c = self.metrics.counters
        if self.exact_sizes and msg is not None:
            size = len(KademliaCore.encode(msg)) + 4
        else:
            size = message_size(msg)
        c["bytes"] += size
        lost = (net.groups is not None and net.blocked(src.idx, dst.idx)) or (
            net.loss > 0.0 and rng.random() < net.loss
        )
        delay = net.delay(src.idx, dst.idx, rng)
        if net.bandwidth is not None:
            now = self.loop.now
            start = src.up_free if src.up_free > now else now
            src.up_free = start + size / net.bandwidth
            delay += src.up_free - now
        if self.metrics.record_messages:
            mtype = msg.type.name if msg is not None else "RESPONSE"
            self.metrics.messages.append(
                MessageRecord(self.loop.now, src.idx, dst.idx, mtype, size, delay, lost)
            )
        if lost:
            c["messages_lost"] += 1
            return -1.0
        return delay

    def _send_response(self, node: SimNode, token: int, message: KadMessage | None) -> None:
        entry = self._tokens.pop(token, None)
        if entry is None:
            return
        requester, rid, expect = entry
        loop = self.loop
        if not expect:
            loop.push(loop.now, self.K_RESP, requester, (node, rid), None)
            return
        if message is None:
            d = self.network.delay(node.idx, requester.idx, self.rng)
            loop.push(loop.now + d, self.K_FAIL, requester, node.peer_id, rid)
            return
        delay = self._transit(node, requester, message)
        if delay < 0:
            return
        heappush(loop.heap, (loop.now + self._reply_delay + delay, next(loop.counter),
                             self.K_RESP, requester, (node, rid), message))

    def respond(self, node: SimNode, token: int, message: KadMessage | None) -> None:
        """For behaviours: answer inbound request ``token`` of ``node`` with ``message``."""
        self._send_response(node, token, message)

    def drop_token(self, token: int) -> None:
        """For behaviours: never answer inbound request ``token``."""
        self._tokens.pop(token, None)

    # == driver: events -> core ================================================================

    def _on_req(self, dst: SimNode, src: SimNode, cmd: Request) -> None:
        now = self.loop.now
        if not dst.alive:
            # It died while the request was in flight: the requester's dial/stream fails.
            self.loop.push(now + self.network.dead_peer_delay, self.K_FAIL, src, dst.peer_id,
                           cmd.request_id)
            return
        core = dst.core
        if src.server and src.alive:
            core.on_peer_identified(src.peer_id, src.addrs, self._protos, now)
        token = self._next_token
        self._next_token = token + 1
        self._tokens[token] = (src, cmd.request_id, cmd.expect_response)
        cost = self.crypto.verify_cost * dst.slow
        dst.served += 1
        if cost:
            start = dst.cpu_free if dst.cpu_free > now else now
            if start - now > dst.wait_max:
                dst.wait_max = start - now
            dst.cpu_free = start + cost
            dst.busy += cost
            self._reply_delay = dst.cpu_free - now
        msg = cmd.message
        if self.crypto.mode == "execute":
            self._execute_crypto(src, dst, msg)
        beh = dst.behaviour
        if beh is None:
            core.on_request(src.peer_id, token, msg, now)
        else:
            beh.on_request(self, dst, src, token, msg)
        self._pump(dst)
        self._reply_delay = 0.0

    def _on_resp(
        self, requester: SimNode, info: tuple[SimNode, int], msg: KadMessage | None
    ) -> None:
        if not requester.alive:
            return
        responder, rid = info
        requester.core.on_response(responder.peer_id, rid, msg, self.loop.now)
        self._pump(requester)

    def _on_fail(self, requester: SimNode, peer: PeerId, rid: int) -> None:
        if not requester.alive:
            return
        requester.core.on_request_failed(peer, rid, "unreachable", self.loop.now)
        self._pump(requester)

    def _on_timer(self, node: SimNode, when: float, _c: Any) -> None:
        if not node.alive or node.timer_at != when:
            return
        node.timer_at = INF
        node.core.on_timer(self.loop.now)
        self._pump(node)

    def _on_disconnected(self, node: SimNode, peer: PeerId, _c: Any) -> None:
        if node.alive:
            node.core.on_peer_disconnected(peer, self.loop.now)
            self._pump(node)

    def _execute_crypto(self, src: SimNode, dst: SimNode, msg: KadMessage) -> None:
        from ..identity.keys import verify_signature

        kp = self._keys.get(src.idx)
        if kp is None:
            return
        data = KademliaCore.encode(msg)
        sig = kp.sign(data)
        verify_signature(src.peer_id.public_key() or b"", data, sig)
        self.metrics.counters["signatures_verified"] += 1

    def _finished(self, node: SimNode, ev: QueryFinished) -> None:
        c = self.metrics.counters
        c["queries_" + ev.kind.value] += 1
        tracked = self._tracked.pop((node.idx, ev.query_id), None)
        if tracked is None:
            return
        tag, cb = tracked
        s = ev.stats
        ok = ev.error is None
        verdict = cb(ev) if cb is not None else None
        if isinstance(verdict, bool):
            ok = verdict
        self.metrics.lookups.append(
            LookupRecord(
                node.idx, ev.kind.value, tag, s.started, s.duration, s.rounds, s.requests,
                s.successes, s.failures, ok, s.stored, ev.error or ("" if ok else "check failed"),
            )
        )
