"""The registry in the simulator: what a node holds and sends does not grow with the network's
services; new registrations reach their watchers; a dead node's registrations expire in time."""

from __future__ import annotations

from micronetwork.sim.registry import run_registry_propagation, run_registry_scale


def test_node_state_and_traffic_are_flat_in_services_and_catalog_is_bounded() -> None:
    small = run_registry_scale(100, 10, watched=2, supers=2, warmup=12.0, window=16.0,
                               catalog_size=40)
    large = run_registry_scale(100, 100, watched=2, supers=2, warmup=12.0, window=16.0,
                               catalog_size=40)
    for r in (small, large):
        assert r.watch_coverage == 1.0  # every watcher knows every instance it watches
        assert 1.8 <= r.held_remote_mean <= 2.0  # the 2 it watches (fewer where it serves one)
        assert r.held_remote_max <= 2
        assert r.expired_live == 0  # no live instance lapsed anywhere
    # Ten times the services: a node holds what it watches, not more ...
    assert abs(large.held_remote_mean - small.held_remote_mean) < 0.2
    # ... and sends and receives no more for the registry (fewer watchers per service: less).
    for stat in ("p50", "p99"):
        assert large.out_bps[stat] is not None and small.out_bps[stat] is not None
        assert large.in_bps[stat] is not None and small.in_bps[stat] is not None
        assert large.out_bps[stat] <= 1.2 * small.out_bps[stat]
        assert large.in_bps[stat] <= 1.2 * small.in_bps[stat]
    # Super nodes hear the catalog announcements (one sent before the super's subscription was
    # known arrives with the next, within catalog_interval = 60 s, after this short run), but
    # keep at most catalog_size names.
    assert 9 <= small.super_catalog_mean <= 10
    assert large.super_catalog_mean == 40


def test_new_registrations_spread_and_dead_nodes_expire_within_ttl_plus_interval() -> None:
    r = run_registry_propagation(200, hot_share=0.1, new_instances=10, crashes=10,
                                 warmup=10.0, settle=10.0)
    assert r.bound_s == 30.0  # ttl 20 s + announce interval 10 s (the defaults)
    # Every watcher of an ordinary service saw its new instance, within a second.
    assert r.new_seen_share == 1.0
    assert r.new_seen["max"] is not None and r.new_seen["max"] < 1.0
    # Every dead instance was deleted at every live node that held it, within the bound, and
    # no later than ttl + propagation after its last announcement.
    assert r.crashed == 21 and r.gone["n"] and r.gone["n"] > 20
    assert r.gone_share == 1.0 and r.gone_within_bound == 1.0
    assert r.gone["max"] is not None and r.gone["max"] <= r.ttl + 3.0
    first = r.samples["gone"][0]  # counted from the crash, not from an earlier lapse
    assert first is not None and first >= 0.0
    assert r.hot_gone["n"] and r.hot_gone["max"] is not None
    assert r.hot_gone["max"] <= r.bound_s
    # Only the dead expired: live instances stayed registered everywhere.
    assert r.expired_live == 0
    assert r.deleted_reasons.get("expired", 0) >= r.gone["n"]
