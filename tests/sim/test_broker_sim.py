"""The broker in the simulator: exactly once under churn, catch-up from retention, determinism."""

from __future__ import annotations

from typing import Any

import pytest

from micronetwork.broker import RetentionLimits
from micronetwork.sim.broker import BrokerSimConfig, run_broker_sim

SMALL = BrokerSimConfig(nodes=150, seed=7, publishers=4, rate=2.0, warmup=6.0, window=20.0,
                        tail=30.0, churn=0.2, down_min=5.0, down_max=12.0)
VOLATILE = ("wall_s", "events_per_s", "peak_rss_mib", "build_s")


def _stable(figs: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in figs.items() if k not in VOLATILE}


@pytest.fixture(scope="module")
def churned() -> dict[str, Any]:
    return run_broker_sim(SMALL)[1]


def test_no_churn_delivers_everything_exactly_once() -> None:
    cfg = BrokerSimConfig(nodes=150, seed=3, publishers=4, rate=2.0, warmup=6.0, window=15.0,
                          tail=5.0, churn=0.0)
    _, f = run_broker_sim(cfg)
    assert f["events"] == 30 and f["pairs"] == 30 * f["subscribers"]
    assert f["delivery_ratio"] == 1.0
    assert f["duplicates"] == 0
    assert f["crashes"] == 0 and f["paths"] == {"up_gossip": f["pairs"]}  # all live
    assert f["missed_reported"] == {}


def test_crashed_subscribers_catch_up_from_retention(churned: dict[str, Any]) -> None:
    f = churned
    assert f["crashes"] == f["rejoins"] == round(0.2 * (150 - 4 - 4))
    assert f["pairs_down"] > 0  # events published while subscribers were down
    assert f["duplicates"] == 0
    assert f["delivery_ratio"] == 1.0  # within the retention window: every event, once
    assert f["delivery_ratio_down"] == 1.0
    assert f["churned_unaccounted"] == 0 and f["missed_overcount"] == 0
    assert f["after_rejoin"]["n"] > 0 and f["after_rejoin"]["p99"] < 5.0


def test_beyond_retention_the_subscriber_is_told_how_many_it_missed() -> None:
    # Super nodes keep only the last 3 events: an outage of 5-12 s at 2 events/s outlives them.
    tiny = RetentionLimits(max_events=3)
    _, f = run_broker_sim(BrokerSimConfig(**{**_fields(SMALL), "super_retention": tiny}))
    assert f["duplicates"] == 0
    assert f["missed_reported"].get("evicted", 0) > 0
    assert f["delivery_ratio_down"] < 1.0
    # Every event reached each churned subscriber exactly once or was counted as missed, and
    # none was both (a late gossip copy of a counted event is dropped).
    assert f["churned_unaccounted"] == 0 and f["missed_overcount"] == 0


def test_same_seed_same_figures(churned: dict[str, Any]) -> None:
    assert _stable(run_broker_sim(SMALL)[1]) == _stable(churned)


def _fields(cfg: BrokerSimConfig) -> dict[str, Any]:
    return {k: getattr(cfg, k) for k in cfg.__dataclass_fields__}
