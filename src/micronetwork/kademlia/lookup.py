"""Iterative Kademlia lookups as pure iterators (no I/O, no clock of their own).

Theory of operation. A lookup keeps its candidates ordered by XOR distance to the target. Each
call of :meth:`ClosestPeersIter.next` hands out up to ``alpha`` candidates to query in parallel
from the ``k`` closest not yet contacted. Answers (``on_success`` with the closer peers they
returned) add candidates; failures (``on_failure``: timeout, dial error, bad answer) remove the
peer from consideration. The lookup ends when the ``beta`` closest candidates that did not fail
have all answered, or when nothing is left to ask. When ``alpha`` answers in a row bring no
peer closer than the closest known, the lookup has *stalled* (the Kademlia paper, §2.3; rust-
libp2p's ``Stalled``): it then asks up to ``beta`` at a time, so a lookup that must hear from
all ``k`` closest (``beta = k``: PUT_VALUE, ADD_PROVIDER) queries the rest of them at once
instead of ``alpha`` per round trip. Each candidate remembers the *round* in which
it was found (initial peers: round 1; peers returned by a round-r peer: round r + 1), and the
lookup reports as its ``rounds`` the largest round among the closest answered peers: the length
of the chain of requests that reached the answer.

:class:`DisjointPathsIter` runs ``d`` such iterators (S/Kademlia): the initial peers are split
between paths and every peer belongs to the first path that found it, so the paths share no
peer and one honest path is enough to reach the target even when others meet only attackers.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable
from enum import IntEnum

from ..identity.peerid import PeerId

__all__ = ["ClosestPeersIter", "DisjointPathsIter", "PeerState"]


class PeerState(IntEnum):
    NOT_CONTACTED = 0
    WAITING = 1
    SUCCEEDED = 2
    FAILED = 3


class _Candidate:
    __slots__ = ("peer_id", "distance", "state", "round", "addrs")

    def __init__(self, peer_id: PeerId, distance: int, rnd: int, addrs: tuple[bytes, ...]):
        self.peer_id = peer_id
        self.distance = distance
        self.state = PeerState.NOT_CONTACTED
        self.round = rnd
        self.addrs = addrs


class ClosestPeersIter:
    """Find the ``k`` closest peers to ``target``, asking ``alpha`` at a time."""

    def __init__(
        self,
        target: int,
        initial: Iterable[tuple[PeerId, int, tuple[bytes, ...]]],
        *,
        k: int = 20,
        alpha: int = 3,
        beta: int = 3,
        local_id: PeerId | None = None,
        claimed: dict[PeerId, int] | None = None,
        path: int = 0,
    ) -> None:
        self.target = target
        self.k = k
        self.alpha = alpha
        self.beta = min(beta, k)
        self._local = local_id
        self._claimed = claimed
        self._path = path
        self._by_id: dict[PeerId, _Candidate] = {}
        self._sorted: list[_Candidate] = []  # by distance; failed ones are removed
        self._dists: list[int] = []  # the distances of _sorted, for C-speed bisection
        self._waiting = 0
        self._no_progress = 0  # answers in a row that brought no closer peer
        self.requests = 0
        self.successes = 0
        self.failures = 0
        self._finished = False
        for peer, key, addrs in initial:
            self._add(peer, key, 1, addrs)

    # -- inputs ------------------------------------------------------------------------------

    def _add(self, peer: PeerId, key: int, rnd: int, addrs: tuple[bytes, ...]) -> None:
        if peer in self._by_id or peer == self._local:
            return
        if self._claimed is not None:
            owner = self._claimed.setdefault(peer, self._path)
            if owner != self._path:
                return
        d = key ^ self.target
        c = _Candidate(peer, d, rnd, addrs)
        self._by_id[peer] = c
        lo = bisect_left(self._dists, d)
        self._dists.insert(lo, d)
        self._sorted.insert(lo, c)

    def on_success(
        self, peer: PeerId, closer: Iterable[tuple[PeerId, int, tuple[bytes, ...]]]
    ) -> None:
        c = self._by_id.get(peer)
        if c is None or c.state != PeerState.WAITING:
            return
        c.state = PeerState.SUCCEEDED
        self._waiting -= 1
        self.successes += 1
        nxt = c.round + 1
        dists = self._dists
        best = dists[0] if dists else None
        for p, key, addrs in closer:
            self._add(p, key, nxt, addrs)
        if dists and (best is None or dists[0] < best):
            self._no_progress = 0
        else:
            self._no_progress += 1

    def on_failure(self, peer: PeerId) -> None:
        c = self._by_id.get(peer)
        if c is None or c.state != PeerState.WAITING:
            return
        c.state = PeerState.FAILED
        self._waiting -= 1
        self.failures += 1
        i = bisect_left(self._dists, c.distance)
        while self._sorted[i] is not c:
            i += 1
        del self._sorted[i]
        del self._dists[i]

    # -- outputs -----------------------------------------------------------------------------

    @property
    def finished(self) -> bool:
        if self._finished:
            return True
        answered = 0
        for c in self._sorted:
            if c.state != PeerState.SUCCEEDED:
                break
            answered += 1
            if answered >= self.beta:
                self._finished = True
                return True
        if self._waiting == 0 and not any(
            c.state == PeerState.NOT_CONTACTED for c in self._sorted[: self.k]
        ):
            self._finished = True
        return self._finished

    @property
    def waiting(self) -> int:
        return self._waiting

    def next(self) -> list[tuple[PeerId, tuple[bytes, ...]]]:
        """Peers to query now (marked WAITING); empty when at ``alpha`` or finished."""
        if self.finished:
            return []
        out: list[tuple[PeerId, tuple[bytes, ...]]] = []
        stalled = self._no_progress >= self.alpha
        budget = (max(self.alpha, self.beta) if stalled else self.alpha) - self._waiting
        if budget <= 0:
            return out
        for c in self._sorted[: self.k]:
            if c.state == PeerState.NOT_CONTACTED:
                c.state = PeerState.WAITING
                self._waiting += 1
                self.requests += 1
                out.append((c.peer_id, c.addrs))
                if len(out) >= budget:
                    break
        return out

    def state_of(self, peer: PeerId) -> PeerState | None:
        c = self._by_id.get(peer)
        return None if c is None else c.state

    def closest(self, n: int | None = None, answered_only: bool = False) -> list[PeerId]:
        n = self.k if n is None else n
        out = []
        for c in self._sorted:
            if answered_only and c.state != PeerState.SUCCEEDED:
                continue
            out.append(c.peer_id)
            if len(out) >= n:
                break
        return out

    def closest_with_addrs(self, n: int) -> list[tuple[PeerId, tuple[bytes, ...]]]:
        return [(c.peer_id, c.addrs) for c in self._sorted[:n]]

    @property
    def rounds(self) -> int:
        """Largest discovery round among the ``beta`` closest answered peers."""
        best = 0
        seen = 0
        for c in self._sorted:
            if c.state == PeerState.SUCCEEDED:
                best = max(best, c.round)
                seen += 1
                if seen >= self.beta:
                    break
        return best

    def contains(self, peer: PeerId) -> bool:
        return peer in self._by_id


class DisjointPathsIter:
    """``d`` lookups over disjoint sets of peers; finished when every path is."""

    def __init__(
        self,
        target: int,
        initial: list[tuple[PeerId, int, tuple[bytes, ...]]],
        *,
        d: int,
        k: int = 20,
        alpha: int = 3,
        beta: int = 3,
        local_id: PeerId | None = None,
    ) -> None:
        if d < 1:
            raise ValueError("d must be at least 1")
        self.target = target
        self.k = k
        self._claimed: dict[PeerId, int] = {}
        self.paths = [
            ClosestPeersIter(
                target,
                initial[i::d],
                k=k,
                alpha=alpha,
                beta=beta,
                local_id=local_id,
                claimed=self._claimed,
                path=i,
            )
            for i in range(d)
        ]

    def _path_of(self, peer: PeerId) -> ClosestPeersIter | None:
        owner = self._claimed.get(peer)
        return None if owner is None else self.paths[owner]

    def on_success(
        self, peer: PeerId, closer: Iterable[tuple[PeerId, int, tuple[bytes, ...]]]
    ) -> None:
        path = self._path_of(peer)
        if path is not None:
            path.on_success(peer, list(closer))

    def on_failure(self, peer: PeerId) -> None:
        path = self._path_of(peer)
        if path is not None:
            path.on_failure(peer)

    @property
    def finished(self) -> bool:
        return all(p.finished for p in self.paths)

    @property
    def waiting(self) -> int:
        return sum(p.waiting for p in self.paths)

    @property
    def requests(self) -> int:
        return sum(p.requests for p in self.paths)

    @property
    def successes(self) -> int:
        return sum(p.successes for p in self.paths)

    @property
    def failures(self) -> int:
        return sum(p.failures for p in self.paths)

    def next(self) -> list[tuple[PeerId, tuple[bytes, ...]]]:
        out = []
        for p in self.paths:
            out.extend(p.next())
        return out

    def state_of(self, peer: PeerId) -> PeerState | None:
        path = self._path_of(peer)
        return None if path is None else path.state_of(peer)

    def _merged(self, answered_only: bool) -> list[_Candidate]:
        cands = [
            c
            for p in self.paths
            for c in p._sorted
            if not answered_only or c.state == PeerState.SUCCEEDED
        ]
        cands.sort(key=lambda c: c.distance)
        return cands

    def closest(self, n: int | None = None, answered_only: bool = False) -> list[PeerId]:
        n = self.k if n is None else n
        return [c.peer_id for c in self._merged(answered_only)[:n]]

    def closest_with_addrs(self, n: int) -> list[tuple[PeerId, tuple[bytes, ...]]]:
        return [(c.peer_id, c.addrs) for c in self._merged(False)[:n]]

    @property
    def rounds(self) -> int:
        return max(p.rounds for p in self.paths)

    def contains(self, peer: PeerId) -> bool:
        return peer in self._claimed
