"""A join asks one bootstrap peer, goes on through the peers it names, and falls back in turn."""

from __future__ import annotations

import random

import pytest

from memnet import MemNet
from micronetwork.commands import Emit, Request
from micronetwork.errors import ConfigError
from micronetwork.identity import KeyPair
from micronetwork.identity.peerid import PeerId
from micronetwork.kademlia import (
    KademliaConfig,
    KademliaCore,
    KadMessage,
    MessageType,
    PeerInfo,
    QueryFinished,
)

ME = KeyPair.from_seed(b"\x02" * 32).peer_id
BOOT = [KeyPair.from_seed(bytes([0x10 + i]) * 32).peer_id for i in range(4)]
OTHERS = [KeyPair.from_seed(bytes([0x40 + i]) * 32).peer_id for i in range(6)]


def joiner(seed: int = 1, **kw: object) -> KademliaCore:
    c = KademliaCore(ME, config=KademliaConfig(**kw), rng=random.Random(seed))  # type: ignore[arg-type]
    for i, b in enumerate(BOOT):
        c.add_bootstrap_peer(b, (bytes([i]),))
    return c


def requests(c: KademliaCore) -> list[Request]:
    return [x for x in c.drain() if isinstance(x, Request)]


def finished(cmds: list[object]) -> list[QueryFinished]:
    return [x.event for x in cmds if isinstance(x, Emit) and isinstance(x.event, QueryFinished)]


def test_a_join_asks_one_bootstrap_peer_and_admits_it_only_when_it_answers() -> None:
    c = joiner()
    c.bootstrap(0.0)
    reqs = requests(c)
    assert len(reqs) == 1 and reqs[0].peer in BOOT
    assert reqs[0].message.type is MessageType.FIND_NODE and reqs[0].message.key == bytes(ME)
    assert len(c.table) == 0  # not trusted before it answers
    named = tuple(PeerInfo(p, (b"x",)) for p in OTHERS)
    c.on_response(reqs[0].peer, reqs[0].request_id, KadMessage(MessageType.FIND_NODE,
                                                              closer_peers=named), 0.1)
    assert reqs[0].peer in c.table
    nxt = requests(c)
    # The join goes on through the peers the bootstrap peer named, not the other bootstrap peers.
    assert {r.peer for r in nxt} == set(OTHERS)


def test_the_bootstrap_peer_is_drawn_at_random() -> None:
    first = set()
    for seed in range(40):
        c = joiner(seed)
        c.bootstrap(0.0)
        first.add(requests(c)[0].peer)
    assert first == set(BOOT)


def test_failed_bootstrap_peers_are_replaced_one_at_a_time() -> None:
    c = joiner(request_timeout=5.0)
    c.bootstrap(0.0)
    asked = []
    for t in (1.0, 2.0):
        (req,) = requests(c)
        asked.append(req.peer)
        c.on_request_failed(req.peer, req.request_id, "unreachable", t)
    (req,) = requests(c)  # the third, alone
    asked.append(req.peer)
    assert len(set(asked)) == 3
    c.on_response(req.peer, req.request_id, KadMessage(MessageType.FIND_NODE), 3.0)
    # It answered but named nobody: the network it reached is smaller than k (bootstrap nodes
    # that start together), so the join goes on through the last bootstrap peer.
    (last,) = requests(c)
    assert last.peer in BOOT and last.peer not in asked
    named = tuple(PeerInfo(p, (b"x",)) for p in OTHERS)
    c.on_response(last.peer, last.request_id, KadMessage(MessageType.FIND_NODE,
                                                         closer_peers=named), 4.0)
    assert {r.peer for r in requests(c)} == set(OTHERS)
    assert req.peer in c.table and last.peer in c.table


def test_a_join_that_met_k_peers_asks_no_other_bootstrap_peer() -> None:
    c = joiner(k=5)
    c.bootstrap(0.0)
    (first,) = requests(c)
    named = tuple(PeerInfo(p, (b"x",)) for p in OTHERS)
    c.on_response(first.peer, first.request_id, KadMessage(MessageType.FIND_NODE,
                                                          closer_peers=named), 0.1)
    for r in requests(c):
        c.on_response(r.peer, r.request_id, KadMessage(MessageType.FIND_NODE), 0.2)
    cmds = c.drain()
    (ev,) = finished(cmds)
    assert ev.error is None and len(ev.result) == 5
    asked = {x.peer for x in cmds if isinstance(x, Request) and x.message.key == bytes(ME)}
    assert not asked & set(BOOT)  # 7 peers met >= k: the other bootstrap peers are not asked


def test_a_join_fails_only_when_every_bootstrap_peer_did() -> None:
    c = joiner(request_timeout=5.0)
    c.bootstrap(0.0)
    asked: list[PeerId] = []
    t = 0.0
    for _ in BOOT:
        (req,) = requests(c)
        asked.append(req.peer)
        t += 6.0
        c.on_timer(t)  # it times out
    cmds = c.drain()
    assert sorted(asked, key=bytes) == sorted(BOOT, key=bytes)
    (ev,) = finished(cmds)
    assert ev.error == "routing table is empty"
    assert c.counters["timeouts"] == 4


def test_bootstrap_contacts_asks_that_many_at_once() -> None:
    c = joiner(bootstrap_contacts=3)
    c.bootstrap(0.0)
    assert len({r.peer for r in requests(c)}) == 3
    with pytest.raises(ConfigError):
        KademliaConfig(bootstrap_contacts=0)


def test_joins_through_one_of_several_bootstrap_nodes_reach_everyone() -> None:
    net = MemNet(seed=5)
    supers = [net.add_node() for _ in range(3)]
    for s in supers:
        for o in supers:
            if o is not s:
                s.add_bootstrap_peer(o.local_id, o.local_addrs)
        net.call(s, "bootstrap")
    net.run_for(1.0)
    peers = []
    for _ in range(30):
        c = net.add_node()
        for s in supers:
            c.add_bootstrap_peer(s.local_id, s.local_addrs)
        net.run_until_finished(c, net.call(c, "bootstrap"))
        peers.append(c)
    net.run_for(5.0)
    served = [s.counters["requests_in"] for s in supers]
    assert all(n > 0 for n in served)  # the joins spread over the three
    a, b = peers[3], peers[27]
    ev = net.run_until_finished(a, net.call(a, "find_peer", b.local_id))
    assert ev.result is not None and ev.result.peer_id == b.local_id
