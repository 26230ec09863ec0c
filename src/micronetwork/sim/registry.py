"""The service registry in the simulator: does what a node holds grow with the network?

Issue 5 asks that what a node holds and sends for the registry not grow with the total number
of services. This runs the real :class:`~micronetwork.registry.RegistryCore` of every node on
top of the real gossip core in virtual time (:class:`~micronetwork.sim.gossip.GossipSimulator`
supplies the event loop, links with latency, and the gossipsub routers):

* N nodes on a random regular graph; S services, each served by one random node; every node
  watches W random services. A watcher connects to each instance it watches, as the real node
  does when it fetches a registration from a provider found in the DHT (the DHT step itself is
  not simulated here: its cost is one lookup per name, measured in the Kademlia scenarios);
* a few super nodes subscribe to the catalog topic, as on the real network, and every node
  keeps a connection to one of them (its bootstrap node);
* after ``duration`` seconds: per node, the registrations held, the gossip topics joined and the
  bytes sent and received (all gossip traffic here is registry traffic); separately for super
  nodes, whose bounded catalog does grow with S, up to its size.

Signatures are executed (real Ed25519): registrations are signed envelopes and receivers verify
them, as on real hosts.
"""

from __future__ import annotations

import random
import statistics
from collections import Counter
from dataclasses import dataclass
from heapq import heappush
from typing import Any

import networkx as nx

from ..commands import Emit
from ..gossip.commands import Send
from ..gossip.events import Message, PeerSubscribed, ValidateMessage
from ..registry import RegistryConfig, RegistryCore, ServiceEvent
from .crypto import CryptoModel
from .gossip import GossipSimNode, GossipSimulator
from .models import NetworkModel, Uniform

__all__ = ["RegistryScaleResult", "run_registry_scale"]

INF = float("inf")


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


class RegistrySimulator(GossipSimulator):
    """GossipSimulator whose nodes also run a RegistryCore (wired as NodeCore wires it)."""

    def __init__(self, seed: int, registry: RegistryConfig, **kw: Any) -> None:
        super().__init__(seed, crypto=CryptoModel(mode="execute"), **kw)
        self.registry_config = registry
        self.registries: dict[int, RegistryCore] = {}
        self.events: Counter[str] = Counter()
        self.bytes_out: Counter[int] = Counter()
        self.bytes_in: Counter[int] = Counter()

    def add_registry(self, node: GossipSimNode, config: RegistryConfig | None = None) -> None:
        key = node.core.key  # crypto "execute": a real Ed25519 key, the gossip author's too
        reg = RegistryCore(key, _Ports(self, node), config=config or self.registry_config,
                           now=self.now)
        reg.addrs = (b"\x04\x7f\x00\x00\x01",)
        self.registries[node.idx] = reg
        self._pump(node)

    # The base driver, with registry routing added (Message on registry topics -> registry).
    def _pump(self, node: GossipSimNode) -> None:
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
                    if isinstance(out, Emit) and isinstance(out.event, ServiceEvent):
                        self.events[out.event.kind] += 1
            if not busy:
                break
        deadlines = [d for d in (core.next_deadline(), reg.next_deadline() if reg else None)
                     if d is not None]
        d = min(deadlines) if deadlines else None
        if d is not None and d < node.timer_at:
            node.timer_at = d
            loop = self.loop
            heappush(loop.heap, (d if d > loop.now else loop.now, next(loop.counter),
                                 self.K_TIMER, node, d, None))

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
        before = self.metrics.counters["bytes"]
        super()._send(node, cmd)
        sent = self.metrics.counters["bytes"] - before
        self.bytes_out[node.idx] += sent
        link = node.links.get(cmd.peer)
        if link is not None:
            self.bytes_in[link[0].idx] += sent


@dataclass
class RegistryScaleResult:
    nodes: int
    services: int
    watched_per_node: int
    supers: int
    duration: float
    held_mean: float  # registrations a (non-super) node holds, its own included
    held_max: int
    held_remote_mean: float  # of those, instances of other nodes (what it watches)
    topics_mean: float  # gossip topics a (non-super) node joined
    topics_max: int
    kib_out_per_node_s: float  # mean bytes a (non-super) node sends, KiB per second
    kib_in_per_node_s: float
    super_catalog_mean: float  # names in a super node's catalog
    super_kib_in_s: float
    watch_coverage: float  # watched (service, instance) pairs known at the end / all
    created_events: int

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def run_registry_scale(
    nodes: int, services: int, *, watched: int = 3, supers: int = 3, degree: int = 8,
    duration: float = 65.0, seed: int = 1, catalog_size: int = 1024,
) -> RegistryScaleResult:
    """One run: N nodes, S services, W watched per node; see the module docstring."""
    rng = random.Random(seed)
    cfg = RegistryConfig()
    net = NetworkModel(latency=Uniform(0.020, 0.120, seed=seed))
    sim = RegistrySimulator(seed, cfg, network=net)
    sim_nodes = [sim.add_node() for _ in range(nodes)]
    super_cfg = RegistryConfig(catalog_subscribe=True, catalog_size=catalog_size)
    for i, n in enumerate(sim_nodes):
        sim.add_registry(n, super_cfg if i < supers else None)
    graph = nx.random_regular_graph(degree, nodes, seed=seed)
    sim.connect_edges(graph.edges())
    for a in range(supers):  # the backbone: super nodes know each other
        for b in range(a + 1, supers):
            if sim_nodes[b].peer_id not in sim_nodes[a].links:
                sim.connect(sim_nodes[a], sim_nodes[b])
    for idx in range(supers, nodes):  # every node keeps a connection to its bootstrap super
        me, sup = sim_nodes[idx], sim_nodes[rng.randrange(supers)] if supers else None
        if sup is not None and sup.peer_id not in me.links:
            sim.connect(me, sup)
    names = [f"svc{i}" for i in range(services)]
    server_of: dict[str, int] = {}
    for name in names:
        idx = rng.randrange(supers, nodes)
        server_of[name] = idx
        desc = {"name": name, "version": "1.0.0", "metadata": {},
                "endpoints": [{"name": "call", "kind": "unary", "request": {}, "response": {}}]}
        sim.registries[idx].register(desc, sim.now)
        sim._pump(sim_nodes[idx])
    watches: dict[int, list[str]] = {}
    for idx in range(supers, nodes):
        chosen = rng.sample(names, min(watched, services))
        watches[idx] = chosen
        reg = sim.registries[idx]
        for name in chosen:
            reg.watch(name, sim.now)
            srv = sim_nodes[server_of[name]]
            me = sim_nodes[idx]
            if srv is not me and srv.peer_id not in me.links:
                sim.connect(me, srv)  # the dial a real fetch from the provider makes
        sim._pump(sim_nodes[idx])
    sim.run_for(duration)
    peers = range(supers, nodes)
    held = [sum(len(r.get(n)) for n in set(r.instances) | set(r.local))
            for r in (sim.registries[i] for i in peers)]
    remote = [sum(len(v) for v in sim.registries[i].instances.values()) for i in peers]
    topics = [len(sim.registries[i].subscribed) for i in peers]
    covered = sum(1 for i, ws in watches.items() for n in ws if sim.registries[i].get(n))
    total = sum(len(ws) for ws in watches.values())
    supers_in = [sim.bytes_in[i] for i in range(supers)] or [0]
    return RegistryScaleResult(
        nodes=nodes, services=services, watched_per_node=watched, supers=supers,
        duration=duration,
        held_mean=statistics.fmean(held), held_max=max(held),
        held_remote_mean=statistics.fmean(remote),
        topics_mean=statistics.fmean(topics), topics_max=max(topics),
        kib_out_per_node_s=statistics.fmean(sim.bytes_out[i] for i in peers) / 1024 / duration,
        kib_in_per_node_s=statistics.fmean(sim.bytes_in[i] for i in peers) / 1024 / duration,
        super_catalog_mean=statistics.fmean(
            len(sim.registries[i].catalog) for i in range(supers)) if supers else 0.0,
        super_kib_in_s=statistics.fmean(supers_in) / 1024 / duration,
        watch_coverage=covered / total if total else 1.0,
        created_events=sim.events["created"],
    )
