"""NodeCore: the sans-IO cores of one node, composed behind one driver interface.

Drivers (the py-libp2p host driver, the simulator) talk to a NodeCore only. Two kinds of
protocol live here:

* request/response (Kademlia): ``on_request`` / ``on_response`` / ``on_request_failed``, routed
  by the protocol id every ``Request`` names;
* long-lived streams (gossipsub, ``/meshsub/1.2.0`` and ``/meshsub/1.1.0``): every frame read
  from a peer's stream is ``on_stream_message``; the core answers with ``Send`` commands that
  the driver writes on its own outbound stream to that peer.

* the registry (``/micronetwork/registry/1.0.0`` requests, and gossip topics under
  ``/micronetwork/registry/1/``) and the broker (``/micronetwork/broker/1.0.0``, topics under
  ``/micronetwork/broker/1/``): NodeCore hands each the gossip messages (and new subscribers)
  of its topics, which never reach the application, and lends them gossip (and the registry
  the DHT) through ``_Ports``.
* the network view (issue 7, opt-in: ``netview=NetviewConfig(...)``): the gossip topic
  ``/micronetwork/netview/1`` goes to it, and it hears connects, disconnects, addresses and
  the services the registry serves.

Connection events go to every core. ``drain()`` returns the commands of all cores;
``next_deadline()`` is the earliest of theirs, and ``on_timer`` lets each core act on its own.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable
from typing import Any

from .broker import BrokerConfig, BrokerCore, StoreFactory
from .commands import Command, Emit
from .gossip import GossipConfig, GossipCore
from .gossip.commands import Send
from .gossip.events import Message, PeerSubscribed
from .identity.keys import KeyPair
from .identity.peerid import PeerId
from .kademlia import KademliaConfig, KademliaCore
from .netview import NetviewConfig, NetviewCore
from .registry import RegistryConfig, RegistryCore

__all__ = ["NodeCore"]


class NodeCore:
    def __init__(
        self,
        key: KeyPair,
        *,
        kademlia: KademliaConfig,
        gossip: GossipConfig | None = None,
        rng: random.Random,
        now: float,
        local_addrs: tuple[bytes, ...] = (),
        registry: RegistryConfig | None = None,
        seq_base: int = 0,
        broker: BrokerConfig | None = None,
        wall_offset: float = 0.0,
        store_factory: StoreFactory | None = None,
        netview: NetviewConfig | None = None,
    ) -> None:
        self.local_id = key.peer_id
        self._now = now  # the latest input's time (drain() hands it to the registry)
        self.kad = KademliaCore(
            key.peer_id,
            config=kademlia,
            rng=random.Random(rng.getrandbits(64)),
            now=now,
            local_addrs=local_addrs,
        )
        self.gossip = GossipCore(
            key, config=gossip or GossipConfig(), rng=random.Random(rng.getrandbits(64)), now=now
        )
        self.registry = RegistryCore(
            key, _Ports(self, "registry"), config=registry, seq_base=seq_base, now=now
        )
        self.broker = BrokerCore(
            key, _Ports(self, "broker"), config=broker, rng=random.Random(rng.getrandbits(64)),
            now=now, wall_offset=wall_offset, store_factory=store_factory, seq_base=seq_base,
        )
        self._requests: dict[str, Any] = {
            kademlia.protocol_id: self.kad,
            self.registry.config.protocol_id: self.registry,
            self.broker.config.protocol_id: self.broker,
        }
        self._streams: dict[str, Any] = {p: self.gossip for p in self.gossip.config.protocols}
        # The network view (issue 7) is opt-in: Node turns it on, the simulator does not.
        self.netview: NetviewCore | None = None
        if netview is not None:
            self.netview = NetviewCore(
                key, _Ports(self, "netview"), config=netview, seq_base=seq_base, now=now
            )

    @property
    def protocols(self) -> list[str]:
        """Request/response protocols this node serves (a client-mode DHT does not serve
        the DHT protocol)."""
        if self.kad.config.mode == "client":
            return [p for p in self._requests if p != self.kad.config.protocol_id]
        return list(self._requests)

    @property
    def stream_protocols(self) -> list[str]:
        """Long-lived stream protocols (gossipsub), in order of preference."""
        return list(self._streams)

    def encode(self, protocol: str, message: Any) -> bytes:
        core = self._requests.get(protocol) or self._streams[protocol]
        data: bytes = core.encode(message)
        return data

    def max_message_size(self, protocol: str) -> int:
        core = self._requests.get(protocol) or self._streams[protocol]
        size: int = core.config.max_message_size
        return size

    def set_local_addrs(self, addrs: tuple[bytes, ...], now: float = 0.0) -> None:
        self.kad.local_addrs = addrs
        self.registry.set_addrs(addrs, now)
        if self.netview is not None:
            self.netview.set_addrs(addrs, now)

    # -- inputs ---------------------------------------------------------------------------------

    def on_rtt(self, peer: PeerId, rtt: float, now: float) -> None:
        """A measured round-trip time (s): the network view shows it, gossip prefers close
        peers for part of its meshes (``GossipConfig.mesh_latency_share``)."""
        if self.netview is not None:
            self.netview.on_rtt(peer, rtt, now)
        if math.isfinite(rtt):
            self.gossip.set_peer_rtt(peer, rtt)

    def on_peer_identified(
        self,
        peer: PeerId,
        addrs: tuple[bytes, ...],
        protocols: Iterable[str],
        now: float,
        outbound: bool = False,
        ip: str | None = None,
    ) -> None:
        self._now = now
        protocols = list(protocols)
        self.kad.on_peer_identified(peer, addrs, protocols, now)
        self.gossip.on_peer_connected(peer, protocols, outbound, now, ip)
        if self.netview is not None:
            self.netview.on_peer_connected(peer, now)

    def on_peer_disconnected(self, peer: PeerId, now: float) -> None:
        self._now = now
        self.kad.on_peer_disconnected(peer, now)
        self.gossip.on_peer_disconnected(peer, now)
        if self.netview is not None:
            self.netview.on_peer_disconnected(peer, now)

    def on_request(self, peer: PeerId, protocol: str, token: int, data: Any, now: float) -> None:
        self._now = now
        self._requests[protocol].on_request(peer, token, data, now)

    def on_stream_opened(self, peer: PeerId, protocol: str, now: float) -> None:
        """A peer opened a long-lived stream: it speaks ``protocol`` even if identify is late."""
        self._now = now
        self._streams[protocol].on_peer_connected(peer, [protocol], False, now)

    def on_stream_message(self, peer: PeerId, protocol: str, data: Any, now: float) -> None:
        self._now = now
        self._streams[protocol].on_rpc(peer, data, now)

    def on_stream_lost(self, peer: PeerId, protocol: str, now: float) -> None:
        """Our outbound long-lived stream to a still-connected ``peer`` broke."""
        self._now = now
        self._streams[protocol].on_stream_lost(peer, now)

    def on_send_dropped(self, cmd: Send, now: float) -> None:
        self._now = now
        self._streams[cmd.protocol].on_send_dropped(cmd.peer, cmd.message, now)

    def on_bad_message(self, peer: PeerId, protocol: str, reason: str, now: float) -> None:
        self._now = now
        core = self._requests.get(protocol)
        if core is not None:
            core.on_bad_message(peer, reason, now)
        else:
            self._streams[protocol].on_bad_frame(peer, reason, now)

    def on_response(
        self, peer: PeerId, protocol: str, request_id: int, data: Any, now: float
    ) -> None:
        self._now = now
        self._requests[protocol].on_response(peer, request_id, data, now)

    def on_request_failed(
        self, peer: PeerId, protocol: str, request_id: int, reason: str, now: float
    ) -> None:
        self._now = now
        self._requests[protocol].on_request_failed(peer, request_id, reason, now)

    def on_timer(self, now: float) -> None:
        self._now = now
        for core in self._timed():
            deadline = core.next_deadline()
            if deadline is not None and deadline <= now:
                core.on_timer(now)

    # -- outputs --------------------------------------------------------------------------------

    def next_deadline(self) -> float | None:
        deadlines = [d for d in (c.next_deadline() for c in self._timed()) if d is not None]
        return min(deadlines) if deadlines else None

    def drain(self, now: float | None = None) -> list[Command | Send]:
        """Every core's commands. Gossip messages of registry topics go to the registry
        (which may publish in turn), so this loops until the cores are quiet."""
        out: list[Command | Send] = []
        while True:
            t = self._now if now is None else now
            batch: list[Command | Send] = [
                *self.kad.drain(), *self.registry.drain(), *self.broker.drain()
            ]
            if self.netview is not None:
                self.netview.set_services(self.registry.local, t)
                batch.extend(self.netview.drain())
            for cmd in self.gossip.drain():
                event = cmd.event if isinstance(cmd, Emit) else None
                if isinstance(event, Message):
                    if self.registry.is_registry_topic(event.topic):
                        self.registry.on_message(event, t)
                    elif self.broker.is_broker_topic(event.topic):
                        self.broker.on_message(event, t)
                    elif self.netview is not None and self.netview.is_netview_topic(event.topic):
                        self.netview.on_message(event, t)
                    else:
                        batch.append(cmd)
                    continue
                if isinstance(event, PeerSubscribed):
                    if self.registry.is_registry_topic(event.topic):
                        self.registry.on_peer_subscribed(event.peer, event.topic, t)
                    elif self.broker.is_broker_topic(event.topic):
                        self.broker.on_peer_subscribed(event.peer, event.topic, t)
                    elif self.netview is not None and self.netview.is_netview_topic(event.topic):
                        self.netview.on_peer_subscribed(event.peer, event.topic, t)
                batch.append(cmd)
            if not batch:
                return out
            out.extend(batch)

    def _timed(self) -> tuple[Any, ...]:
        cores: tuple[Any, ...] = (self.kad, self.gossip, self.registry, self.broker)
        return cores if self.netview is None else (*cores, self.netview)


class _Ports:
    """A core's view of gossip and the DHT (synchronous calls into the other cores);
    ``owner`` names the core whose ``validate`` checks the messages of its topics."""

    def __init__(self, node: NodeCore, owner: str) -> None:
        self._node = node
        self._owner = owner

    def publish(self, topic: str, data: bytes, now: float) -> None:
        self._node.gossip.publish(topic, data, now)

    def subscribe(self, topic: str, now: float) -> None:
        owner = self._owner
        self._node.gossip.set_validator(topic, lambda m: getattr(self._node, owner).validate(m))
        self._node.gossip.subscribe(topic, now)

    def unsubscribe(self, topic: str, now: float) -> None:
        self._node.gossip.unsubscribe(topic, now)
        self._node.gossip.remove_validator(topic)

    def provide(self, key: bytes, now: float) -> None:
        self._node.kad.provide(key, now)

    def stop_providing(self, key: bytes) -> None:
        self._node.kad.stop_providing(key)

    def set_hub(self, topic: str, on: bool) -> None:
        self._node.gossip.set_hub(topic, on)
