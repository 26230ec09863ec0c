"""Kademlia DHT, sans-IO: keyspace, routing table, lookups, stores and the protocol core.

Speaks the libp2p Kademlia message set (``/ipfs/kad/1.0.0`` wire format) under a configurable
protocol id (default ``/micronetwork/kad/1.0.0``).
"""

from .config import DEFAULT_PROTOCOL, IPFS_PROTOCOL, KademliaConfig
from .events import PeerAdded, PeerRemoved, QueryFinished, QueryKind, QueryStats
from .keyspace import common_prefix_len, kad_key, peer_key
from .lookup import ClosestPeersIter, DisjointPathsIter
from .messages import ConnectionType, KadMessage, MessageType, PeerInfo, Record
from .protocol import KademliaCore
from .routing_table import Entry, Outcome, RoutingTable
from .store import AnyValueValidator, PublicKeyValidator, Validator, default_validators
from .wire import decode_message, encode_message

__all__ = [
    "AnyValueValidator",
    "ClosestPeersIter",
    "ConnectionType",
    "DEFAULT_PROTOCOL",
    "DisjointPathsIter",
    "Entry",
    "IPFS_PROTOCOL",
    "KadMessage",
    "KademliaConfig",
    "KademliaCore",
    "MessageType",
    "Outcome",
    "PeerAdded",
    "PeerInfo",
    "PeerRemoved",
    "PublicKeyValidator",
    "QueryFinished",
    "QueryKind",
    "QueryStats",
    "Record",
    "RoutingTable",
    "Validator",
    "common_prefix_len",
    "decode_message",
    "default_validators",
    "encode_message",
    "kad_key",
    "peer_key",
]
