"""The route table: how this node would reach each service instance, and how well it does.

The Micro network's ``routes`` view showed SERVICE, ADDRESS, GATEWAY, ROUTER, NETWORK, METRIC
and LINK for every instance. Ours, per (service, peer):

* ``address``: the multiaddr the call goes to; ``gateway``: the relay in between, or ``None``
  for a direct connection (relayed routes come with the relay work; today every route is
  direct); ``router``: this node; ``network``: the network name; ``link``: the transport.
* ``metric``: lower is better, from what calls measured: the smoothed round-trip time in
  milliseconds (EWMA, α = 0.3; 100 ms until the first call), times (1 + calls in flight), plus
  1000 per recent consecutive failure. The client's "lowest metric" selection uses it, and it
  is updated as each call completes. No clock here: callers pass durations.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..identity.peerid import PeerId

__all__ = ["Route", "RouteTable"]

_ALPHA = 0.3
_DEFAULT_RTT_MS = 100.0
_FAILURE_COST = 1000.0


@dataclass(slots=True)
class Route:
    service: str
    peer: PeerId
    address: str
    gateway: PeerId | None = None
    link: str = "tcp"
    rtt_ms: float | None = None
    inflight: int = 0
    calls: int = 0
    errors: int = 0
    consecutive_failures: int = 0

    @property
    def metric(self) -> float:
        rtt = self.rtt_ms if self.rtt_ms is not None else _DEFAULT_RTT_MS
        return rtt * (1 + self.inflight) + _FAILURE_COST * self.consecutive_failures

    @property
    def kind(self) -> str:
        return "direct" if self.gateway is None else "relayed"


class RouteTable:
    def __init__(self) -> None:
        self._routes: dict[tuple[str, PeerId], Route] = {}

    def update_instance(self, service: str, peer: PeerId, address: str) -> Route:
        route = self._routes.get((service, peer))
        if route is None:
            route = self._routes[(service, peer)] = Route(service, peer, address)
        elif address:
            route.address = address
        return route

    def remove_instance(self, service: str, peer: PeerId) -> None:
        self._routes.pop((service, peer), None)

    def get(self, service: str, peer: PeerId) -> Route | None:
        return self._routes.get((service, peer))

    def started(self, service: str, peer: PeerId) -> None:
        route = self._routes.get((service, peer))
        if route is not None:
            route.inflight += 1

    def finished(self, service: str, peer: PeerId, seconds: float | None, ok: bool) -> None:
        """A call ended: ``seconds`` it took (None if it never reached the peer)."""
        route = self._routes.get((service, peer))
        if route is None:
            return
        route.inflight = max(0, route.inflight - 1)
        route.calls += 1
        if ok:
            route.consecutive_failures = 0
            if seconds is not None:
                ms = seconds * 1000.0
                route.rtt_ms = ms if route.rtt_ms is None else (
                    _ALPHA * ms + (1 - _ALPHA) * route.rtt_ms
                )
        else:
            route.errors += 1
            route.consecutive_failures += 1

    def routes(self, service: str | None = None) -> list[Route]:
        out = [r for (s, _), r in self._routes.items() if service is None or s == service]
        return sorted(out, key=lambda r: (r.service, r.metric, bytes(r.peer)))
