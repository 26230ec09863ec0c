"""``node.registry``: the service registry as the application sees it (trio).

The sans-IO :class:`~micronetwork.registry.RegistryCore` keeps the records; this facade finds
what the node does not hold yet (DHT providers of the service's key, then a direct ``get`` to
each provider), filters by version range, turns core events into ``watch()`` channels, and keeps
the route table in step with the instances it knows.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import multiaddr
import trio

from ..errors import ConfigError, RequestTimeout, ServiceNotFound
from ..identity.peerid import PeerId
from ..registry import FetchFinished, Registration, ServiceEvent, service_key
from ..registry.record import valid_service_name
from ..registry.routes import Route, RouteTable

if TYPE_CHECKING:
    from ..node import Node, Peer
    from .semver import VersionRange

__all__ = ["Registry", "ServiceInstance", "ServiceSummary"]

_MAX_PROVIDERS = 8
_JOIN_PROVIDERS = 4  # other instances a new server connects to (see join_providers)

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ServiceInstance:
    """One node serving one service, as its signed registration describes it."""

    name: str
    version: str
    peer: PeerId
    addrs: tuple[str, ...]
    metadata: Mapping[str, Any]
    endpoints: tuple[Mapping[str, Any], ...]
    registration: Registration

    @classmethod
    def from_registration(cls, reg: Registration) -> ServiceInstance:
        return cls(
            reg.name,
            reg.version,
            reg.peer,
            tuple(_addr_text(a) for a in reg.addrs),
            dict(reg.service.get("metadata", {})),
            tuple(reg.service.get("endpoints", [])),
            reg,
        )

    def endpoint(self, name: str) -> Mapping[str, Any] | None:
        for e in self.endpoints:
            if e.get("name") == name:
                return e
        return None


@dataclass(frozen=True, slots=True)
class ServiceSummary:
    name: str
    version: str  # the latest version seen
    instances: int


@functools.lru_cache(maxsize=4096)
def _addr_text(addr: bytes) -> str:
    try:
        return str(multiaddr.Multiaddr(addr))
    except Exception:
        return addr.hex()


class _Fetch:
    __slots__ = ("done", "result")

    def __init__(self) -> None:
        self.done = trio.Event()
        self.result: FetchFinished | None = None


class Registry:
    """Look services up, list them, and watch them come and go."""

    def __init__(self, node: Node) -> None:
        self._node = node
        self._fetches: dict[int, _Fetch] = {}
        self._watchers: list[tuple[str | None, trio.MemorySendChannel[ServiceEvent]]] = []
        self.routes = RouteTable()
        self.events_dropped = 0
        # id(registration) -> (registration, its ServiceInstance): a call asks for the same
        # registrations again and again; they are immutable, so their instances are too.
        self._instances: dict[int, tuple[Registration, ServiceInstance]] = {}

    @property
    def _core(self) -> Any:
        return self._node._core.registry

    # -- events from the core (called by the Node) -------------------------------------------

    def on_event(self, event: FetchFinished | ServiceEvent) -> None:
        if isinstance(event, FetchFinished):
            f = self._fetches.get(event.request_id)
            if f is not None:
                f.result = event
                f.done.set()
            return
        if event.kind == "deleted":
            self.routes.remove_instance(event.name, event.peer)
        else:
            addrs = event.registration.addrs
            address = _addr_text(addrs[0]) if addrs else ""
            self.routes.update_instance(event.name, event.peer, address)
        for name, ch in list(self._watchers):
            if name is None or name == event.name:
                try:
                    ch.send_nowait(event)
                except trio.WouldBlock:
                    self.events_dropped += 1
                except trio.ClosedResourceError:
                    self._watchers.remove((name, ch))

    def close(self) -> None:
        for f in self._fetches.values():
            f.done.set()
        for _, ch in self._watchers:
            ch.close()

    # -- queries ------------------------------------------------------------------------------

    def known(self, name: str, version: str | None = None) -> list[ServiceInstance]:
        """Instances of ``name`` this node holds now (no network traffic)."""
        return self._known(name, _range(version))

    def _known(self, name: str, rng: VersionRange | None) -> list[ServiceInstance]:
        out = [
            self._instance(r)
            for r in self._core.get(name)
            if rng is None or _matches(rng, r.version)
        ]
        for inst in out:
            self.routes.update_instance(inst.name, inst.peer, inst.addrs[0] if inst.addrs else "")
        return sorted(out, key=lambda i: bytes(i.peer))

    def _instance(self, reg: Registration) -> ServiceInstance:
        hit = self._instances.get(id(reg))
        if hit is not None and hit[0] is reg:
            return hit[1]
        if len(self._instances) >= 4096:
            self._instances.clear()
        inst = ServiceInstance.from_registration(reg)
        self._instances[id(reg)] = (reg, inst)
        return inst

    async def get(
        self, name: str, version: str | None = None, *, timeout: float = 10.0
    ) -> list[ServiceInstance]:
        """Live instances of ``name`` (optionally within a semver range such as ``"^1.2"``).

        What the node holds answers at once; otherwise the DHT's providers of the service are
        asked directly. The name stays watched (bounded LRU), so later calls are local and
        changes arrive by gossip. Raises :class:`ServiceNotFound` if nobody serves it.
        """
        if not valid_service_name(name):
            raise ConfigError(f"invalid service name {name!r}")
        rng = _range(version)
        found = self._known(name, rng)
        if found:
            if self._core.note_looked_up(name, self._node._driver.now()):
                self._node._driver.pump()
            return found
        try:
            with trio.fail_after(timeout):
                await self._lookup(name)
        except trio.TooSlowError as exc:
            raise RequestTimeout(f"looking up service {name!r} took over {timeout} s") from exc
        found = self.known(name, version)
        if not found:
            any_version = self.known(name)
            if any_version and rng is not None:
                versions = ", ".join(sorted({i.version for i in any_version}))
                raise ServiceNotFound(f"service {name!r} has no instance matching {version!r} "
                                      f"(found: {versions})")
            raise ServiceNotFound(f"service {name!r} not found in the network")
        return found

    async def _lookup(self, name: str) -> None:
        node = self._node
        node._check_open()
        self._core.note_looked_up(name, node._driver.now())
        node._driver.pump()
        try:
            providers = await node.find_providers(service_key(name), count=_MAX_PROVIDERS)
        except RequestTimeout:
            providers = []
        providers = [p for p in providers if p.peer_id != node.peer_id][:_MAX_PROVIDERS]
        if not providers:
            return
        async with trio.open_nursery() as nursery:
            for p in providers:
                addrs = tuple(multiaddr.Multiaddr(a).to_bytes() for a in p.addrs)
                nursery.start_soon(self._fetch, p.peer_id, addrs, name)

    async def join_providers(self, name: str, timeout: float) -> int:
        """Connect to up to ``_JOIN_PROVIDERS`` other nodes serving ``name`` (found in the DHT);
        returns how many are connected. Best effort, bounded by ``timeout``.

        Watchers of a service connect to the providers they look up, and each provider
        forwards the service's topic to all its topic peers (``GossipCore.set_hub``); once a
        new instance is connected to one of them, its announcements reach every watcher in two
        hops instead of trickling through one mesh and IHAVE gossip."""
        node = self._node
        connected = 0
        with trio.move_on_after(timeout):
            try:
                found = await node.find_providers(
                    service_key(name), count=_MAX_PROVIDERS, timeout=timeout
                )
            except RequestTimeout:
                return 0
            others = [p for p in found if p.peer_id != node.peer_id][:_JOIN_PROVIDERS]

            async def one(p: Peer) -> None:
                nonlocal connected
                addrs = tuple(multiaddr.Multiaddr(a).to_bytes() for a in p.addrs)
                try:
                    await node._driver.ensure_connected(p.peer_id, addrs)
                    connected += 1
                except Exception as exc:  # an unreachable instance: the others still count
                    log.debug("serve(%r): could not reach provider %s: %s", name, p.peer_id, exc)

            async with trio.open_nursery() as nursery:
                for p in others:
                    nursery.start_soon(one, p)
        return connected

    async def _fetch(self, peer: PeerId, addrs: tuple[bytes, ...], name: str) -> FetchFinished:
        rid = self._core.fetch(peer, addrs, name, self._node._driver.now())
        f = self._fetches[rid] = _Fetch()
        try:
            self._node._driver.pump()
            await f.done.wait()
        finally:
            del self._fetches[rid]
        if f.result is None:
            return FetchFinished(rid, name, peer, 0, "node closed")
        return f.result

    async def list_network(self, *, timeout: float = 5.0) -> list[ServiceSummary]:
        """``list()`` merged with the catalogs of the bootstrap (super) nodes."""
        node = self._node
        node._check_open()
        targets = []
        for addr in node.config.bootstrap:
            ma = multiaddr.Multiaddr(addr)
            peer = PeerId.from_base58(ma.value_for_protocol("p2p"))
            if peer != node.peer_id:
                targets.append(
                    (peer, (ma.decapsulate(multiaddr.Multiaddr(f"/p2p/{peer}")).to_bytes(),))
                )
        with trio.move_on_after(timeout):
            async with trio.open_nursery() as nursery:
                for peer, addrs in targets:
                    nursery.start_soon(self._list_from, peer, addrs)
        return self.list()

    async def _list_from(self, peer: PeerId, addrs: tuple[bytes, ...]) -> None:
        rid = self._core.list_from(peer, addrs, self._node._driver.now())
        f = self._fetches[rid] = _Fetch()
        try:
            self._node._driver.pump()
            await f.done.wait()
        finally:
            del self._fetches[rid]

    @asynccontextmanager
    async def watch(
        self, name: str | None = None, buffer: int = 256
    ) -> AsyncIterator[trio.MemoryReceiveChannel[ServiceEvent]]:
        """Created / updated / deleted events for ``name`` (every service this node hears
        about if None) while the block runs. Watching a name subscribes to its announcements;
        the instances already known arrive first as "created" events."""
        node = self._node
        node._check_open()
        send, recv = trio.open_memory_channel[ServiceEvent](buffer)
        if name is not None:
            self._core.watch(name, node._driver.now())
            for reg in self._core.get(name):
                send.send_nowait(ServiceEvent("created", name, reg.peer, reg))
        entry = (name, send)
        self._watchers.append(entry)
        node._driver.pump()
        try:
            async with recv:
                yield recv
        finally:
            if entry in self._watchers:
                self._watchers.remove(entry)
            send.close()
            if name is not None and not node._closed:
                self._core.unwatch(name, node._driver.now())
                node._driver.pump()

    def route_table(self, service: str | None = None) -> list[Route]:
        return self.routes.routes(service)


    def list(self) -> list[ServiceSummary]:
        """Every service this node knows of: what it serves, watches or looked up, and its
        catalog (bounded; super nodes hear every serving node's catalog announcements)."""
        now = self._node._driver.now()
        return [ServiceSummary(n, v, c) for n, v, c in self._core.catalog_view(now)]

def _range(version: str | None) -> VersionRange | None:
    if version is None or version in ("", "*"):
        return None
    from .semver import VersionRange

    return VersionRange.parse(version)


def _matches(rng: VersionRange, version: str) -> bool:
    from .semver import Version

    try:
        return bool(rng.matches(Version.parse(version)))
    except ConfigError:
        return False
