"""The broker in the simulator: delivery ratio and latency of retained pub/sub under churn.

Issue 6 asks for "in the simulator at 10k nodes, delivery ratio and latency with 10% churn".
This runs the real :class:`~micronetwork.broker.BrokerCore` of every node on top of the real
gossip core in virtual time (:class:`~.gossip.GossipSimulator` supplies the event loop, the
links with latency and the gossipsub routers), wired as ``NodeCore`` wires it: gossip messages
and new subscribers of broker topics go to the broker, the broker publishes and subscribes
through gossip, and its ``replay``/``range`` requests travel as request/response messages.

Theory of operation.

* **Network.** N nodes with real Ed25519 keys (the broker signs and verifies events for real);
  a seeded random regular graph of degree 20 gives the gossip connections; ``supers`` super
  nodes know each other and every other node keeps a connection to one of them (its bootstrap
  node), which is also its first retention node (then the other supers), as on a real network.
  Super nodes run the real super-node broker defaults (``retain_topics="*"``, 100,000 events,
  256 MiB, 7 days per topic). One-way link latency U(20, 120) ms, fixed per link.
* **CPU.** Every new gossip message waits in the receiving node's CPU queue for
  ``verify_cost`` (10 ms) before the broker's validator answers (as :mod:`.gossip` models
  validation); a request costs the serving node ``request_cost`` (1 ms); an answer carrying
  events costs the requester ``verify_cost`` per event (it verifies each one).
* **Workload.** ``publishers`` nodes publish ``payload``-byte events on one topic, round robin,
  ``rate`` events per second in total, during a window that starts after a warm-up.
  Subscribers (a fraction of the other nodes, default all) subscribe during the warm-up with
  ``since=Cursor(now)`` and take every delivery at once (``consumed``).
* **Churn.** During the window ``churn`` x (number of regular nodes) crashes happen at uniform
  random times, each of a random regular node that is up; it stays down U(``down_min``,
  ``down_max``) seconds and restarts with its key (a new process: fresh gossip and broker
  state) and the cursor its application saved (everything delivered before the crash),
  reconnects to its graph neighbours that are up and its bootstrap super, and subscribes with
  ``since=cursor``. Neighbours notice a crash ``detect`` seconds later (the connection
  resets). Super nodes and publishers do not churn.
* **Measured** per (event, subscriber): deliveries to the application (exactly once is the
  goal, more is a duplicate), the time of the first, and how it came (live by gossip, or from
  retention: a replay after a restart or a gap fill). Pairs are split by whether the subscriber
  was up or down when the event was published; ``Missed`` counts come from the broker.

Figures: :meth:`BrokerSimulator.figures`. One call: :func:`run_broker_sim`.
"""

from __future__ import annotations

import gc
import math
import random
import resource
import time
from array import array
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from heapq import heappush
from typing import Any

import cbor2

from ..broker import (
    BrokerConfig,
    BrokerCore,
    CaughtUp,
    Cursor,
    Delivery,
    Lagging,
    Missed,
    RetentionLimits,
)
from ..commands import Emit, Request, Respond
from ..gossip import GossipCore, Message, Outcome, Send, ValidateMessage
from ..gossip.events import PeerSubscribed
from ..identity.keys import KeyPair
from .crypto import CryptoModel
from .gossip import GossipSimNode, GossipSimulator, model_verify
from .gossip_scenarios import regular_edges
from .models import NetworkModel, Uniform

__all__ = ["SUPER_RETENTION", "BrokerSimConfig", "BrokerSimulator", "run_broker_sim"]

INF = float("inf")
SUPER_RETENTION = RetentionLimits(max_events=100_000, max_bytes=256 << 20,
                                  max_age=7 * 24 * 3600.0)
"""What a super node retains per topic by default (``NodeConfig.broker_config()``)."""

Progress = Callable[[float, str], None]


@dataclass(frozen=True, slots=True)
class BrokerSimConfig:
    """One run (see the module docstring). Times are virtual seconds."""

    nodes: int = 1000
    seed: int = 1
    supers: int = 4
    degree: int = 20
    publishers: int = 10
    rate: float = 1.0  # events per second, all publishers together
    warmup: float = 10.0
    window: float = 60.0  # publishing and churn
    tail: float = 35.0  # after the window: rejoins, replays, gap timeouts finish
    subscribers: float = 1.0  # fraction of the regular nodes that subscribe
    churn: float = 0.10  # crashes during the window, as a fraction of the regular nodes
    down_min: float = 5.0
    down_max: float = 20.0
    detect: float = 1.0  # neighbours notice a crash after this long
    payload: int = 256
    verify_cost: float = 0.010
    request_cost: float = 0.001
    latency_low: float = 0.020
    latency_high: float = 0.120
    super_retention: RetentionLimits = field(default_factory=lambda: SUPER_RETENTION)
    topic: str = "orders"

    def __post_init__(self) -> None:
        if self.nodes < self.supers + self.publishers + 2 or self.supers < 1:
            raise ValueError("need at least one super node, the publishers and 2 more nodes")
        if not (0 <= self.churn <= 1 and 0 < self.subscribers <= 1 and self.rate > 0):
            raise ValueError("churn in [0, 1], subscribers in (0, 1], rate > 0")
        if not 0 < self.detect < self.down_min <= self.down_max:
            raise ValueError("need 0 < detect < down_min <= down_max")

    def describe(self) -> dict[str, Any]:
        d = asdict(self)
        d["super_retention"] = asdict(self.super_retention)
        d["events"] = self.events
        d["latency"] = f"one-way U({self.latency_low * 1000:g}, {self.latency_high * 1000:g}) ms"
        return d

    @property
    def events(self) -> int:
        return int(self.window * self.rate)


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


@contextmanager
def _no_gc() -> Iterator[None]:
    """No cyclic GC while the loop runs (as the gossip scenarios do: millions of objects)."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def _answer_events(message: Any) -> int:
    if isinstance(message, dict):
        events = message.get("events")
        if isinstance(events, list):
            return len(events)
    return 0


class BrokerSimulator(GossipSimulator):
    """GossipSimulator whose nodes also run a BrokerCore; nodes crash and restart."""

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

    def build(self) -> None:
        cfg, rng, n = self.cfg, self.rng, self.cfg.nodes
        self.keys = [KeyPair.from_seed(rng.randbytes(32)) for _ in range(n)]
        regular = list(range(cfg.supers, n))
        for s in range(cfg.supers):
            self.roles[s] = "super"
        self.publisher_ids = rng.sample(regular, cfg.publishers)
        for p in self.publisher_ids:
            self.roles[p] = "publisher"
        self.churnable = [w for w in regular if self.roles[w] == "peer"]
        subs = rng.sample(self.churnable, round(cfg.subscribers * len(self.churnable)))
        for w in subs:
            self.subscriber[w] = 1
        self.subscriber_ids = sorted(subs)
        for w in regular:
            self.bootstrap[w] = rng.randrange(cfg.supers)
        for w in range(n):
            self._spawn(w)
        edges = regular_edges(n, cfg.degree, cfg.seed)
        for u, v in edges:
            self.graph[u].append(v)
            self.graph[v].append(u)
        self.connect_edges(edges)
        nodes = self.current
        for a in range(cfg.supers):  # the backbone: super nodes know each other
            for b in range(a + 1, cfg.supers):
                if nodes[b].peer_id not in nodes[a].links:
                    self.connect(nodes[a], nodes[b])
        for w in regular:  # every node keeps its connection to its bootstrap node
            sup = nodes[self.bootstrap[w]]
            if sup.peer_id not in nodes[w].links:
                self.connect(nodes[w], sup)
        self._schedule()

    def _schedule(self) -> None:
        cfg, rng, loop = self.cfg, self.rng, self.loop
        for w in self.subscriber_ids:  # subscriptions spread over the first half of warm-up
            loop.call_at(rng.random() * cfg.warmup / 2, self._subscribe, w, None)
        for k in range(cfg.events):
            loop.call_at(cfg.warmup + k / cfg.rate, self._publish, k)
        crashes = round(cfg.churn * len(self.churnable))
        for t in sorted(rng.uniform(cfg.warmup, cfg.warmup + cfg.window)
                        for _ in range(crashes)):
            loop.call_at(t, self._crash)

    def _subscribe(self, who: int, since: Cursor | None) -> None:
        node = self.current[who]
        broker = self.brokers[node.idx]
        assert broker is not None
        cursor = since if since is not None else Cursor(self.now)
        self.sids[node.idx] = broker.subscribe(self.cfg.topic, self.now, since=cursor)
        self._pump(node, True)

    def _publish(self, k: int) -> None:
        pubs = self.publisher_ids
        node = self.current[pubs[k % len(pubs)]]
        broker = self.brokers[node.idx]
        assert broker is not None
        body = k.to_bytes(8, "big")
        ev = broker.publish(self.cfg.topic, body + bytes(max(0, self.cfg.payload - 8)), self.now)
        n = self.cfg.nodes
        self.ev_index[ev.id] = len(self.ev_t0)
        self.ev_t0.append(self.now)
        self.first.append(array("d", [INF]) * n)
        self.count.append(bytearray(n))
        self.recovered.append(bytearray(n))
        self._pump(node, True)

    def _crash(self) -> None:
        rng, up = self.rng, self.current
        for _ in range(1000):
            who = self.churnable[rng.randrange(len(self.churnable))]
            if up[who].alive:
                break
        else:
            return
        node = up[who]
        broker = self.brokers[node.idx]
        if broker is not None and self.sids[node.idx]:
            self.saved[who] = broker.cursor(self.sids[node.idx])
        node.alive = False
        node.timer_at = INF
        self.crashes += 1
        down = self.cfg.down_min + rng.random() * (self.cfg.down_max - self.cfg.down_min)
        self.downs.setdefault(who, []).append([self.now, self.now + down])
        self.loop.call_later(self.cfg.detect, self._detected, node)
        self.loop.call_later(down, self._rejoin, who)

    def _detected(self, dead: GossipSimNode) -> None:
        """The peers of a crashed node see its connections close."""
        for peer, _lat in list(dead.links.values()):
            self._link_down(peer, dead)

    def _link_down(self, peer: GossipSimNode, dead: GossipSimNode) -> None:
        link = peer.links.get(dead.peer_id)
        if not peer.alive or link is None or link[0] is not dead:
            return
        del peer.links[dead.peer_id]
        peer.neighbours.remove(dead.idx)
        peer.core.on_peer_disconnected(dead.peer_id, self.now)
        self._pump(peer)

    def _rejoin(self, who: int) -> None:
        old = self.current[who]
        node = self._spawn(who)
        self.rejoins += 1
        for peer_who in [*self.graph[who], self.bootstrap[who]]:
            peer = self.current[peer_who]
            if not peer.alive or peer.peer_id in node.links:
                continue
            self._link_down(peer, old)  # if it has not noticed the crash yet
            self.connect(node, peer)
        if self.subscriber[who]:
            self._subscribe(who, self.saved.get(who) or Cursor(self.now))

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

    # == running and figures ===================================================================

    def run(self, progress: Progress | None = None) -> None:
        cfg = self.cfg
        total = cfg.warmup + cfg.window + cfg.tail
        t0 = time.perf_counter()
        with _no_gc():
            t = 0.0
            while t < total:
                t = min(total, t + 1.0)
                self.loop.run_until(t)
                if progress is not None:
                    stage = ("warm-up" if t <= cfg.warmup else
                             "window" if t <= cfg.warmup + cfg.window else "tail")
                    progress(t / total, stage)
        self.wall_s = time.perf_counter() - t0

    def _rejoined(self, who: int, t0: float, t1: float) -> float | None:
        """If ``who`` was down at some time in ``[t0, t1)`` (down when an event was published,
        or crashed before it had it): when it last came back up before ``t1``."""
        last = None
        for down_at, up_at in self.downs.get(who, ()):
            if down_at < t1 and t0 < up_at <= t1:
                last = up_at
        return last

    def _pairs(self) -> dict[str, Any]:
        """Per (event, subscriber) pair, split by whether the subscriber stayed up from the
        publication to the delivery ("up") or was down in between ("down": it had to catch up
        after it restarted)."""
        exp = Counter[str]()
        once = Counter[str]()
        path = Counter[str]()
        dup = zero = 0
        lat: dict[str, list[float]] = {"up": [], "down": []}
        after_rejoin: list[float] = []
        for i, t0 in enumerate(self.ev_t0):
            first, count, recovered = self.first[i], self.count[i], self.recovered[i]
            for w in self.subscriber_ids:
                c = count[w]
                t1 = first[w]
                up_at = self._rejoined(w, t0, t1) if w in self.downs else None
                cls = "up" if up_at is None else "down"
                exp[cls] += 1
                if not c:
                    zero += 1
                    continue
                if c == 1:
                    once[cls] += 1
                dup += c - 1
                lat[cls].append(t1 - t0)
                path[f"{cls}_{'retention' if recovered[w] else 'gossip'}"] += 1
                if up_at is not None:
                    after_rejoin.append(t1 - up_at)
        total = exp["up"] + exp["down"]
        return {
            "pairs": total,
            "delivery_ratio": (once["up"] + once["down"]) / total if total else math.nan,
            "delivery_ratio_up": once["up"] / exp["up"] if exp["up"] else math.nan,
            "delivery_ratio_down": once["down"] / exp["down"] if exp["down"] else math.nan,
            "pairs_up": exp["up"],
            "pairs_down": exp["down"],
            "undelivered": zero,
            "duplicates": dup,
            "latency_up": _lat(lat["up"]),
            "latency_down": _lat(lat["down"]),
            "after_rejoin": _lat(after_rejoin),
            "paths": dict(sorted(path.items())),
        }

    def figures(self) -> dict[str, Any]:
        """The run's figures: :meth:`_pairs`, what churned subscribers were told, traffic,
        counters and the cost of the run."""
        cfg = self.cfg
        churned = [w for w in self.subscriber_ids if w in self.downs]
        # Every event is delivered or counted in a Missed (more than the events: over-counted).
        n_ev = len(self.ev_t0)
        accounted = [sum(c[w] > 0 for c in self.count) + self.missed[w] for w in churned]
        regular = [w for w in range(cfg.nodes) if self.roles[w] != "super"]
        dur = cfg.warmup + cfg.window + cfg.tail
        per_node = sorted((self.bytes_out[w] + self.bytes_in[w]) / dur for w in regular)
        sup = [(self.bytes_out[s] + self.bytes_in[s]) / dur for s in range(cfg.supers)]
        counters = Counter[str]()
        for b in self.brokers:
            if b is not None:
                counters.update(b.counters)
        return {
            "events": n_ev,
            "subscribers": len(self.subscriber_ids),
            "crashes": self.crashes,
            "rejoins": self.rejoins,
            "churned_subscribers": len(churned),
            **self._pairs(),
            "missed_reported": dict(self.missed_by_reason),
            "churned_unaccounted": sum(max(0, n_ev - a) for a in accounted),
            "missed_overcount": sum(max(0, a - n_ev) for a in accounted),
            "rejoin_to_caught_up": _lat(self.catchup_s),
            "bytes_per_node_s": {
                "mean": sum(per_node) / len(per_node),
                "p50": _q(per_node, 50), "p99": _q(per_node, 99), "max": per_node[-1],
            },
            "bytes_per_node_per_event": sum(per_node) / len(per_node) * dur / max(1, n_ev),
            "super_bytes_per_s_mean": sum(sup) / len(sup),
            "broker_counters": {k: counters[k] for k in sorted(counters)},
            "gossip_counters": dict(sorted(self.metrics.counters.items())),
            "app": dict(sorted(self.app.items())),
            "events_run": self.loop.events_run,
            "wall_s": self.wall_s,
            "events_per_s": self.loop.events_run / self.wall_s if self.wall_s else None,
            "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        }


def _q(xs: list[float], q: float) -> float:
    if not xs:
        return math.nan
    return xs[max(0, math.ceil(q / 100.0 * len(xs)) - 1)]


def _lat(xs: list[float]) -> dict[str, Any]:
    """Percentiles, and the CDF at every percent (``cdf[i]`` = the i-th percentile)."""
    xs.sort()
    return {"n": len(xs), "p50": _q(xs, 50), "p90": _q(xs, 90), "p99": _q(xs, 99),
            "max": xs[-1] if xs else math.nan,
            "cdf": [round(_q(xs, i), 5) for i in range(1, 101)] if xs else []}


def run_broker_sim(config: BrokerSimConfig, progress: Progress | None = None
                   ) -> tuple[BrokerSimulator, dict[str, Any]]:
    """Build, run and measure one configuration (see the module docstring)."""
    t0 = time.perf_counter()
    sim = BrokerSimulator(config)
    with _no_gc():
        sim.build()
    build_s = time.perf_counter() - t0
    sim.run(progress)
    figs = sim.figures()
    figs["build_s"] = build_s
    return sim, figs
