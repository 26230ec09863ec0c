"""One gossip core driven by hand: control messages, backoff, PX, graylist, IDONTWANT, limits."""

from __future__ import annotations

import random

import pytest

from micronetwork.commands import Dial, Emit
from micronetwork.errors import ValidationError
from micronetwork.gossip import (
    PROTOCOL_V11,
    PROTOCOL_V12,
    RPC,
    Control,
    GossipConfig,
    GossipCore,
    Graft,
    IDontWant,
    IHave,
    IWant,
    Message,
    Outcome,
    PeerExchange,
    PeerScoreParams,
    Prune,
    Send,
    SubOpts,
    sign_message,
)
from micronetwork.identity import KeyPair, PeerId

KEYS = [KeyPair.from_seed(bytes([i]) * 32) for i in range(1, 40)]
T = "t"


class Rig:
    """A core plus fake peers; collects what the core sends."""

    def __init__(self, config: GossipConfig | None = None, app: dict[PeerId, float] | None = None):
        if app is not None:
            score = PeerScoreParams(app_specific_score=lambda p: app.get(p, 0.0))
            config = GossipConfig(score=score) if config is None else config
        self.core = GossipCore(KEYS[0], config=config, rng=random.Random(1))
        self.now = 0.0
        self.sent: list[Send] = []
        self.other: list[object] = []

    def peer(
        self, i: int, subscribe: bool = True, outbound: bool = False, proto: str = PROTOCOL_V12
    ) -> PeerId:
        p = KEYS[i].peer_id
        self.core.on_peer_connected(p, [proto], outbound, self.now)
        if subscribe:
            self.rpc(p, RPC(subscriptions=(SubOpts(True, T),)))
        return p

    def rpc(self, p: PeerId, rpc: RPC) -> None:
        self.core.on_rpc(p, rpc, self.now)
        self.collect()

    def collect(self) -> None:
        for cmd in self.core.drain():
            (self.sent if isinstance(cmd, Send) else self.other).append(cmd)

    def advance(self, seconds: float) -> None:
        end = self.now + seconds
        while True:
            d = self.core.next_deadline()
            if d is None or d > end:
                break
            self.now = max(self.now, d)
            self.core.on_timer(self.now)
            self.collect()
        self.now = end

    def to(self, p: PeerId) -> list[RPC]:
        return [s.message for s in self.sent if s.peer == p]

    def grafts_to(self, p: PeerId) -> int:
        return sum(1 for r in self.to(p) if r.control for g in r.control.graft if g.topic == T)

    def prunes_to(self, p: PeerId) -> list[Prune]:
        return [pr for r in self.to(p) if r.control for pr in r.control.prune]


def signed(i: int, data: bytes, seq: int = 1, topic: str = T):  # type: ignore[no-untyped-def]
    return sign_message(KEYS[i], topic, data, seq.to_bytes(8, "big"))


def test_subscribe_announces_and_grafts_known_topic_peers() -> None:
    r = Rig()
    peers = [r.peer(i) for i in range(1, 9)]
    r.core.subscribe(T, r.now)
    r.collect()
    for p in peers:
        assert any(s.subscribe and s.topic == T for rpc in r.to(p) for s in rpc.subscriptions)
    assert len(r.core.mesh_peers(T)) == r.core.config.d
    assert sum(r.grafts_to(p) for p in peers) == r.core.config.d
    assert {s.protocol for s in r.sent} == {PROTOCOL_V12}


def test_prune_backoff_is_honoured_and_graft_during_backoff_is_penalised() -> None:
    r = Rig()
    p = r.peer(1)
    r.core.subscribe(T, r.now)
    r.collect()
    assert p in r.core.mesh_peers(T)
    r.rpc(p, RPC(control=Control(prune=(Prune(T, (), 30),))))
    assert p not in r.core.mesh_peers(T)
    r.sent.clear()
    r.advance(29)
    assert r.grafts_to(p) == 0  # mesh under d_lo, but the only candidate is backing off
    r.advance(3)
    assert r.grafts_to(p) == 1 and p in r.core.mesh_peers(T)
    # now we prune it (leave), then it grafts back at once: PRUNE again + P7
    r.core.unsubscribe(T, r.now)
    r.core.subscribe(T, r.now)
    r.collect()
    r.sent.clear()
    r.rpc(p, RPC(control=Control(graft=(Graft(T),))))
    assert r.core.counters["graft_during_backoff"] == 1
    assert p not in r.core.mesh_peers(T)
    prunes = r.prunes_to(p)
    assert len(prunes) == 1 and prunes[0].peers == ()  # no PX to a misbehaving peer
    for _ in range(4):
        r.rpc(p, RPC(control=Control(graft=(Graft(T),))))
    assert r.core.peer_score(p, r.now) < 0  # P7: squared excess over the threshold


def test_graft_for_unknown_topic_is_ignored_and_negative_score_is_refused() -> None:
    app: dict[PeerId, float] = {}
    r = Rig(app=app)
    p, q = r.peer(1), r.peer(2)
    r.rpc(p, RPC(control=Control(graft=(Graft("unknown"),))))
    assert not r.to(p)
    r.core.subscribe(T, r.now)
    r.core.unsubscribe(T, r.now)
    r.advance(15)  # past the unsubscribe backoff
    r.core.subscribe(T, r.now)
    r.collect()
    r.core.mesh[T].clear()
    app[q] = -5.0
    r.sent.clear()
    r.rpc(q, RPC(control=Control(graft=(Graft(T),))))
    assert q not in r.core.mesh_peers(T) and len(r.prunes_to(q)) == 1


def test_heartbeat_prunes_negative_scores_and_keeps_bounds() -> None:
    app: dict[PeerId, float] = {}
    r = Rig(app=app)
    peers = [r.peer(i, outbound=i % 2 == 0) for i in range(1, 21)]
    r.core.subscribe(T, r.now)
    for p in peers:  # everyone grafts us: outbound grafts overflow d_hi
        r.rpc(p, RPC(control=Control(graft=(Graft(T),))))
    # Still over d_hi once the negative peer below is gone, so the heartbeat must trim to d.
    assert len(r.core.mesh_peers(T)) > r.core.config.d_hi + 1
    bad = sorted(r.core.mesh_peers(T))[0]
    app[bad] = -1.0
    r.advance(1.5)
    mesh = r.core.mesh_peers(T)
    assert len(mesh) == r.core.config.d and bad not in mesh
    assert sum(r.core.peers[p].outbound for p in mesh) >= r.core.config.d_out
    assert all(r.core.in_backoff(p, T, r.now) for p in peers if p not in mesh)


def test_px_is_followed_only_from_well_scored_peers() -> None:
    app: dict[PeerId, float] = {}
    r = Rig(app=app)
    p = r.peer(1)
    r.core.subscribe(T, r.now)
    offered = tuple(PeerExchange(bytes(KEYS[i].peer_id)) for i in (10, 11, 12))
    r.rpc(p, RPC(control=Control(prune=(Prune(T, offered, 60),))))
    assert not [c for c in r.other if isinstance(c, Dial)]
    assert r.core.counters["px_ignored"] == 1
    app[p] = 50.0
    r.rpc(p, RPC(control=Control(prune=(Prune(T, offered, 60),))))
    dials = [c.peer for c in r.other if isinstance(c, Dial)]
    assert dials == [KEYS[i].peer_id for i in (10, 11, 12)]


def test_graylisted_peer_rpcs_are_ignored() -> None:
    app: dict[PeerId, float] = {}
    r = Rig(app=app)
    p = r.peer(1)
    r.core.subscribe(T, r.now)
    app[p] = -1000.0
    r.rpc(p, RPC(publish=(signed(1, b"x"),)))
    assert r.core.counters["rpcs_graylisted"] == 1
    assert not [c for c in r.other if isinstance(c, Emit) and isinstance(c.event, Message)]


def test_idontwant_suppresses_forwarding_and_is_sent_for_large_messages_only() -> None:
    r = Rig()
    src, asked, old = r.peer(1), r.peer(2), r.peer(3, proto=PROTOCOL_V11)
    others = [r.peer(i) for i in range(4, 8)]
    r.core.subscribe(T, r.now)
    r.collect()
    for p in (asked, old, *others):
        r.core.mesh[T].add(p)
    big = signed(20, bytes(2000))
    mid = r.core.msg_id(big)
    r.rpc(asked, RPC(control=Control(idontwant=(IDontWant((mid,)),))))
    r.sent.clear()
    r.rpc(src, RPC(publish=(big,)))
    got_msg = {s.peer for s in r.sent if s.message.publish}
    got_idw = {s.peer for s in r.sent if s.message.control and s.message.control.idontwant}
    assert asked not in got_msg and src not in got_msg
    assert old in got_msg and set(others) <= got_msg
    assert old not in got_idw and asked in got_idw and src not in got_idw
    assert r.core.counters["idontwant_suppressed"] == 1
    r.sent.clear()
    r.rpc(src, RPC(publish=(signed(20, b"small", seq=2),)))
    assert not [s for s in r.sent if s.message.control and s.message.control.idontwant]


def test_ihave_iwant_limits_and_broken_promises() -> None:
    r = Rig()
    p, q = r.peer(1), r.peer(2)
    r.core.subscribe(T, r.now)
    r.collect()
    r.sent.clear()
    ids = tuple(b"id%d" % i for i in range(10))
    r.rpc(p, RPC(control=Control(ihave=(IHave(T, ids),))))
    iwants = [iw for rpc in r.to(p) if rpc.control for iw in rpc.control.iwant]
    assert len(iwants) == 1 and set(iwants[0].message_ids) == set(ids)
    for _ in range(r.core.config.max_ihave_messages + 5):
        r.rpc(p, RPC(control=Control(ihave=(IHave(T, (b"more",)),))))
    assert r.core.counters["ihave_ignored_flood"] >= 5
    r.advance(r.core.config.iwant_followup_time + 1.5)  # nothing delivered: promise broken
    assert r.core.counters["broken_promises"] >= 1
    assert r.core.score is not None and r.core.score._peers[p].penalty >= 1
    # IWANT answers are limited per message and peer
    mid = r.core.publish(T, b"mine", r.now)
    r.collect()
    r.sent.clear()
    for _ in range(5):
        r.rpc(q, RPC(control=Control(iwant=(IWant((mid,)),))))
    served = sum(len(rpc.publish) for rpc in r.to(q))
    assert served == r.core.config.gossip_retransmission


def test_flood_publish_reaches_all_topic_peers_and_own_validator_runs() -> None:
    r = Rig()
    peers = [r.peer(i) for i in range(1, 15)]
    r.core.subscribe(T, r.now)
    r.collect()
    r.sent.clear()
    mid = r.core.publish(T, b"hello", r.now)
    r.collect()
    got = {s.peer for s in r.sent if s.message.publish}
    assert got == set(peers)
    delivered = [c.event for c in r.other if isinstance(c, Emit) and isinstance(c.event, Message)]
    assert [m.msg_id for m in delivered] == [mid]
    assert r.core.topic_stats(T).published == 1
    r.core.set_validator(T, lambda m: Outcome.REJECT)
    with pytest.raises(ValidationError):
        r.core.publish(T, b"no", r.now)


def test_rejected_message_feeds_p4_and_is_not_forwarded() -> None:
    r = Rig()
    p, q = r.peer(1), r.peer(2)
    r.core.subscribe(T, r.now)
    r.core.mesh[T].update((p, q))
    r.core.set_validator(T, lambda m: Outcome.REJECT if m.data == b"bad" else Outcome.ACCEPT)
    r.collect()
    r.sent.clear()
    r.rpc(p, RPC(publish=(signed(1, b"bad"),)))
    assert not [s for s in r.sent if s.message.publish]
    assert r.core.peer_score(p, r.now) < 0
    assert r.core.topic_stats(T).invalid == 1
    # a duplicate of a rejected message is penalised too
    r.rpc(q, RPC(publish=(signed(1, b"bad"),)))
    assert r.core.peer_score(q, r.now) < 0


def test_disconnect_clears_state() -> None:
    r = Rig()
    p = r.peer(1)
    r.core.subscribe(T, r.now)
    assert p in r.core.mesh_peers(T)
    r.core.on_peer_disconnected(p, r.now)
    assert p not in r.core.mesh_peers(T) and p not in r.core.topic_peers(T)
    assert r.core.topic_stats(T).peers == 0


def test_send_dropped_by_driver_is_counted() -> None:
    r = Rig()
    p = r.peer(1)
    r.core.on_send_dropped(p, RPC(publish=(signed(1, b"x"),)), r.now)
    assert r.core.counters["messages_dropped_by_driver"] == 1 and r.core.dropped[p] == 1


def test_scores_decay_on_the_core_timer() -> None:
    r = Rig()
    p = r.peer(1)
    r.core.subscribe(T, r.now)
    r.core.set_validator(T, lambda m: Outcome.REJECT)
    r.rpc(p, RPC(publish=(signed(1, b"bad"),)))
    low = r.core.peer_score(p, r.now)
    assert low < 0
    r.advance(60)
    mid = r.core.peer_score(p, r.now)
    assert low < mid < 0
    r.advance(600)
    assert r.core.peer_score(p, r.now) >= 0  # P4 decayed to zero


def test_opportunistic_graft_brings_in_better_peers() -> None:
    app: dict[PeerId, float] = {}
    r = Rig(app=app)
    dull = [r.peer(i) for i in range(1, 7)]
    r.core.subscribe(T, r.now)
    r.collect()
    assert r.core.mesh_peers(T) == set(dull)
    good = [r.peer(i) for i in range(10, 14)]
    for p in good:
        app[p] = 20.0
    r.sent.clear()
    r.advance(r.core.config.opportunistic_graft_ticks * r.core.config.heartbeat_interval + 1)
    assert r.core.counters["opportunistic_grafts"] == r.core.config.opportunistic_graft_peers
    assert len(r.core.mesh_peers(T) & set(good)) == r.core.config.opportunistic_graft_peers


def test_custom_message_id_function() -> None:
    import hashlib

    cfg = GossipConfig(msg_id_fn=lambda m: hashlib.sha256(m.data).digest())
    r = Rig(cfg)
    p = r.peer(1)
    r.core.subscribe(T, r.now)
    mid = r.core.publish(T, b"content", r.now)
    assert mid == hashlib.sha256(b"content").digest()
    r.rpc(p, RPC(publish=(signed(1, b"content", seq=99),)))  # same content: a duplicate
    assert r.core.topic_stats(T).duplicates == 1


def test_messages_claiming_to_be_ours_are_dropped() -> None:
    r = Rig()
    p = r.peer(1)
    r.core.subscribe(T, r.now)
    r.rpc(p, RPC(publish=(signed(0, b"not really mine", seq=12345),)))
    assert r.core.counters["self_origin_dropped"] == 1
