"""Properties of the pure lookup iterators on random static networks."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from micronetwork.identity import PeerId
from micronetwork.kademlia import ClosestPeersIter, DisjointPathsIter
from micronetwork.kademlia.keyspace import peer_key


def make_peers(n: int, salt: int) -> list[PeerId]:
    return [PeerId(b"\x00\x24" + salt.to_bytes(2, "big") + i.to_bytes(4, "big") * 8 + b"\x00\x00")
            for i in range(n)]


def run(it, peers: list[PeerId], dead: set[PeerId], k: int, target: int) -> int:
    steps = 0
    while not it.finished:
        batch = it.next()
        assert batch or it.waiting == 0
        if not batch:
            break
        for peer, _ in batch:
            steps += 1
            if peer in dead:
                it.on_failure(peer)
            else:  # a full-knowledge peer answers with the true k closest
                closer = sorted(peers, key=lambda p: peer_key(p) ^ target)[:k]
                it.on_success(peer, [(p, peer_key(p), ()) for p in closer])
    return steps


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(5, 120),
    salt=st.integers(0, 1000),
    target=st.integers(0, 2**256 - 1),
    dead_share=st.floats(0, 0.5),
    alpha=st.integers(1, 5),
)
def test_lookup_finds_the_true_closest_live_peers(
    n: int, salt: int, target: int, dead_share: float, alpha: int
) -> None:
    k = 8
    peers = make_peers(n, salt)
    dead = set(peers[: int(n * dead_share)])
    start = [(p, peer_key(p), ()) for p in peers[-3:]]
    it = ClosestPeersIter(target, start, k=k, alpha=alpha, beta=k)
    run(it, peers, dead, k, target)
    got = it.closest(k, answered_only=True)
    # Dead peers never count as answered, and with full-knowledge answers the live peers
    # among the true k closest are all found.
    assert not set(got) & dead
    truth_k = sorted(peers, key=lambda p: peer_key(p) ^ target)[:k]
    assert set(p for p in truth_k if p not in dead) <= set(got)
    assert it.waiting == 0


@settings(max_examples=40, deadline=None)
@given(n=st.integers(10, 80), salt=st.integers(0, 1000), d=st.integers(1, 4),
       target=st.integers(0, 2**256 - 1))
def test_disjoint_paths_share_no_peer(n: int, salt: int, d: int, target: int) -> None:
    peers = make_peers(n, salt)
    start = [(p, peer_key(p), ()) for p in peers[:8]]
    it = DisjointPathsIter(target, start, d=d, k=8, alpha=2, beta=3)
    run(it, peers, set(), 8, target)
    seen: set[PeerId] = set()
    for path in it.paths:
        mine = {p for p in peers if path.contains(p)}
        assert not mine & seen
        seen |= mine
    assert it.finished and it.rounds >= 1
