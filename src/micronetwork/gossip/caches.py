"""The message cache (mcache) for IHAVE/IWANT gossip, and time caches for seen ids.

``MessageCache`` keeps the messages of the last ``history`` heartbeats in windows; IHAVE
advertises the ids of the newest ``gossip`` windows, IWANT is answered from all of them, and
each answer to one peer is counted so a peer cannot pull the same message over and over.
``TimeCache`` is an insertion-ordered dict with one TTL: since ``now`` never goes back,
entries expire in insertion order and sweeping is O(expired).
"""

from __future__ import annotations

from collections.abc import Iterator

from ..identity.peerid import PeerId
from .messages import PubMessage

__all__ = ["MessageCache", "TimeCache"]


class MessageCache:
    __slots__ = ("_msgs", "_tx", "_windows", "gossip")

    def __init__(self, history: int, gossip: int) -> None:
        self._msgs: dict[bytes, PubMessage] = {}
        self._tx: dict[bytes, dict[PeerId, int]] = {}
        self._windows: list[list[tuple[bytes, str]]] = [[] for _ in range(history)]
        self.gossip = gossip

    def __len__(self) -> int:
        return len(self._msgs)

    def __contains__(self, msg_id: bytes) -> bool:
        return msg_id in self._msgs

    def put(self, msg_id: bytes, msg: PubMessage) -> None:
        if msg_id in self._msgs:
            return
        self._msgs[msg_id] = msg
        self._windows[0].append((msg_id, msg.topic))

    def get(self, msg_id: bytes) -> PubMessage | None:
        return self._msgs.get(msg_id)

    def get_for_peer(self, msg_id: bytes, peer: PeerId) -> tuple[PubMessage | None, int]:
        """The message and how many times (including this one) ``peer`` has asked for it."""
        msg = self._msgs.get(msg_id)
        if msg is None:
            return None, 0
        tx = self._tx.setdefault(msg_id, {})
        n = tx[peer] = tx.get(peer, 0) + 1
        return msg, n

    def gossip_ids(self, topic: str) -> list[bytes]:
        return [mid for w in self._windows[: self.gossip] for mid, t in w if t == topic]

    def shift(self) -> None:
        for mid, _ in self._windows.pop():
            self._msgs.pop(mid, None)
            self._tx.pop(mid, None)
        self._windows.insert(0, [])


class TimeCache:
    """Keys that are remembered for ``ttl`` seconds after they were first added."""

    __slots__ = ("_d", "ttl")

    def __init__(self, ttl: float) -> None:
        self._d: dict[bytes, float] = {}
        self.ttl = ttl

    def __contains__(self, key: bytes) -> bool:
        return key in self._d

    def __len__(self) -> int:
        return len(self._d)

    def __iter__(self) -> Iterator[bytes]:
        return iter(self._d)

    def add(self, key: bytes, now: float) -> bool:
        """Remember ``key``; False if it was already there."""
        if key in self._d:
            return False
        self._d[key] = now + self.ttl
        return True

    def sweep(self, now: float) -> None:
        d = self._d
        while d:
            key = next(iter(d))
            if d[key] > now:
                return
            del d[key]
