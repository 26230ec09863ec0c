"""Events the gossip core reports through ``Emit``, and statistics views."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from ..identity.peerid import PeerId

__all__ = [
    "Message",
    "Outcome",
    "PeerSubscribed",
    "PeerUnsubscribed",
    "TopicStats",
    "ValidateMessage",
]


class Outcome(Enum):
    """A validator's verdict. REJECT penalises the senders (P4); IGNORE drops quietly."""

    ACCEPT = "accept"
    REJECT = "reject"
    IGNORE = "ignore"


@dataclass(frozen=True, slots=True)
class Message:
    """A message delivered to the application (once per message id)."""

    topic: str
    data: bytes
    from_peer: PeerId
    seqno: bytes
    msg_id: bytes
    received_from: PeerId  # the local id for our own messages


@dataclass(frozen=True, slots=True)
class ValidateMessage:
    """Asynchronous validation wanted: answer with ``core.report_validation(msg_id, ...)``."""

    msg_id: bytes
    message: Message


@dataclass(frozen=True, slots=True)
class PeerSubscribed:
    peer: PeerId
    topic: str


@dataclass(frozen=True, slots=True)
class PeerUnsubscribed:
    peer: PeerId
    topic: str


@dataclass(frozen=True, slots=True)
class TopicStats:
    """Counters of one topic since the core started, plus its current peer/mesh sizes."""

    topic: str
    peers: int
    mesh: int
    published: int
    delivered: int
    duplicates: int
    invalid: int
    ignored: int
    ihave_sent: int
    ihave_received: int
    iwant_sent: int
    iwant_received: int
    idontwant_sent: int
    idontwant_received: int
