"""Topologies from networkx graphs, as latency models and neighbour lists.

Theory of operation. A topology is a networkx graph of *sites* (routers, cities, hosts). Node
``i`` of the simulation sits at site ``i % graph_size``, so a graph of 1,000 routers can carry
100,000 nodes. The one-way delay between two nodes is

* for a geographic graph (every site has a ``pos`` attribute, e.g. Waxman): ``base`` plus the
  Euclidean distance times ``per_unit`` seconds (speed of light in fibre over a world-sized
  square by default);
* otherwise: the shortest path between the two sites, summing the edge attribute ``latency``
  (seconds), ``latency_ms`` (milliseconds) or ``weight`` (seconds); unweighted edges count
  ``per_hop`` seconds. Shortest paths are computed per source site with Dijkstra and cached, so
  keep graphs with many sites for geographic models or small router graphs.

Two nodes on the same site see ``base`` (a LAN hop). :meth:`Topology.neighbours` lists the
nodes on adjacent sites, which a scenario can use as bootstrap contacts instead of super nodes.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import networkx as nx

from ..errors import ConfigError

__all__ = ["Topology", "barabasi_albert", "load_graph", "random_regular", "waxman"]


class Topology:
    """A latency model (see :class:`~.models.LatencyModel`) backed by a networkx graph."""

    def __init__(
        self,
        graph: Any,
        *,
        base: float = 0.005,
        per_hop: float = 0.010,
        per_unit: float = 0.100,
        cache_sources: int = 4096,
    ) -> None:
        if graph.number_of_nodes() == 0:
            raise ConfigError("topology graph has no nodes")
        self.graph = graph
        self.sites = list(graph.nodes)
        self.size = len(self.sites)
        self.base = base
        self.per_hop = per_hop
        self.per_unit = per_unit
        self._cache: dict[int, dict[Any, float]] = {}
        self._cache_max = cache_sources
        pos = nx.get_node_attributes(graph, "pos")
        self.pos = [pos[s] for s in self.sites] if len(pos) == self.size else None
        if self.pos is None and not nx.is_connected(graph.to_undirected(as_view=True)):
            raise ConfigError("topology graph is not connected (some nodes could never meet)")

    def _edge_delay(self, u: Any, v: Any, data: dict[str, Any]) -> float:
        if "latency" in data:
            return float(data["latency"])
        if "latency_ms" in data:
            return float(data["latency_ms"]) / 1000.0
        if "weight" in data:
            return float(data["weight"])
        return self.per_hop

    def latency(self, a: int, b: int) -> float:
        sa, sb = a % self.size, b % self.size
        if sa == sb:
            return self.base
        if self.pos is not None:
            (x1, y1), (x2, y2) = self.pos[sa][:2], self.pos[sb][:2]
            return self.base + self.per_unit * math.hypot(x1 - x2, y1 - y2)
        if sa > sb:
            sa, sb = sb, sa
        dist = self._cache.get(sa)
        if dist is None:
            if len(self._cache) >= self._cache_max:
                self._cache.pop(next(iter(self._cache)))
            dist = self._cache[sa] = nx.single_source_dijkstra_path_length(
                self.graph, self.sites[sa], weight=self._edge_delay
            )
        return self.base + dist[self.sites[sb]]

    def neighbours(self, node: int, n_nodes: int) -> list[int]:
        """Nodes (of ``n_nodes``) sitting on sites adjacent to ``node``'s site."""
        site = self.sites[node % self.size]
        index = {s: i for i, s in enumerate(self.sites)} if self.size < 1_000_000 else {}
        out = []
        for nb in self.graph.neighbors(site):
            i = index[nb]
            if i < n_nodes:
                out.append(i)
        return out

    def describe(self) -> dict[str, object]:
        return {
            "model": "graph",
            "sites": self.size,
            "edges": self.graph.number_of_edges(),
            "geographic": self.pos is not None,
            "base": self.base,
            "per_hop": self.per_hop,
            "per_unit": self.per_unit,
        }


def random_regular(n: int, degree: int = 8, seed: int = 0, **kw: Any) -> Topology:
    return Topology(nx.random_regular_graph(degree, n, seed=seed), **kw)


def barabasi_albert(n: int, m: int = 3, seed: int = 0, **kw: Any) -> Topology:
    return Topology(nx.barabasi_albert_graph(n, m, seed=seed), **kw)


def waxman(n: int, beta: float = 0.4, alpha: float = 0.1, seed: int = 0, **kw: Any) -> Topology:
    """Sites at random points of the unit square; one unit is ``per_unit`` seconds of fibre."""
    return Topology(nx.waxman_graph(n, beta=beta, alpha=alpha, seed=seed), **kw)


def load_graph(path: str | Path, **kw: Any) -> Topology:
    """Read GraphML, GML, node-link JSON, or an edge list (``a b [latency_s]`` per line)."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"topology file not found: {p}")
    try:
        suffix = p.suffix.lower()
        if suffix == ".graphml":
            g = nx.read_graphml(p)
        elif suffix == ".gml":
            g = nx.read_gml(p)
        elif suffix == ".json":
            import json

            g = nx.node_link_graph(json.loads(p.read_text()), edges="links")
        else:
            g = nx.read_weighted_edgelist(p) if _has_weights(p) else nx.read_edgelist(p)
    except ConfigError:
        raise
    except Exception as exc:  # networkx raises many types for malformed files
        raise ConfigError(f"cannot read topology file {p}: {exc}") from None
    return Topology(g, **kw)


def _has_weights(p: Path) -> bool:
    for line in p.read_text().splitlines():
        parts = line.split("#", 1)[0].split()
        if parts:
            return len(parts) >= 3
    raise ConfigError(f"topology file {p} has no edges")
