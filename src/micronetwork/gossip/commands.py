"""The command gossip adds to :mod:`micronetwork.commands`: ``Send``; and the ones it uses.

Gossip is not request/response: each pair of peers keeps one long-lived stream per direction
and either side writes RPCs on its outbound stream at any time. ``Send`` asks the driver to
write ``message`` (an :class:`~.messages.RPC`; encode it with ``GossipCore.encode``) on the
outbound stream to ``peer`` for ``protocol``, opening that stream first if needed. There is no
reply. If the driver has to drop an RPC (its per-peer queue is full, the stream broke) it says
so with ``core.on_send_dropped(peer, rpc, now)`` so the loss is counted, never silent.

Gossip also asks for connections: ``Dial(peer, ())`` for peers offered in PRUNE (PX), and
``FindPeers(topic, count)`` when a topic's mesh is below ``d_lo`` and no connected peer is left
to graft (topic discovery, :mod:`.discovery`).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..commands import Dial, Disconnect, Emit, FindPeers
from ..identity.peerid import PeerId
from .messages import RPC

__all__ = ["GossipCommand", "Send"]


@dataclass(frozen=True, slots=True)
class Send:
    """Write ``message`` on the long-lived outbound ``protocol`` stream to ``peer``."""

    peer: PeerId
    protocol: str
    message: RPC


GossipCommand = Send | Dial | Disconnect | Emit | FindPeers
