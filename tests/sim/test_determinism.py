"""The same seed gives the same trace, bit for bit; another seed gives another."""

from __future__ import annotations

from micronetwork.sim import Scenario
from micronetwork.sim.models import NetworkModel, Uniform
from simtrace import digest


def _trace(seed: int) -> str:
    net = NetworkModel(latency=Uniform(0.02, 0.12, seed=seed), loss=0.01, jitter=0.005)
    sc = Scenario(60, seed, network=net, record_messages=True)
    sc.build()
    ch = sc.churn(2.0)
    ch.start()
    sc.lookups(30)
    ch.stop()
    return digest(sc)


def test_same_seed_same_trace() -> None:
    assert _trace(5) == _trace(5)


def test_other_seed_other_trace() -> None:
    assert _trace(5) != _trace(6)
