"""Gossipsub, sans-IO: the v1.1 router with peer scoring and v1.2 IDONTWANT.

Speaks ``/meshsub/1.2.0`` and ``/meshsub/1.1.0`` (go-libp2p-pubsub's protobuf RPCs, varint
length-prefixed), so js-libp2p and go-libp2p peers can join our meshes. See
:mod:`.router` for the driver interface.
"""

from .commands import GossipCommand, Send
from .config import (
    PROTOCOL_V11,
    PROTOCOL_V12,
    GossipConfig,
    PeerScoreParams,
    ScoreThresholds,
    TopicScoreParams,
)
from .events import (
    Message,
    Outcome,
    PeerSubscribed,
    PeerUnsubscribed,
    TopicStats,
    ValidateMessage,
)
from .messages import (
    RPC,
    Control,
    Graft,
    IDontWant,
    IHave,
    IWant,
    PeerExchange,
    Prune,
    PubMessage,
    SubOpts,
)
from .router import GossipCore, Validator
from .score import PeerScore
from .signing import default_msg_id, sign_message, verify_message
from .wire import decode_rpc, encode_rpc

__all__ = [
    "Control",
    "GossipCommand",
    "GossipConfig",
    "GossipCore",
    "Graft",
    "IDontWant",
    "IHave",
    "IWant",
    "Message",
    "Outcome",
    "PROTOCOL_V11",
    "PROTOCOL_V12",
    "PeerExchange",
    "PeerScore",
    "PeerScoreParams",
    "PeerSubscribed",
    "PeerUnsubscribed",
    "Prune",
    "PubMessage",
    "RPC",
    "ScoreThresholds",
    "Send",
    "SubOpts",
    "TopicScoreParams",
    "TopicStats",
    "ValidateMessage",
    "Validator",
    "decode_rpc",
    "default_msg_id",
    "encode_rpc",
    "sign_message",
    "verify_message",
]
