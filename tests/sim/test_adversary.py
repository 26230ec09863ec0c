"""Adversarial hooks: colluders hurt plain lookups, disjoint paths and id puzzles help."""

from __future__ import annotations

from micronetwork.sim.scenarios import RunParams, adversarial, eclipse


def _quiet(frac: float, label: str) -> None:
    pass


def test_colluders_answer_with_each_other_and_disjoint_paths_help() -> None:
    p = RunParams(nodes=100, seed=2, lookups=40, attackers=0.4, disjoint=(1, 8))
    sc, figs = adversarial(p, _quiet)
    assert figs["attackers"] == 40
    assert sc.sim.metrics.counters["requests"] > 0
    plain, disjoint = figs["d=1"]["success"], figs["d=8"]["success"]
    assert disjoint >= plain
    assert disjoint >= 0.95


def test_ground_ids_eclipse_a_key_and_a_puzzle_buys_it_back() -> None:
    p = RunParams(nodes=100, seed=1, lookups=20, attackers=0.25, targets=1, budget_bits=24,
                  id_puzzle=(0, 24), disjoint=(1,))
    _, figs = eclipse(p, _quiet)
    free, costly = figs["puzzle=0"], figs["puzzle=24"]
    assert free["closest_attacker_cpl_mean"] > free["closest_honest_cpl_mean"]
    assert free["get_providers"]["success"] <= 0.2
    assert costly["get_providers"]["success"] >= 0.8
