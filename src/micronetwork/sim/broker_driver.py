"""The broker's wiring in the simulator: one node's gossip and broker cores, as NodeCore wires them.

Theory of operation. :class:`BrokerDriver` is a :class:`~.gossip.GossipSimulator` whose nodes
also run a :class:`~micronetwork.broker.BrokerCore` (``_spawn`` starts or restarts one: fresh
gossip and broker state, the same key). After every input it *pumps* the node: gossip messages
and new subscribers of broker topics go to the broker; a new gossip message waits in the CPU
queue for ``verify_cost`` before the broker's validator answers; the broker's ``Request`` and
``Respond`` travel as messages over the link's delay (serving a request costs ``request_cost``,
an answer with events costs ``verify_cost`` per event), and its ``Emit`` events are what the
application sees (deliveries, ``Missed``, ``CaughtUp``, ``Lagging``), recorded per (event,
logical node). Bytes are counted per logical node. The network, workload, churn and figures are
:class:`~.broker.BrokerSimulator`'s, built on this.
"""

from __future__ import annotations

import random
from array import array
from collections import Counter
from heapq import heappush
from typing import Any

import cbor2

from ..broker import BrokerConfig, BrokerCore, CaughtUp, Cursor, Delivery, Lagging, Missed
from ..commands import Emit, Request, Respond
from ..gossip import GossipCore, Message, Outcome, Send, ValidateMessage
from ..gossip.events import PeerSubscribed
from ..identity.keys import KeyPair
from .broker_config import BrokerSimConfig
from .crypto import CryptoModel
from .gossip import GossipSimNode, GossipSimulator, model_verify
from .models import NetworkModel, Uniform

__all__ = ["BrokerDriver"]

INF = float("inf")


class _Ports:
    """The broker's view of its node's gossip core (as ``NodeCore`` lends it), except that
    validation is asynchronous: the simulator charges its CPU, then asks the broker."""

    __slots__ = ("core",)

    def __init__(self, core: GossipCore) -> None:
        self.core = core

    def publish(self, topic: str, data: bytes, now: float) -> None:
        self.core.publish(topic, data, now)

    def subscribe(self, topic: str, now: float) -> None:
        self.core.set_validator(topic, None)
        self.core.subscribe(topic, now)

    def unsubscribe(self, topic: str, now: float) -> None:
        self.core.unsubscribe(topic, now)
        self.core.remove_validator(topic)


def _answer_events(message: Any) -> int:
    if isinstance(message, dict):
        events = message.get("events")
        if isinstance(events, list):
            return len(events)
    return 0


class BrokerDriver(GossipSimulator):
    """GossipSimulator whose nodes also run a BrokerCore: the wiring, requests and answers, and
    what the application sees (see the module docstring)."""

    def __init__(self, config: BrokerSimConfig) -> None:
        cfg = self.cfg = config
        net = NetworkModel(latency=Uniform(cfg.latency_low, cfg.latency_high, seed=cfg.seed))
        super().__init__(cfg.seed, network=net, crypto=CryptoModel(verify_cost=cfg.verify_cost))
        loop = self.loop
        self.K_REQ = loop.register(self._on_req)
        self.K_SERVE = loop.register(self._on_serve)
        self.K_RESP = loop.register(self._on_resp)
        self.K_ANSWER = loop.register(self._on_answer)
        n = cfg.nodes
        self.brokers: list[BrokerCore | None] = []  # by simulator index (one per incarnation)
        self.sids: list[int] = []
        self.who_of: list[int] = []  # simulator index -> logical node
        self.current: list[GossipSimNode] = []  # logical node -> its running incarnation
        self.keys: list[KeyPair] = []
        self.roles: list[str] = ["peer"] * n
        self.subscriber = bytearray(n)
        self.bootstrap: list[int] = [0] * n
        self.graph: list[list[int]] = [[] for _ in range(n)]
        self.saved: dict[int, Cursor] = {}  # the cursor each crashed node's application kept
        self.downs: dict[int, list[list[float]]] = {}  # who -> [[down_at, up_at], ...]
        self.catchup_s: list[float] = []  # rejoin -> CaughtUp
        self.bytes_out = array("q", [0]) * n
        self.bytes_in = array("q", [0]) * n
        self.missed = array("q", [0]) * n
        self.missed_by_reason: Counter[str] = Counter()
        self.app: Counter[str] = Counter()
        self.ev_index: dict[bytes, int] = {}
        self.ev_t0: list[float] = []
        self.first: list[array[float]] = []
        self.count: list[bytearray] = []
        self.recovered: list[bytearray] = []
        self._tokens: dict[int, tuple[GossipSimNode, int]] = {}
        self._next_token = 0
        self.crashes = 0
        self.rejoins = 0
        self.wall_s = 0.0

    # == nodes =================================================================================

    def _spawn(self, who: int) -> GossipSimNode:
        """Start (or restart) logical node ``who``: fresh gossip and broker state, same key."""
        cfg, rng, now = self.cfg, self.rng, self.now
        key = self.keys[who]
        core = GossipCore(key, config=self.config, rng=random.Random(rng.getrandbits(64)),
                          now=now)
        core.verify = model_verify  # the broker verifies each event's signature for real
        core.next_heartbeat = now + rng.random() * self.config.heartbeat_interval
        node = GossipSimNode(len(self.nodes), key.peer_id, core, self.roles[who])
        bcfg = (BrokerConfig(retain_topics="*", retention=cfg.super_retention)
                if self.roles[who] == "super" else BrokerConfig())
        broker = BrokerCore(key, _Ports(core), config=bcfg,
                            rng=random.Random(rng.getrandbits(64)), now=now)
        if self.roles[who] != "super":
            b = self.bootstrap[who]
            others = [s for s in range(cfg.supers) if s != b]
            broker.set_retention_peers([self.keys[s].peer_id for s in [b, *others]])
        self.nodes.append(node)
        self.brokers.append(broker)
        self.sids.append(0)
        self.who_of.append(who)
        self.by_id[key.peer_id] = node
        if who < len(self.current):
            self.current[who] = node
        else:
            self.current.append(node)
        return node

    # == driver: commands -> events ============================================================

    def _pump(self, node: GossipSimNode, touched: bool = False) -> None:
        """Run the node's commands until both cores are quiet. The broker is drained and asked
        for its deadline only when it had an input (``touched``): that is the only way its
        output and timers change, and asking costs ~10 % of a run."""
        core = node.core
        broker = self.brokers[node.idx] if node.idx < len(self.brokers) else None
        now = self.loop.now
        while True:
            cmds = core.drain()
            bcmds = broker.drain() if touched and broker is not None else []
            if not cmds and not bcmds:
                break
            for cmd in cmds:
                t = type(cmd)
                if t is Send:
                    self._send(node, cmd)  # type: ignore[arg-type]
                elif t is Emit:
                    ev = cmd.event  # type: ignore[union-attr]
                    te = type(ev)
                    if te is ValidateMessage:
                        self._validate(node, ev)
                    elif broker is None:
                        continue
                    elif te is Message and broker.is_broker_topic(ev.topic):
                        broker.on_message(ev, now)
                        touched = True
                    elif te is PeerSubscribed and broker.is_broker_topic(ev.topic):
                        broker.on_peer_subscribed(ev.peer, ev.topic, now)
                        touched = True
            for bc in bcmds:
                tb = type(bc)
                if tb is Request:
                    self._request(node, bc)  # type: ignore[arg-type]
                elif tb is Respond:
                    self._respond(node, bc)  # type: ignore[arg-type]
                elif tb is Emit:
                    self._app(node, bc.event)  # type: ignore[union-attr]
        d = core.next_deadline()
        if touched and broker is not None:
            bd = broker.next_deadline()
            if bd is not None and (d is None or bd < d):
                d = bd
        if d is not None and d < node.timer_at:
            node.timer_at = d
            loop = self.loop
            heappush(loop.heap, (d if d > now else now, next(loop.counter), self.K_TIMER, node,
                                 d, None))

    def _on_timer(self, node: GossipSimNode, when: float, _c: Any) -> None:
        if not node.alive or node.timer_at != when:
            return
        node.timer_at = INF
        now = self.loop.now
        d = node.core.next_deadline()
        if d is not None and d <= now:
            node.core.on_timer(now)
        broker = self.brokers[node.idx]
        if broker is not None:
            d = broker.next_deadline()
            if d is not None and d <= now:
                broker.on_timer(now)
        self._pump(node, True)

    def _send(self, node: GossipSimNode, cmd: Send) -> None:
        c = self.metrics.counters
        before = c["bytes"]
        super()._send(node, cmd)
        sent = c["bytes"] - before
        if sent:
            self.bytes_out[self.who_of[node.idx]] += sent
            link = node.links.get(cmd.peer)
            if link is not None:
                self.bytes_in[self.who_of[link[0].idx]] += sent

    def _validate(self, node: GossipSimNode, ev: ValidateMessage) -> None:
        loop = self.loop
        now = loop.now
        start = node.cpu_free if node.cpu_free > now else now
        node.cpu_free = start + self.crypto.verify_cost * node.slow
        self.metrics.counters["validations"] += 1
        heappush(loop.heap, (node.cpu_free, next(loop.counter), self.K_VALID, node, ev.msg_id,
                             ev.message))

    def _on_valid(self, node: GossipSimNode, mid: bytes, msg: Any) -> None:
        if not node.alive:
            return
        broker = self.brokers[node.idx]
        outcome = Outcome.ACCEPT
        if broker is not None and broker.is_broker_topic(msg.topic):
            outcome = broker.validate(msg)
        node.core.report_validation(mid, outcome, self.loop.now)
        self._pump(node)

    # == requests and answers (``/micronetwork/broker/1.0.0``) =================================

    def _delay(self, a: GossipSimNode, b: GossipSimNode) -> float:
        link = a.links.get(b.peer_id)
        return link[1] if link is not None else self.network.latency.latency(a.idx, b.idx)

    def _account(self, src: GossipSimNode, dst: GossipSimNode, message: Any) -> None:
        size = len(cbor2.dumps(message)) + 8  # + framing
        c = self.metrics.counters
        c["request_bytes"] += size
        self.bytes_out[self.who_of[src.idx]] += size
        self.bytes_in[self.who_of[dst.idx]] += size

    def _request(self, node: GossipSimNode, cmd: Request) -> None:
        c = self.metrics.counters
        dst = self.by_id.get(cmd.peer)
        if dst is None or not dst.alive:
            c["requests_to_dead"] += 1  # the broker's request timeout acts
            return
        c["requests"] += 1
        self._account(node, dst, cmd.message)
        self.loop.push(self.now + self._delay(node, dst), self.K_REQ, dst, node, cmd)

    def _on_req(self, dst: GossipSimNode, src: GossipSimNode, cmd: Request) -> None:
        if not dst.alive:
            return
        now = self.loop.now
        start = dst.cpu_free if dst.cpu_free > now else now
        dst.cpu_free = start + self.cfg.request_cost * dst.slow
        self.loop.push(dst.cpu_free, self.K_SERVE, dst, src, cmd)

    def _on_serve(self, dst: GossipSimNode, src: GossipSimNode, cmd: Request) -> None:
        broker = self.brokers[dst.idx]
        if not dst.alive or broker is None:
            return
        self._next_token += 1
        self._tokens[self._next_token] = (src, cmd.request_id)
        broker.on_request(src.peer_id, self._next_token, cmd.message, self.loop.now)
        self._pump(dst, True)

    def _respond(self, node: GossipSimNode, cmd: Respond) -> None:
        entry = self._tokens.pop(cmd.token, None)
        if entry is None:
            return
        client, rid = entry
        if not client.alive:
            return
        self._account(node, client, cmd.message)
        self.loop.push(self.now + self._delay(node, client), self.K_RESP, client, node,
                       (rid, cmd.message))

    def _on_resp(self, client: GossipSimNode, server: GossipSimNode, item: Any) -> None:
        if not client.alive:
            return
        n = _answer_events(item[1])
        if not n:
            self._on_answer(client, server, item)
            return
        now = self.loop.now
        start = client.cpu_free if client.cpu_free > now else now
        client.cpu_free = start + n * self.crypto.verify_cost * client.slow
        self.loop.push(client.cpu_free, self.K_ANSWER, client, server, item)

    def _on_answer(self, client: GossipSimNode, server: GossipSimNode, item: Any) -> None:
        broker = self.brokers[client.idx]
        if not client.alive or broker is None:
            return
        rid, message = item
        broker.on_response(server.peer_id, rid, message, self.loop.now)
        self._pump(client, True)

    # == what the application sees =============================================================

    def _app(self, node: GossipSimNode, ev: object) -> None:
        who = self.who_of[node.idx]
        te = type(ev)
        if te is Delivery:
            assert isinstance(ev, Delivery)
            self.app["deliveries"] += 1
            i = self.ev_index.get(ev.event.id)
            if i is not None:
                count = self.count[i]
                if count[who] == 0:
                    self.first[i][who] = self.loop.now
                    self.recovered[i][who] = ev.source is not None
                count[who] = min(255, count[who] + 1)
            broker = self.brokers[node.idx]
            assert broker is not None
            broker.consumed(ev.subscription, 1, self.loop.now)
        elif te is Missed:
            assert isinstance(ev, Missed)
            self.missed[who] += ev.count
            self.missed_by_reason[ev.reason] += ev.count
            self.app[f"missed_{ev.reason}_reports"] += 1
        elif te is CaughtUp:
            self.app["caught_up"] += 1
            spans = self.downs.get(who)
            if spans and node is self.current[who] and spans[-1][1] <= self.now:
                self.catchup_s.append(self.now - spans[-1][1])
        elif te is Lagging:
            self.app["lagging"] += 1
