"""micronetwork: the Micro network, an open peer-to-peer network for micro services.

The embedding API is :class:`Node`; configuration is :class:`NodeConfig`; every error the
library raises is a :class:`MicronetworkError` (see :mod:`micronetwork.errors`).
"""

from .config import DEFAULT_PROTOCOL, IPFS_PROTOCOL, KademliaConfig, NodeConfig
from .errors import (
    BadRequest,
    CallCancelled,
    ConfigError,
    DeadlineExceeded,
    DialError,
    IdentityError,
    LocalProtocolError,
    MessageTooLarge,
    MicronetworkError,
    NetworkError,
    NodeClosedError,
    NoInstanceReachable,
    PeerNotFoundError,
    ProtocolError,
    RecordNotFoundError,
    RemoteError,
    RemoteProtocolError,
    RequestTimeout,
    SchemaError,
    ServiceError,
    ServiceNotFound,
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
    "BadRequest",
    "CallCancelled",
    "ConfigError",
    "DeadlineExceeded",
    "DialError",
    "Envelope",
    "IdentityError",
    "KademliaConfig",
    "KeyPair",
    "LocalProtocolError",
    "MessageTooLarge",
    "MicronetworkError",
    "NetworkError",
    "NoInstanceReachable",
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
    "RemoteError",
    "RemoteProtocolError",
    "RequestTimeout",
    "RoutingEntry",
    "SchemaError",
    "ServiceError",
    "ServiceNotFound",
    "SignatureError",
    "ValidationError",
    "__version__",
    "load_or_create_key",
    "open_envelope",
    "seal",
]
