"""Network models: per-link latency, loss, partitions that heal, churn, topologies."""

from __future__ import annotations

from pathlib import Path

import networkx as nx
import pytest

from micronetwork.errors import ConfigError
from micronetwork.sim import LogNormal, Scenario, Topology, Uniform, load_graph, waxman
from micronetwork.sim.crypto import ground_cpl
from micronetwork.sim.models import NetworkModel


def test_uniform_latency_is_per_link_stable_symmetric_and_in_range() -> None:
    u = Uniform(0.02, 0.12, seed=1)
    values = [u.latency(a, b) for a in range(30) for b in range(30) if a != b]
    assert all(0.02 <= v <= 0.12 for v in values)
    assert u.latency(3, 7) == u.latency(7, 3) == u.latency(3, 7)
    assert len(set(values)) > 400  # links differ
    mean = sum(values) / len(values)
    assert 0.06 < mean < 0.08
    assert Uniform(0.02, 0.12, seed=2).latency(3, 7) != u.latency(3, 7)


def test_lognormal_median() -> None:
    m = LogNormal(0.05, 0.5, seed=1)
    vals = sorted(m.latency(a, a + 1) for a in range(2000))
    assert 0.045 < vals[1000] < 0.055


def test_loss_drops_messages_but_lookups_still_succeed() -> None:
    sc = Scenario(80, 2, network=NetworkModel(latency=Uniform(seed=2), loss=0.02))
    sc.build()
    sc.lookups(40)
    assert sc.sim.metrics.counters["messages_lost"] > 0
    assert sc.summary()["success"] >= 0.8  # a lost answer from the target itself is a miss


def test_partition_blocks_then_heals() -> None:
    sc = Scenario(100, 4)
    sc.build()
    sc.split(2)
    sc.lookups(40, tag="split")
    sc.heal()
    sc.refresh_all(window=10.0, settle=30.0)
    sc.lookups(40, tag="healed")
    split, healed = sc.summary("split"), sc.summary("healed")
    assert sc.sim.metrics.counters["messages_lost"] > 0
    assert split["success"] < 0.8
    assert healed["success"] >= 0.95


def test_churn_replaces_departures(small_net: Scenario) -> None:
    sc = small_net
    before = len(sc.sim.alive)
    ch = sc.churn(rate_per_hour=3.0, crash_share=0.5)
    ch.start()
    sc.run_for(120.0)
    ch.stop()
    assert ch.departures > 3 and ch.joins > 0
    assert sc.sim.metrics.counters["crashes"] > 0 and sc.sim.metrics.counters["leaves"] > 0
    assert abs(len(sc.sim.alive) - before) <= ch.departures
    sc.lookups(30, tag="after-churn")
    assert sc.summary("after-churn")["success"] >= 0.9


def test_waxman_latency_is_geographic() -> None:
    topo = waxman(50, seed=1)
    assert topo.pos is not None
    assert topo.latency(0, 50) == topo.base  # same site
    assert topo.latency(1, 2) == topo.latency(2, 1) > topo.base


def test_weighted_graph_latency_is_shortest_path() -> None:
    g = nx.Graph()
    g.add_edge("a", "b", latency=0.01)
    g.add_edge("b", "c", latency_ms=20)
    g.add_edge("a", "c", latency=0.5)
    topo = Topology(g, base=0.0)
    assert topo.latency(0, 2) == pytest.approx(0.03)


def test_bad_topology_files_raise_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        load_graph(tmp_path / "missing.graphml")
    bad = tmp_path / "bad.graphml"
    bad.write_text("<graphml><not closed")
    with pytest.raises(ConfigError):
        load_graph(bad)
    disconnected = tmp_path / "two.edgelist"
    disconnected.write_text("a b\nc d\n")
    with pytest.raises(ConfigError):
        load_graph(disconnected)


def test_scenario_runs_over_a_topology() -> None:
    sc = Scenario(60, 1, network=NetworkModel(latency=waxman(20, seed=2)))
    sc.build()
    sc.lookups(20)
    assert sc.summary()["success"] >= 0.95


def test_ground_cpl_grows_with_budget() -> None:
    import random

    rng = random.Random(1)
    cheap = sum(ground_cpl(rng, 2.0**4) for _ in range(200)) / 200
    dear = sum(ground_cpl(rng, 2.0**20) for _ in range(200)) / 200
    assert 3 < cheap < 6 and 19 < dear < 22
