"""RegistryCore: the sans-IO service registry of one node.

What it does, by input:

* ``register(description, now)``: this node serves a service. Its signed :class:`Registration`
  is announced on the service's gossip topic (and the catalog topic) at once and every
  ``announce_interval``; the node becomes a DHT provider of ``service_key(name)``.
  ``deregister`` announces a *withdrawn* record: every watcher deletes the instance at once.
* gossip messages on registry topics (``on_message``), after the synchronous gossip validator
  (``validate``) checked the signature, the signer and the author. An instance expires
  ``ttl`` seconds after its last announcement (``announce_interval`` < ``ttl``, so one lost
  announcement does not expire a live node); a killed node therefore disappears within ``ttl``
  (+ propagation) of its death: 20 s by default.
* ``watch(name)`` / ``unwatch(name)``: interest in a service; the node subscribes to its topic
  while someone watches it. ``fetch(peer, addrs, name)`` asks a provider found in the DHT for
  its records directly (``/micronetwork/registry/1.0.0``); names looked up are kept watched in a
  bounded LRU (``max_looked_up``), so what a node holds does not grow with the network.
* ``on_request``: answers ``get`` (this node's records for a name) and ``list`` (a page of
  the catalog).

The catalog: names with versions and instance counts, bounded (``catalog_size``, least
recently seen dropped first). Every node puts the services it serves, watches or looked up in
it; super nodes also subscribe to the catalog topic, where serving nodes announce every
``catalog_interval``, and answer ``list`` from it, which is how ``micronetwork services`` sees
services nobody near it watches.

Outputs (``drain``): ``Request`` / ``Respond`` for the registry protocol and ``Emit`` of
:class:`ServiceEvent` and :class:`FetchFinished`; gossip and DHT actions go through the
``RegistryPorts`` that NodeCore implements (synchronously, as ARCHITECTURE.md says cores are
wired).
"""

from __future__ import annotations

import heapq
from collections import Counter, OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import cbor2

from ..commands import Command, Emit, Request, Respond
from ..errors import ConfigError, MicronetworkError
from ..gossip.events import Message, Outcome
from ..gossip.verified import Verified
from ..identity.keys import KeyPair
from ..identity.peerid import PeerId
from .config import RegistryConfig
from .record import (
    TOPIC_PREFIX,
    Registration,
    open_registration,
    service_key,
    service_topic,
    valid_service_name,
)

__all__ = ["FetchFinished", "RegistryConfig", "RegistryCore", "RegistryPorts", "ServiceEvent"]

CATALOG_TOPIC = TOPIC_PREFIX + "~catalog"


class RegistryPorts(Protocol):
    """What the registry needs from the other cores of its node."""

    def publish(self, topic: str, data: bytes, now: float) -> None: ...
    def subscribe(self, topic: str, now: float) -> None: ...
    def unsubscribe(self, topic: str, now: float) -> None: ...
    def provide(self, key: bytes, now: float) -> None: ...
    def stop_providing(self, key: bytes) -> None: ...
    def set_hub(self, topic: str, on: bool) -> None: ...


@dataclass(frozen=True, slots=True)
class ServiceEvent:
    """An instance of a service appeared, changed, or went away (withdrawn or expired)."""

    kind: Literal["created", "updated", "deleted"]
    name: str
    peer: PeerId
    registration: Registration
    reason: str = ""  # for "deleted": "withdrawn" | "expired"


@dataclass(frozen=True, slots=True)
class FetchFinished:
    """The answer to ``fetch``: how many valid records the provider sent, or an error."""

    request_id: int
    name: str
    peer: PeerId
    records: int
    error: str | None = None


@dataclass(slots=True)
class _Instance:
    reg: Registration
    expires: float


@dataclass(slots=True)
class _CatalogEntry:
    version: str
    peers: dict[PeerId, float] = field(default_factory=dict)  # instance -> expiry
    hints: dict[PeerId, tuple[int, float]] = field(default_factory=dict)  # lister -> (n, exp)


class RegistryCore:
    def __init__(
        self,
        key: KeyPair,
        ports: RegistryPorts,
        *,
        config: RegistryConfig | None = None,
        seq_base: int = 0,
        now: float = 0.0,
    ) -> None:
        self.key = key
        self.local_id = key.peer_id
        self.ports = ports
        self.config = config or RegistryConfig()
        self.addrs: tuple[bytes, ...] = ()
        self._seq = seq_base
        self.local: dict[str, Registration] = {}
        self.instances: dict[str, dict[PeerId, _Instance]] = {}
        self.watchers: Counter[str] = Counter()
        self.looked_up: OrderedDict[str, None] = OrderedDict()
        self.catalog: OrderedDict[str, _CatalogEntry] = OrderedDict()
        self.tombstones: OrderedDict[tuple[str, PeerId], tuple[int, float]] = OrderedDict()
        self.subscribed: set[str] = set()
        self.counters: Counter[str] = Counter()
        self._out: list[Command] = []
        self._verified: Verified[Registration] = Verified()
        self._next_id = 0
        self._pending: dict[int, tuple[PeerId, str, float]] = {}
        self._timers: list[tuple[float, str, str]] = []
        self._next_catalog = now + self.config.catalog_interval
        self._next_expiry: float | None = None
        self._pushed: dict[str, float] = {}
        if self.config.catalog_subscribe:
            self._subscribe(CATALOG_TOPIC, now)

    # == local services ========================================================================

    def register(self, description: Mapping[str, Any], now: float) -> Registration:
        """Announce that this node serves ``description`` (``Service.describe()``)."""
        name = description.get("name", "")
        if not valid_service_name(name):
            raise ConfigError(f"invalid service name {name!r}")
        reg = self._make(description, withdrawn=False)
        reg.seal(self.key)  # size and key checks before anything is announced
        first = name not in self.local
        self.local[name] = reg
        self._catalog_put(reg, now)
        if first:
            self._subscribe(service_topic(name), now)
            # Watchers connect to the providers they find, so a provider forwards its service
            # topic to all of them: another instance's announcements reach every watcher in
            # two hops (GossipCore.set_hub).
            self.ports.set_hub(service_topic(name), True)
            self.ports.provide(service_key(name), now)
        self._announce(reg, now, catalog=True)
        self._schedule(now + self.config.announce_interval, "announce", name)
        return reg

    def deregister(self, name: str, now: float) -> None:
        """Stop serving ``name``: watchers delete this instance at once."""
        reg = self.local.pop(name, None)
        if reg is None:
            return
        gone = self._make(reg.service, withdrawn=True)
        self._announce(gone, now, catalog=self.config.catalog_subscribe is False)
        self.ports.stop_providing(service_key(name))
        self.ports.set_hub(service_topic(name), False)
        self._maybe_unsubscribe(name, now)

    def deregister_all(self, now: float) -> None:
        for name in list(self.local):
            self.deregister(name, now)

    def set_addrs(self, addrs: tuple[bytes, ...], now: float) -> None:
        self.addrs = addrs
        for reg in list(self.local.values()):
            self.register(reg.service, now)

    def _make(self, description: Mapping[str, Any], *, withdrawn: bool) -> Registration:
        self._seq += 1
        ttl = 0.0 if withdrawn else self.config.ttl
        return Registration(dict(description), self.local_id, self.addrs, self._seq, ttl, withdrawn)

    def _announce(self, reg: Registration, now: float, *, catalog: bool) -> None:
        data = reg.seal(self.key)
        self.counters["announced"] += 1
        self.ports.publish(service_topic(reg.name), data, now)
        if catalog:
            self.ports.publish(CATALOG_TOPIC, data, now)

    # == interest ==============================================================================

    def watch(self, name: str, now: float) -> None:
        self.watchers[name] += 1
        self._subscribe(service_topic(name), now)

    def unwatch(self, name: str, now: float) -> None:
        self.watchers[name] -= 1
        if self.watchers[name] <= 0:
            del self.watchers[name]
            self._maybe_unsubscribe(name, now)

    def note_looked_up(self, name: str, now: float) -> bool:
        """Keep ``name`` watched as recently looked up (LRU of ``max_looked_up`` names).
        Whether that changed what the node subscribes to (commands may be queued then)."""
        looked_up = self.looked_up
        if name in looked_up:  # the common case: a name called again
            looked_up.move_to_end(name)
            if service_topic(name) in self.subscribed:
                return False
        looked_up[name] = None
        self._subscribe(service_topic(name), now)
        while len(looked_up) > self.config.max_looked_up:
            old, _ = looked_up.popitem(last=False)
            self._maybe_unsubscribe(old, now)
        return True

    def interested(self, name: str) -> bool:
        return name in self.local or name in self.watchers or name in self.looked_up

    def _subscribe(self, topic: str, now: float) -> None:
        if topic not in self.subscribed:
            self.subscribed.add(topic)
            self.ports.subscribe(topic, now)

    def _maybe_unsubscribe(self, name: str, now: float) -> None:
        if self.interested(name):
            return
        topic = service_topic(name)
        if topic in self.subscribed:
            self.subscribed.discard(topic)
            self.ports.unsubscribe(topic, now)
        for peer, inst in self.instances.pop(name, {}).items():
            self._out.append(Emit(ServiceEvent("deleted", name, peer, inst.reg, "unwatched")))

    # == views =================================================================================

    def get(self, name: str) -> list[Registration]:
        """Live instances of ``name`` this node knows (its own included)."""
        out = [i.reg for i in self.instances.get(name, {}).values()]
        if name in self.local:
            out.append(self.local[name])
        return out

    def known(self) -> dict[str, list[Registration]]:
        names = set(self.instances) | set(self.local)
        return {n: self.get(n) for n in sorted(names) if self.get(n)}

    def catalog_view(self, now: float) -> list[tuple[str, str, int]]:
        """(name, latest version seen, live instances) for every catalog name."""
        out = []
        for name, entry in self.catalog.items():
            live = sum(1 for exp in entry.peers.values() if exp > now)
            hinted = [n for n, exp in entry.hints.values() if exp > now]
            live = max(live, len(self.get(name)), max(hinted, default=0))
            if live:
                out.append((name, entry.version, live))
        return sorted(out)

    def on_peer_subscribed(self, peer: PeerId, topic: str, now: float) -> None:
        """A peer joined a topic we announce on: announce to it soon (at most once a second
        per topic), instead of leaving it to wait for the next interval."""
        if topic == CATALOG_TOPIC:
            wanted = bool(self.local)
        else:
            wanted = topic.startswith(TOPIC_PREFIX) and topic[len(TOPIC_PREFIX):] in self.local
        if not wanted or _scheduled(self._timers, "push", topic):
            return
        last = self._pushed.get(topic, -1e18)
        self._schedule(max(now, last + 1.0), "push", topic)

    def _push(self, topic: str, now: float) -> None:
        self._pushed[topic] = now
        if topic == CATALOG_TOPIC:
            for reg in self.local.values():
                self.ports.publish(CATALOG_TOPIC, reg.seal(self.key), now)
                self.counters["pushed"] += 1
            return
        current = self.local.get(topic[len(TOPIC_PREFIX):])
        if current is not None:
            fresh = self.local[current.name] = self._make(current.service, withdrawn=False)
            self.ports.publish(topic, fresh.seal(self.key), now)
            self.counters["pushed"] += 1

    # == gossip input ==========================================================================

    def is_registry_topic(self, topic: str) -> bool:
        return topic.startswith(TOPIC_PREFIX)

    def validate(self, msg: Message) -> Outcome:
        """The gossip validator of registry topics: signature, signer = author, topic."""
        try:
            reg = open_registration(msg.data)
        except MicronetworkError:
            self.counters["rejected"] += 1
            return Outcome.REJECT
        if reg.peer != msg.from_peer:
            self.counters["rejected"] += 1
            return Outcome.REJECT  # only a node announces its own services
        if msg.topic != CATALOG_TOPIC and msg.topic != service_topic(reg.name):
            self.counters["rejected"] += 1
            return Outcome.REJECT
        self._verified.put(msg.msg_id, reg)
        return Outcome.ACCEPT

    def on_message(self, msg: Message, now: float) -> None:
        reg = self._verified.take(msg, self.validate)
        if reg is None:
            return
        if reg.peer == self.local_id:
            return
        self._catalog_put(reg, now)
        if msg.topic == CATALOG_TOPIC and not self.interested(reg.name):
            return
        self._apply(reg, now)

    def _apply(self, reg: Registration, now: float) -> bool:
        """Take a verified record; True if it was news."""
        name, peer = reg.name, reg.peer
        tomb = self.tombstones.get((name, peer))
        if tomb is not None and reg.seq <= tomb[0]:
            self.counters["stale"] += 1
            return False
        current = self.instances.get(name, {}).get(peer)
        if current is not None and reg.seq <= current.reg.seq:
            self.counters["stale"] += 1
            return False
        if reg.withdrawn:
            self._tombstone(name, peer, reg.seq, now)
            if current is not None:
                del self.instances[name][peer]
                if not self.instances[name]:
                    del self.instances[name]
                self._out.append(Emit(ServiceEvent("deleted", name, peer, reg, "withdrawn")))
            entry = self.catalog.get(name)
            if entry is not None:
                entry.peers.pop(peer, None)
            return True
        expires = now + reg.ttl
        self.instances.setdefault(name, {})[peer] = _Instance(reg, expires)
        self._want_expiry(expires)
        if current is None:
            self.counters["created"] += 1
            self._out.append(Emit(ServiceEvent("created", name, peer, reg)))
        elif _changed(current.reg, reg):
            self._out.append(Emit(ServiceEvent("updated", name, peer, reg)))
        return True

    def _tombstone(self, name: str, peer: PeerId, seq: int, now: float) -> None:
        self.tombstones[(name, peer)] = (seq, now + self.config.tombstone_time)
        self.tombstones.move_to_end((name, peer))
        while len(self.tombstones) > self.config.max_tombstones:
            self.tombstones.popitem(last=False)

    def _catalog_put(self, reg: Registration, now: float) -> None:
        entry = self.catalog.get(reg.name)
        if entry is None:
            entry = self.catalog[reg.name] = _CatalogEntry(reg.version)
        elif _newer_version(reg.version, entry.version):
            entry.version = reg.version
        if reg.withdrawn:
            entry.peers.pop(reg.peer, None)
        else:
            entry.peers[reg.peer] = now + max(reg.ttl, self.config.catalog_interval * 2)
        self.catalog.move_to_end(reg.name)
        while len(self.catalog) > self.config.catalog_size:
            self.catalog.popitem(last=False)

    # == the request protocol ==================================================================

    def encode(self, message: Any) -> bytes:
        return cbor2.dumps(message)

    def fetch(self, peer: PeerId, addrs: tuple[bytes, ...], name: str, now: float) -> int:
        """Ask ``peer`` for its records of ``name``; a ``FetchFinished`` event answers."""
        self._next_id += 1
        rid = self._next_id
        self._pending[rid] = (peer, name, now + self.config.request_timeout)
        self._schedule(now + self.config.request_timeout, "timeout", str(rid))
        self._out.append(
            Request(peer, self.config.protocol_id, rid, {"op": "get", "name": name}, addrs)
        )
        return rid

    def list_from(self, peer: PeerId, addrs: tuple[bytes, ...], now: float) -> int:
        """Ask ``peer`` for its catalog; answered by ``FetchFinished`` (records = names)."""
        self._next_id += 1
        rid = self._next_id
        self._pending[rid] = (peer, "", now + self.config.request_timeout)
        self._schedule(now + self.config.request_timeout, "timeout", str(rid))
        self._out.append(Request(peer, self.config.protocol_id, rid, {"op": "list"}, addrs))
        return rid

    def on_request(self, peer: PeerId, token: int, data: Any, now: float) -> None:
        try:
            req = cbor2.loads(data) if isinstance(data, bytes | bytearray) else data
        except Exception:
            req = None
        if not isinstance(req, dict):
            self.counters["bad_requests"] += 1
            self._out.append(Respond(token, None))
            return
        op = req.get("op")
        if op == "get" and isinstance(req.get("name"), str):
            reg = self.local.get(req["name"])
            records = [reg.seal(self.key)] if reg is not None else []
            self._out.append(Respond(token, {"records": records}))
        elif op == "list":
            names = [[n, v, c] for n, v, c in self.catalog_view(now)]
            self._out.append(Respond(token, {"services": names[: self.config.catalog_size]}))
        else:
            self.counters["bad_requests"] += 1
            self._out.append(Respond(token, None))

    def on_response(self, peer: PeerId, request_id: int, data: Any, now: float) -> None:
        p = self._pending.pop(request_id, None)
        if p is None:
            return
        _, name, _ = p
        try:
            answer = cbor2.loads(data) if isinstance(data, bytes | bytearray) else data
        except Exception:
            answer = None
        if not isinstance(answer, dict):
            self._finish(request_id, name, peer, 0, "malformed answer")
            return
        if not name:  # a list answer
            count = 0
            for item in answer.get("services", [])[: self.config.catalog_size]:
                if (
                    isinstance(item, list) and len(item) == 3 and valid_service_name(item[0])
                    and isinstance(item[1], str) and isinstance(item[2], int)
                ):
                    self._catalog_hint(item[0], item[1], peer, item[2], now)
                    count += 1
            self._finish(request_id, name, peer, count, None)
            return
        good = 0
        for data_ in answer.get("records", [])[:16]:
            try:
                reg = open_registration(data_)
            except MicronetworkError:
                self.counters["rejected"] += 1
                continue
            if reg.name != name or reg.peer != peer:
                self.counters["rejected"] += 1
                continue
            self._catalog_put(reg, now)
            self._apply(reg, now)
            good += 1
        self._finish(request_id, name, peer, good, None if good else "no record for that name")

    def _catalog_hint(self, name: str, version: str, via: PeerId, count: int, now: float) -> None:
        entry = self.catalog.get(name)
        if entry is None:
            entry = self.catalog[name] = _CatalogEntry(version)
        elif _newer_version(version, entry.version):
            entry.version = version
        # what a catalog peer reports: its count, until it expires or our own view is larger
        entry.hints[via] = (count, now + self.config.catalog_interval * 2)
        self.catalog.move_to_end(name)
        while len(self.catalog) > self.config.catalog_size:
            self.catalog.popitem(last=False)

    def on_request_failed(self, peer: PeerId, request_id: int, reason: str, now: float) -> None:
        p = self._pending.pop(request_id, None)
        if p is not None:
            self._finish(request_id, p[1], peer, 0, reason)

    def on_bad_message(self, peer: PeerId, reason: str, now: float) -> None:
        self.counters["bad_messages"] += 1

    def _finish(self, rid: int, name: str, peer: PeerId, n: int, error: str | None) -> None:
        self._out.append(Emit(FetchFinished(rid, name, peer, n, error)))

    # == time ==================================================================================

    def _schedule(self, when: float, what: str, arg: str) -> None:
        heapq.heappush(self._timers, (when, what, arg))

    def _want_expiry(self, when: float) -> None:
        if self._next_expiry is None or when < self._next_expiry:
            self._next_expiry = when
            self._schedule(when, "expire", "")

    def next_deadline(self) -> float | None:
        first = self._timers[0][0] if self._timers else None
        if not (self.local or self.catalog):
            return first  # nothing to re-announce or expire on the catalog's clock
        return min(first, self._next_catalog) if first is not None else self._next_catalog

    def on_timer(self, now: float) -> None:
        while self._timers and self._timers[0][0] <= now:
            _, what, arg = heapq.heappop(self._timers)
            if what == "announce":
                reg = self.local.get(arg)
                if reg is not None and not _scheduled(self._timers, "announce", arg):
                    self.local[arg] = self._make(reg.service, withdrawn=False)
                    self._announce(self.local[arg], now, catalog=False)
                    self._schedule(now + self.config.announce_interval, "announce", arg)
            elif what == "timeout":
                rid = int(arg)
                p = self._pending.pop(rid, None)
                if p is not None:
                    self._finish(rid, p[1], p[0], 0, "timed out")
            elif what == "push":
                self._push(arg, now)
            elif what == "expire":
                self._next_expiry = None
                self._expire(now)
        if now >= self._next_catalog:
            self._next_catalog = now + self.config.catalog_interval
            for reg in self.local.values():
                self._announce(reg, now, catalog=True)
            self._expire_catalog(now)

    def _expire(self, now: float) -> None:
        soonest: float | None = None
        for name in list(self.instances):
            peers = self.instances[name]
            for peer, inst in list(peers.items()):
                if inst.expires <= now:
                    del peers[peer]
                    self.counters["expired"] += 1
                    self._tombstone(name, peer, inst.reg.seq, now)
                    self._out.append(Emit(ServiceEvent("deleted", name, peer, inst.reg, "expired")))
                elif soonest is None or inst.expires < soonest:
                    soonest = inst.expires
            if not peers:
                del self.instances[name]
        if soonest is not None:
            self._want_expiry(soonest)
        for key, (_, until) in list(self.tombstones.items()):
            if until <= now:
                del self.tombstones[key]

    def _expire_catalog(self, now: float) -> None:
        for name in list(self.catalog):
            entry = self.catalog[name]
            for peer, exp in list(entry.peers.items()):
                if exp <= now:
                    del entry.peers[peer]
            for peer, (_, exp) in list(entry.hints.items()):
                if exp <= now:
                    del entry.hints[peer]
            if (
                not entry.peers and not entry.hints
                and name not in self.local and name not in self.instances
            ):
                del self.catalog[name]

    def drain(self) -> list[Command]:
        out, self._out = self._out, []
        return out


def _scheduled(timers: list[tuple[float, str, str]], what: str, arg: str) -> bool:
    return any(w == what and a == arg for _, w, a in timers)


def _changed(a: Registration, b: Registration) -> bool:
    return a.service != b.service or a.addrs != b.addrs


def _newer_version(candidate: str, current: str) -> bool:
    def key(v: str) -> tuple[int, ...]:
        core = v.split("-", 1)[0].split("+", 1)[0]
        try:
            return tuple(int(x) for x in core.split("."))
        except ValueError:
            return ()

    return key(candidate) > key(current)
