"""The state of one DHT query: a lookup, then (for stores) a store phase.

A query owns its lookup iterator and what it has collected so far (values, providers, the
peer it looks for). :class:`~.protocol.KademliaCore` feeds it answers and asks it what to do
next; the query itself sends nothing.
"""

from __future__ import annotations

from ..identity.peerid import PeerId
from .events import QueryKind, QueryStats
from .lookup import ClosestPeersIter, DisjointPathsIter
from .messages import PeerInfo

__all__ = ["Pending", "Query"]

LOOKUP = "lookup"
STORE = "store"

# What an outstanding request is for (Pending.purpose).
REQ_QUERY, REQ_STORE, REQ_EVICT_PING, REQ_LIVENESS_PING = 0, 1, 2, 3


class Pending:
    """An outstanding request of the core: to whom, what for, for which query."""

    __slots__ = ("peer", "purpose", "query", "addrs")

    def __init__(self, peer: PeerId, purpose: int, query: int, addrs: tuple[bytes, ...]):
        self.peer = peer
        self.purpose = purpose
        self.query = query
        self.addrs = addrs


class Query:
    __slots__ = (
        "id",
        "kind",
        "key",
        "target",
        "iter",
        "started",
        "phase",
        "values",
        "providers",
        "want",
        "found",
        "value",
        "store_pending",
        "stored",
        "refresh_after",
        "fallback",
    )

    def __init__(
        self,
        query_id: int,
        kind: QueryKind,
        key: bytes,
        target: int,
        lookup: ClosestPeersIter | DisjointPathsIter,
        now: float,
        want: int = 0,
    ) -> None:
        self.id = query_id
        self.kind = kind
        self.key = key
        self.target = target
        self.iter = lookup
        self.started = now
        self.phase = LOOKUP
        self.values: list[bytes] = []  # GET_VALUE: valid values received
        self.providers: dict[PeerId, PeerInfo] = {}  # GET_PROVIDERS
        self.want = want  # GET_PROVIDERS: how many; GET_VALUE: quorum
        self.found: PeerInfo | None = None  # FIND_PEER
        self.value: bytes | None = None  # PUT_VALUE / ADD_PROVIDER payload (value only)
        self.store_pending: set[int] = set()
        self.stored = 0
        self.refresh_after = False  # BOOTSTRAP: refresh the buckets when done
        # BOOTSTRAP: bootstrap peers not asked yet, tried in turn while nobody has answered
        self.fallback: list[tuple[PeerId, tuple[bytes, ...]]] = []

    def satisfied(self) -> bool:
        """True when the query has what it came for before its lookup ended."""
        if self.kind is QueryKind.FIND_PEER:
            return self.found is not None
        if self.kind is QueryKind.GET_VALUE:
            return len(self.values) >= self.want
        if self.kind is QueryKind.GET_PROVIDERS:
            return len(self.providers) >= self.want
        return False

    def stats(self, now: float) -> QueryStats:
        it = self.iter
        return QueryStats(
            started=self.started,
            finished=now,
            rounds=it.rounds,
            requests=it.requests,
            successes=it.successes,
            failures=it.failures,
            stored=self.stored,
        )
