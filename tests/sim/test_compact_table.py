"""The compact routing table (sim/compact_table.py) is the same table as RoutingTable, in less
memory: the same answers to the same calls, and the same simulation, event for event."""

from __future__ import annotations

import random
import tracemalloc
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from micronetwork.identity.peerid import PeerId
from micronetwork.kademlia import KademliaCore, RoutingTable
from micronetwork.kademlia.keyspace import kad_key
from micronetwork.kademlia.routing_table import Entry
from micronetwork.sim import Scenario
from micronetwork.sim.compact_table import CompactTable, Directory
from micronetwork.sim.models import NetworkModel, Uniform
from simtrace import digest

ADDRS = ((b"a",), (b"b",), ())


def _peer(i: int) -> PeerId:
    return PeerId(b"\x00\x24" + i.to_bytes(36, "big"))


def _snap(e: Entry | None) -> Any:
    return None if e is None else (e.peer_id, e.key, e.addrs, e.last_seen, e.failures)


def _state(t: RoutingTable) -> Any:
    return (len(t), t.bucket_sizes(), t.peers(), [_snap(e) for e in t.entries()],
            [_snap(e) for e in t.stale(50.0, 10.0)])


op = st.tuples(
    st.sampled_from(["update", "update", "update", "alive", "dead", "remove", "fail", "closest"]),
    st.integers(0, 15),  # which peer (few: buckets of k = 3 fill, peers recur)
    st.integers(0, 2),  # which addresses
)


@settings(max_examples=150, deadline=None)
@given(st.lists(op, min_size=30, max_size=150), st.integers(0, 1), st.integers(0, 2**32))
def test_the_compact_table_answers_every_call_as_the_routing_table(
    ops: list[tuple[str, int, int]], spread: int, seed: int
) -> None:
    local = _peer(1000)
    plain = RoutingTable(local, k=3, spread_bits=spread)
    compact = CompactTable(Directory(), local, k=3, spread_bits=spread)
    rng = random.Random(seed)
    for step, (what, p, a) in enumerate(ops):
        peer, now = _peer(p), float(step)
        if what == "update":
            r1, r2 = (t.update(peer, ADDRS[a], now) for t in (plain, compact))
            assert (r1[0], _snap(r1[1])) == (r2[0], _snap(r2[1]))
        elif what in ("alive", "dead"):
            assert (plain.resolve_ping(peer, what == "alive", now)
                    == compact.resolve_ping(peer, what == "alive", now))
        elif what == "remove":
            assert plain.remove(peer) == compact.remove(peer)
        elif what == "fail":
            assert plain.record_failure(peer, 2) == compact.record_failure(peer, 2)
        else:
            target, n = rng.getrandbits(256), rng.randint(1, 12)
            exclude = _peer(rng.randrange(16))
            assert ([_snap(e) for e in plain.closest(target, n, exclude)]
                    == [_snap(e) for e in compact.closest(target, n, exclude)])
        assert _snap(plain.get(peer)) == _snap(compact.get(peer))
        assert (peer in plain) == (peer in compact)
    assert _state(plain) == _state(compact)


def test_fill_puts_nodes_into_an_empty_bucket_only() -> None:
    d = Directory()
    peers = [_peer(i) for i in range(30)]
    for p in peers:
        d.add(p, kad_key(p), (b"x",))
    local = _peer(1000)
    t = CompactTable(d, local, k=3)
    by_cpl: dict[int, list[int]] = {}
    for i in range(len(peers)):
        by_cpl.setdefault(t.cpl_of(d.keys[i]), []).append(i)
    cpl, members = next((c, m) for c, m in by_cpl.items() if len(m) >= 4)
    with pytest.raises(ValueError):
        t.fill(cpl, members[:4], 1.0)  # more than k
    t.fill(cpl, members[:2], 1.0)
    assert len(t) == 2 and t.bucket_sizes() == {cpl: 2}
    assert [e.peer_id for e in t.entries()] == [peers[i] for i in members[:2]]
    with pytest.raises(ValueError):
        t.fill(cpl, members[2:3], 1.0)  # not empty


def test_a_core_takes_only_an_empty_table_of_its_own() -> None:
    d = Directory()
    me, other = _peer(1), _peer(2)
    with pytest.raises(ValueError):
        KademliaCore(me, table=CompactTable(d, other))
    t = CompactTable(d, me)
    t.update(other, (b"a",), 0.0)
    with pytest.raises(ValueError):
        KademliaCore(me, table=t)
    assert KademliaCore(me, table=CompactTable(d, me)).table.local_id == me


def _run(compact: bool) -> str:
    """Protocol-built tables, churn with crashes and graceful leaves (which walk ``peers()``),
    liveness checks (``stale()``), lookups: the whole trace."""
    net = NetworkModel(latency=Uniform(0.02, 0.12, seed=4), loss=0.01)
    sc = Scenario(80, 4, network=net, record_messages=True, compact_tables=compact)
    sc.build()
    sc.make_stale(0.1)
    ch = sc.churn(3.0)
    ch.start()
    sc.lookups(40)
    sc.run_for(400.0)  # maintenance: liveness pings of stale entries
    ch.stop()
    return digest(sc, tables=True)


def test_a_simulation_with_compact_tables_is_the_same_trace() -> None:
    assert _run(compact=True) == _run(compact=False)


def _table_bytes(compact: bool) -> int:
    sc = Scenario(1500, 2, compact_tables=compact)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        sc.build(ideal=True)
        return tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()


def test_compact_tables_take_a_fraction_of_the_memory() -> None:
    plain, compact = _table_bytes(False), _table_bytes(True)
    assert compact < plain / 2.5, (compact, plain)
