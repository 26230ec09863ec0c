"""Topic discovery in the core: FindPeers when a mesh is short with nobody left to graft, with
a backoff; never when the mesh is full or candidates remain; FindPeers too when a topic with
traffic has too few peers that talk, and grafts that prefer them (driven by hand, virtual
time)."""

from __future__ import annotations

import random

import pytest

from micronetwork.commands import FindPeers
from micronetwork.errors import ConfigError
from micronetwork.gossip import (
    PROTOCOL_V12,
    RPC,
    Control,
    GossipConfig,
    GossipCore,
    IHave,
    Outcome,
    PeerScoreParams,
    Prune,
    SubOpts,
    TopicScoreParams,
    sign_message,
)
from micronetwork.identity import KeyPair, PeerId

KEYS = [KeyPair.from_seed(bytes([i]) * 32) for i in range(1, 30)]
T = "t"


class Rig:
    """A core with fake peers; keeps every FindPeers with the heartbeat tick it came at."""

    def __init__(self, **cfg: object) -> None:
        self.core = GossipCore(KEYS[0], config=GossipConfig(**cfg),  # type: ignore[arg-type]
                               rng=random.Random(1))
        self.now = 0.0
        self.finds: list[tuple[int, FindPeers]] = []

    def peer(self, i: int, subscribe: bool = True) -> PeerId:
        p = KEYS[i].peer_id
        self.core.on_peer_connected(p, [PROTOCOL_V12], False, self.now)
        if subscribe:
            self.core.on_rpc(p, RPC(subscriptions=(SubOpts(True, T),)), self.now)
        self.collect()
        return p

    def collect(self) -> None:
        for cmd in self.core.drain():
            if isinstance(cmd, FindPeers):
                self.finds.append((self.core.tick, cmd))

    def heartbeats(self, n: int) -> None:
        """Run until ``n`` more heartbeats have happened."""
        target = self.core.tick + n
        while self.core.tick < target:
            d = self.core.next_deadline()
            assert d is not None
            self.now = max(self.now, d)
            self.core.on_timer(self.now)
            self.collect()

    def ticks(self) -> list[int]:
        return [t for t, _ in self.finds]


def test_short_mesh_with_nobody_to_graft_asks_for_the_missing_peers() -> None:
    rig = Rig()
    for i in (1, 2, 3):
        rig.peer(i)
    rig.core.subscribe(T, rig.now)  # grafts all 3: the mesh is short (d_lo 5), nobody left
    rig.heartbeats(1)
    start = rig.core.tick
    assert rig.finds == []  # not at the first heartbeat: the wait comes first
    rig.heartbeats(2)
    assert rig.finds == [(start + 2, FindPeers(T, 6 - 3))]
    assert rig.core.counters["find_peers"] == 1


def test_no_find_while_the_mesh_is_full() -> None:
    rig = _subscribed()
    rig.heartbeats(20)
    assert len(rig.core.mesh_peers(T)) >= 5
    assert rig.finds == [] and not rig.core.discovery


def test_no_find_while_candidates_remain() -> None:
    # d_lo 5 but d 5: three connected topic peers fill the mesh to 3 < d_lo only if grafted;
    # a peer that is not subscribed is no candidate, a subscribed one is grafted first.
    rig = Rig()
    for i in (1, 2, 3):
        rig.peer(i)
    rig.core.subscribe(T, rig.now)
    rig.heartbeats(1)
    for i in (4, 5, 6, 7):  # they subscribe: the next heartbeat grafts them, no discovery
        rig.peer(i)
    rig.heartbeats(10)
    assert len(rig.core.mesh_peers(T)) == 6
    assert rig.finds == [] and not rig.core.discovery


def test_peers_in_backoff_do_not_count_as_candidates() -> None:
    rig = Rig()
    peers = [rig.peer(i) for i in range(1, 9)]
    rig.core.subscribe(T, rig.now)
    for p in peers:  # everyone prunes us: all 8 in backoff for 60 s, the mesh is empty
        rig.core.on_rpc(p, RPC(control=Control(prune=(Prune(T, (), 60),))), rig.now)
    rig.collect()
    assert not rig.core.mesh_peers(T)
    rig.heartbeats(3)
    assert [f for _, f in rig.finds] == [FindPeers(T, 6)]


def test_backoff_doubles_up_to_the_cap_then_resets_when_the_mesh_recovers() -> None:
    rig = Rig(discovery_backoff_ticks=2, discovery_backoff_max_ticks=8)
    rig.peer(1)
    rig.core.subscribe(T, rig.now)
    rig.heartbeats(1)
    s = rig.core.tick  # starved from this heartbeat on
    rig.heartbeats(40)
    assert rig.ticks()[:6] == [s + 2, s + 6, s + 14, s + 22, s + 30, s + 38]
    # the mesh recovers: the wait is forgotten ...
    for i in range(2, 8):
        rig.peer(i)
    rig.heartbeats(2)
    assert not rig.core.discovery
    n = len(rig.finds)
    # ... and when it is starved again, the first wait is the short one again
    for i in range(2, 8):
        rig.core.on_peer_disconnected(KEYS[i].peer_id, rig.now)
    rig.heartbeats(1)
    s2 = rig.core.tick
    rig.heartbeats(3)
    assert rig.ticks()[n:] == [s2 + 2]


def test_discovery_off_never_asks_and_unsubscribe_forgets() -> None:
    off = Rig(discovery=False)
    off.peer(1)
    off.core.subscribe(T, off.now)
    off.heartbeats(30)
    assert off.finds == []
    on = Rig()
    on.peer(1)
    on.core.subscribe(T, on.now)
    on.heartbeats(1)
    assert T in on.core.discovery
    on.core.unsubscribe(T, on.now)
    on.heartbeats(30)
    assert not on.core.discovery and on.finds == []


def test_discovery_draws_nothing_from_the_rng() -> None:
    # the same peers, on and off: the mesh and every RNG draw are the same
    cores = []
    for disc in (True, False):
        rig = Rig(discovery=disc)
        rig.peer(1)
        rig.peer(2)
        rig.core.subscribe(T, rig.now)
        rig.heartbeats(12)
        cores.append(rig.core)
    assert cores[0].rng.random() == cores[1].rng.random()
    assert cores[0].mesh == cores[1].mesh


@pytest.mark.parametrize("kw", [
    {"discovery_backoff_ticks": 0},
    {"discovery_backoff_ticks": 5, "discovery_backoff_max_ticks": 4},
])
def test_config_rejects_bad_discovery_backoff(kw: dict[str, int]) -> None:
    with pytest.raises(ConfigError):
        GossipConfig(**kw)  # type: ignore[arg-type]


# == too few peers that talk: FindPeers with a full mesh, grafts that prefer talkers ==========


def _expects_traffic() -> PeerScoreParams:
    """P3 on (the topic expects traffic), activated too late to prune anyone in these tests."""
    tp = TopicScoreParams(mesh_message_deliveries_weight=-1.0,
                          mesh_message_deliveries_threshold=1.0,
                          mesh_message_deliveries_activation=10_000.0)
    return PeerScoreParams(default_topic=tp)


def _subscribed(**cfg: object) -> Rig:
    """A rig with peers 1..10 connected and subscribed, and the core subscribed to T."""
    rig = Rig(**cfg)
    for i in range(1, 11):
        rig.peer(i)
    rig.core.subscribe(T, rig.now)
    return rig


def _talk(rig: Rig, peers: list[int], data: bytes = b"ok") -> None:
    """Each of ``peers`` sends a message of its own (a fresh seqno per call)."""
    seq = (rig.core.tick * 100).to_bytes(8, "big")
    for i in peers:
        rpc = RPC(publish=(sign_message(KEYS[i], T, data, seq),))
        rig.core.on_rpc(KEYS[i].peer_id, rpc, rig.now)
    rig.collect()


def test_a_full_mesh_of_silent_peers_is_starved_when_the_topic_expects_traffic() -> None:
    rig = _subscribed(score=_expects_traffic())
    rig.heartbeats(1)
    s = rig.core.tick  # the first check: a window (10 heartbeats) must pass, then the wait (2)
    rig.heartbeats(11)
    assert rig.finds == []
    rig.heartbeats(1)
    assert len(rig.core.mesh_peers(T)) == 6  # full, of peers that never said anything
    assert rig.finds == [(s + 12, FindPeers(T, 6))]
    off = _subscribed(score=_expects_traffic(), discovery_active_ticks=0)
    off.heartbeats(40)
    assert off.finds == []


@pytest.mark.parametrize("idle", [0, 15])
def test_a_busy_topic_with_few_talkers_asks_for_the_missing_ones(idle: int) -> None:
    rig = _subscribed()  # no P3: silence means something only once the topic has traffic
    rig.heartbeats(idle)
    assert rig.finds == []  # nobody talks: an idle topic, not a starved one
    for _ in range(14):
        _talk(rig, [1, 2])
        rig.heartbeats(1)
    assert [f for _, f in rig.finds][:1] == [FindPeers(T, 6 - 2)]


def test_a_node_that_only_publishes_is_not_starved_by_silence() -> None:
    # Its mesh peers are all downstream (they never send it anything) and the others send
    # IHAVEs of its own messages: no message from a peer, so no traffic to judge by.
    rig = _subscribed()
    for n in range(30):
        mid = rig.core.publish(T, b"mine %d" % n, rig.now)
        for i in range(7, 11):
            ihave = Control(ihave=(IHave(T, (mid,)),))
            rig.core.on_rpc(KEYS[i].peer_id, RPC(control=ihave), rig.now)
        rig.collect()
        rig.heartbeats(1)
    assert rig.finds == [] and not rig.core.discovery


def test_everyone_talking_asks_for_nothing() -> None:
    rig = _subscribed(score=_expects_traffic())
    for _ in range(30):
        _talk(rig, list(range(1, 11)))
        rig.heartbeats(1)
    assert rig.finds == [] and not rig.core.discovery


@pytest.mark.parametrize("outcome", [Outcome.REJECT, Outcome.IGNORE])
def test_messages_not_accepted_do_not_make_a_peer_a_talker(outcome: Outcome) -> None:
    # (rejected ones also cost the sender its score, ignored ones cost nothing)
    rig = Rig(score=_expects_traffic())
    for i in range(1, 11):
        rig.peer(i)
    rig.core.set_validator(T, lambda m: outcome if m.data == b"bad" else Outcome.ACCEPT)
    rig.core.subscribe(T, rig.now)
    for _ in range(14):
        _talk(rig, [1, 2])
        _talk(rig, list(range(3, 11)), b"bad")
        rig.heartbeats(1)
    assert rig.finds and rig.finds[0][1] == FindPeers(T, 6 - 2)


def test_a_short_mesh_grafts_the_peers_that_talk_first() -> None:
    rig = Rig()
    peers = [rig.peer(i) for i in range(1, 21)]
    rig.core.subscribe(T, rig.now)
    rig.heartbeats(1)
    mesh = sorted(rig.core.mesh_peers(T))
    talkers = [i for i in range(1, 21) if peers[i - 1] not in mesh][:3]
    _talk(rig, talkers)
    for p in mesh:  # the whole mesh prunes us: 14 candidates for 6 slots, 3 of them talkers
        rig.core.on_rpc(p, RPC(control=Control(prune=(Prune(T, (), 60),))), rig.now)
    rig.heartbeats(1)
    new = rig.core.mesh_peers(T)
    assert len(new) == 6 and {peers[i - 1] for i in talkers} <= new


def test_config_rejects_negative_active_ticks() -> None:
    with pytest.raises(ConfigError):
        GossipConfig(discovery_active_ticks=-1)


# == the host driver: FindPeers dials known peers it is not connected to ====================


class _Net:
    def __init__(self, connected: set[object]) -> None:
        self.connected = connected
        self.connections = {pid: [object()] for pid in connected}

    def get_connections(self, pid: object) -> list[object]:
        return [object()] if pid in self.connected else []


class _Host:
    def __init__(self, net: _Net) -> None:
        self.net = net

    def get_network(self) -> _Net:
        return self.net


class _Nursery:
    def __init__(self) -> None:
        self.started: list[tuple[object, ...]] = []

    def start_soon(self, fn: object, *args: object) -> None:
        self.started.append(args)


def test_host_driver_dials_known_unconnected_peers_on_find_peers() -> None:
    from types import SimpleNamespace

    from micronetwork.host.driver import HostDriver, to_libp2p_id
    from micronetwork.kademlia.routing_table import Entry

    entries = [Entry(KEYS[i].peer_id, i, (b"addr%d" % i,), 0.0) for i in range(1, 8)]
    out: list[object] = [FindPeers(T, 3)]

    def drain() -> list[object]:
        cmds, out[:] = list(out), []
        return cmds

    core = SimpleNamespace(kad=SimpleNamespace(table=SimpleNamespace(entries=lambda: entries)),
                           drain=drain, next_deadline=lambda: None)
    connected = {to_libp2p_id(KEYS[i].peer_id) for i in (1, 2)}
    driver = HostDriver(_Host(_Net(connected)), core, lambda e: None)  # type: ignore[arg-type]
    driver._dialing[KEYS[3].peer_id] = None  # type: ignore[assignment]  # a dial under way
    nursery = _Nursery()
    driver._nursery = nursery  # type: ignore[assignment]
    driver.pump()
    dialable = {(KEYS[i].peer_id, (b"addr%d" % i,)) for i in (4, 5, 6, 7)}
    assert len(nursery.started) == 3 and set(nursery.started) <= dialable  # type: ignore[arg-type]
    assert set(driver.find_peers(FindPeers(T, 10))) == dialable  # never more than it knows
    assert driver.counters["find_peers"] == 2 and driver.counters["find_peers_dials"] == 7


def test_host_driver_dials_nobody_for_find_peers_when_it_has_enough_connections() -> None:
    from types import SimpleNamespace

    from micronetwork.host.driver import FIND_PEERS_MAX_CONNECTIONS, HostDriver
    from micronetwork.kademlia.routing_table import Entry

    entries = [Entry(KEYS[i].peer_id, i, (b"addr%d" % i,), 0.0) for i in range(1, 8)]
    core = SimpleNamespace(kad=SimpleNamespace(table=SimpleNamespace(entries=lambda: entries)))
    net = _Net(set())
    driver = HostDriver(_Host(net), core, lambda e: None)  # type: ignore[arg-type]
    net.connections = {i: [object()] for i in range(FIND_PEERS_MAX_CONNECTIONS - 1)}
    assert len(driver.find_peers(FindPeers(T, 3))) == 3
    net.connections[-1] = [object()]
    assert driver.find_peers(FindPeers(T, 3)) == []
    assert driver.counters["find_peers_skipped_full"] == 1
