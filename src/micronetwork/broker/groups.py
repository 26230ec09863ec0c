"""Queue groups: which member of a group delivers an event.

Members of group ``g`` on topic ``t`` announce themselves on ``t``'s gossip topic with a
signed membership record (payload type ``/micronetwork/broker/member/1``)::

    {"v": 1, "topic": t, "group": g, "peer": <peer id>, "seq": int, "ttl": float,
     "leaving": bool}

every ``group_announce_interval``; a member unheard of for ``ttl`` is dropped, and a member
that leaves says so (``leaving``). Every member receives every event of the topic and
delivers it only if it *owns* it: the owner is chosen by rendezvous hashing, the member with
the highest ``sha256(peer || group || event id)`` among the live members sorted by id. It is
deterministic, so members with the same view agree on one owner, and a join or leave moves
only the events of the member that came or went.

Failure mode: views differ for a moment (a join not yet heard everywhere; a crashed member
not yet expired). Then two members may both own an event (delivered twice) or neither
(delivered by no one). The core narrows the second case: a member keeps the events it did
not own for ``ttl``, and when a member expires (crash, not a graceful leave) it delivers those
that arrived after the dead member was last heard and that it owns now. A group is therefore
at-least-once across a crash and exactly-once while membership is stable.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from ..errors import SignatureError, ValidationError
from ..identity.envelope import open_envelope, seal
from ..identity.keys import KeyPair
from ..identity.peerid import PeerId
from .event import DOMAIN, valid_topic

__all__ = ["MEMBER_PAYLOAD_TYPE", "GroupTable", "Membership", "open_membership", "owner"]

MEMBER_PAYLOAD_TYPE = b"/micronetwork/broker/member/1"
MAX_MEMBERSHIP_SIZE = 4096
MAX_MEMBERS = 1024


@dataclass(frozen=True, slots=True)
class Membership:
    topic: str
    group: str
    peer: PeerId
    seq: int
    ttl: float
    leaving: bool = False

    def seal(self, key: KeyPair) -> bytes:
        wire = {
            "v": 1, "topic": self.topic, "group": self.group, "peer": bytes(self.peer),
            "seq": self.seq, "ttl": float(self.ttl), "leaving": self.leaving,
        }
        return seal(key, DOMAIN, MEMBER_PAYLOAD_TYPE, wire)


def open_membership(data: bytes) -> Membership:
    """Verify a membership record; ValidationError / SignatureError if bad."""
    if len(data) > MAX_MEMBERSHIP_SIZE:
        raise ValidationError("membership record over the size limit")
    env = open_envelope(data, DOMAIN, MEMBER_PAYLOAD_TYPE)
    try:
        raw: Any = env.decode()
    except Exception as exc:
        raise ValidationError(f"membership is not CBOR: {exc}") from exc
    if not isinstance(raw, dict) or raw.get("v") != 1:
        raise ValidationError("not a version-1 membership")
    topic, group, peer = raw.get("topic"), raw.get("group"), raw.get("peer")
    seq, ttl, leaving = raw.get("seq"), raw.get("ttl"), raw.get("leaving", False)
    if not valid_topic(topic) or not valid_topic(group) or not isinstance(peer, bytes):
        raise ValidationError("membership needs a topic, a group and a peer")
    if not isinstance(seq, int) or isinstance(seq, bool) or seq < 0:
        raise ValidationError("membership seq must be a non-negative integer")
    if not isinstance(ttl, float) or not 0 < ttl <= 3600 or not isinstance(leaving, bool):
        raise ValidationError("membership ttl must be within (0, 3600] s")
    assert isinstance(topic, str) and isinstance(group, str)
    if PeerId(peer) != env.signer:
        raise SignatureError("membership signed by another node than the member")
    return Membership(topic, group, PeerId(peer), seq, ttl, leaving)


def _score(peer: PeerId, group: str, event_id: bytes) -> bytes:
    return hashlib.sha256(bytes(peer) + group.encode() + event_id).digest()


def owner(members: list[PeerId], group: str, event_id: bytes) -> PeerId:
    """The member that delivers ``event_id`` (rendezvous hashing; ``members`` non-empty)."""
    return max(sorted(members), key=lambda p: _score(p, group, event_id))


@dataclass(slots=True)
class _Member:
    seq: int
    expires: float
    heard: float


class GroupTable:
    """Live members of the groups this node belongs to, per (topic, group)."""

    def __init__(self, local_id: PeerId) -> None:
        self.local_id = local_id
        self.groups: dict[tuple[str, str], dict[PeerId, _Member]] = {}

    def join(self, topic: str, group: str) -> None:
        self.groups.setdefault((topic, group), {})

    def leave(self, topic: str, group: str) -> None:
        self.groups.pop((topic, group), None)

    def members(self, topic: str, group: str) -> list[PeerId]:
        peers = list(self.groups.get((topic, group), {}))
        return sorted({*peers, self.local_id})

    def owns(self, topic: str, group: str, event_id: bytes) -> bool:
        return owner(self.members(topic, group), group, event_id) == self.local_id

    def on_membership(self, m: Membership, now: float) -> bool:
        """Apply a verified record; True if the member set changed."""
        table = self.groups.get((m.topic, m.group))
        if table is None or m.peer == self.local_id:
            return False
        current = table.get(m.peer)
        if current is not None and m.seq <= current.seq:
            return False
        if m.leaving:
            return table.pop(m.peer, None) is not None
        if current is None and len(table) >= MAX_MEMBERS:
            return False
        table[m.peer] = _Member(m.seq, now + m.ttl, now)
        return current is None

    def expire(self, now: float) -> list[tuple[str, str, PeerId, float]]:
        """Drop members past their ttl: (topic, group, peer, when last heard) of each."""
        gone = []
        for (topic, group), table in self.groups.items():
            for peer, m in list(table.items()):
                if m.expires <= now:
                    del table[peer]
                    gone.append((topic, group, peer, m.heard))
        return gone

    def next_expiry(self) -> float | None:
        times = [m.expires for t in self.groups.values() for m in t.values()]
        return min(times) if times else None
