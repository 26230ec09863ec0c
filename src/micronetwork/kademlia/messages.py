"""Kademlia messages: the libp2p ``/ipfs/kad/1.0.0`` message set as frozen dataclasses.

The cores exchange these objects; :mod:`.wire` turns them into the varint-prefixed protobuf
that other libp2p implementations speak. The simulator passes them as they are.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum

from ..identity.peerid import PeerId

__all__ = ["ConnectionType", "KadMessage", "MessageType", "PeerInfo", "Record"]


class MessageType(IntEnum):
    PUT_VALUE = 0
    GET_VALUE = 1
    ADD_PROVIDER = 2
    GET_PROVIDERS = 3
    FIND_NODE = 4
    PING = 5


class ConnectionType(IntEnum):
    NOT_CONNECTED = 0
    CONNECTED = 1
    CAN_CONNECT = 2
    CANNOT_CONNECT = 3


@dataclass(frozen=True, slots=True)
class PeerInfo:
    """A peer as Kademlia messages carry it: id, binary multiaddrs, connectedness."""

    peer_id: PeerId
    addrs: tuple[bytes, ...] = ()
    connection: ConnectionType = ConnectionType.NOT_CONNECTED


@dataclass(frozen=True, slots=True)
class Record:
    key: bytes
    value: bytes
    time_received: str = ""


@dataclass(frozen=True, slots=True)
class KadMessage:
    type: MessageType
    key: bytes = b""
    record: Record | None = None
    closer_peers: tuple[PeerInfo, ...] = field(default=())
    provider_peers: tuple[PeerInfo, ...] = field(default=())
    cluster_level: int = 0
