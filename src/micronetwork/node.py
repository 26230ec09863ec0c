"""Node: the embeddable micronetwork API (trio).

::

    async with Node.open(NodeConfig.peer(bootstrap=[SUPER_ADDR])) as node:
        print(node.peer_id, node.addrs)
        info = await node.find_peer(other_id)
        await node.put("/mn/greeting", b"hello")
        value = await node.get("/mn/greeting")

A node is a :class:`~micronetwork.core.NodeCore` run by the host driver on a py-libp2p host.
Every method that talks to the network is bounded by a timeout and raises from
:mod:`micronetwork.errors` only.
"""

from __future__ import annotations

import logging
import os
import random
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any

import multiaddr
import trio

from ._node_support import (
    Peer,
    RoutingEntry,
    _addrs_to_text,
    _key_bytes,
    _load_key,
    _restore_retained,
    _single_leaf,
    _split_p2p,
    _store_factory,
    _Subscription,
    _Waiter,
)
from .broker import CaughtUp, Delivery, Lagging, Missed, Stored
from .config import NodeConfig, Role
from .core import NodeCore
from .errors import (
    ConfigError,
    NodeClosedError,
    PeerNotFoundError,
    RecordNotFoundError,
    RequestTimeout,
    ValidationError,
)
from .gossip import Message, TopicStats
from .host.build import build_host, quiet_libp2p_logging
from .host.driver import HostDriver, to_libp2p_id
from .host.rpc import RpcTransport
from .identity.keys import KeyPair
from .identity.peerid import PeerId
from .kademlia import PeerAdded, PeerRemoved, QueryFinished
from .netview import NetviewConfig, NodeExpired, NodeSeen
from .netview.view import NetworkView, NodeView
from .registry import FetchFinished, ServiceEvent
from .registry.record import service_key
from .service.broker import Broker
from .service.client import Client
from .service.registry import Registry
from .service.server import Server
from .service.service import Service

__all__ = ["Node", "Peer", "RoutingEntry"]

log = logging.getLogger(__name__)


class Node:
    """A running node. Create it with ``async with Node.open(config) as node``."""

    def __init__(self, config: NodeConfig, key: KeyPair, host: Any, core: NodeCore) -> None:
        self.config = config
        self.key = key
        self._host = host
        self._core = core
        self._driver = HostDriver(
            host,
            core,
            self._on_event,
            dial_timeout=config.dial_timeout,
            stream_idle_timeout=config.stream_idle_timeout,
        )
        self.registry = Registry(self)
        self.server = Server()
        self._rpc = RpcTransport(host, handler=self.server.handle)
        self.client = Client(self)
        self.broker = Broker(self)
        self.netview = NetworkView(self)
        self._waiters: dict[int, _Waiter] = {}
        self._topic_subscribers: dict[str, list[_Subscription]] = {}
        self._subscribers: list[trio.MemorySendChannel[Any]] = []
        self._callbacks: list[Callable[[Any], None]] = []
        self.events_dropped = 0
        self._closed = False
        self._started = False

    # -- opening and closing --------------------------------------------------------------------

    @classmethod
    @asynccontextmanager
    async def open(
        cls, config: NodeConfig | None = None, **overrides: Any
    ) -> AsyncIterator[Node]:
        """Start a node, bootstrap it, yield it, and close it on exit.

        ``overrides`` are NodeConfig fields (``Node.open(role="super")``).
        """
        if config is None:
            config = NodeConfig(**overrides)
        elif overrides:
            config = config.replace(**overrides)
        quiet_libp2p_logging()
        key = _load_key(config)
        host, listen = build_host(key, config.listen)
        seed = config.seed if config.seed is not None else int.from_bytes(os.urandom(8), "big")
        core = NodeCore(
            key,
            kademlia=config.kademlia,
            gossip=config.gossip,
            rng=random.Random(seed),
            now=trio.current_time(),
            registry=config.registry_config(),
            seq_base=int(time.time() * 1000),
            broker=config.broker_config(),
            wall_offset=time.time() - trio.current_time(),
            store_factory=_store_factory(config.data_dir),
            netview=NetviewConfig(role=config.role),
        )
        _restore_retained(core, config.data_dir)
        node = cls(config, key, host, core)
        try:
            async with host.run(listen_addrs=listen):
                async with trio.open_nursery() as nursery:
                    node._start(nursery)
                    try:
                        await node._bootstrap_from_config()
                        yield node
                    finally:
                        with trio.move_on_after(3.0) as scope:
                            scope.shield = True
                            await node._withdraw_services()
                        node._shutdown()
                        nursery.cancel_scope.cancel()
        except BaseExceptionGroup as group:
            # The body's own exception comes back wrapped by our nurseries; hand it to the
            # caller as raised (``except ServiceNotFound:`` must work around ``Node.open``).
            leaf = _single_leaf(group)
            if leaf is None:
                raise
            raise leaf from leaf.__cause__

    def _start(self, nursery: trio.Nursery) -> None:
        addrs = []
        for ma in self._host.get_addrs():
            try:
                addrs.append(
                    ma.decapsulate(multiaddr.Multiaddr(f"/p2p/{self.peer_id.to_base58()}"))
                )
            except Exception:
                addrs.append(ma)
        self._core.set_local_addrs(tuple(a.to_bytes() for a in addrs), trio.current_time())
        self._driver.attach(nursery)
        self._rpc.attach(nursery)
        self._started = True
        self.broker.start()
        nursery.start_soon(self.netview.run)

    async def _bootstrap_from_config(self) -> None:
        for addr in self.config.bootstrap:
            peer, transport = _split_p2p(addr)
            if peer != self.peer_id:
                self._core.kad.add_bootstrap_peer(peer, (transport,))
        if self.config.bootstrap:
            try:
                await self.bootstrap()
            except (RequestTimeout, PeerNotFoundError):
                pass  # the core retries while its table is empty

    async def _withdraw_services(self) -> None:
        """A graceful stop withdraws this node's registrations at once (watchers delete the
        instances instead of waiting for the TTL); waits, bounded by the caller, until the
        gossip send queues have been written."""
        if self._closed or not self._started:
            return
        await self.broker.settle()  # events handed to retention nodes are answered
        self.broker.close()  # leaves queue groups, flushes and closes the retention stores
        self._core.registry.deregister_all(self._driver.now())
        self._driver.pump()
        await self._driver.streams.flush()

    def _shutdown(self) -> None:
        if self._closed:
            return
        self._closed = True
        self.registry.close()
        for ch in list(self.broker._subs.values()):
            ch.close()
        self._driver.close()
        for w in self._waiters.values():
            w.event.set()
        for ch in self._subscribers:
            ch.close()
        for subs in self._topic_subscribers.values():
            for sub in subs:
                sub.send.close()

    async def close(self) -> None:
        """Stop serving and close every connection (also done when ``open`` exits)."""
        with trio.move_on_after(1.0):
            await self._withdraw_services()
        self._shutdown()
        await trio.lowlevel.checkpoint()

    # -- identity and views ---------------------------------------------------------------------

    @property
    def peer_id(self) -> PeerId:
        return self.key.peer_id

    @property
    def role(self) -> Role:
        return self.config.role

    @property
    def addrs(self) -> list[str]:
        """Full multiaddrs others can use to reach this node (with ``/p2p/<id>``)."""
        return [str(a) for a in self._host.get_addrs()]

    def peers(self) -> list[PeerId]:
        """Peers with an open connection."""
        return [PeerId(p.to_bytes()) for p in self._host.get_connected_peers()]

    def routing_table(self) -> list[RoutingEntry]:
        table = self._core.kad.table
        now = trio.current_time()
        return [
            RoutingEntry(
                e.peer_id, _addrs_to_text(e.addrs), table.cpl_of(e.key), now - e.last_seen,
                e.failures,
            )
            for e in table.entries()
        ]

    def stats(self) -> dict[str, int]:
        """Protocol counters: Kademlia (requests in/out, timeouts, bad messages, records
        stored, ...) and gossip (``gossip_``-prefixed: RPCs, deliveries, drops, ...)."""
        out = dict(self._core.kad.counters)
        out.update({f"gossip_{k}": v for k, v in self._core.gossip.counters.items()})
        out.update({f"driver_{k}": v for k, v in self._driver.counters.items()})
        out.update({f"registry_{k}": v for k, v in self._core.registry.counters.items()})
        out.update({f"rpc_{k}": v for k, v in self._rpc.stats().items()})
        out.update({f"broker_{k}": v for k, v in self._core.broker.counters.items()})
        return out

    # -- events ---------------------------------------------------------------------------------

    def _on_event(self, event: Any) -> None:
        if isinstance(event, Message):
            for sub in self._topic_subscribers.get(event.topic, ()):
                sub.deliver(event)
            return
        if isinstance(event, FetchFinished | ServiceEvent):
            self.registry.on_event(event)
            return
        if isinstance(event, Delivery | Missed | Lagging | CaughtUp | Stored):
            self.broker.on_event(event)
            return
        if isinstance(event, NodeSeen | NodeExpired):
            self.netview.on_event(event)
            return
        if isinstance(event, QueryFinished):
            w = self._waiters.get(event.query_id)
            if w is not None:
                w.result = event
                w.event.set()
            return
        for cb in self._callbacks:
            cb(event)
        for ch in list(self._subscribers):
            try:
                ch.send_nowait(event)
            except trio.WouldBlock:
                self.events_dropped += 1
            except trio.ClosedResourceError:
                self._subscribers.remove(ch)

    @asynccontextmanager
    async def events(self, buffer: int = 256) -> AsyncIterator[trio.MemoryReceiveChannel[Any]]:
        """Peer events (:class:`PeerAdded`, :class:`PeerRemoved`) as a channel.

        A consumer that falls ``buffer`` events behind loses the overflow; the loss is counted
        in ``node.events_dropped``.
        """
        send, recv = trio.open_memory_channel[Any](buffer)
        self._subscribers.append(send)
        try:
            async with recv:
                yield recv
        finally:
            if send in self._subscribers:
                self._subscribers.remove(send)
            send.close()

    def on_peer_event(self, callback: Callable[[PeerAdded | PeerRemoved], None]) -> None:
        """Call ``callback`` synchronously for every peer event."""
        self._callbacks.append(callback)

    # -- DHT operations -------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed or not self._started:
            raise NodeClosedError("the node is closed" if self._closed else "node not started")

    async def _query(self, start: Callable[[float], int], timeout: float) -> QueryFinished:
        self._check_open()
        qid = start(self._driver.now())
        waiter = self._waiters[qid] = _Waiter()
        try:
            self._driver.pump()
            with trio.fail_after(timeout):
                await waiter.event.wait()
        except trio.TooSlowError as exc:
            raise RequestTimeout(f"DHT query did not finish within {timeout} s") from exc
        finally:
            del self._waiters[qid]
        if waiter.result is None:
            raise NodeClosedError("the node closed while the query ran")
        return waiter.result

    async def bootstrap(self, addrs: Sequence[str] = (), timeout: float = 30.0) -> list[Peer]:
        """Join through the bootstrap peers (the configured ones, plus ``addrs``, which are
        kept for later re-bootstraps): a lookup of our own id that meets the k closest, then a
        refresh of every bucket. Returns the closest peers found."""
        for addr in addrs:
            try:
                peer, transport = _split_p2p(addr)
            except Exception as exc:
                raise ConfigError(f"{addr!r} is not a multiaddr with /p2p/<id>: {exc}") from exc
            self._core.kad.add_bootstrap_peer(peer, (transport,))
        ev = await self._query(self._core.kad.bootstrap, timeout)
        return [Peer.from_info(i) for i in ev.result or []]

    async def find_peer(self, peer: PeerId | str, timeout: float = 30.0) -> Peer:
        """The addresses of ``peer`` (base58 text or PeerId); PeerNotFoundError if none."""
        try:
            target = PeerId.parse(peer)
        except ValueError as exc:
            raise ConfigError(str(exc)) from exc
        ev = await self._query(lambda now: self._core.kad.find_peer(target, now), timeout)
        if ev.result is None:
            raise PeerNotFoundError(f"peer {target} not found ({ev.error})")
        return Peer.from_info(ev.result)

    async def find_closest(self, key: bytes | str, timeout: float = 30.0) -> list[Peer]:
        k = _key_bytes(key)
        ev = await self._query(lambda now: self._core.kad.find_closest(k, now), timeout)
        return [Peer.from_info(i) for i in ev.result]

    async def put(self, key: bytes | str, value: bytes, timeout: float = 30.0) -> int:
        """Store ``value`` under ``key`` here and at the k closest peers; returns how many
        peers stored it. Keys name a namespace: ``/mn/...`` (any value up to the size limit)
        or ``/pk/<peer id bytes>`` (that peer's public key). ValidationError otherwise."""
        k = _key_bytes(key)
        if not isinstance(value, bytes | bytearray | memoryview):
            raise ValidationError("values are bytes")
        v = bytes(value)
        self._check_open()
        # Validate (and raise) before any network traffic.
        self._core.kad.records.validate(k, v)
        ev = await self._query(lambda now: self._core.kad.put_value(k, v, now), timeout)
        stored: int = ev.result
        return stored

    async def get(self, key: bytes | str, timeout: float = 30.0) -> bytes:
        """The best valid value stored under ``key``; RecordNotFoundError if none."""
        k = _key_bytes(key)
        ev = await self._query(lambda now: self._core.kad.get_value(k, now), timeout)
        if ev.result is None:
            raise RecordNotFoundError(f"no value for {key!r} ({ev.error})")
        value: bytes = ev.result
        return value

    async def provide(self, key: bytes | str, timeout: float = 30.0) -> int:
        """Announce this node as a provider of ``key`` (republished while the node runs);
        returns how many peers received the record."""
        k = _key_bytes(key)
        ev = await self._query(lambda now: self._core.kad.provide(k, now), timeout)
        sent: int = ev.result
        return sent

    async def find_providers(
        self, key: bytes | str, count: int = 20, timeout: float = 30.0
    ) -> list[Peer]:
        k = _key_bytes(key)
        ev = await self._query(lambda now: self._core.kad.get_providers(k, now, count), timeout)
        return [Peer.from_info(i) for i in ev.result]

    async def ping(self, peer: PeerId | str, timeout: float = 10.0) -> float:
        """Round-trip time to a peer in seconds, over libp2p ping (dials if needed)."""
        from libp2p.host.ping import PingService

        self._check_open()
        target = PeerId.parse(peer)
        try:
            with trio.fail_after(timeout):
                entry = self._core.kad.table.get(target)
                await self._driver.ensure_connected(target, entry.addrs if entry else ())
                rtts = await PingService(self._host).ping(to_libp2p_id(target))
        except trio.TooSlowError as exc:
            raise RequestTimeout(f"ping to {target} timed out") from exc
        return float(rtts[0]) / 1000.0 if rtts else float("nan")

    async def connect(self, addr: str, timeout: float = 10.0) -> PeerId:
        """Open a connection to ``/…/p2p/<id>`` and wait for identify, after which the peer
        is in the routing table if it serves our DHT protocol."""
        self._check_open()
        try:
            peer, transport = _split_p2p(addr)
        except Exception as exc:
            raise ConfigError(f"{addr!r} is not a multiaddr with /p2p/<id>: {exc}") from exc
        try:
            with trio.fail_after(timeout):
                await self._driver.ensure_connected(peer, (transport,))
                await self._driver.wait_identified(peer)
        except trio.TooSlowError as exc:
            raise RequestTimeout(f"connecting to {peer} took over {timeout} s") from exc
        return peer

    # -- services -------------------------------------------------------------------------------

    async def serve(self, service: Service, timeout: float = 10.0) -> None:
        """Serve ``service``: its endpoints answer RPC calls from now on, and its signed
        registration is announced (gossip) and provided (DHT) until ``unserve`` or close,
        re-announced every ``registry.announce_interval``.

        Returns once the provider record has reached the closest peers, so that a
        ``registry.get`` anywhere finds the service (or after ``timeout`` seconds, with a
        warning: the registry keeps re-providing it), and the node is connected to up to four
        other instances of the service, through which its announcements reach their watchers
        (``registry.join_providers``)."""
        self._check_open()
        self.server.add(service)
        try:
            self._core.registry.register(service.describe(), self._driver.now())
        except Exception:
            self.server.remove(service.name)
            raise
        self._driver.pump()
        deadline = trio.current_time() + timeout
        try:
            await self.provide(service_key(service.name), timeout=timeout)
        except RequestTimeout:
            log.warning("serve(%r): the provider record was not stored within %s s; it is "
                        "re-provided in the background", service.name, timeout)
        await self.registry.join_providers(
            service.name, max(1.0, deadline - trio.current_time())
        )

    async def unserve(self, name: str) -> None:
        """Stop serving ``name``; watchers delete this instance at once."""
        self._check_open()
        self._core.registry.deregister(name, self._driver.now())
        self.server.remove(name)
        self._driver.pump()
        await trio.lowlevel.checkpoint()

    # -- gossip (pub/sub) ------------------------------------------------------------------------

    @asynccontextmanager
    async def subscribe(
        self, topic: str, buffer: int = 4096
    ) -> AsyncIterator[trio.MemoryReceiveChannel[Message]]:
        """Receive the topic's messages (gossipsub) while the block runs::

            async with node.subscribe("news") as messages:
                async for msg in messages:
                    print(msg.from_peer, msg.data)

        Each message arrives once. A consumer more than ``buffer`` messages behind loses the
        overflow; ``topic_stats(topic)`` and ``stats()["gossip_app_dropped"]`` count it.
        """
        self._check_open()
        send, recv = trio.open_memory_channel[Message](buffer)
        sub = _Subscription(send, self._core.gossip.counters)
        subs = self._topic_subscribers.setdefault(topic, [])
        if not subs:
            self._core.gossip.subscribe(topic, self._driver.now())
            self._driver.pump()
        subs.append(sub)
        try:
            async with recv:
                yield recv
        finally:
            subs.remove(sub)
            send.close()
            if not subs and not self._closed:
                del self._topic_subscribers[topic]
                self._core.gossip.unsubscribe(topic, self._driver.now())
                self._driver.pump()

    async def publish(self, topic: str, data: bytes) -> bytes:
        """Sign and publish ``data`` on ``topic``; returns the message id."""
        self._check_open()
        if not isinstance(data, bytes | bytearray | memoryview):
            raise ValidationError("message data is bytes")
        msg_id = self._core.gossip.publish(topic, bytes(data), self._driver.now())
        self._driver.pump()
        await trio.lowlevel.checkpoint()
        return msg_id

    def topic_peers(self, topic: str) -> list[PeerId]:
        """Connected peers subscribed to ``topic``."""
        return sorted(self._core.gossip.topic_peers(topic))

    def mesh_peers(self, topic: str) -> list[PeerId]:
        """Our gossipsub mesh for ``topic`` (peers we forward full messages to)."""
        return sorted(self._core.gossip.mesh_peers(topic))

    def topic_stats(self, topic: str) -> TopicStats:
        return self._core.gossip.topic_stats(topic)

    # -- network views (issue 7) --------------------------------------------------------------

    async def network_nodes(self, depth: int | None = None) -> list[NodeView]:
        """The nodes this node knows of (its own first): role, addresses, measured latency
        (direct peers; measured now if older than 15 s), last seen, services served."""
        self._check_open()
        await self.netview.measure()
        return self.netview.nodes(depth)

    def network_graph(self, depth: int | None = 3) -> Any:
        """The peer graph (a ``networkx.Graph``) within ``depth`` hops of this node; export
        it with :mod:`micronetwork.netview.graph` (JSON, DOT, GraphML, SVG/PNG)."""
        self._check_open()
        return self.netview.graph(depth)

    def __repr__(self) -> str:
        return f"<Node {self.role} {self.peer_id.short()}>"
