"""The service registry in the simulator: what a node holds and sends, how fast news spreads.

Issue 5 asks that what a node holds and sends for the registry not grow with the total number
of services, that a new registration reach its watchers quickly, and that a dead node's
registrations disappear within ``ttl`` + one announce interval. This runs the real
:class:`~micronetwork.registry.RegistryCore` of every node on top of the real gossip core in
virtual time (:class:`~micronetwork.sim.gossip.GossipSimulator` supplies the event loop, links
with latency, and the gossipsub routers; the registry is wired to it as ``NodeCore`` wires it):

* N nodes on a random regular graph; S services, each served by one random node, registered at
  a random moment of the first announce interval (so announcements are not in phase); every
  node watches W random services. A watcher connects to each instance it watches, as the real
  node does when it fetches a registration from a provider found in the DHT (the DHT step
  itself is not simulated: its cost is one provider lookup per name, measured in the Kademlia
  scenarios);
* a few super nodes subscribe to the catalog topic, as on the real network, and every node
  keeps a connection to one of them (its bootstrap node);
* :func:`run_registry_scale`: after a warm-up, per node over a measurement window: the
  registrations held, the gossip topics joined and the bytes sent and received (all gossip
  traffic here is registry traffic); separately for super nodes, whose bounded catalog does
  grow with S, up to its size;
* :func:`run_registry_propagation`: a popular service watched by a share of the nodes gets a
  new instance, as do a hundred ordinary services (the new server dials the existing provider
  of its service, the model of "find the providers in the DHT and connect", so that it joins
  the topic's mesh); then those new servers and a hundred other serving nodes crash (no
  withdrawal, their links just go silent). Per watcher: when it saw the new instance, and when
  it deleted the dead ones, against the bound ``ttl + announce_interval``.

Signatures are executed (real Ed25519): registrations are signed envelopes and receivers verify
them, as on real hosts. A gossip message carried by several peers is verified once per message
(a memo of messages that verified: the check is a pure function of the message, so the outcome
is the same, only the simulator's CPU is spared); the registry's own check of the envelope runs
at every receiver.
"""

from __future__ import annotations

import gc
import math
import os
import random
import statistics
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from heapq import heappush
from typing import Any

import networkx as nx

from ..commands import Emit
from ..gossip.commands import Send
from ..gossip.events import Message, PeerSubscribed, ValidateMessage
from ..gossip.messages import PubMessage
from ..gossip.signing import verify_message
from ..identity.peerid import PeerId
from ..registry import RegistryConfig, RegistryCore, ServiceEvent
from .crypto import CryptoModel
from .gossip import GossipSimNode, GossipSimulator
from .models import NetworkModel, Uniform

__all__ = [
    "PropagationResult",
    "RegistryNet",
    "RegistryScaleResult",
    "RegistrySimulator",
    "build_registry_net",
    "run_registry_propagation",
    "run_registry_scale",
]

INF = float("inf")
Progress = Callable[[float, str], None]
Stats = dict[str, float | None]  # n, never, mean, p50, p99, max (see _spread)


def _no_progress(frac: float, label: str) -> None:
    pass


@contextmanager
def _no_gc() -> Iterator[None]:
    """The cyclic GC off while the loop runs (a 10k-node run holds millions of objects; the
    event path makes no reference cycles, reference counting frees it)."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


class _Ports:
    def __init__(self, sim: RegistrySimulator, node: GossipSimNode) -> None:
        self.sim, self.node = sim, node

    def publish(self, topic: str, data: bytes, now: float) -> None:
        self.node.core.publish(topic, data, now)

    def subscribe(self, topic: str, now: float) -> None:
        regs, idx = self.sim.registries, self.node.idx
        self.node.core.set_validator(topic, lambda m: regs[idx].validate(m))
        self.node.core.subscribe(topic, now)

    def unsubscribe(self, topic: str, now: float) -> None:
        self.node.core.unsubscribe(topic, now)
        self.node.core.remove_validator(topic)

    def provide(self, key: bytes, now: float) -> None:
        pass  # the DHT is not simulated here

    def stop_providing(self, key: bytes) -> None:
        pass

    def set_hub(self, topic: str, on: bool) -> None:
        self.node.core.set_hub(topic, on)


class RegistrySimulator(GossipSimulator):
    """GossipSimulator whose nodes also run a RegistryCore (wired as NodeCore wires it).

    Counts per node the gossip bytes sent and received (``bytes_out``/``bytes_in``, indexed by
    node), every registry event by kind (``events``) and deletion reason (``deleted``), and for
    the (service, instance) pairs passed to :meth:`track`, when each node created and deleted it.
    """

    def __init__(self, seed: int, registry: RegistryConfig, **kw: Any) -> None:
        super().__init__(seed, crypto=CryptoModel(mode="execute"), **kw)
        self.registry_config = registry
        self.registries: dict[int, RegistryCore] = {}
        self.events: Counter[str] = Counter()
        self.deleted: Counter[str] = Counter()
        self.expired_live = 0  # "expired" deletions of instances whose node is alive
        self.bytes_out: list[int] = []
        self.bytes_in: list[int] = []
        self.tracked: set[tuple[str, PeerId]] = set()
        self.created_at: dict[tuple[str, PeerId], dict[int, float]] = {}
        self.deleted_at: dict[tuple[str, PeerId], dict[int, float]] = {}
        self.crashed_at: dict[int, float] = {}
        self._verified_msgs: set[PubMessage] = set()

    def add_node(self, **kw: Any) -> GossipSimNode:
        self.bytes_out.append(0)
        self.bytes_in.append(0)
        node = super().add_node(**kw)
        node.core.verify = self._verify
        return node

    def _verify(self, msg: PubMessage) -> None:
        # StrictSign, once per message: several peers forward the same signed message.
        if msg in self._verified_msgs:
            return
        verify_message(msg)
        if len(self._verified_msgs) > 1 << 20:
            self._verified_msgs.clear()
        self._verified_msgs.add(msg)

    def add_registry(self, node: GossipSimNode, config: RegistryConfig | None = None) -> None:
        key = node.core.key  # crypto "execute": a real Ed25519 key, the gossip author's too
        reg = RegistryCore(key, _Ports(self, node), config=config or self.registry_config,
                           now=self.now)
        reg.addrs = (b"\x04\x7f\x00\x00\x01",)
        self.registries[node.idx] = reg
        self._pump(node)

    def register(self, node: GossipSimNode, description: dict[str, Any]) -> None:
        if node.alive:
            self.registries[node.idx].register(description, self.now)
            self._pump(node)

    def watch(self, node: GossipSimNode, name: str) -> None:
        self.registries[node.idx].watch(name, self.now)
        self._pump(node)

    def crash(self, node: GossipSimNode) -> None:
        """The node stops dead: no withdrawal, nothing more leaves it, nothing reaches it."""
        node.alive = False
        self.crashed_at[node.idx] = self.now

    def track(self, name: str, peer: PeerId) -> None:
        """Record when each node creates and deletes the instance ``peer`` of ``name``."""
        key = (name, peer)
        self.tracked.add(key)
        self.created_at.setdefault(key, {})
        self.deleted_at.setdefault(key, {})

    def run(self, seconds: float, progress: Progress = _no_progress, label: str = "run",
            frac0: float = 0.0, frac1: float = 1.0) -> None:
        """Run ``seconds`` of virtual time (GC off), reporting progress every virtual second."""
        t0 = self.now
        end = t0 + seconds
        with _no_gc():
            while self.now < end - 1e-9:
                self.run_until(min(end, self.now + 1.0))
                done = (self.now - t0) / seconds if seconds else 1.0
                progress(frac0 + (frac1 - frac0) * done, label)

    # == driver ================================================================================

    # The base driver, with registry routing added (Message on registry topics -> registry).
    def _pump(self, node: GossipSimNode) -> None:
        if not node.alive:
            return
        core = node.core
        reg = self.registries.get(node.idx)
        while True:
            busy = False
            for cmd in core.drain():
                busy = True
                if type(cmd) is Send:
                    self._send(node, cmd)
                elif type(cmd) is Emit:
                    ev = cmd.event
                    if type(ev) is Message and reg is not None and reg.is_registry_topic(ev.topic):
                        reg.on_message(ev, self.now)
                    elif type(ev) is ValidateMessage:
                        self._validate(node, ev)
                    elif type(ev) is PeerSubscribed and reg is not None:
                        reg.on_peer_subscribed(ev.peer, ev.topic, self.now)
            if reg is not None:
                for out in reg.drain():
                    busy = True
                    if type(out) is Emit and type(out.event) is ServiceEvent:
                        self._on_service_event(node, out.event)
            if not busy:
                break
        d = core.next_deadline()
        if reg is not None:
            r = reg.next_deadline()
            if r is not None and (d is None or r < d):
                d = r
        if d is not None and d < node.timer_at:
            node.timer_at = d
            loop = self.loop
            heappush(loop.heap, (d if d > loop.now else loop.now, next(loop.counter),
                                 self.K_TIMER, node, d, None))

    def _on_service_event(self, node: GossipSimNode, ev: ServiceEvent) -> None:
        self.events[ev.kind] += 1
        if ev.kind == "deleted":
            self.deleted[ev.reason] += 1
            if ev.reason == "expired":
                owner = self.by_id.get(ev.peer)
                if owner is not None and owner.alive:
                    self.expired_live += 1
        key = (ev.name, ev.peer)
        if key in self.tracked:
            log = self.created_at if ev.kind == "created" else (
                self.deleted_at if ev.kind == "deleted" else None)
            if log is not None:
                log[key].setdefault(node.idx, self.now)

    def _on_timer(self, node: GossipSimNode, when: float, _c: Any) -> None:
        if not node.alive or node.timer_at != when:
            return
        node.timer_at = INF
        now = self.loop.now
        d = node.core.next_deadline()
        if d is not None and d <= now:
            node.core.on_timer(now)
        reg = self.registries.get(node.idx)
        if reg is not None:
            d = reg.next_deadline()
            if d is not None and d <= now:
                reg.on_timer(now)
        self._pump(node)

    def _send(self, node: GossipSimNode, cmd: Send) -> None:
        counters = self.metrics.counters
        before = counters["bytes"]
        super()._send(node, cmd)
        sent = counters["bytes"] - before
        if sent:
            self.bytes_out[node.idx] += sent
            self.bytes_in[node.links[cmd.peer][0].idx] += sent


# == building a network ============================================================================


@dataclass
class RegistryNet:
    """A built network: the simulator, its nodes, who serves and who watches what."""

    sim: RegistrySimulator
    nodes: list[GossipSimNode]
    supers: int
    names: list[str]
    servers: dict[str, list[int]]  # service -> node indices serving it
    watches: dict[int, list[str]]  # node -> services it watches
    watchers: dict[str, list[int]] = field(default_factory=dict)  # service -> watching nodes

    def peers(self) -> range:
        """The ordinary (non-super) nodes."""
        return range(self.supers, len(self.nodes))


def describe(name: str) -> dict[str, Any]:
    """A small service description (one unary endpoint), as ``Service.describe()`` makes."""
    return {"name": name, "version": "1.0.0", "metadata": {},
            "endpoints": [{"name": "call", "kind": "unary", "request": {}, "response": {}}]}


def build_registry_net(
    nodes: int, services: int, *, watched: int = 3, supers: int = 3, degree: int = 8,
    seed: int = 1, catalog_size: int = 1024, config: RegistryConfig | None = None,
    progress: Progress = _no_progress,
) -> RegistryNet:
    """N nodes, S services (registered during the first announce interval), W watched per node;
    see the module docstring. Nothing has run yet: the registrations are scheduled."""
    if nodes <= supers or supers < 1:
        raise ValueError("need 1 <= supers < nodes")
    rng = random.Random(seed)
    cfg = config or RegistryConfig()
    net = NetworkModel(latency=Uniform(0.020, 0.120, seed=seed))
    sim = RegistrySimulator(seed, cfg, network=net)
    super_cfg = replace(cfg, catalog_subscribe=True, catalog_size=catalog_size)
    sim_nodes: list[GossipSimNode] = []
    with _no_gc():
        for i in range(nodes):
            n = sim.add_node()
            sim.add_registry(n, super_cfg if i < supers else None)
            sim_nodes.append(n)
            if i % 1000 == 0:
                progress(0.5 * i / nodes, "build: nodes")
        progress(0.5, "build: connections")
        graph = nx.random_regular_graph(degree, nodes, seed=seed)
        sim.connect_edges(graph.edges())
        for a in range(supers):  # the backbone: super nodes know each other
            for b in range(a + 1, supers):
                if sim_nodes[b].peer_id not in sim_nodes[a].links:
                    sim.connect(sim_nodes[a], sim_nodes[b])
        for idx in range(supers, nodes):  # every node keeps a connection to its bootstrap super
            me, sup = sim_nodes[idx], sim_nodes[rng.randrange(supers)]
            if sup.peer_id not in me.links:
                sim.connect(me, sup)
        progress(0.75, "build: services")
        names = [f"svc{i}" for i in range(services)]
        servers: dict[str, list[int]] = {}
        for name in names:
            idx = rng.randrange(supers, nodes)
            servers[name] = [idx]
            sim.loop.call_at(rng.random() * cfg.announce_interval, sim.register, sim_nodes[idx],
                             describe(name))
        rn = RegistryNet(sim, sim_nodes, supers, names, servers, {})
        for idx in range(supers, nodes):
            chosen = rng.sample(names, min(watched, services))
            rn.watches[idx] = chosen
            for name in chosen:
                add_watcher(rn, idx, name)
    progress(1.0, "build: services")
    return rn


def add_watcher(rn: RegistryNet, idx: int, name: str) -> None:
    """Node ``idx`` watches ``name`` and connects to its servers (the fetch's dial)."""
    sim, me = rn.sim, rn.nodes[idx]
    sim.watch(me, name)
    rn.watchers.setdefault(name, []).append(idx)
    for s in rn.servers.get(name, ()):
        srv = rn.nodes[s]
        if srv is not me and srv.peer_id not in me.links:
            sim.connect(me, srv)


def add_instance(rn: RegistryNet, idx: int, name: str) -> None:
    """Node ``idx`` starts serving ``name`` now, after dialling the existing providers."""
    sim, me = rn.sim, rn.nodes[idx]
    for s in rn.servers.get(name, ()):
        srv = rn.nodes[s]
        if srv.alive and srv is not me and srv.peer_id not in me.links:
            sim.connect(me, srv)
    rn.servers.setdefault(name, []).append(idx)
    sim.track(name, me.peer_id)
    sim.register(me, describe(name))


def _rss() -> int | None:
    try:
        with open("/proc/self/statm", encoding="ascii") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


def _quantile(xs: Sequence[float], q: float) -> float:
    """Nearest-rank quantile of sorted data (``inf`` entries count: a node that never saw it)."""
    if not xs:
        return math.nan
    return xs[min(len(xs) - 1, max(0, math.ceil(q * len(xs)) - 1))]


def _spread(xs: Sequence[float]) -> Stats:
    """n, mean (of the finite values), p50, p99, max, and how many are ``inf`` (never)."""
    s = sorted(xs)
    if not s:
        return {"n": 0}
    finite = [x for x in s if x < INF]

    def num(x: float) -> float | None:
        return x if x < INF else None  # JSON has no infinity: None is "not by the end"

    return {"n": len(s), "never": len(s) - len(finite),
            "mean": statistics.fmean(finite) if finite else None,
            "p50": num(_quantile(s, 0.5)), "p99": num(_quantile(s, 0.99)), "max": num(s[-1])}


# == scale: what a node holds and sends ===========================================================


@dataclass
class RegistryScaleResult:
    nodes: int
    services: int
    watched_per_node: int
    supers: int
    warmup: float
    window: float
    held_mean: float  # registrations a (non-super) node holds, its own included
    held_max: int
    held_remote_mean: float  # of those, instances of other nodes (what it watches)
    held_remote_max: int
    own_mean: float  # services it serves itself
    topics_mean: float  # gossip topics a (non-super) node joined
    topics_max: int
    catalog_mean: float  # names in a non-super node's catalog
    catalog_max: int
    # bytes per second per (non-super) node over the window: mean, p50, p99, max
    out_bps: Stats
    in_bps: Stats
    out_bps_half: Stats  # over the first half of the window only
    super_catalog_mean: float  # names in a super node's catalog
    super_in_bps: float
    super_out_bps: float
    watch_coverage: float  # watched (service, instance) pairs known at the end / all
    created_events: int
    expired_live: int  # live instances some watcher let expire (should be 0)
    events: int = 0
    rss_bytes: int | None = None

    @property
    def kib_out_per_node_s(self) -> float:
        return (self.out_bps["mean"] or 0.0) / 1024

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def run_registry_scale(
    nodes: int, services: int, *, watched: int = 3, supers: int = 3, degree: int = 8,
    warmup: float = 30.0, window: float = 60.0, seed: int = 1, catalog_size: int = 1024,
    progress: Progress = _no_progress,
) -> RegistryScaleResult:
    """One run: N nodes, S services, W watched per node; bytes counted over ``window`` after
    ``warmup`` virtual seconds (the registrations and the meshes' first grafts)."""
    rn = build_registry_net(nodes, services, watched=watched, supers=supers, degree=degree,
                            seed=seed, catalog_size=catalog_size,
                            progress=lambda f, s: progress(0.1 * f, s))
    sim = rn.sim
    sim.run(warmup, progress, "warm-up", 0.1, 0.1 + 0.9 * warmup / (warmup + window))
    out0, in0 = list(sim.bytes_out), list(sim.bytes_in)
    half = window / 2
    sim.run(half, progress, "window", 0.1 + 0.9 * warmup / (warmup + window),
            0.1 + 0.9 * (warmup + half) / (warmup + window))
    out_half = list(sim.bytes_out)
    sim.run(window - half, progress, "window", 0.1 + 0.9 * (warmup + half) / (warmup + window),
            1.0)
    peers = rn.peers()
    regs = [sim.registries[i] for i in peers]
    held = [sum(len(r.get(n)) for n in set(r.instances) | set(r.local)) for r in regs]
    remote = [sum(len(v) for v in r.instances.values()) for r in regs]
    topics = [len(r.subscribed) for r in regs]
    catalog = [len(r.catalog) for r in regs]
    covered = total = 0
    for i, ws in rn.watches.items():
        for n in ws:
            want = {rn.nodes[s].peer_id for s in rn.servers[n] if s != i}
            have = {r.peer for r in sim.registries[i].get(n)}
            total += len(want)
            covered += len(want & have)
    sup = range(supers)
    return RegistryScaleResult(
        nodes=nodes, services=services, watched_per_node=watched, supers=supers,
        warmup=warmup, window=window,
        held_mean=statistics.fmean(held), held_max=max(held),
        held_remote_mean=statistics.fmean(remote), held_remote_max=max(remote),
        own_mean=statistics.fmean(len(r.local) for r in regs),
        topics_mean=statistics.fmean(topics), topics_max=max(topics),
        catalog_mean=statistics.fmean(catalog), catalog_max=max(catalog),
        out_bps=_spread([(sim.bytes_out[i] - out0[i]) / window for i in peers]),
        in_bps=_spread([(sim.bytes_in[i] - in0[i]) / window for i in peers]),
        out_bps_half=_spread([(out_half[i] - out0[i]) / half for i in peers]),
        super_catalog_mean=statistics.fmean(len(sim.registries[i].catalog) for i in sup),
        super_in_bps=statistics.fmean((sim.bytes_in[i] - in0[i]) / window for i in sup),
        super_out_bps=statistics.fmean((sim.bytes_out[i] - out0[i]) / window for i in sup),
        watch_coverage=covered / total if total else 1.0,
        created_events=sim.events["created"], expired_live=sim.expired_live,
        events=sim.loop.events_run, rss_bytes=_rss(),
    )


# == propagation: a new registration, a dead node ================================================


@dataclass
class PropagationResult:
    nodes: int
    services: int
    supers: int
    ttl: float
    announce_interval: float
    bound_s: float  # ttl + announce_interval: how long a dead node may stay registered
    hot_watchers: int  # nodes watching the popular service
    new_instances: int  # ordinary services that got a new instance (besides the popular one)
    # seconds from register() until a watcher's "created" event (inf: not seen by the end)
    hot_seen: Stats
    hot_seen_share: float
    new_seen: Stats  # (ordinary new instance, watcher) pairs
    new_seen_share: float
    crashed: int  # serving nodes crashed (the popular service's new instance among them)
    # seconds from the crash until a holder deleted the instance (inf: not by the end)
    gone: Stats
    gone_share: float  # (dead instance, holder) pairs deleted by the end
    gone_within_bound: float  # of those pairs, the share deleted within bound_s
    hot_gone: Stats  # the popular service's dead instance, over its holders
    deleted_reasons: dict[str, int]
    expired_live: int  # live instances some watcher let expire
    observed_after_crash_s: float
    # every value behind hot_seen, new_seen and gone, sorted, in ms (None: not by the end)
    samples: dict[str, list[float | None]] = field(default_factory=dict)
    events: int = 0
    rss_bytes: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def run_registry_propagation(
    nodes: int, services: int | None = None, *, hot_share: float = 0.1, new_instances: int = 100,
    crashes: int = 100, watched: int = 3, supers: int = 3, degree: int = 8, warmup: float = 30.0,
    settle: float = 20.0, seed: int = 1, config: RegistryConfig | None = None,
    progress: Progress = _no_progress,
) -> PropagationResult:
    """A new instance of a popular service (watched by ``hot_share`` of the nodes) and of
    ``new_instances`` ordinary services at ``warmup``; ``settle`` s later those new servers and
    ``crashes`` other serving nodes crash; then the run goes on for ``bound + 5`` s."""
    cfg = config or RegistryConfig()
    services = nodes if services is None else services
    bound = cfg.ttl + cfg.announce_interval
    tail = bound + 5.0
    total_t = warmup + settle + tail
    rn = build_registry_net(nodes, services, watched=watched, supers=supers, degree=degree,
                            seed=seed, config=cfg, progress=lambda f, s: progress(0.1 * f, s))
    sim, rng = rn.sim, random.Random(seed + 1)

    def frac(t: float) -> float:
        return 0.1 + 0.9 * t / total_t

    hot_server = rng.randrange(supers, nodes)
    rn.servers["hot"] = [hot_server]
    sim.loop.call_at(rng.random() * cfg.announce_interval, sim.register, rn.nodes[hot_server],
                     describe("hot"))
    others = [i for i in rn.peers() if i != hot_server]
    for idx in rng.sample(others, round(hot_share * len(others))):
        add_watcher(rn, idx, "hot")
    sim.run(warmup, progress, "warm-up", frac(0), frac(warmup))

    t_new = sim.now
    watching_hot = set(rn.watchers.get("hot", ()))
    busy = {hot_server, *(s for v in rn.servers.values() for s in v)}
    fresh = [i for i in rn.peers() if i not in busy and i not in watching_hot]
    hot_new = fresh.pop(rng.randrange(len(fresh)))
    add_instance(rn, hot_new, "hot")
    pairs: list[tuple[str, int]] = []  # (service, new server) of the ordinary new instances
    for name in rng.sample(rn.names, min(new_instances, len(rn.names))):
        if not fresh:
            break
        idx = fresh.pop(rng.randrange(len(fresh)))
        add_instance(rn, idx, name)
        pairs.append((name, idx))
    sim.run(settle, progress, "new instances", frac(warmup), frac(warmup + settle))

    def seen(name: str, idx: int) -> list[float]:
        log = sim.created_at[(name, rn.nodes[idx].peer_id)]
        return [log.get(w, INF) - t_new for w in rn.watchers.get(name, ()) if w != idx]

    hot_seen = seen("hot", hot_new)
    new_seen = [x for name, idx in pairs for x in seen(name, idx)]

    # The crash: the new servers, and as many other serving nodes (not the popular service's
    # first server, the hub its watchers dialled: losing it is another experiment).
    t_crash = sim.now
    old_servers = sorted({s for v in rn.servers.values() for s in v}
                         - {hot_server, hot_new, *(i for _, i in pairs)})
    victims = [hot_new, *(i for _, i in pairs),
               *rng.sample(old_servers, min(crashes, len(old_servers)))]
    holders: dict[tuple[str, PeerId], list[int]] = {}
    for v in victims:
        pid = rn.nodes[v].peer_id
        for name in sim.registries[v].local:
            sim.track(name, pid)
            sim.deleted_at[(name, pid)] = {}  # from the crash on (a live one may have lapsed)
            holders[(name, pid)] = [w for w in rn.watchers.get(name, ())
                                    if any(r.peer == pid for r in sim.registries[w].get(name))]
        sim.crash(rn.nodes[v])
    sim.run(tail, progress, "after the crash", frac(warmup + settle), 1.0)

    gone: list[float] = []
    hot_gone: list[float] = []
    for key, hs in holders.items():
        log = sim.deleted_at[key]
        times = [log.get(w, INF) - t_crash for w in hs if rn.nodes[w].alive]
        gone.extend(times)
        if key == ("hot", rn.nodes[hot_new].peer_id):
            hot_gone = times
    within = sum(1 for x in gone if x <= bound)
    return PropagationResult(
        nodes=nodes, services=services, supers=supers, ttl=cfg.ttl,
        announce_interval=cfg.announce_interval, bound_s=bound,
        hot_watchers=len(watching_hot), new_instances=len(pairs),
        hot_seen=_spread(hot_seen), hot_seen_share=_share(hot_seen),
        new_seen=_spread(new_seen), new_seen_share=_share(new_seen),
        crashed=len(victims), gone=_spread(gone), gone_share=_share(gone),
        gone_within_bound=within / len(gone) if gone else 1.0, hot_gone=_spread(hot_gone),
        deleted_reasons=dict(sim.deleted), expired_live=sim.expired_live,
        observed_after_crash_s=tail,
        samples={"hot_seen": _ms(hot_seen), "new_seen": _ms(new_seen), "gone": _ms(gone)},
        events=sim.loop.events_run, rss_bytes=_rss(),
    )


def _ms(xs: Sequence[float]) -> list[float | None]:
    return [round(x * 1000, 1) if x < INF else None for x in sorted(xs)]


def _share(xs: Sequence[float]) -> float:
    return sum(1 for x in xs if x < INF) / len(xs) if xs else 1.0
