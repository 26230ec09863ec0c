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


def test_bootstrap_nodes_that_start_together_do_not_split_the_network() -> None:
    # Each super asks one other super first (bootstrap_contacts = 1), whose table is still
    # empty: before the bootstrap went on through its fallbacks while it had met fewer than k
    # peers, 8 supers (seed 1) formed two groups that never met, and so did the peers that
    # joined through them: half the lookups failed.
    sc = Scenario(300, 1, supers=8)
    sc.build()
    for s in sc.supers:
        assert all(o.peer_id in s.core.table for o in sc.supers if o is not s)
    sc.lookups(100)
    assert sc.summary("lookup")["success"] == 1.0
