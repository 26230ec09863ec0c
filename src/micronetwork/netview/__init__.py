"""The network view (issue 7): signed self-descriptions of nodes spread by gossip, assembled
into a depth-limited graph of the network as seen from one node. See :mod:`.core`; the graph
and its exports (networkx, imported only when used) are in :mod:`.graph`."""

from .core import (
    TOPIC,
    NetviewConfig,
    NetviewCore,
    NetviewPorts,
    NodeExpired,
    NodeInfo,
    NodeSeen,
)
from .record import NetviewRecord, open_record

__all__ = [
    "TOPIC",
    "NetviewConfig",
    "NetviewCore",
    "NetviewPorts",
    "NetviewRecord",
    "NodeExpired",
    "NodeInfo",
    "NodeSeen",
    "open_record",
]
