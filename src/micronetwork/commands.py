"""What a sans-IO core asks its driver to do, and the events it reports.

Every core of a node (Kademlia today; gossip, registry, RPC later) hands these back from
``drain()``. The host driver turns them into py-libp2p dials and stream writes; the simulator
turns them into events on its heap. Requests carry an id chosen by the core; the driver answers
each with exactly one of ``core.on_response(peer, request_id, message, now)`` or
``core.on_request_failed(peer, request_id, reason, now)``. Deadlines are the core's business:
a driver never times a request out on its own (it may give up on a dial, which is a failure).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .identity.peerid import PeerId

__all__ = ["Command", "Dial", "Disconnect", "Emit", "FindPeers", "Request", "Respond"]


@dataclass(frozen=True, slots=True)
class Dial:
    """Connect to ``peer`` at one of ``addrs`` (binary multiaddrs); no reply to the core."""

    peer: PeerId
    addrs: tuple[bytes, ...]


@dataclass(frozen=True, slots=True)
class Request:
    """Send ``message`` to ``peer`` over ``protocol``.

    With ``expect_response`` the driver reads one message back and reports it with
    ``on_response``; without, it reports ``on_response(..., None, now)`` once the message is
    written (one-way messages such as ADD_PROVIDER). ``addrs`` are hints for a dial.
    """

    peer: PeerId
    protocol: str
    request_id: int
    message: Any
    addrs: tuple[bytes, ...] = ()
    expect_response: bool = True


@dataclass(frozen=True, slots=True)
class Respond:
    """Answer the inbound request ``token`` (from ``on_request``); ``None`` closes without reply."""

    token: int
    message: Any


@dataclass(frozen=True, slots=True)
class Disconnect:
    """Close every connection to ``peer`` (e.g. after it kept sending garbage)."""

    peer: PeerId
    reason: str


@dataclass(frozen=True, slots=True)
class Emit:
    """Report an event to the application (the Node turns these into API results)."""

    event: Any


@dataclass(frozen=True, slots=True)
class FindPeers:
    """Find up to ``count`` more peers subscribed to ``topic`` and connect to them.

    Gossip asks this when a topic's mesh stays below ``d_lo`` with no connected peer left to
    graft (topic discovery, as go-libp2p-pubsub's ``discover.go``). No reply to the core: the
    new connections arrive as ``on_peer_connected`` and the peers' subscriptions as usual.
    """

    topic: str
    count: int


Command = Dial | Request | Respond | Disconnect | Emit | FindPeers
