"""Dials in the gossip simulator: topic discovery (FindPeers) and PX, deterministic by seed."""

from __future__ import annotations

import os
import subprocess
import sys

from micronetwork.commands import Dial, FindPeers
from micronetwork.gossip import GossipConfig
from micronetwork.sim.gossip import DialModel, GossipSimulator, SilentSybil
from micronetwork.sim.gossip_scenarios import gossip_sybil
from micronetwork.sim.scenarios import RunParams


def _quiet(frac: float, label: str) -> None:
    pass


def _sim(seed: int) -> GossipSimulator:
    # the cores' own discovery off: only the commands a test injects make connections
    return GossipSimulator(seed, gossip=GossipConfig(discovery=False))


def _line(n: int, seed: int = 1) -> GossipSimulator:
    """``n`` nodes in a line, all subscribed, meshes formed."""
    sim = _sim(seed)
    nodes = [sim.add_node() for _ in range(n)]
    for a, b in zip(nodes, nodes[1:], strict=False):
        sim.connect(a, b)
    for node in nodes:
        sim.subscribe(node)
    sim.run_for(0.5)
    return sim


def _ask(sim: GossipSimulator, i: int, cmd: FindPeers | Dial) -> None:
    node = sim.nodes[i]
    node.core.command(cmd)
    sim._pump(node)


def test_find_peers_connects_new_subscribers_after_the_lookup() -> None:
    sim = _line(30)
    a = sim.nodes[0]
    before = set(a.links)
    _ask(sim, 0, FindPeers(sim.topic, 4))
    sim.run_for(0.03)  # a lookup is 3 round trips of at least 40 ms: nothing yet
    assert set(a.links) == before
    sim.run_for(3.0)
    new = set(a.links) - before
    assert len(new) == 4
    assert sim.metrics.counters["connections_found"] == 4
    for p in new:
        b = sim.by_id[p]
        assert a.peer_id in b.links and b.idx in a.neighbours and a.idx in b.neighbours
        assert a.core.peers[p].outbound and not b.core.peers[a.peer_id].outbound
        assert sim.topic in a.core.peers[p].topics  # the hello arrived: a topic peer


def test_find_peers_respects_the_connection_cap_and_px_dials_connect_once() -> None:
    sim = _line(30)
    sim.dial = DialModel(max_links=3)
    _ask(sim, 0, FindPeers(sim.topic, 5))  # node 0 has 1 link: two more at most
    sim.run_for(3.0)
    assert len(sim.nodes[0].links) == 3
    assert all(len(n.links) <= 3 for n in sim.nodes)
    sim.dial = DialModel()
    far = sim.nodes[20]
    _ask(sim, 10, Dial(far.peer_id, ()))
    _ask(sim, 10, Dial(far.peer_id, ()))  # asked twice: connected once
    _ask(sim, 10, Dial(sim.nodes[11].peer_id, ()))  # already connected: skipped
    sim.run_for(2.0)
    assert far.peer_id in sim.nodes[10].links
    assert sim.nodes[10].neighbours.count(far.idx) == 1
    c = sim.metrics.counters
    assert c["px_dials"] == 3 and c["connections_px"] == 1 and c["px_dials_skipped"] == 1


def test_silent_sybils_dials_are_withheld_unless_asked() -> None:
    sim = _sim(2)
    honest = sim.add_node()
    quiet = sim.add_node(behaviour=SilentSybil())
    eager = sim.add_node(behaviour=SilentSybil(dials=True))
    for node in (honest, quiet, eager):
        sim.subscribe(node)
    for i in (1, 2):
        _ask(sim, i, FindPeers(sim.topic, 2))
    sim.run_for(3.0)
    assert sim.metrics.counters["dials_withheld"] == 1
    # the quiet one asked for nothing it got; the eager one dialed both, and both accepted
    assert set(eager.links) == {honest.peer_id, quiet.peer_id}
    assert set(quiet.links) == set(honest.links) == {eager.peer_id}


def _sybil_params(discovery: bool) -> RunParams:
    # degree 6 and 80 % Sybils: a quarter of the honest nodes have no honest neighbour
    return RunParams(nodes=200, seed=3, degree=6, attackers=0.8, activation=3.0, messages=10,
                     rate=2.0, extra={"gossip": {"discovery": discovery}})


def test_discovery_connects_isolated_honest_nodes_among_sybils() -> None:
    _, off = gossip_sybil(_sybil_params(False), _quiet)
    _, on = gossip_sybil(_sybil_params(True), _quiet)
    assert off["dials"]["find_peers"] == 0
    assert off["dials"]["honest_without_honest_neighbour_final"] == \
        off["dials"]["honest_without_honest_neighbour_initial"] > 5
    d = on["dials"]
    assert d["honest_without_honest_neighbour_initial"] > 5
    assert d["honest_without_honest_neighbour_final"] == 0
    assert d["find_peers"] > 0 and d["connections_found"] > 0
    assert d["mean_degree_final"] > d["mean_degree_initial"] == 6.0
    a_off, a_on = off["after_scoring"], on["after_scoring"]
    assert a_off["reachable"] == a_off["reachable_initial"] < 0.5  # fixed links: same graph
    assert a_on["reachable"] > 0.99  # over the links at the end
    assert a_on["delivery_within_window"] > 0.95 > 0.5 > a_off["delivery_within_window"]


def _trace() -> str:
    sc, figs = gossip_sybil(_sybil_params(True), _quiet)
    return repr((sc.sim.loop.events_run, sorted(sc.sim.metrics.counters.items()),
                 [n.neighbours for n in sc.sim.nodes], [list(r.first) for r in sc.sim.published]))


_SCRIPT = """
import sys
sys.path.insert(0, sys.argv[1])
from test_gossip_dials import _trace
print(_trace())
"""


def test_runs_with_discovery_are_deterministic_by_seed() -> None:
    first = _trace()
    assert "connections_found" in first
    assert _trace() == first
    env = {**os.environ, "PYTHONHASHSEED": "4321"}
    here = os.path.dirname(os.path.abspath(__file__))
    r = subprocess.run([sys.executable, "-c", _SCRIPT, here], env=env, capture_output=True,
                       text=True, timeout=300, check=True)
    assert r.stdout.strip() == first
