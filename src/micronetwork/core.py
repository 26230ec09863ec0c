"""NodeCore: the sans-IO cores of one node, composed behind one driver interface.

Drivers (the py-libp2p host driver, the simulator) talk to a NodeCore only: they route inbound
requests, responses and failures by protocol id (every ``Request`` names its protocol), call
``on_timer`` at ``next_deadline()`` and execute what ``drain()`` returns.
Today it holds the Kademlia core; gossip, registry and RPC join it in later issues.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from typing import Any

from .commands import Command
from .identity.peerid import PeerId
from .kademlia import KademliaConfig, KademliaCore

__all__ = ["NodeCore"]


class NodeCore:
    def __init__(
        self,
        local_id: PeerId,
        *,
        kademlia: KademliaConfig,
        rng: random.Random,
        now: float,
        local_addrs: tuple[bytes, ...] = (),
    ) -> None:
        self.local_id = local_id
        self.kad = KademliaCore(
            local_id, config=kademlia, rng=rng, now=now, local_addrs=local_addrs
        )
        self._by_protocol: dict[str, Any] = {kademlia.protocol_id: self.kad}

    @property
    def protocols(self) -> list[str]:
        """Protocols this node serves (for stream handlers and identify)."""
        if self.kad.config.mode == "client":
            return []
        return list(self._by_protocol)

    def core_for(self, protocol: str) -> Any:
        return self._by_protocol.get(protocol)

    def encode(self, protocol: str, message: Any) -> bytes:
        data: bytes = self._by_protocol[protocol].encode(message)
        return data

    def max_message_size(self, protocol: str) -> int:
        size: int = self._by_protocol[protocol].config.max_message_size
        return size

    def set_local_addrs(self, addrs: tuple[bytes, ...]) -> None:
        self.kad.local_addrs = addrs

    # -- inputs ---------------------------------------------------------------------------------

    def on_peer_identified(
        self, peer: PeerId, addrs: tuple[bytes, ...], protocols: Iterable[str], now: float
    ) -> None:
        protocols = list(protocols)
        self.kad.on_peer_identified(peer, addrs, protocols, now)

    def on_peer_disconnected(self, peer: PeerId, now: float) -> None:
        self.kad.on_peer_disconnected(peer, now)

    def on_request(self, peer: PeerId, protocol: str, token: int, data: Any, now: float) -> None:
        self._by_protocol[protocol].on_request(peer, token, data, now)

    def on_bad_message(self, peer: PeerId, protocol: str, reason: str, now: float) -> None:
        self._by_protocol[protocol].on_bad_message(peer, reason, now)

    def on_response(
        self, peer: PeerId, protocol: str, request_id: int, data: Any, now: float
    ) -> None:
        self._by_protocol[protocol].on_response(peer, request_id, data, now)

    def on_request_failed(
        self, peer: PeerId, protocol: str, request_id: int, reason: str, now: float
    ) -> None:
        self._by_protocol[protocol].on_request_failed(peer, request_id, reason, now)

    def on_timer(self, now: float) -> None:
        self.kad.on_timer(now)

    # -- outputs --------------------------------------------------------------------------------

    def next_deadline(self) -> float | None:
        return self.kad.next_deadline()

    def drain(self) -> list[Command]:
        return self.kad.drain()
