"""Topic discovery: ask the driver for more peers of a topic whose mesh cannot be filled.

Theory of operation. The heartbeat grafts from the topic's *connected* peers only. A node whose
connected topic peers are all in the mesh, backing off (pruned, 60 s) or scored below zero
stays below ``d_lo`` for good: with silent Sybils around it, possibly with no honest peer at
all. go-libp2p-pubsub does not leave it there: its discovery (``discover.go``) checks about
once a second whether each subscribed topic has ``EnoughPeers`` (a mesh of at least ``d_lo``)
and, if not, queries its discovery service (e.g. DHT provider records of the topic) and
connects to the peers found.

Here the check runs at the heartbeat, after the mesh has been maintained (:func:`check`). A
topic is *starved* when its mesh is below ``d_lo`` and no connected peer is left to graft
(topic peers with score >= 0, not backing off, not in the mesh). A topic that stays starved for
``discovery_backoff_ticks`` heartbeats makes the core emit ``FindPeers(topic, d - |mesh|)``;
while it stays starved it asks again after twice as many heartbeats each time, up to
``discovery_backoff_max_ticks``. As soon as it is not starved at a heartbeat the wait is
forgotten. The first wait keeps the start-up (subscriptions still travelling) and a single
heartbeat's churn from asking at all. How peers are found and how many connections a node
may have are the driver's business (the host dials peers it knows; the simulator models a
lookup); the core never learns whether it worked, except through new connections. No
randomness is drawn here, so turning discovery on or off changes no other seeded choice.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..commands import FindPeers

if TYPE_CHECKING:
    from .router import GossipCore

__all__ = ["DiscoveryWait", "check"]


class DiscoveryWait:
    """A starved topic's wait: the heartbeat tick of the next ``FindPeers`` and the backoff."""

    __slots__ = ("due", "ticks")

    def __init__(self, due: int, ticks: int) -> None:
        self.due = due
        self.ticks = ticks

    def __repr__(self) -> str:
        return f"DiscoveryWait(due={self.due}, ticks={self.ticks})"


def check(core: GossipCore, topic: str, starved: bool, mesh_size: int) -> None:
    """Called once per subscribed topic and heartbeat; see the module docstring."""
    cfg = core.config
    waits = core.discovery
    if not starved or not cfg.discovery:
        if waits:
            waits.pop(topic, None)
        return
    wait = waits.get(topic)
    if wait is None:
        waits[topic] = DiscoveryWait(core.tick + cfg.discovery_backoff_ticks,
                                     cfg.discovery_backoff_ticks)
        return
    if core.tick < wait.due:
        return
    count = cfg.d - mesh_size
    core.counters["find_peers"] += 1
    core.command(FindPeers(topic, count))
    wait.ticks = min(2 * wait.ticks, cfg.discovery_backoff_max_ticks)
    wait.due = core.tick + wait.ticks
