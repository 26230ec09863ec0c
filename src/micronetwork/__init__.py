"""micronetwork: the Micro network, an open peer-to-peer network for micro services.

The embedding API is :class:`Node`; configuration is :class:`NodeConfig`; every error the
library raises is a :class:`MicronetworkError` (see :mod:`micronetwork.errors`).
"""

from .config import DEFAULT_PROTOCOL, IPFS_PROTOCOL, KademliaConfig, NodeConfig
from .errors import (
    ConfigError,
    DialError,
    IdentityError,
    LocalProtocolError,
    MicronetworkError,
    NetworkError,
    NodeClosedError,
    PeerNotFoundError,
    ProtocolError,
    RecordNotFoundError,
    RemoteProtocolError,
    RequestTimeout,
    SignatureError,
    ValidationError,
)
from .identity import Envelope, KeyPair, PeerId, load_or_create_key, open_envelope, seal
from .kademlia import PeerAdded, PeerRemoved
from .node import Node, Peer, RoutingEntry

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_PROTOCOL",
    "IPFS_PROTOCOL",
    "ConfigError",
    "DialError",
    "Envelope",
    "IdentityError",
    "KademliaConfig",
    "KeyPair",
    "LocalProtocolError",
    "MicronetworkError",
    "NetworkError",
    "Node",
    "NodeClosedError",
    "NodeConfig",
    "Peer",
    "PeerAdded",
    "PeerId",
    "PeerNotFoundError",
    "PeerRemoved",
    "ProtocolError",
    "RecordNotFoundError",
    "RemoteProtocolError",
    "RequestTimeout",
    "RoutingEntry",
    "SignatureError",
    "ValidationError",
    "__version__",
    "load_or_create_key",
    "open_envelope",
    "seal",
]
