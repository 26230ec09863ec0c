"""Hypothesis stateful test: gossipsub mesh maintenance against a simple model.

Fake peers connect, subscribe, GRAFT, PRUNE (with a backoff), change score and leave, while
time passes. The model tracks who is connected and subscribed and every backoff announced in
either direction. Checked: the core never GRAFTs a peer inside a backoff; the mesh only holds
connected subscribers; right after each heartbeat the mesh has at most ``d_hi`` peers (plus the
opportunistic grafts of that heartbeat), at least ``d_lo`` unless no eligible peer is left, and
no peer with a negative score.
"""

from __future__ import annotations

import random
from dataclasses import replace

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from micronetwork.gossip import (
    PROTOCOL_V12,
    RPC,
    Control,
    GossipConfig,
    GossipCore,
    Graft,
    PeerScoreParams,
    Prune,
    Send,
    SubOpts,
)
from micronetwork.identity import KeyPair, PeerId

T = "t"
LOCAL = KeyPair.from_seed(b"\x01" * 32)
POOL = [PeerId(b"\x00\x24" + i.to_bytes(2, "big") * 18) for i in range(8)]
# small degrees so that a pool of 8 peers can both starve and overflow the mesh
CONFIG = GossipConfig(d=3, d_lo=2, d_hi=4, d_score=1, d_out=1, d_lazy=2)
idx = st.integers(0, len(POOL) - 1)


class MeshMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.app: dict[PeerId, float] = {}
        score = PeerScoreParams(default_topic=None, app_specific_score=lambda p: self.app.get(p, 0))
        self.core = GossipCore(LOCAL, config=replace(CONFIG, score=score), rng=random.Random(0))
        self.now = 0.0
        self.connected: set[PeerId] = set()
        self.subscribed: set[PeerId] = set()
        self.backoff: dict[PeerId, float] = {}
        self.core.subscribe(T, self.now)
        self.collect()

    def collect(self) -> None:
        for cmd in self.core.drain():
            if not isinstance(cmd, Send) or cmd.message.control is None:
                continue
            ctl = cmd.message.control
            for g in ctl.graft:
                if g.topic == T:
                    assert self.now >= self.backoff.get(cmd.peer, -1.0), "GRAFT in backoff"
            for pr in ctl.prune:
                if pr.topic == T:
                    self.extend_backoff(cmd.peer, pr.backoff)

    def extend_backoff(self, peer: PeerId, seconds: float) -> None:
        self.backoff[peer] = max(self.backoff.get(peer, -1.0), self.now + seconds)

    def rpc(self, peer: PeerId, rpc: RPC) -> None:
        self.core.on_rpc(peer, rpc, self.now)
        self.collect()

    @rule(i=idx, outbound=st.booleans())
    def connect(self, i: int, outbound: bool) -> None:
        p = POOL[i]
        self.core.on_peer_connected(p, [PROTOCOL_V12], outbound, self.now)
        self.connected.add(p)
        self.collect()

    @rule(i=idx, outbound=st.booleans())
    def join(self, i: int, outbound: bool) -> None:
        self.connect(i, outbound)
        self.subscription(i, True)

    @rule(i=idx)
    def disconnect(self, i: int) -> None:
        p = POOL[i]
        self.core.on_peer_disconnected(p, self.now)
        self.connected.discard(p)
        self.subscribed.discard(p)
        self.collect()

    @rule(i=idx, on=st.booleans())
    def subscription(self, i: int, on: bool) -> None:
        p = POOL[i]
        # A graylisted peer's RPCs are ignored whole (v1.1 spec), subscriptions included.
        graylisted = (p in self.connected and self.core.peer_score(p, self.now)
                      < self.core.config.thresholds.graylist_threshold)
        self.rpc(p, RPC(subscriptions=(SubOpts(on, T),)))
        if p in self.connected and not graylisted:
            (self.subscribed.add if on else self.subscribed.discard)(p)

    @rule(i=idx)
    def graft_from(self, i: int) -> None:
        p = POOL[i]
        backing_off = self.now < self.backoff.get(p, -1.0)
        was_in = p in self.core.mesh_peers(T)
        self.rpc(p, RPC(control=Control(graft=(Graft(T),))))
        if backing_off and not was_in:
            assert p not in self.core.mesh_peers(T)

    @rule()
    def everyone_grafts(self) -> None:
        for i, p in enumerate(POOL):
            if p in self.subscribed:
                self.graft_from(i)

    @rule(i=idx, seconds=st.integers(1, 90))
    def prune_from(self, i: int, seconds: int) -> None:
        p = POOL[i]
        if p in self.connected:
            self.extend_backoff(p, seconds)
        self.rpc(p, RPC(control=Control(prune=(Prune(T, (), seconds),))))
        assert p not in self.core.mesh_peers(T)

    @rule(i=idx, value=st.sampled_from([-50.0, -1.0, 0.0, 5.0]))
    def set_score(self, i: int, value: float) -> None:
        self.app[POOL[i]] = value

    @rule(seconds=st.floats(0.1, 20.0))
    def advance(self, seconds: float) -> None:
        end = self.now + seconds
        stuck = 0
        while True:
            d = self.core.next_deadline()
            if d is None or d > end:
                break
            stuck = stuck + 1 if d <= self.now else 0
            assert stuck < 100, f"next_deadline() stays at {d} <= now {self.now}: on_timer " \
                                "does not consume it"
            self.now = max(self.now, d)
            beats = self.core.counters["heartbeats"]
            opportunistic = self.core.counters["opportunistic_grafts"]
            self.core.on_timer(self.now)
            self.collect()
            if self.core.counters["heartbeats"] > beats:
                self.check_after_heartbeat(self.core.counters["opportunistic_grafts"]
                                           - opportunistic)
        self.now = end

    def check_after_heartbeat(self, opportunistic: int) -> None:
        cfg = self.core.config
        mesh = self.core.mesh_peers(T)
        # Opportunistic grafts come last and may take the mesh over d_hi until the next
        # heartbeat trims it, keeping the best scored (as go-libp2p's heartbeat does).
        assert len(mesh) <= cfg.d_hi + opportunistic
        assert all(self.core.peer_score(p, self.now) >= 0 for p in mesh)
        if len(mesh) < cfg.d_lo:
            eligible = [
                p
                for p in self.subscribed - mesh
                if self.now >= self.backoff.get(p, -1.0) and self.core.peer_score(p, self.now) >= 0
            ]
            assert not eligible, (len(mesh), eligible)

    @invariant()
    def mesh_holds_connected_subscribers(self) -> None:
        assert self.core.mesh_peers(T) <= self.subscribed <= self.connected
        assert self.core.topic_peers(T) == self.subscribed


TestMesh = MeshMachine.TestCase
TestMesh.settings = settings(max_examples=200, stateful_step_count=40, deadline=None)
