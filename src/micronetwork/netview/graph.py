"""The network graph: records -> networkx, and its exports (node-link JSON, DOT, GraphML, a
picture).

Nodes are base58 peer ids with attributes ``role`` ("super", "peer", or "unknown" for a node
only named as someone's peer), ``addrs`` (text multiaddrs), ``services``, ``last_seen``
(seconds since its record arrived; 0 for the local node; None if it has no record) and ``hops``
(distance from the local node). An edge joins two nodes when either announces the other as a
direct peer; ``latency_ms`` is the smaller RTT either side measured, when one did.
"""

from __future__ import annotations

import io
from collections import deque
from collections.abc import Mapping
from typing import Any

import multiaddr
import networkx as nx

from ..identity.peerid import PeerId
from .core import NodeInfo

__all__ = ["build_graph", "draw", "to_dot", "to_graphml", "to_node_link"]

MAX_DEPTH = 16


def _addr_text(addr: bytes) -> str:
    try:
        return str(multiaddr.Multiaddr(addr))
    except Exception:
        return addr.hex()


def build_graph(
    snapshot: Mapping[PeerId, NodeInfo], local: PeerId, depth: int | None = None
) -> nx.Graph:
    """The graph reachable from ``local`` within ``depth`` hops (all of it if None)."""
    limit = MAX_DEPTH if depth is None else max(0, min(depth, MAX_DEPTH))
    adj: dict[PeerId, dict[PeerId, float | None]] = {}

    def link(a: PeerId, b: PeerId, rtt: float | None) -> None:
        for x, y in ((a, b), (b, a)):
            known = adj.setdefault(x, {})
            old = known.get(y)
            known[y] = rtt if old is None else (old if rtt is None else min(old, rtt))

    for peer, info in snapshot.items():
        adj.setdefault(peer, {})
        for other, rtt in info.record.peers:
            if other != peer:
                link(peer, other, rtt)
    hops = {local: 0}
    queue = deque([local])
    while queue:
        here = queue.popleft()
        if hops[here] >= limit:
            continue
        for nxt in sorted(adj.get(here, {}), key=bytes):
            if nxt not in hops:
                hops[nxt] = hops[here] + 1
                queue.append(nxt)
    g = nx.Graph(local=local.to_base58(), depth=limit)
    for peer, h in sorted(hops.items(), key=lambda kv: (kv[1], bytes(kv[0]))):
        held = snapshot.get(peer)
        rec = held.record if held is not None else None
        g.add_node(
            peer.to_base58(),
            role=rec.role if rec is not None else "unknown",
            addrs=[_addr_text(a) for a in rec.addrs] if rec is not None else [],
            services=list(rec.services) if rec is not None else [],
            last_seen=round(held.age, 3) if held is not None else None,
            hops=h,
        )
    for a in hops:
        for b, rtt in adj.get(a, {}).items():
            if b in hops and bytes(a) < bytes(b):
                attrs = {"latency_ms": rtt} if rtt is not None else {}
                g.add_edge(a.to_base58(), b.to_base58(), **attrs)
    return g


def to_node_link(g: nx.Graph) -> dict[str, Any]:
    """networkx's node-link form (``nodes`` with ``id``, ``links`` with source/target)."""
    return {
        "directed": False,
        "multigraph": False,
        "graph": dict(g.graph),
        "nodes": [{"id": n, **attrs} for n, attrs in g.nodes(data=True)],
        "links": [{"source": a, "target": b, **attrs} for a, b, attrs in g.edges(data=True)],
    }


def _dot_id(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def to_dot(g: nx.Graph, name: str = "micronetwork") -> str:
    """Graphviz DOT (undirected): super nodes as double circles, the local node filled."""
    local = g.graph.get("local")
    lines = [f"graph {_dot_id(name)} {{", "  node [shape=circle, fontsize=10];"]
    for n, attrs in g.nodes(data=True):
        label = f"{n[-6:]}\n{attrs.get('role', '')}"
        services = attrs.get("services") or []
        if services:
            label += "\n" + ", ".join(services)
        extra = [f"label={_dot_id(label)}"]
        extra.append(f"role={_dot_id(str(attrs.get('role', '')))}")
        if attrs.get("role") == "super":
            extra.append("shape=doublecircle")
        if n == local:
            extra.append("style=filled, fillcolor=lightblue")
        lines.append(f"  {_dot_id(n)} [{', '.join(extra)}];")
    for a, b, attrs in g.edges(data=True):
        lat = attrs.get("latency_ms")
        attr = f" [label={_dot_id(f'{lat:.1f} ms')}, latency_ms={lat}]" if lat is not None else ""
        lines.append(f"  {_dot_id(a)} -- {_dot_id(b)}{attr};")
    lines.append("}")
    return "\n".join(lines) + "\n"


def to_graphml(g: nx.Graph) -> str:
    """GraphML (networkx's writer); lists become space-separated text, missing values are
    left out, since GraphML attributes are scalars."""
    h = nx.Graph()
    h.graph.update({k: v for k, v in g.graph.items() if v is not None})
    for n, attrs in g.nodes(data=True):
        h.add_node(n, **_scalars(attrs))
    for a, b, attrs in g.edges(data=True):
        h.add_edge(a, b, **_scalars(attrs))
    return "\n".join(nx.generate_graphml(h)) + "\n"


def _scalars(attrs: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in attrs.items():
        if v is None:
            continue
        out[k] = " ".join(map(str, v)) if isinstance(v, list | tuple) else v
    return out


def _layout(g: nx.Graph) -> dict[str, tuple[float, float]]:
    if g.number_of_nodes() <= 2:
        pos = nx.circular_layout(g)
    else:
        try:
            pos = nx.spring_layout(g, seed=7)
        except ImportError:  # very large graphs want scipy
            pos = nx.circular_layout(g)
    return {n: (float(p[0]), float(p[1])) for n, p in pos.items()}


def draw(g: nx.Graph, fmt: str = "svg") -> bytes:
    """A picture of the graph (``svg`` or ``png``), drawn with matplotlib's object API (no
    pyplot, no global state): super nodes orange, peers blue, the local node outlined."""
    if fmt not in ("svg", "png"):
        raise ValueError(f"cannot draw as {fmt!r}: svg or png")
    from matplotlib.figure import Figure

    pos = _layout(g)
    fig = Figure(figsize=(7, 6))
    ax = fig.subplots()
    ax.set_axis_off()
    for a, b, attrs in g.edges(data=True):
        (x1, y1), (x2, y2) = pos[a], pos[b]
        ax.plot([x1, x2], [y1, y2], color="#999999", linewidth=1, zorder=1)
        lat = attrs.get("latency_ms")
        if lat is not None:
            ax.text((x1 + x2) / 2, (y1 + y2) / 2, f"{lat:.1f} ms", fontsize=7, color="#555555",
                    ha="center", va="center", zorder=2)
    local = g.graph.get("local")
    colors = {"super": "#f28e2b", "peer": "#4e79a7"}
    for n, attrs in g.nodes(data=True):
        x, y = pos[n]
        ax.scatter([x], [y], s=500 if attrs.get("role") == "super" else 300,
                   c=colors.get(str(attrs.get("role")), "#bab0ac"), zorder=3,
                   edgecolors="black" if n == local else "white", linewidths=2)
        label = n[-6:] + ("\n" + ", ".join(attrs["services"]) if attrs.get("services") else "")
        ax.text(x, y - 0.09, label, fontsize=8, ha="center", va="top", zorder=4)
    if pos:
        xs = [p[0] for p in pos.values()]
        ys = [p[1] for p in pos.values()]
        ax.set_xlim(min(xs) - 0.3, max(xs) + 0.3)
        ax.set_ylim(min(ys) - 0.35, max(ys) + 0.3)
    ax.set_title(f"micronetwork: {g.number_of_nodes()} nodes, {g.number_of_edges()} links",
                 fontsize=10)
    buf = io.BytesIO()
    fig.savefig(buf, format=fmt, dpi=100 if fmt == "png" else 72)
    return buf.getvalue()
