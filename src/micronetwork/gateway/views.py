"""The JSON of ``/network/*``: nodes, services (with endpoints and schemas), routes, graph."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import trio

from ..errors import MicronetworkError

if TYPE_CHECKING:
    from ..node import Node

__all__ = ["ServicesView", "graph_answer", "routes_json"]

_MAX_RESOLVE = 64  # services whose instances one /network/services may look up
_RESOLVE_TIMEOUT = 2.0


class ServicesView:
    """Every service the node knows of (its catalog, merged with the bootstrap nodes'), with
    the endpoints of one live instance; cached for ``ttl`` seconds, since the OpenAPI document
    and the dashboard both ask often."""

    def __init__(self, node: Node, ttl: float = 2.0) -> None:
        self._node = node
        self._ttl = ttl
        self._cached: tuple[float, list[dict[str, Any]]] | None = None
        self._lock = trio.Lock()

    def invalidate(self) -> None:
        self._cached = None

    async def get(self) -> list[dict[str, Any]]:
        async with self._lock:
            now = trio.current_time()
            if self._cached is not None and now - self._cached[0] < self._ttl:
                return self._cached[1]
            out = await self._build()
            self._cached = (trio.current_time(), out)
            return out

    async def _build(self) -> list[dict[str, Any]]:
        registry = self._node.registry
        if self._node.config.bootstrap:
            summaries = await registry.list_network(timeout=1.0)
        else:
            summaries = registry.list()
        versions = {s.name: (s.version, s.instances) for s in summaries}
        names = sorted(versions)[:_MAX_RESOLVE]
        found: dict[str, list[Any]] = {}

        async def resolve(name: str) -> None:
            try:
                found[name] = await registry.get(name, timeout=_RESOLVE_TIMEOUT)
            except (MicronetworkError, trio.TooSlowError):
                found[name] = []

        async with trio.open_nursery() as nursery:
            for name in names:
                if registry.known(name):
                    found[name] = registry.known(name)
                else:
                    nursery.start_soon(resolve, name)
        out = []
        for name in names:
            instances = found.get(name, [])
            newest = max(instances, key=lambda i: _version_key(i.version), default=None)
            out.append({
                "name": name,
                "version": newest.version if newest else versions[name][0],
                "instances": max(len(instances), versions[name][1]),
                "nodes": [i.peer.to_base58() for i in instances],
                "metadata": dict(newest.metadata) if newest else {},
                "endpoints": [
                    {"name": e.get("name"), "kind": e.get("kind", "unary"),
                     "request": e.get("request", {}), "response": e.get("response", {}),
                     "doc": str(e.get("doc") or ""), "idempotent": bool(e.get("idempotent"))}
                    for e in (newest.endpoints if newest else ())
                ],
            })
        return out


def _version_key(v: str) -> tuple[int, ...]:
    try:
        return tuple(int(x) for x in v.split("-")[0].split("+")[0].split("."))
    except ValueError:
        return ()


def routes_json(node: Node) -> list[dict[str, Any]]:
    out = []
    for r in node.registry.route_table():
        out.append({
            "service": r.service, "node": r.peer.to_base58(), "address": r.address,
            "gateway": r.gateway.to_base58() if r.gateway else None,
            "router": node.peer_id.to_base58(), "network": "micronetwork",
            "link": r.link, "metric": round(r.metric, 3), "rtt_ms": r.rtt_ms,
            "calls": r.calls, "errors": r.errors,
        })
    return out


GRAPH_TYPES = {
    "json": "application/json",
    "dot": "text/vnd.graphviz; charset=utf-8",
    "graphml": "application/graphml+xml; charset=utf-8",
    "svg": "image/svg+xml",
    "png": "image/png",
}


async def graph_answer(node: Node, depth: int | None, fmt: str) -> bytes:
    """The graph in ``fmt`` (see ``GRAPH_TYPES``); drawing runs in a worker thread."""
    from ..netview import graph as ng
    from .http import dumps

    g = node.network_graph(depth)
    if fmt == "json":
        return dumps(ng.to_node_link(g))
    if fmt == "dot":
        return ng.to_dot(g).encode()
    if fmt == "graphml":
        return ng.to_graphml(g).encode()
    data: bytes = await trio.to_thread.run_sync(ng.draw, g, fmt)
    return data
