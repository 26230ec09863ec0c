"""Building a registry network in the simulator: nodes, super nodes, services and watchers.

Theory of operation. :func:`build_registry_net` makes a :class:`~.registry_driver.
RegistrySimulator` of N nodes on a random regular graph; a few super nodes subscribe to the
catalog topic, as on the real network, know each other, and every other node keeps a connection
to one of them (its bootstrap node). S services, each served by one random node, are registered
at a random moment of the first announce interval (so announcements are not in phase), and
every node watches W random services. A watcher connects to each instance it watches
(:func:`add_watcher`), as the real node does when it fetches a registration from a provider
found in the DHT (the DHT step itself is not simulated); a new server dials the existing
providers of its service before it registers (:func:`add_instance`). The result,
:class:`RegistryNet`, says who serves and who watches what; nothing has run yet.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field, replace
from typing import Any

import networkx as nx

from ..registry import RegistryConfig
from .gossip import GossipSimNode
from .loop import no_gc as _no_gc
from .models import NetworkModel, Uniform
from .registry_driver import Progress, RegistrySimulator, _no_progress

__all__ = ["RegistryNet", "add_instance", "add_watcher", "build_registry_net", "describe"]

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
