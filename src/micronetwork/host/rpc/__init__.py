"""The RPC's trio driver: runs the sans-IO core of :mod:`micronetwork.rpc` on libp2p streams.

:mod:`.transport` (``RpcTransport``: the protocol handler, calls out and in), :mod:`.client_call`
and :mod:`.server_call` (one call, each side), :mod:`.client_conn` and :mod:`.server_conn` (the
calls on one stream: a reader task each), :mod:`._pool` (pooled client streams per peer),
:mod:`._outbox` (a stream's writer) and :mod:`._io` (stream reads and writes, errors). The
public names are re-exported by :mod:`micronetwork.rpc`.
"""

from .client_call import ClientCall
from .server_call import ServerCall
from .transport import RPC_PROTOCOL, PoolConfig, RpcTransport

__all__ = ["RPC_PROTOCOL", "ClientCall", "PoolConfig", "RpcTransport", "ServerCall"]
