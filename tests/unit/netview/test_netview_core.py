"""NetviewCore with fake gossip ports: announcements, verification, expiry, the graph."""

from __future__ import annotations

import json

import networkx as nx
import pytest

from micronetwork.errors import ConfigError, SignatureError, ValidationError
from micronetwork.gossip.events import Message, Outcome
from micronetwork.identity.keys import KeyPair
from micronetwork.netview import (
    TOPIC,
    NetviewConfig,
    NetviewCore,
    NetviewRecord,
    NodeExpired,
    NodeSeen,
    open_record,
)
from micronetwork.netview.graph import build_graph, draw, to_dot, to_graphml, to_node_link


class FakePorts:
    def __init__(self) -> None:
        self.published: list[tuple[str, bytes, float]] = []
        self.subscribed: list[str] = []

    def publish(self, topic: str, data: bytes, now: float) -> None:
        self.published.append((topic, data, now))

    def subscribe(self, topic: str, now: float) -> None:
        self.subscribed.append(topic)

    def unsubscribe(self, topic: str, now: float) -> None:
        self.subscribed.remove(topic)


def make(seed: int, role: str = "peer", **cfg: float) -> tuple[NetviewCore, FakePorts]:
    # The figures below are written for these.
    cfg = {"interval": 15.0, "ttl": 45.0, "min_interval": 1.0, **cfg}
    ports = FakePorts()
    core = NetviewCore(KeyPair.from_seed(bytes([seed]) * 32), ports,
                       config=NetviewConfig(role=role, **cfg), now=0.0)  # type: ignore[arg-type]
    return core, ports


def message(data: bytes, sender: KeyPair | NetviewCore, n: int = 0) -> Message:
    peer = sender.local_id if isinstance(sender, NetviewCore) else sender.peer_id
    return Message(TOPIC, data, peer, n.to_bytes(8, "big"), data[-20:] + bytes([n]), peer)


def run_timer(core: NetviewCore, until: float) -> None:
    while (d := core.next_deadline()) is not None and d <= until:
        core.on_timer(d)


def test_subscribes_and_announces_on_change_rate_limited_and_periodically() -> None:
    a, ports = make(1)
    b, _ = make(2)
    c, _ = make(3)
    assert ports.subscribed == [TOPIC]
    a.on_peer_connected(b.local_id, 10.0)
    assert a.next_deadline() == 10.0
    a.on_timer(10.0)
    assert len(ports.published) == 1
    rec = open_record(ports.published[0][1])
    assert rec.peer == a.local_id and [p for p, _ in rec.peers] == [b.local_id]
    a.on_peer_connected(c.local_id, 10.2)  # within min_interval: waits
    assert a.next_deadline() == pytest.approx(11.0)
    a.on_timer(10.5)
    assert len(ports.published) == 1
    a.on_timer(11.0)
    assert len(ports.published) == 2
    a.on_peer_connected(c.local_id, 11.5)  # no change, no announcement
    assert a.next_deadline() == pytest.approx(26.0)  # periodic: interval after the last
    run_timer(a, 60.0)
    times = [t for _, _, t in ports.published]
    assert times == [10.0, 11.0, 26.0, 41.0, 56.0]
    seqs = [open_record(d).seq for _, d, _ in ports.published]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)


def test_receiver_keeps_records_until_ttl_and_reports_news() -> None:
    a, a_ports = make(1, role="super")
    b, _ = make(2)
    a.on_peer_connected(b.local_id, 0.0)
    a.on_rtt(b.local_id, 0.0123, 0.0)
    a.set_services(["greeter", "clock"], 0.0)
    a.on_timer(0.0)
    data = a_ports.published[-1][1]
    msg = message(data, a)
    assert b.validate(msg) is Outcome.ACCEPT
    b.on_message(msg, 1.0)
    events = [c.event for c in b.drain()]  # type: ignore[attr-defined]
    assert len(events) == 1 and isinstance(events[0], NodeSeen) and events[0].new
    held = b.snapshot(5.0)[a.local_id]
    assert held.age == 4.0 and held.record.role == "super"
    assert held.record.services == ("clock", "greeter")
    assert held.record.peers == ((b.local_id, 12.3),)
    # the same news again is stale; a re-announcement with nothing new emits nothing
    b.on_message(msg, 2.0)
    assert b.counters["stale"] == 1
    a.on_timer(15.0)
    b.on_message(message(a_ports.published[-1][1], a, 1), 15.0)
    assert b.drain() == []
    # expiry: ttl (45 s) after the last record
    run_timer(b, 59.0)
    assert a.local_id in b.snapshot(59.0)
    b.on_timer(60.0)
    assert a.local_id not in b.snapshot(60.0)
    events = [c.event for c in b.drain()]  # type: ignore[attr-defined]
    assert events == [NodeExpired(a.local_id, "expired")]


def test_withdraw_drops_the_node_at_once() -> None:
    a, ports = make(1)
    b, _ = make(2)
    a.on_timer(15.0)
    b.on_message(message(ports.published[-1][1], a), 15.0)
    a.withdraw(16.0)
    b.on_message(message(ports.published[-1][1], a, 1), 16.0)
    assert a.local_id not in b.snapshot(16.0)
    assert NodeExpired(a.local_id, "withdrawn") in [c.event for c in b.drain()]  # type: ignore[attr-defined]


def test_forged_tampered_and_oversized_records_are_rejected() -> None:
    a, ports = make(1)
    b, _ = make(2)
    mallory = KeyPair.from_seed(b"\x09" * 32)
    a.on_timer(15.0)
    good = ports.published[-1][1]
    # relayed under another author: only a node announces itself
    assert b.validate(message(good, mallory)) is Outcome.REJECT
    # signed by mallory but naming a
    forged = NetviewRecord(a.local_id, "super", (), (), (), 99, 45.0)
    with pytest.raises(ValidationError):
        forged.seal(mallory)
    from micronetwork.identity.envelope import seal

    env = seal(mallory, "micronetwork-netview", b"/micronetwork/netview/1", forged.to_wire())
    with pytest.raises(SignatureError):
        open_record(env)
    assert b.validate(message(env, mallory)) is Outcome.REJECT
    # any byte changed
    bad = bytearray(good)
    bad[len(bad) // 2] ^= 1
    assert b.validate(message(bytes(bad), a)) is Outcome.REJECT
    # bounds: too many peers, bad role, huge data, wrong topic
    many = NetviewRecord(mallory.peer_id, "peer", (), tuple(
        (KeyPair.from_seed(bytes([i]) * 32).peer_id, None) for i in range(65)), (), 1, 45.0)
    assert b.validate(message(many.seal(mallory), mallory)) is Outcome.REJECT
    wire = many.to_wire()
    wire.update(peers=[], role="boss")
    assert b.validate(message(seal(mallory, "micronetwork-netview",
                                   b"/micronetwork/netview/1", wire), mallory)) is Outcome.REJECT
    assert b.validate(message(b"\x00" * 40_000, mallory)) is Outcome.REJECT
    m = message(good, a)
    assert b.validate(Message("other", m.data, m.from_peer, m.seqno, m.msg_id,
                              m.received_from)) is Outcome.REJECT
    assert b.counters["rejected"] == 7
    assert b.snapshot(20.0).keys() == {b.local_id}


def test_direct_peers_are_capped_and_config_is_checked() -> None:
    a, ports = make(1)
    for i in range(100):
        a.on_peer_connected(KeyPair.from_seed(bytes([i + 10]) * 32).peer_id, 0.0)
    a.on_timer(0.0)
    assert len(open_record(ports.published[-1][1]).peers) == 64
    with pytest.raises(ConfigError):
        NetviewConfig(interval=50.0, ttl=45.0)
    with pytest.raises(ConfigError):
        NetviewConfig(role="boss")  # type: ignore[arg-type]


def _chain(n: int) -> list[tuple[NetviewCore, FakePorts]]:
    """n nodes in a line, each one's records delivered to the first."""
    nodes = [make(i + 1, role="super" if i == 0 else "peer") for i in range(n)]
    for i, (core, _) in enumerate(nodes):
        if i:
            core.on_peer_connected(nodes[i - 1][0].local_id, 0.0)
        if i + 1 < n:
            core.on_peer_connected(nodes[i + 1][0].local_id, 0.0)
            core.on_rtt(nodes[i + 1][0].local_id, 0.002 * (i + 1), 0.0)
        core.set_addrs((bytes.fromhex("047f000001060fa1"),), 0.0)
        core.on_timer(0.0)
    first = nodes[0][0]
    for k, (core, ports) in enumerate(nodes[1:]):
        first.on_message(message(ports.published[-1][1], core, k), 1.0)
    return nodes


def test_graph_is_depth_limited_with_attributes_and_latency() -> None:
    nodes = _chain(5)
    first = nodes[0][0]
    nodes[2][0].set_services(["greeter"], 0.0)
    snap = first.snapshot(3.0)
    ids = [c.local_id.to_base58() for c, _ in nodes]
    g = build_graph(snap, first.local_id, depth=2)
    assert set(g.nodes) == set(ids[:3])
    assert g.nodes[ids[0]]["role"] == "super" and g.nodes[ids[0]]["last_seen"] == 0.0
    assert g.nodes[ids[1]]["last_seen"] == 2.0 and g.nodes[ids[2]]["hops"] == 2
    assert g.nodes[ids[1]]["addrs"] == ["/ip4/127.0.0.1/tcp/4001"]
    assert g.edges[ids[0], ids[1]]["latency_ms"] == 2.0
    assert g.edges[ids[1], ids[2]]["latency_ms"] == 4.0
    full = build_graph(snap, first.local_id)
    assert nx.is_connected(full) and full.number_of_nodes() == 5
    assert build_graph(snap, first.local_id, depth=0).number_of_nodes() == 1
    # a node only named as a peer (no record yet) is in the graph as "unknown"
    snap.pop(nodes[4][0].local_id)
    g = build_graph(snap, first.local_id)
    assert g.nodes[ids[4]]["role"] == "unknown" and g.nodes[ids[4]]["last_seen"] is None


def test_exports() -> None:
    nodes = _chain(3)
    first = nodes[0][0]
    g = build_graph(first.snapshot(1.0), first.local_id)
    data = json.loads(json.dumps(to_node_link(g)))
    back = nx.node_link_graph(data, edges="links")
    assert set(back.nodes) == set(g.nodes) and back.number_of_edges() == 2
    dot = to_dot(g)
    assert dot.startswith('graph "micronetwork" {') and dot.count(" -- ") == 2
    assert "doublecircle" in dot and "2.0 ms" in dot
    parsed = nx.parse_graphml(to_graphml(g))
    assert set(parsed.nodes) == set(g.nodes)
    assert parsed.nodes[first.local_id.to_base58()]["role"] == "super"
    svg = draw(g, "svg")
    assert b"<svg" in svg[:500]
    assert draw(g, "png").startswith(b"\x89PNG")
    with pytest.raises(ValueError):
        draw(g, "gif")
