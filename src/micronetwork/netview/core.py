"""NetviewCore: the sans-IO network view of one node.

Theory of operation. Every node announces a signed :class:`NetviewRecord` (who it is, its
role and addresses, its direct peers with measured round-trip times, the services it serves) on
the gossip topic ``/micronetwork/netview/1``:

* every ``interval`` (30 s), so a live node never expires at its receivers (``ttl`` 90 s:
  two lost announcements do not expire it);
* soon after its peer set, its services or its addresses change, and when a peer subscribes to
  the topic (a newcomer learns about us), rate-limited to one announcement per
  ``min_interval`` (10 s), so churn cannot make a node flood the topic (each join changes the
  peer set of the ~20 nodes it connects to, and each of their records reaches every node:
  at 1 s, 20 nodes joining one after the other cost 5x the CPU of the joins themselves).

Receivers verify records in the gossip validator (``validate``: signature, signer = gossip
author = the record's peer, bounds), keep the newest by ``seq`` per peer until ``ttl`` passes
on their own clock, and hold at most ``max_records`` (those expiring soonest go first).
``snapshot(now)`` gives the records with how long ago each was heard; :mod:`.graph` turns that
into a networkx graph.

Inputs: ``on_peer_connected`` / ``on_peer_disconnected`` / ``on_rtt`` (from the driver),
``set_services`` / ``set_addrs`` (from NodeCore), ``validate`` / ``on_message`` /
``on_peer_subscribed`` (gossip), ``on_timer(now)``. Outputs: ``Emit`` of :class:`NodeSeen` and
:class:`NodeExpired` (``drain``); gossip goes through :class:`NetviewPorts`.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from ..commands import Command, Emit
from ..errors import ConfigError, MicronetworkError
from ..gossip.events import Message, Outcome
from ..gossip.verified import Verified
from ..identity.keys import KeyPair
from ..identity.peerid import PeerId
from .record import MAX_PEERS, MAX_SERVICES, MAX_TTL, NetviewRecord, Role, open_record

__all__ = [
    "TOPIC",
    "NetviewConfig",
    "NetviewCore",
    "NetviewPorts",
    "NodeExpired",
    "NodeInfo",
    "NodeSeen",
]

TOPIC = "/micronetwork/netview/1"


@dataclass(frozen=True, slots=True)
class NetviewConfig:
    """Timings and bounds of the network view (see the module docstring)."""

    role: Role = "peer"
    interval: float = 30.0
    ttl: float = 90.0
    min_interval: float = 10.0
    max_peers: int = MAX_PEERS
    max_records: int = 10_000

    def __post_init__(self) -> None:
        if not 0 < self.interval < self.ttl <= MAX_TTL:
            raise ConfigError(f"netview: need 0 < interval < ttl <= {MAX_TTL}")
        if not 0 <= self.min_interval <= self.interval:
            raise ConfigError("netview: need 0 <= min_interval <= interval")
        if not 1 <= self.max_peers <= MAX_PEERS or self.max_records < 1:
            raise ConfigError(f"netview: need 1 <= max_peers <= {MAX_PEERS}, max_records >= 1")
        if self.role not in ("super", "peer"):
            raise ConfigError("netview: role is 'super' or 'peer'")


class NetviewPorts(Protocol):
    """What the network view needs from gossip."""

    def publish(self, topic: str, data: bytes, now: float) -> None: ...
    def subscribe(self, topic: str, now: float) -> None: ...
    def unsubscribe(self, topic: str, now: float) -> None: ...


@dataclass(frozen=True, slots=True)
class NodeSeen:
    """A node's record arrived and said something new (``new``: first record of that node)."""

    peer: PeerId
    record: NetviewRecord
    new: bool


@dataclass(frozen=True, slots=True)
class NodeExpired:
    """A node was not heard from within its ttl, or withdrew (``reason``)."""

    peer: PeerId
    reason: str


@dataclass(frozen=True, slots=True)
class NodeInfo:
    """A record as held, with how long ago it was heard (0 for the local node)."""

    record: NetviewRecord
    age: float


@dataclass(slots=True)
class _Held:
    record: NetviewRecord
    heard: float
    expires: float


class NetviewCore:
    def __init__(
        self,
        key: KeyPair,
        ports: NetviewPorts,
        *,
        config: NetviewConfig | None = None,
        seq_base: int = 0,
        now: float = 0.0,
    ) -> None:
        self.key = key
        self.local_id = key.peer_id
        self.ports = ports
        self.config = config or NetviewConfig()
        self.addrs: tuple[bytes, ...] = ()
        self.services: tuple[str, ...] = ()
        self.direct: dict[PeerId, float | None] = {}  # connected peer -> RTT in ms
        self.records: dict[PeerId, _Held] = {}
        self.counters: Counter[str] = Counter()
        self._seq = seq_base
        self._out: list[Command] = []
        self._verified: Verified[NetviewRecord] = Verified()
        self._last = -math.inf
        self._due = now + self.config.interval
        self._soon: float | None = None
        self._next_expiry: float | None = None
        self.ports.subscribe(TOPIC, now)

    # == local state ===========================================================================

    def on_peer_connected(self, peer: PeerId, now: float) -> None:
        if peer != self.local_id and peer not in self.direct:
            self.direct[peer] = None
            self._changed(now)

    def on_peer_disconnected(self, peer: PeerId, now: float) -> None:
        if peer in self.direct:
            del self.direct[peer]
            self._changed(now)

    def on_rtt(self, peer: PeerId, rtt: float, now: float) -> None:
        """A measured round trip to a connected peer, in seconds (sent with the next record;
        a new RTT alone does not trigger an announcement)."""
        if peer in self.direct and math.isfinite(rtt) and rtt >= 0:
            self.direct[peer] = round(rtt * 1000.0, 3)

    def set_services(self, names: Iterable[str], now: float) -> None:
        services = tuple(sorted(set(names)))[:MAX_SERVICES]
        if services != self.services:
            self.services = services
            self._changed(now)

    def set_addrs(self, addrs: tuple[bytes, ...], now: float) -> None:
        if addrs != self.addrs:
            self.addrs = addrs
            self._changed(now)

    def _changed(self, now: float) -> None:
        if self._soon is None:
            self._soon = max(now, self._last + self.config.min_interval)

    def local_record(self, ttl: float | None = None) -> NetviewRecord:
        """This node's record as it would be announced now (``seq`` is not advanced)."""
        peers = sorted(
            self.direct.items(), key=lambda kv: (kv[1] is None, kv[1] or 0.0, bytes(kv[0]))
        )[: self.config.max_peers]
        return NetviewRecord(
            self.local_id, self.config.role, self.addrs[:16], tuple(peers), self.services,
            self._seq, self.config.ttl if ttl is None else ttl,
        )

    def _announce(self, now: float, ttl: float | None = None) -> None:
        self._seq += 1
        data = self.local_record(ttl).seal(self.key)
        self.ports.publish(TOPIC, data, now)
        self.counters["announced"] += 1
        self._last = now
        self._soon = None
        self._due = now + self.config.interval

    def withdraw(self, now: float) -> None:
        """Announce a record with ttl 0: receivers drop this node at once (graceful stop)."""
        self._announce(now, ttl=0.0)

    # == gossip input ==========================================================================

    def is_netview_topic(self, topic: str) -> bool:
        return topic == TOPIC

    def validate(self, msg: Message) -> Outcome:
        """The gossip validator: signature, bounds, and only a node announces itself."""
        try:
            rec = open_record(msg.data)
        except MicronetworkError:
            self.counters["rejected"] += 1
            return Outcome.REJECT
        if rec.peer != msg.from_peer or msg.topic != TOPIC:
            self.counters["rejected"] += 1
            return Outcome.REJECT
        self._verified.put(msg.msg_id, rec)
        return Outcome.ACCEPT

    def on_message(self, msg: Message, now: float) -> None:
        rec = self._verified.take(msg, self.validate)
        if rec is None:
            return
        if rec.peer == self.local_id:
            return
        self.receive(rec, now)

    def receive(self, rec: NetviewRecord, now: float) -> bool:
        """Take a verified record; True if it was newer than the one held."""
        held = self.records.get(rec.peer)
        if held is not None and rec.seq <= held.record.seq:
            self.counters["stale"] += 1
            return False
        if rec.ttl <= 0:
            if held is not None:
                del self.records[rec.peer]
                self._out.append(Emit(NodeExpired(rec.peer, "withdrawn")))
            return True
        expires = now + min(rec.ttl, self.config.ttl * 4)
        self.records[rec.peer] = _Held(rec, now, expires)
        self.counters["received"] += 1
        self._want_expiry(expires)
        if held is None or _news(held.record, rec):
            self._out.append(Emit(NodeSeen(rec.peer, rec, held is None)))
        if len(self.records) > self.config.max_records:
            victim = min(self.records, key=lambda p: self.records[p].expires)
            del self.records[victim]
            self.counters["evicted"] += 1
            self._out.append(Emit(NodeExpired(victim, "evicted")))
        return True

    def on_peer_subscribed(self, peer: PeerId, topic: str, now: float) -> None:
        if topic == TOPIC:
            self._changed(now)

    # == views =================================================================================

    def snapshot(self, now: float) -> dict[PeerId, NodeInfo]:
        """Every live record (the local node's current one included) and its age."""
        out = {p: NodeInfo(h.record, max(0.0, now - h.heard))
               for p, h in self.records.items() if h.expires > now}
        out[self.local_id] = NodeInfo(self.local_record(), 0.0)
        return out

    # == time ==================================================================================

    def _want_expiry(self, when: float) -> None:
        if self._next_expiry is None or when < self._next_expiry:
            self._next_expiry = when

    def next_deadline(self) -> float | None:
        times = [self._due]
        if self._soon is not None:
            times.append(self._soon)
        if self._next_expiry is not None:
            times.append(self._next_expiry)
        return min(times)

    def on_timer(self, now: float) -> None:
        if now >= self._due or (self._soon is not None and now >= self._soon):
            self._announce(now)
        if self._next_expiry is not None and now >= self._next_expiry:
            self._next_expiry = None
            for peer, held in list(self.records.items()):
                if held.expires <= now:
                    del self.records[peer]
                    self.counters["expired"] += 1
                    self._out.append(Emit(NodeExpired(peer, "expired")))
                else:
                    self._want_expiry(held.expires)

    def drain(self) -> list[Command]:
        out, self._out = self._out, []
        return out


def _news(old: NetviewRecord, new: NetviewRecord) -> bool:
    return (
        old.role != new.role
        or old.addrs != new.addrs
        or old.services != new.services
        or {p for p, _ in old.peers} != {p for p, _ in new.peers}
    )
