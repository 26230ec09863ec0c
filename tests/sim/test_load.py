"""The super nodes' load is measured, joins do not overload them, long phases show progress."""

from __future__ import annotations

import pytest

from micronetwork.sim import Constant, CryptoModel, NetworkModel, Scenario, Simulator
from micronetwork.sim.load import LoadMonitor


def test_monitor_measures_queue_wait_backlog_and_rate() -> None:
    sim = Simulator(1, network=NetworkModel(latency=Constant(0.05)),
                    crypto=CryptoModel(verify_cost=0.1))
    hub = sim.add_node(role="super")
    peers = [sim.add_node() for _ in range(10)]
    mon = LoadMonitor(sim, [hub], interval=5.0)
    mon.start("burst")
    for p in peers:
        p.core.table.update(hub.peer_id, hub.addrs, 0.0, hub.key)
        sim.query(p, "find_closest", b"some key")  # one request each, all to the hub
    sim.run_until(0.051)  # all ten arrived at 0.05 and queue for the hub's CPU
    mon.look()
    sim.run_for(10.0)
    f = mon.figures()
    ph = f["phases"]["burst"]
    assert ph["requests"] == 10 and f["watched"] == 1
    assert ph["wait_max"] == pytest.approx(0.9)  # the tenth waited for nine others
    assert ph["backlog_max"] == pytest.approx(0.999)
    assert ph["rate_peak"] == pytest.approx(10 / 5.0)  # one look of a full interval
    assert ph["timeouts"] == 0
    assert f["capacity_per_s"] == pytest.approx(10.0)
    assert hub.served == 10 and hub.busy == pytest.approx(1.0)
    assert [v for _, v in sim.metrics.series["super_backlog_s"]][0] == pytest.approx(0.999)


def _join_load(contacts: int) -> dict[str, float]:
    from micronetwork.kademlia import KademliaConfig

    sc = Scenario(200, 4, kad=KademliaConfig(bootstrap_contacts=contacts))
    sc.build()
    return sc.super_load()["phases"]["join"]  # type: ignore[no-any-return]


def test_a_join_costs_the_supers_one_request_not_one_each() -> None:
    one, every = _join_load(1), _join_load(4)
    # Before, every join asked all 4 supers at once (and put them all in its table).
    assert one["requests"] < 0.7 * every["requests"]
    # Per super and join: a quarter of the own-id lookups, plus the refreshes and lookups of
    # others that pass through the oldest nodes (in every early table).
    assert one["requests_per_node"] < 1.5 * 196
    assert one["timeouts"] == 0


def test_overloaded_supers_show_in_the_figures() -> None:
    # One super that can answer 20 requests/s, 50 joins/s: its queue grows past the timeout.
    hot = Scenario(400, 2, supers=1, crypto=CryptoModel(verify_cost=0.05))
    hot.build()
    ok = Scenario(400, 2)  # the default: 4 supers, 10 ms per request
    ok.build()
    h, o = hot.super_load()["phases"]["join"], ok.super_load()["phases"]["join"]
    assert h["load_peak"] > 1.5  # requests arrive faster than the CPU serves them
    assert h["backlog_max"] > 2.0 and h["wait_max"] > 2.0
    assert o["backlog_max"] < 0.2 and o["load_peak"] < 0.9 and o["timeouts"] == 0


def test_long_phases_report_progress_to_the_end() -> None:
    calls: list[tuple[float, str]] = []
    sc = Scenario(300, 5, progress=lambda f, label: calls.append((f, label)))
    sc.build()
    sc.refresh_all(window=20.0, settle=10.0)
    sc.lookups(20)
    labels = list(dict.fromkeys(label for _, label in calls))
    assert labels == ["join", "join: settle", "refresh", "refresh: settle", "lookup",
                      "lookup: settle"][: len(labels)]
    assert {"join", "refresh", "refresh: settle", "lookup"} <= set(labels)
    for label in labels:
        fracs = [f for f, lab in calls if lab == label]
        assert fracs == sorted(fracs), label
        assert fracs[-1] == pytest.approx(1.0), label
    assert len([1 for _, lab in calls if lab == "refresh"]) >= 10  # not one jump at the end


def test_refresh_round_is_paced_by_network_size(monkeypatch: pytest.MonkeyPatch) -> None:
    from micronetwork.sim import scenario

    sc = Scenario(100, 6)
    sc.build()
    sc.refresh_all()  # 100 nodes at 100/s: the 60 s floor
    monkeypatch.setattr(scenario, "REFRESH_PACE", 1.0)
    sc.refresh_all()  # 100 nodes at 1/s: 100 s
    monkeypatch.setattr(scenario, "REFRESH_PACE", 0.01)
    sc.refresh_all(settle=0.0)  # 10,000 s, capped at refresh_interval (600 s)
    assert sc.super_load()["phases"]["refresh"]["seconds"] == pytest.approx(
        (60 + 60) + (100 + 60) + 600, abs=0.5)
