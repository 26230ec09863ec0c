"""Spread within a k-bucket: a full bucket keeps ``k >> spread_bits`` peers in each part of its
subtree, replacing only entries of parts above that quota (routing_table.py)."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from micronetwork.commands import Emit, Request
from micronetwork.identity.peerid import PeerId
from micronetwork.kademlia import KademliaConfig, KademliaCore, Outcome, RoutingTable
from micronetwork.kademlia.events import PeerAdded, PeerRemoved
from micronetwork.kademlia.keyspace import KEY_BITS, kad_key

LOCAL = PeerId(b"\x00\x24" + b"\xaa" * 36)
TOP = 1 << (KEY_BITS - 1)  # keys with the top bit set: bucket 0 of a table at local key 0


def peer(i: int) -> PeerId:
    return PeerId(b"\x00\x24" + i.to_bytes(36, "big"))


def key_in_part(part: int, low: int, bits: int = 4) -> int:
    """A key in bucket 0 (local key 0), in ``part`` of its 2**bits parts."""
    return TOP | (part << (KEY_BITS - 1 - bits)) | low


def test_a_newcomer_of_an_empty_part_replaces_the_oldest_of_the_crowded_part() -> None:
    t = RoutingTable(LOCAL, k=20, local_key=0, spread_bits=4)  # 16 parts, quota 1
    for i in range(20):  # all in part 3, as a lookup near one key leaves them
        assert t.update(peer(i), (b"a",), float(i), key_in_part(3, i))[0] is Outcome.INSERTED
    t.update(peer(0), (b"a",), 100.0, key_in_part(3, 0))  # peer 0 seen again: now newest
    outcome, victim = t.update(peer(50), (b"a",), 101.0, key_in_part(9, 1))
    assert outcome is Outcome.REPLACED
    assert victim is not None and victim.peer_id == peer(1)  # least recently seen of part 3
    assert peer(50) in t and peer(1) not in t and len(t) == 20


def test_a_newcomer_of_a_part_at_quota_gets_the_usual_ping() -> None:
    t = RoutingTable(LOCAL, k=20, local_key=0, spread_bits=4)
    for i in range(20):
        t.update(peer(i), (b"a",), float(i), key_in_part(i % 16, i))  # every part covered
    outcome, to_ping = t.update(peer(50), (b"a",), 30.0, key_in_part(5, 99))
    assert outcome is Outcome.PENDING  # part 5 already has its one entry: Kademlia's rule
    assert to_ping is not None and to_ping.peer_id == peer(0)
    assert peer(50) not in t


def test_spread_is_off_by_default_and_bounded_by_k() -> None:
    assert RoutingTable(LOCAL).spread_bits == 0 and KademliaConfig().bucket_spread_bits == 0
    off = RoutingTable(LOCAL, k=20, local_key=0, spread_bits=0)
    for i in range(20):
        off.update(peer(i), (b"a",), float(i), key_in_part(3, i))
    assert off.update(peer(50), (b"a",), 30.0, key_in_part(9, 1))[0] is Outcome.PENDING
    assert RoutingTable(LOCAL, k=3, spread_bits=4).spread_bits == 1  # at most log2(k)
    assert RoutingTable(LOCAL, k=1).spread_bits == 0


@settings(max_examples=200, deadline=None)
@given(
    ops=st.lists(st.tuples(st.integers(0, 15), st.integers(0, 200)), min_size=1, max_size=150),
    bits=st.integers(1, 4),
)
def test_replacements_only_take_from_parts_above_quota(
    ops: list[tuple[int, int]], bits: int
) -> None:
    k = 20
    t = RoutingTable(LOCAL, k=k, local_key=0, spread_bits=bits)
    quota = k >> bits
    parts: dict[PeerId, int] = {}
    now = 0.0
    for part, low in ops:
        part &= (1 << bits) - 1
        p = peer(part * 1000 + low)
        now += 1
        before = {q: parts[q] for q in t.peers()}
        counts = [sum(1 for v in before.values() if v == i) for i in range(1 << bits)]
        outcome, other = t.update(p, (b"a",), now, key_in_part(part, low, bits))
        parts.setdefault(p, part)
        if outcome is Outcome.REPLACED:
            assert other is not None
            assert counts[part] < quota  # the newcomer's part was short
            assert counts[parts[other.peer_id]] > quota  # the victim's part had to spare
            assert counts[parts[other.peer_id]] == max(counts)  # the most crowded part
        dead = -1  # the part of an entry that failed its liveness ping (Kademlia's rule)
        if outcome is Outcome.PENDING:
            assert other is not None and other.peer_id in t
            alive = bool(low % 2)
            t.resolve_ping(other.peer_id, alive=alive, now=now)
            dead = -1 if alive else parts[other.peer_id]
        assert len(t) <= k
        after = [sum(1 for q in t.peers() if parts[q] == i) for i in range(1 << bits)]
        for i in range(1 << bits):  # no part falls below quota, or below what it had
            assert after[i] >= min(counts[i], quota) - (i == dead)


def test_the_core_reports_a_replacement_as_a_removed_and_an_added_peer() -> None:
    core = KademliaCore(LOCAL, config=KademliaConfig(bucket_spread_bits=4), rng=random.Random(1))
    local = kad_key(LOCAL)
    # Peers of bucket 0 (first bit differs from ours), sorted by part (the next 4 bits).
    by_part: dict[int, list[PeerId]] = {}
    i = 0
    while len(by_part.get(3, [])) < 20 or len(by_part) < 16:
        p = peer(10_000 + i)
        i += 1
        d = kad_key(p) ^ local
        if d.bit_length() == KEY_BITS:
            by_part.setdefault((d >> (KEY_BITS - 5)) & 15, []).append(p)
    for n, p in enumerate(by_part[3][:20]):
        core.on_peer_identified(p, (b"a",), [core.config.protocol_id], float(n))
    core.drain()
    newcomer = next(iter(by_part[11]))
    core.on_peer_identified(newcomer, (b"a",), [core.config.protocol_id], 50.0)
    out = core.drain()
    events = [c.event for c in out if isinstance(c, Emit)]
    assert PeerRemoved(by_part[3][0], "replaced to spread its bucket") in events
    assert any(isinstance(e, PeerAdded) and e.peer_id == newcomer for e in events)
    assert not [c for c in out if isinstance(c, Request)]  # no ping needed
    assert core.counters["spread_replacements"] == 1
