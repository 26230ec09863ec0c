"""Events the Kademlia core reports through ``Emit``."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any

from ..identity.peerid import PeerId

__all__ = ["PeerAdded", "PeerRemoved", "QueryFinished", "QueryKind", "QueryStats"]


class QueryKind(Enum):
    FIND_CLOSEST = "find_closest"
    FIND_PEER = "find_peer"
    GET_VALUE = "get_value"
    PUT_VALUE = "put_value"
    GET_PROVIDERS = "get_providers"
    ADD_PROVIDER = "add_provider"
    BOOTSTRAP = "bootstrap"
    REFRESH = "refresh"


@dataclass(frozen=True, slots=True)
class QueryStats:
    started: float
    finished: float
    rounds: int
    requests: int
    successes: int
    failures: int
    stored: int = 0  # PUT_VALUE / ADD_PROVIDER: peers that accepted the record

    @property
    def duration(self) -> float:
        return self.finished - self.started


@dataclass(frozen=True, slots=True)
class QueryFinished:
    """A query ended. ``result`` depends on ``kind`` (see ``KademliaCore.start_*``)."""

    query_id: int
    kind: QueryKind
    result: Any
    stats: QueryStats
    error: str | None = None  # why there is no result, if there is none


@dataclass(frozen=True, slots=True)
class PeerAdded:
    peer_id: PeerId
    addrs: tuple[bytes, ...]


@dataclass(frozen=True, slots=True)
class PeerRemoved:
    peer_id: PeerId
    reason: str
