"""The real Kademlia core looks up, publishes and resolves in the simulator."""

from __future__ import annotations

from micronetwork.sim import CryptoModel, Scenario, Silent


def test_protocol_built_lookups_succeed(small_net: Scenario) -> None:
    small_net.lookups(60)
    s = small_net.summary("lookup")
    assert s["success"] == 1.0
    assert 1.0 <= s["rounds_mean"] <= 3.5
    assert 0.04 < s["latency_p50"] < 1.0


def test_ideal_tables_lookups() -> None:
    sc = Scenario(200, 1)
    sc.build(ideal=True)
    sc.lookups(50, tag="ideal")
    s = sc.summary("ideal")
    assert s["success"] == 1.0 and s["rounds_mean"] <= 2.5
    assert sc.sim.metrics.counters["requests"] > 0


def test_publication_reaches_the_k_closest(small_net: Scenario) -> None:
    small_net.publish(10)
    s = small_net.summary("publish")
    assert s["success"] == 1.0
    assert all(r.stored == 20 for r in small_net.sim.metrics.by_tag("publish"))


def test_stale_entries_fail_over() -> None:
    sc = Scenario(100, 8)
    sc.build()
    sc.make_stale(0.2)
    sc.lookups(30, tag="stale")
    s = sc.summary("stale")
    assert s["success"] >= 0.9
    assert sc.sim.metrics.counters["requests_to_dead"] > 0


def test_executed_crypto_small_run() -> None:
    sc = Scenario(30, 2, crypto=CryptoModel(mode="execute"))
    sc.build()
    sc.lookups(10)
    assert sc.summary()["success"] == 1.0
    assert sc.sim.metrics.counters["signatures_verified"] > 100


def test_silent_node_makes_requests_time_out() -> None:
    sc = Scenario(40, 3)
    sc.build()
    mute = sc.sim.nodes[-1]
    mute.behaviour = Silent()
    before = sum(n.core.counters["timeouts"] for n in sc.sim.nodes)
    for node in sc.sim.nodes[5:25]:
        sc.sim.query(node, "find_closest", bytes(mute.peer_id))
    sc.run_for(30.0)
    after = sum(n.core.counters["timeouts"] for n in sc.sim.nodes)
    assert after > before
