"""What the broker reports to the application (through ``Emit``), and where a
subscription starts (``since``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import cbor2

from ..errors import ValidationError
from ..identity.peerid import PeerId
from .event import Event

__all__ = [
    "CaughtUp",
    "Cursor",
    "Delivery",
    "FromOffset",
    "FromTime",
    "Lagging",
    "Missed",
    "Since",
]


@dataclass(frozen=True, slots=True)
class Cursor:
    """A subscriber's resume token: the last seq it has of each publisher, and the wall time
    from which events of publishers it has not seen yet are wanted.

    Take one with ``BrokerCore.cursor(sub)`` (everything delivered so far) or advance one
    yourself per event you have processed (``cursor = cursor.advance(event)``), store it
    (``to_bytes``), and subscribe again with ``since=cursor``: within the retention window
    every event after it arrives exactly once.
    """

    time: float
    seqs: tuple[tuple[PeerId, int], ...] = ()

    def seq(self, publisher: PeerId) -> int:
        for p, s in self.seqs:
            if p == publisher:
                return s
        return 0

    def as_dict(self) -> dict[PeerId, int]:
        return dict(self.seqs)

    @classmethod
    def of(cls, time: float, seqs: Mapping[PeerId, int]) -> Cursor:
        return cls(time, tuple(sorted(seqs.items())))

    def advance(self, event: Event) -> Cursor:
        """This cursor with ``event`` processed."""
        seqs = self.as_dict()
        if event.seq > seqs.get(event.publisher, 0):
            seqs[event.publisher] = event.seq
        return Cursor.of(self.time, seqs)

    def to_bytes(self) -> bytes:
        return cbor2.dumps([1, self.time, [[bytes(p), s] for p, s in self.seqs]])

    @classmethod
    def from_bytes(cls, data: bytes) -> Cursor:
        try:
            raw = cbor2.loads(data)
            version, time, seqs = raw
            if version != 1:
                raise ValueError("version")
            return cls.of(float(time), {PeerId(bytes(p)): int(s) for p, s in seqs})
        except Exception as exc:
            raise ValidationError(f"not a broker cursor: {exc}") from exc


@dataclass(frozen=True, slots=True)
class FromTime:
    """Replay what retention holds that was stored at or after ``wall`` (seconds, epoch)."""

    wall: float


@dataclass(frozen=True, slots=True)
class FromOffset:
    """Replay retention node ``node``'s log of the topic from ``offset`` on."""

    node: PeerId
    offset: int


Since = Cursor | FromTime | FromOffset


@dataclass(frozen=True, slots=True)
class Delivery:
    """An event for subscription ``subscription``. ``offset`` is its offset in ``source``'s
    retention log when it came from a replay, None when it came live."""

    subscription: int
    event: Event
    offset: int | None = None
    source: PeerId | None = None


@dataclass(frozen=True, slots=True)
class Missed:
    """Events the subscription will not get.

    ``reason``: ``"evicted"`` (older than the retention window), ``"gap"`` (lost and not found
    in retention before ``gap_timeout``), ``"overflow"`` (dropped while lagging and not
    recoverable), ``"unavailable"`` (no retention node answered the replay: ``count`` is 0 and
    ``exact`` False). ``publisher`` is set when the count is about one publisher.
    """

    subscription: int
    count: int
    reason: str
    publisher: PeerId | None = None
    exact: bool = True


@dataclass(frozen=True, slots=True)
class Lagging:
    """The subscription fell ``buffer`` deliveries behind: deliveries pause (the publisher and
    other subscribers go on) and resume from retention at ``cursor`` once it has consumed
    half of its buffer."""

    subscription: int
    cursor: Cursor


@dataclass(frozen=True, slots=True)
class CaughtUp:
    """The replay of a subscription ended; from here on events arrive live."""

    subscription: int
    replayed: int


@dataclass(frozen=True, slots=True)
class Stored:
    """The answer to ``BrokerCore.push``: the retention node's offset, or why it refused."""

    request_id: int
    peer: PeerId
    offset: int | None
    error: str | None = None
