"""NodeCore: the sans-IO cores of one node, composed behind one driver interface.

Drivers (the py-libp2p host driver, the simulator) talk to a NodeCore only. Two kinds of
protocol live here:

* request/response (Kademlia): ``on_request`` / ``on_response`` / ``on_request_failed``, routed
  by the protocol id every ``Request`` names;
* long-lived streams (gossipsub, ``/meshsub/1.2.0`` and ``/meshsub/1.1.0``): every frame read
  from a peer's stream is ``on_stream_message``; the core answers with ``Send`` commands that
  the driver writes on its own outbound stream to that peer.

Connection events go to every core. ``drain()`` returns the commands of all cores;
``next_deadline()`` is the earliest of theirs, and ``on_timer`` lets each core act on its own.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from typing import Any

from .commands import Command
from .gossip import GossipConfig, GossipCore
from .gossip.commands import Send
from .identity.keys import KeyPair
from .identity.peerid import PeerId
from .kademlia import KademliaConfig, KademliaCore

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
    ) -> None:
        self.local_id = key.peer_id
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
        self._requests: dict[str, Any] = {kademlia.protocol_id: self.kad}
        self._streams: dict[str, Any] = {p: self.gossip for p in self.gossip.config.protocols}

    @property
    def protocols(self) -> list[str]:
        """Request/response protocols this node serves (a client-mode DHT serves none)."""
        if self.kad.config.mode == "client":
            return []
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

    def set_local_addrs(self, addrs: tuple[bytes, ...]) -> None:
        self.kad.local_addrs = addrs

    # -- inputs ---------------------------------------------------------------------------------

    def on_peer_identified(
        self,
        peer: PeerId,
        addrs: tuple[bytes, ...],
        protocols: Iterable[str],
        now: float,
        outbound: bool = False,
        ip: str | None = None,
    ) -> None:
        protocols = list(protocols)
        self.kad.on_peer_identified(peer, addrs, protocols, now)
        self.gossip.on_peer_connected(peer, protocols, outbound, now, ip)

    def on_peer_disconnected(self, peer: PeerId, now: float) -> None:
        self.kad.on_peer_disconnected(peer, now)
        self.gossip.on_peer_disconnected(peer, now)

    def on_request(self, peer: PeerId, protocol: str, token: int, data: Any, now: float) -> None:
        self._requests[protocol].on_request(peer, token, data, now)

    def on_stream_opened(self, peer: PeerId, protocol: str, now: float) -> None:
        """A peer opened a long-lived stream: it speaks ``protocol`` even if identify is late."""
        self._streams[protocol].on_peer_connected(peer, [protocol], False, now)

    def on_stream_message(self, peer: PeerId, protocol: str, data: Any, now: float) -> None:
        self._streams[protocol].on_rpc(peer, data, now)

    def on_send_dropped(self, cmd: Send, now: float) -> None:
        self._streams[cmd.protocol].on_send_dropped(cmd.peer, cmd.message, now)

    def on_bad_message(self, peer: PeerId, protocol: str, reason: str, now: float) -> None:
        core = self._requests.get(protocol)
        if core is not None:
            core.on_bad_message(peer, reason, now)
        else:
            self._streams[protocol].on_bad_frame(peer, reason, now)

    def on_response(
        self, peer: PeerId, protocol: str, request_id: int, data: Any, now: float
    ) -> None:
        self._requests[protocol].on_response(peer, request_id, data, now)

    def on_request_failed(
        self, peer: PeerId, protocol: str, request_id: int, reason: str, now: float
    ) -> None:
        self._requests[protocol].on_request_failed(peer, request_id, reason, now)

    def on_timer(self, now: float) -> None:
        for core in (self.kad, self.gossip):
            deadline = core.next_deadline()
            if deadline is not None and deadline <= now:
                core.on_timer(now)

    # -- outputs --------------------------------------------------------------------------------

    def next_deadline(self) -> float | None:
        deadlines = [d for d in (self.kad.next_deadline(), self.gossip.next_deadline()) if d]
        return min(deadlines) if deadlines else None

    def drain(self) -> list[Command | Send]:
        out: list[Command | Send] = list(self.kad.drain())
        out.extend(self.gossip.drain())
        return out
