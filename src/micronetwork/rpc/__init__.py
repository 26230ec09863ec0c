"""RPC over libp2p streams: ``/micronetwork/rpc/1.1.0`` (see docs/rpc.md).

This package is the sans-IO core: :mod:`.frames` (the wire format), :mod:`.frame_reader`
(frames out of a byte stream), :mod:`.call` (the per-call state machine) and :mod:`.stream`
(the calls on one stream). The trio driver that runs them on a py-libp2p host is
:mod:`micronetwork.host.rpc`; its public names (``RpcTransport``, ``ClientCall``,
``ServerCall``, ``PoolConfig``, ``RPC_PROTOCOL``) are importable from here too, loaded on
first use, so that the core modules do not depend on the driver.
"""

from typing import TYPE_CHECKING, Any

from .call import Direction, Role, RpcCall
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
from .stream import StreamCore

if TYPE_CHECKING:
    from ..host.rpc.client_call import ClientCall
    from ..host.rpc.server_call import ServerCall
    from ..host.rpc.transport import RPC_PROTOCOL, PoolConfig, RpcTransport

_DRIVER = {
    "ClientCall": "client_call",
    "ServerCall": "server_call",
    "RPC_PROTOCOL": "transport",
    "PoolConfig": "transport",
    "RpcTransport": "transport",
}


def __getattr__(name: str) -> Any:
    module = _DRIVER.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib import import_module

    return getattr(import_module(f"..host.rpc.{module}", __name__), name)

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
