"""The registry in the simulator: what a node holds does not grow with the network's services."""

from __future__ import annotations

from micronetwork.sim.registry import run_registry_scale


def test_node_state_is_flat_in_services_and_catalog_is_bounded() -> None:
    small = run_registry_scale(60, 15, watched=2, supers=2, duration=65.0, catalog_size=40)
    large = run_registry_scale(60, 120, watched=2, supers=2, duration=65.0, catalog_size=40)
    for r in (small, large):
        assert r.watch_coverage == 1.0  # every watcher knows every instance it watches
        assert 1.8 <= r.held_remote_mean <= 2.0  # the 2 it watches (fewer where it serves one)
    # Eight times the services: a node holds what it watches, not more.
    assert abs(large.held_remote_mean - small.held_remote_mean) < 0.2
    # Super nodes hear every catalog announcement, but keep at most catalog_size names.
    assert small.super_catalog_mean == 15
    assert large.super_catalog_mean == 40
