"""Gossip cores on the in-memory network: mesh, delivery, gossip recovery, attacks."""

from __future__ import annotations

from dataclasses import replace

from gossipnet import GossipNet

from micronetwork.gossip import (
    PROTOCOL_V11,
    RPC,
    GossipConfig,
    GossipCore,
    Message,
    Outcome,
    PubMessage,
)
from micronetwork.identity import PeerId


def test_mesh_forms_with_degrees_within_bounds() -> None:
    net = GossipNet(seed=3)
    cores = net.build(30, degree=10)
    net.run_for(10)
    cfg = cores[0].config
    for c in cores:
        mesh = c.mesh_peers("t")
        assert cfg.d_lo <= len(mesh) <= cfg.d_hi, len(mesh)
        assert mesh <= c.topic_peers("t")
        for p in mesh:  # meshes are symmetric once the GRAFTs have landed
            assert c.local_id in net.nodes[p].mesh_peers("t")


def test_publish_reaches_every_subscriber_exactly_once() -> None:
    net = GossipNet(seed=4)
    cores = net.build(25, degree=8, jitter=0.05)
    net.run_for(5)
    ids = [net.call(cores[i], "publish", "t", f"hello {i}".encode()) for i in range(5)]
    net.run_for(3)
    for c in cores:
        for mid in ids:
            got = net.delivered(c, mid)
            assert len(got) == 1, (c.local_id, mid)
            assert got[0].topic == "t"
    stats = cores[7].topic_stats("t")
    assert stats.delivered == 5 and stats.mesh == len(cores[7].mesh_peers("t"))
    assert sum(c.topic_stats("t").duplicates for c in cores) > 0  # the mesh is redundant


def test_non_subscriber_gets_nothing_and_can_publish_through_fanout() -> None:
    cfg = GossipConfig(flood_publish=False)
    net = GossipNet(seed=5)
    cores = net.build(12, degree=6, config=cfg, topic=None)
    for c in cores[1:]:
        net.call(c, "subscribe", "t")
    net.run_for(3)
    mid = net.call(cores[0], "publish", "t", b"from outside")
    assert 0 < len(cores[0].fanout_peers("t")) <= cfg.d
    net.run_for(2)
    assert not net.delivered(cores[0])
    for c in cores[1:]:
        assert len(net.delivered(c, mid)) == 1
    net.run_for(cfg.fanout_ttl + 2)
    assert not cores[0].fanout_peers("t")


def test_ihave_iwant_recovers_a_message_lost_on_mesh_links() -> None:
    net = GossipNet(seed=6)
    cores = net.build(15, degree=8)
    net.run_for(5)
    victim = cores[9].local_id
    start = net.now

    def lose(src: PeerId, dst: PeerId, rpc: RPC) -> RPC | None:
        if dst == victim and rpc.publish and net.now < start + 0.5:
            return None  # every forwarded copy to the victim is lost
        return rpc

    net.intercept = lose
    mid = net.call(cores[0], "publish", "t", b"x")
    net.run_for(0.4)
    assert not net.delivered(cores[9], mid)
    net.run_for(3)
    assert len(net.delivered(cores[9], mid)) == 1
    assert cores[9].counters["iwant_sent"] >= 1
    assert cores[9].topic_stats("t").ihave_received >= 1
    assert sum(c.topic_stats("t").iwant_received for c in cores) >= 1


def test_tampered_signature_is_rejected_and_scored_and_the_real_copy_still_arrives() -> None:
    net = GossipNet(seed=7)
    cores = net.build(10, degree=6)
    net.run_for(5)
    bad, victim = cores[3].local_id, cores[4]
    assert (bad, victim.local_id) in net.links

    def tamper(src: PeerId, dst: PeerId, rpc: RPC) -> RPC | None:
        if src == bad and dst == victim.local_id and rpc.publish:
            msgs = tuple(replace(m, data=m.data + b"!") for m in rpc.publish)
            return replace(rpc, publish=msgs)
        return rpc

    net.intercept = tamper
    mid = net.call(cores[0], "publish", "t", b"genuine")
    net.run_for(2)
    got = net.delivered(victim, mid)
    assert len(got) == 1 and got[0].data == b"genuine"
    if victim.counters["invalid_signatures"]:  # bad forwarded before the victim had it
        assert victim.peer_score(bad, net.now) < 0
    # a direct tampered publish is always caught
    signed = victim.mcache.get(mid)
    assert signed is not None
    forged = replace(signed, data=b"forged", seqno=b"\x00" * 7 + b"\x09")
    before = victim.counters["invalid_signatures"]
    victim.on_rpc(bad, RPC(publish=(forged,)), net.now)
    assert victim.counters["invalid_signatures"] == before + 1
    assert victim.peer_score(bad, net.now) < 0
    assert not [m for m in net.delivered(victim) if m.data == b"forged"]


def test_invalid_message_spammer_is_graylisted_and_its_traffic_stops() -> None:
    net = GossipNet(seed=8)
    cores = net.build(12, degree=6)
    calls: dict[PeerId, int] = {}

    def validator_for(core: GossipCore):  # type: ignore[no-untyped-def]
        def validate(m: Message) -> Outcome:
            if m.data.startswith(b"spam"):
                calls[core.local_id] = calls.get(core.local_id, 0) + 1
                return Outcome.REJECT
            return Outcome.ACCEPT

        return validate

    spammer = cores[0]
    for c in cores[1:]:
        c.set_validator("t", validator_for(c))
    net.run_for(5)
    for i in range(40):
        spammer.publish("t", b"spam %d" % i, net.now)
        net.pump(spammer)
        net.run_for(0.2)
    net.run_for(2)
    victims = [c for c in cores[1:] if spammer.local_id in c.peers]
    thresholds = cores[1].config.thresholds
    for c in victims:
        assert c.peer_score(spammer.local_id, net.now) < thresholds.graylist_threshold
        assert c.counters["rpcs_graylisted"] > 0
        assert calls.get(c.local_id, 0) <= 4  # a few rejects, then nothing is even decoded
        assert spammer.local_id not in c.mesh_peers("t")
    for c in cores[1:]:
        if c not in victims:
            assert calls.get(c.local_id, 0) == 0  # rejected messages are never forwarded
    # honest traffic is unaffected
    mid = net.call(cores[5], "publish", "t", b"honest")
    net.run_for(2)
    assert all(len(net.delivered(c, mid)) == 1 for c in cores[1:])


def test_idontwant_reduces_copies_of_large_messages() -> None:
    def copies(protocols: tuple[str, ...] | None) -> int:
        net = GossipNet(seed=9, latency=0.02)
        cfg = GossipConfig()
        cores = [net.add_node(cfg, protocols) for _ in range(20)]
        for i, c in enumerate(cores):
            for j in (1, 2, 3, 5, 7):
                net.connect(c, cores[(i + j) % 20], 0.01 + 0.05 * net.rng.random())
        for c in cores:
            net.call(c, "subscribe", "t")
            c.set_validator("t", None)
        net.validation_delay = 0.05
        net.run_for(5)
        for k in range(5):
            net.call(cores[k], "publish", "t", bytes(4000))
            net.run_for(1)
        for c in cores:
            assert c.topic_stats("t").delivered == 5
        return sum(c.topic_stats("t").duplicates for c in cores)

    with_idontwant = copies(None)
    without = copies((PROTOCOL_V11,))
    assert with_idontwant < 0.8 * without


def test_async_validation_accept_and_timeout() -> None:
    net = GossipNet(seed=10)
    cores = net.build(6, degree=5)
    net.run_for(3)
    for c in cores[1:]:
        c.set_validator("t", None)
    mid = net.call(cores[0], "publish", "t", b"check me")
    net.run_for(0.5)
    from micronetwork.gossip import ValidateMessage

    asked = [
        c for c in cores[1:] if any(isinstance(e, ValidateMessage) for e in net.events[c.local_id])
    ]
    assert asked and not any(net.delivered(c, mid) for c in cores[1:])
    first = asked[0]
    net.call(first, "report_validation", mid, Outcome.ACCEPT)
    assert len(net.delivered(first, mid)) == 1
    net.run_for(cores[0].config.validation_timeout + 2)
    assert first.counters["validation_timeouts"] == 0
    assert sum(c.counters["validation_timeouts"] for c in cores[1:]) >= 1
    assert sum(c.topic_stats("t").ignored for c in cores[1:]) >= 1


def test_garbage_rpcs_are_counted_then_the_peer_is_disconnected() -> None:
    net = GossipNet(seed=11)
    a, b = net.add_node(), net.add_node()
    net.connect(a, b)
    limit = b.config.bad_rpc_limit
    for _ in range(limit + 3):
        b.on_rpc(a.local_id, b"\xff\xff\xff\x07garbage", net.now)
        net.pump(b)
    assert b.counters["bad_rpcs"] == limit + 3
    assert [(s, p) for s, p, _ in net.disconnects] == [(b.local_id, a.local_id)]


def test_peers_without_meshsub_are_ignored() -> None:
    net = GossipNet(seed=12)
    a = net.add_node()
    b = net.add_node(protocols=("/floodsub/1.0.0",))
    net.connect(a, b)
    net.call(a, "subscribe", "t")
    assert b.local_id not in a.peers
    a.on_rpc(b.local_id, RPC(publish=(PubMessage("t", b"x"),)), net.now)
    assert a.counters["rpcs_from_unknown_peers"] == 1


def _star_delivery(hub: bool) -> tuple[int, int]:
    """A centre with 40 leaves that know only it, and a second publisher beside it: how many
    leaves have the publisher's message 0.1 s later (links 10 ms), of how many."""
    net = GossipNet(seed=21)
    centre = net.add_node()
    leaves = [net.add_node() for _ in range(40)]
    other = net.add_node()
    for c in (centre, *leaves, other):
        net.call(c, "subscribe", "t")
    for leaf in (*leaves, other):
        net.connect(leaf, centre)
    if hub:
        centre.set_hub("t")
    net.run_for(5)  # meshes settle: the centre keeps at most d_hi of its 41 peers
    assert len(centre.mesh_peers("t")) <= centre.config.d_hi
    mid = net.call(other, "publish", "t", b"second instance")
    net.run_for(0.1)
    return sum(1 for leaf in leaves if net.delivered(leaf, mid)), len(leaves)


def test_a_hub_topic_is_forwarded_to_every_topic_peer_not_only_the_mesh() -> None:
    got, n = _star_delivery(hub=True)
    assert got == n
    got_plain, _ = _star_delivery(hub=False)
    assert got_plain < n  # without it only the centre's mesh has it this early


def test_set_hub_off_restores_mesh_forwarding() -> None:
    core = GossipNet(seed=22).add_node()
    core.set_hub("t")
    assert "t" in core.hubs
    core.set_hub("t", False)
    assert "t" not in core.hubs


def _mesh_by_rtt(share: float) -> tuple[set[PeerId], list[PeerId]]:
    """A node that subscribes among 20 topic peers whose RTTs it knows: its mesh, and the
    peers from fastest to slowest."""
    cfg = GossipConfig(mesh_latency_share=share)
    net = GossipNet(seed=23)
    me = net.add_node(cfg)
    others = [net.add_node(cfg) for _ in range(20)]
    for i, o in enumerate(others):
        net.call(o, "subscribe", "t")
        net.connect(me, o)
        me.set_peer_rtt(o.local_id, 0.3 - 0.01 * i)  # the last added is the fastest
    net.run_for(0.05)  # subscriptions arrive, no heartbeat yet
    net.call(me, "subscribe", "t")
    by_rtt = sorted((o.local_id for o in others), key=lambda p: me.rtt[p])
    return set(me.mesh_peers("t")), by_rtt


def test_the_mesh_prefers_low_rtt_peers_for_its_share_of_slots() -> None:
    mesh, by_rtt = _mesh_by_rtt(0.67)
    assert len(mesh) == 6
    assert set(by_rtt[:4]) <= mesh  # round(6 * 0.67) = 4 fastest, 2 at random
    mesh, by_rtt = _mesh_by_rtt(1.0)
    assert mesh == set(by_rtt[:6])
    mesh, by_rtt = _mesh_by_rtt(0.0)  # the spec's random choice
    assert mesh != set(by_rtt[:6])


def test_rtts_are_forgotten_with_the_peer() -> None:
    net = GossipNet(seed=24)
    a, b = net.add_node(), net.add_node()
    a.set_peer_rtt(b.local_id, 0.05)  # not connected yet: ignored
    assert b.local_id not in a.rtt
    net.connect(a, b)
    a.set_peer_rtt(b.local_id, 0.05)
    assert a.rtt[b.local_id] == 0.05
    net.disconnect(a.local_id, b.local_id)
    assert b.local_id not in a.rtt
