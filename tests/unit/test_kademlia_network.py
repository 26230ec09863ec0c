"""Lookups on a hand-built network of Kademlia cores, no sockets (see tests/memnet.py)."""

from __future__ import annotations

from memnet import MemNet
from micronetwork.kademlia import KademliaConfig, QueryKind, kad_key
from micronetwork.kademlia.keyspace import peer_key


def test_every_node_finds_every_other() -> None:
    net = MemNet(seed=7)
    cores = net.build(40)
    for a in cores[1:6]:
        for b in cores:
            if a is b:
                continue
            qid = net.call(a, "find_peer", b.local_id)
            ev = net.run_until_finished(a, qid)
            assert ev.kind is QueryKind.FIND_PEER
            assert ev.result is not None, (a.local_id, b.local_id, ev)
            assert ev.result.peer_id == b.local_id
            assert ev.result.addrs == b.local_addrs


def test_closest_peers_are_the_true_closest() -> None:
    net = MemNet(seed=3)
    cores = net.build(60)
    key = b"/mn/some-key"
    target = kad_key(key)
    truth = sorted((c.local_id for c in cores), key=lambda p: peer_key(p) ^ target)
    a = cores[17]
    ev = net.run_until_finished(a, net.call(a, "find_closest", key))
    got = [info.peer_id for info in ev.result]
    expected = [p for p in truth if p != a.local_id][:20]
    # All of the 5 true closest must be found; nearly all of the 20.
    assert expected[:5] == got[:5]
    assert len(set(got) & set(expected)) >= 18
    assert 1 <= ev.stats.rounds <= 5


def test_values_round_trip_with_binary_keys() -> None:
    net = MemNet(seed=11)
    cores = net.build(30)
    key = b"/mn/\x00\xff\xfe binary \x80"
    ev = net.run_until_finished(cores[3], net.call(cores[3], "put_value", key, b"v1"))
    assert ev.result >= 10
    ev = net.run_until_finished(cores[25], net.call(cores[25], "get_value", key))
    assert ev.result == b"v1"


def test_public_key_records() -> None:
    net = MemNet(seed=12)
    cores = net.build(20)
    owner = cores[4]
    pub = owner.local_id.public_key()
    assert pub is not None
    key = b"/pk/" + bytes(owner.local_id)
    ev = net.run_until_finished(owner, net.call(owner, "put_value", key, pub))
    assert ev.result > 0
    ev = net.run_until_finished(cores[9], net.call(cores[9], "get_value", key))
    assert ev.result == pub


def test_providers_round_trip() -> None:
    net = MemNet(seed=5)
    cores = net.build(30)
    key = b"service:greeter"
    ev = net.run_until_finished(cores[2], net.call(cores[2], "provide", key))
    assert ev.result >= 10
    ev = net.run_until_finished(cores[20], net.call(cores[20], "get_providers", key))
    assert [p.peer_id for p in ev.result] == [cores[2].local_id]
    assert ev.result[0].addrs == cores[2].local_addrs


def test_dead_peer_is_evicted_and_lookups_still_succeed() -> None:
    net = MemNet(seed=9)
    cfg = KademliaConfig(request_timeout=1.0, max_failures=1)
    cores = net.build(25, cfg)
    victim = cores[10]
    net.kill(victim.local_id)
    holders = [c for c in cores if victim.local_id in c.table and c is not victim]
    assert holders
    # Each holder notices on its next contact (liveness ping after the disconnect).
    for c in holders:
        c.on_peer_disconnected(victim.local_id, net.now)
        net._pump(c)
    net.run_for(5)
    assert all(victim.local_id not in c.table for c in holders)
    ev = net.run_until_finished(cores[1], net.call(cores[1], "find_peer", cores[20].local_id))
    assert ev.result is not None


def test_disjoint_paths_find_the_peer() -> None:
    net = MemNet(seed=21)
    cores = net.build(50, KademliaConfig(disjoint_paths=4))
    a, b = cores[5], cores[44]
    ev = net.run_until_finished(a, net.call(a, "find_peer", b.local_id))
    assert ev.result is not None and ev.result.peer_id == b.local_id


def test_client_mode_nodes_are_not_in_tables() -> None:
    net = MemNet(seed=4)
    cores = net.build(15)
    client = net.add_node(KademliaConfig(mode="client"))
    client.add_bootstrap_peer(cores[0].local_id, cores[0].local_addrs)
    ev = net.run_until_finished(client, net.call(client, "bootstrap"))
    assert ev.error is None
    net.run_for(10)
    assert len(client.table) >= 10
    assert all(client.local_id not in c.table for c in cores)
    ev = net.run_until_finished(client, net.call(client, "find_peer", cores[9].local_id))
    assert ev.result is not None
