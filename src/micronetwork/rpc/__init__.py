"""RPC over libp2p streams: ``/micronetwork/rpc/1.1.0`` (see docs/rpc.md).

:mod:`.frames` (the wire format), :mod:`.call` (the per-call state machine) and :mod:`.stream`
(the calls on one stream) are sans-IO; :mod:`.transport` runs calls on a py-libp2p host with
trio.
"""

from .call import Direction, Role, RpcCall
from .client_call import ClientCall
from .frame_reader import FrameReader
from .frames import (
    DEFAULT_MAX_MESSAGE_SIZE,
    KINDS,
    PROTOCOL_VERSION,
    Cancel,
    Data,
    End,
    Frame,
    Kind,
    Open,
    Status,
    decode_frame,
    encode_frame,
)
from .server_call import ServerCall
from .stream import StreamCore
from .transport import RPC_PROTOCOL, PoolConfig, RpcTransport

__all__ = [
    "DEFAULT_MAX_MESSAGE_SIZE",
    "KINDS",
    "PROTOCOL_VERSION",
    "RPC_PROTOCOL",
    "Cancel",
    "ClientCall",
    "Data",
    "Direction",
    "End",
    "Frame",
    "FrameReader",
    "Kind",
    "Open",
    "PoolConfig",
    "Role",
    "RpcCall",
    "RpcTransport",
    "ServerCall",
    "Status",
    "StreamCore",
    "decode_frame",
    "encode_frame",
]
