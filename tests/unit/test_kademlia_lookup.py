"""The lookup iterator's stall rule: once alpha answers in a row bring nothing closer, a lookup
that must hear from all k closest asks the rest of them at once."""

from __future__ import annotations

from micronetwork.identity import PeerId
from micronetwork.kademlia import ClosestPeersIter
from micronetwork.kademlia.keyspace import peer_key


def _peers(n: int) -> list[PeerId]:
    return [PeerId(b"\x00\x24" + i.to_bytes(4, "big") * 8 + b"\x00\x00\x00\x00") for i in range(n)]


def _answer(it: ClosestPeersIter, peer: PeerId, closer: list[PeerId]) -> None:
    it.on_success(peer, [(p, peer_key(p), ()) for p in closer])


def test_a_stalled_all_k_lookup_asks_the_remaining_closest_at_once() -> None:
    peers = _peers(60)
    target = 12345
    truth = sorted(peers, key=lambda p: peer_key(p) ^ target)
    k, alpha = 10, 3
    far = truth[-alpha:]  # start from the farthest peers
    it = ClosestPeersIter(target, [(p, peer_key(p), ()) for p in far], k=k, alpha=alpha, beta=k)
    first = [p for p, _ in it.next()]
    assert len(first) == alpha
    _answer(it, first[0], truth[:k])  # progress: the true k closest are now known
    batch = [p for p, _ in it.next()]
    assert len(batch) == 1  # alpha in flight again, no more
    for p in first[1:] + batch:  # alpha answers in a row that bring nothing closer
        _answer(it, p, truth[:k])
    burst = [p for p, _ in it.next()]
    assert len(burst) == k - 1  # the k closest not asked yet (one was asked above), at once
    assert set(burst) | set(batch) == set(truth[:k])
    for p in burst:
        _answer(it, p, [])
    assert it.finished
    assert it.closest(k, answered_only=True) == truth[:k]


def test_an_ordinary_lookup_keeps_alpha_in_flight_when_stalled() -> None:
    peers = _peers(40)
    target = 999
    truth = sorted(peers, key=lambda p: peer_key(p) ^ target)
    it = ClosestPeersIter(target, [(p, peer_key(p), ()) for p in truth[-3:]], k=10, alpha=3,
                          beta=3)
    for _ in range(3):
        for p, _ in it.next():
            _answer(it, p, truth[20:30])  # never closer than what is known after the first
        assert it.waiting == 0
    assert len(it.next()) <= 3
