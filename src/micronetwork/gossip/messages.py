"""Gossipsub RPCs as frozen dataclasses: the ``/meshsub/1.1.0`` + ``/meshsub/1.2.0`` message set.

The core exchanges these objects; :mod:`.wire` turns them into the protobuf of go-libp2p-pubsub
(``rpc.proto``). The simulator passes them as they are. A ``PubMessage`` carries one topic:
gossipsub routes per topic, and the ``topicIDs`` list of the old floodsub format is decoded as
its single entry (more than one is rejected by the wire codec).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

__all__ = [
    "Control",
    "Graft",
    "IDontWant",
    "IHave",
    "IWant",
    "PeerExchange",
    "Prune",
    "PubMessage",
    "RPC",
    "SubOpts",
    "merge_controls",
]


@dataclass(frozen=True, slots=True)
class PubMessage:
    """A published message. ``from_peer`` is the author's peer id bytes (StrictSign)."""

    topic: str
    data: bytes
    from_peer: bytes = b""
    seqno: bytes = b""
    signature: bytes = b""
    key: bytes = b""


@dataclass(frozen=True, slots=True)
class SubOpts:
    subscribe: bool
    topic: str


@dataclass(frozen=True, slots=True)
class IHave:
    topic: str
    message_ids: tuple[bytes, ...]


@dataclass(frozen=True, slots=True)
class IWant:
    message_ids: tuple[bytes, ...]


@dataclass(frozen=True, slots=True)
class Graft:
    topic: str


@dataclass(frozen=True, slots=True)
class PeerExchange:
    """A peer offered in a PRUNE; ``signed_peer_record`` is passed through, not parsed."""

    peer_id: bytes
    signed_peer_record: bytes = b""


@dataclass(frozen=True, slots=True)
class Prune:
    topic: str
    peers: tuple[PeerExchange, ...] = ()
    backoff: int = 0  # seconds; 0: not given


@dataclass(frozen=True, slots=True)
class IDontWant:
    message_ids: tuple[bytes, ...]


@dataclass(frozen=True, slots=True)
class Control:
    ihave: tuple[IHave, ...] = ()
    iwant: tuple[IWant, ...] = ()
    graft: tuple[Graft, ...] = ()
    prune: tuple[Prune, ...] = ()
    idontwant: tuple[IDontWant, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.ihave or self.iwant or self.graft or self.prune or self.idontwant)


def merge_controls(controls: Iterable[Control]) -> Control:
    """One ``Control`` holding every entry of ``controls``, in order (what protobuf's merge of
    their encodings means; not every decoder merges, see :mod:`micronetwork.host.driver`)."""
    ihave: list[IHave] = []
    iwant: list[IWant] = []
    graft: list[Graft] = []
    prune: list[Prune] = []
    idontwant: list[IDontWant] = []
    for c in controls:
        ihave += c.ihave
        iwant += c.iwant
        graft += c.graft
        prune += c.prune
        idontwant += c.idontwant
    return Control(tuple(ihave), tuple(iwant), tuple(graft), tuple(prune), tuple(idontwant))


@dataclass(frozen=True, slots=True)
class RPC:
    subscriptions: tuple[SubOpts, ...] = ()
    publish: tuple[PubMessage, ...] = ()
    control: Control | None = None
