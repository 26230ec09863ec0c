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

A mesh can also be full of the wrong peers. Silent Sybils graft, hold mesh slots and forward
nothing; scoring (P3) prunes them only after its activation window, and the heartbeat then
grafts the next silent neighbours, so a node with few honest neighbours cycles through all the
others before the rule above sees it short, ~30 s at 80 % Sybils (docs/simulator.md). So a
topic is also starved when fewer than ``d_lo`` of its mesh peers and candidates are *active*:
sent us a message or an IHAVE of the topic within the last ``discovery_active_ticks``
heartbeats (:func:`note_heard`). That counts only where silence means something: the topic has
delivered messages from peers for a whole window (IHAVEs alone do not count: a node that only
publishes hears IHAVEs of its own messages, and its mesh peers, all downstream of it, never
send it anything), or its score parameters expect traffic (P3 on); and only once we have been
subscribed for a window. The ask is then for ``d`` minus the active
peers. The graft below ``d_lo`` prefers active candidates too (:func:`prefer_active`): a peer
that is heard from is more likely one that forwards.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from ..commands import FindPeers
from ..identity.peerid import PeerId

if TYPE_CHECKING:
    from .peer_state import PeerState
    from .router import GossipCore

__all__ = ["DiscoveryWait", "TopicTraffic", "check", "note_heard", "prefer_active"]

NEVER = -(1 << 62)  # the tick of "never heard"


class DiscoveryWait:
    """A starved topic's wait: the heartbeat tick of the next ``FindPeers`` and the backoff."""

    __slots__ = ("due", "ticks")

    def __init__(self, due: int, ticks: int) -> None:
        self.due = due
        self.ticks = ticks

    def __repr__(self) -> str:
        return f"DiscoveryWait(due={self.due}, ticks={self.ticks})"


class TopicTraffic:
    """Heartbeat ticks: the first check after subscribing, the start of the current run of
    traffic (no gap longer than a window), the last tick a peer's message was delivered."""

    __slots__ = ("subscribed", "streak", "last")

    def __init__(self, tick: int) -> None:
        self.subscribed = tick
        self.streak = -1
        self.last = -1


def note_heard(st: PeerState, topic: str, tick: int) -> None:
    """A message or an IHAVE of ``topic`` came from the peer of ``st`` (hot path: one store)."""
    st.heard[topic] = tick


def _active(core: GossipCore, peers: Iterable[PeerId], topic: str) -> int:
    since = core.tick - core.config.discovery_active_ticks
    n = 0
    for p in peers:
        st = core.peers.get(p)
        if st is not None and st.heard.get(topic, NEVER) >= since:
            n += 1
    return n


def prefer_active(core: GossipCore, topic: str, cands: list[PeerId]) -> tuple[list[PeerId],
                                                                                list[PeerId]]:
    """``cands`` split into (active, the rest), each in the given order; ``([], cands)`` when
    the rule is off or when all or none are active (the plain random pick is then unchanged)."""
    window = core.config.discovery_active_ticks
    if not window or not cands:
        return [], cands
    since = core.tick - window
    peers = core.peers
    active = [p for p in cands if (st := peers.get(p)) is not None
              and st.heard.get(topic, NEVER) >= since]
    if not active or len(active) == len(cands):
        return [], cands
    taken = set(active)
    return active, [p for p in cands if p not in taken]


def _expects_traffic(core: GossipCore, topic: str) -> bool:
    params = core.config.score
    tp = params.topic(topic) if params is not None else None
    return (tp is not None and tp.mesh_message_deliveries_weight < 0
            and tp.mesh_message_deliveries_threshold > 0)


def _traffic(core: GossipCore, topic: str, window: int) -> TopicTraffic:
    """The topic's record, brought up to date with the router's last delivery tick."""
    tr = core.traffic.get(topic)
    if tr is None:
        tr = core.traffic[topic] = TopicTraffic(core.tick)
    last = core.delivered_tick.get(topic, -1)
    if last > tr.last:
        if tr.streak < 0 or last - tr.last > window:
            tr.streak = last
        tr.last = last
    return tr


def _short_of_active(
    core: GossipCore, topic: str, mesh: set[PeerId], cands: list[PeerId]
) -> int:
    """How many active peers the topic lacks for ``d`` (0: enough, or silence means nothing)."""
    cfg = core.config
    window = cfg.discovery_active_ticks
    if not window:
        return 0
    tick = core.tick
    tr = _traffic(core, topic, window)
    if tick - tr.subscribed < window:
        return 0
    busy = tr.last >= tick - window and 0 <= tr.streak <= tick - window
    if not busy and not _expects_traffic(core, topic):
        return 0
    active = _active(core, mesh, topic) + _active(core, cands, topic)
    return cfg.d - active if active < cfg.d_lo else 0


def check(core: GossipCore, topic: str, mesh: set[PeerId], cands: list[PeerId]) -> None:
    """Called once per subscribed topic and heartbeat while discovery is on, after the mesh was
    maintained, with the peers still left to graft; see the module docstring."""
    cfg = core.config
    waits = core.discovery
    short = _short_of_active(core, topic, mesh, cands)  # also keeps the traffic record
    count = cfg.d - len(mesh) if len(mesh) < cfg.d_lo and not cands else short
    if count <= 0:
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
    core.counters["find_peers"] += 1
    core.command(FindPeers(topic, count))
    wait.ticks = min(2 * wait.ticks, cfg.discovery_backoff_max_ticks)
    wait.due = core.tick + wait.ticks
