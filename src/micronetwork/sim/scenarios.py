"""Named scenarios: what ``micronetwork sim NAME`` and the benchmarks run.

Theory of operation. A scenario is a function ``(RunParams, progress) -> (Scenario, figures)``
registered in :data:`SCENARIOS`. Each builds its network with the protocol (or the ideal tables
for ``ideal``), does one experiment, and returns the figures it is about; the caller exports the
records and plots. All of them read the same :class:`RunParams`, so a sweep is a product of
parameter values. Lookups are ``find_closest`` of a random live honest node's id from another
random live honest node, successful when the target is among the results (see :mod:`.scenario`).

=============  =====================================================================
lookup         build, refresh, lookups: success, rounds, latency
ideal          the same lookups over tables filled from the global view (baseline)
publish        provider records stored at the k closest: publication time p50/p90
churn          ``stale`` of the nodes crash at once, then ``churn``/h join/leave/crash
partition      split in two halves, lookups fail across; heal, lookups recover
adversarial    ``attackers`` colluding nodes at random ids; lookups with ``disjoint`` paths
eclipse        attackers grind ids next to target keys (``budget_bits``, ``id_puzzle``)
gossip*        gossipsub over a fixed topology (``gossip``, ``gossip-sybil``,
               ``gossip-flash``, ``gossip-eclipse``, ``gossip-spam``): see
               :mod:`.gossip_scenarios`
=============  =====================================================================
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..kademlia import KademliaConfig, QueryFinished
from ..kademlia.keyspace import kad_key
from .crypto import CryptoModel, ground_key
from .gossip_scenarios import GOSSIP_SCENARIOS, GossipScenario
from .models import Constant, LatencyModel, LogNormal, NetworkModel, Uniform
from .node import Coalition, Colluding, SimNode
from .scenario import Progress, Scenario

__all__ = ["RunParams", "SCENARIOS", "ScenarioError", "run_scenario"]


class ScenarioError(ValueError):
    """Parameters that cannot work (the CLI prints the message, no traceback)."""


@dataclass(frozen=True)
class RunParams:
    nodes: int = 1000
    seed: int = 1
    supers: int = 4
    lookups: int = 500
    latency: str = "uniform:20:120"  # constant:MS | uniform:LO:HI | lognormal:MEDIAN:SIGMA
    loss: float = 0.0
    verify_cost: float = 0.010
    crypto: str = "model"
    k: int = 20
    alpha: int = 3
    disjoint: tuple[int, ...] = (1,)
    churn: float = 0.10  # fraction per hour
    stale: float = 0.20
    duration: float = 600.0
    attackers: float = 0.20
    budget_bits: float = 24.0
    id_puzzle: tuple[int, ...] = (0,)
    targets: int = 10
    join_rate: float = 50.0
    bootstrap_contacts: int = 1  # super nodes a join asks at first (KademliaConfig)
    spread_bits: int = 0  # KademliaConfig.bucket_spread_bits (0: plain least-recently-seen)
    compact_tables: bool = False  # routing tables as arrays (sim.compact_table): 1M nodes
    evict_ping_after: float = 0.0  # KademliaConfig.evict_ping_after (0: ping at once)
    topology: Any = None  # a Topology (latency from a networkx graph) or None
    # gossip scenarios
    degree: int = 20  # connections per node (random regular graph)
    messages: int = 50  # messages published (at ``rate`` per second)
    rate: float = 1.0
    msg_size: int = 2048
    idontwant: bool = True
    gossip_dht: bool = False  # connect gossip peers from Kademlia tables (built first)
    activation: float = 10.0  # P3 activation (attack scenarios)
    flash_at: float = 120.0  # gossip-flash: seconds of good behaviour
    window: float = 4.0  # a message counts as delivered within this many seconds
    extra: dict[str, Any] = field(default_factory=dict)

    def check(self) -> None:
        if self.nodes < 2 or self.nodes > 2_000_000:
            raise ScenarioError(f"--nodes must be between 2 and 2,000,000 (got {self.nodes})")
        if not 1 <= self.supers < self.nodes:
            raise ScenarioError(f"--supers must be between 1 and nodes-1 (got {self.supers})")
        if not 1 <= self.bootstrap_contacts <= self.supers:
            raise ScenarioError("--bootstrap-contacts must be between 1 and --supers")
        if not 0 <= self.spread_bits <= 8:
            raise ScenarioError("--bucket-spread-bits must be between 0 and 8")
        if self.lookups < 1:
            raise ScenarioError("--lookups must be at least 1")
        if not 0 <= self.attackers < 1 or not 0 <= self.stale < 1 or not 0 <= self.loss < 1:
            raise ScenarioError("--attackers, --stale and --loss must be fractions in [0, 1)")
        if self.degree < 1 or self.messages < 1 or self.rate <= 0 or self.msg_size < 16:
            raise ScenarioError("--degree, --messages, --rate must be positive, --msg-size >= 16")
        if any(d < 1 or d > 16 for d in self.disjoint):
            raise ScenarioError("--disjoint values must be between 1 and 16")
        self.latency_model()

    def table_memory_gib(self) -> float:
        """What a Kademlia scenario of this size holds, estimated (GiB): full tables of
        ``k * log2(N) - 68`` entries per node (fitted on 10k-1M) at the bytes per entry and per
        node ``benchmarks/sim_memory.py`` measured for the table kind in use."""
        per_entry, per_node = (_COMPACT_BYTES if self.compact_tables else _PLAIN_BYTES)
        entries = max(0.0, self.k * math.log2(self.nodes) - 68.0)
        return self.nodes * (per_node + entries * per_entry) / 2**30

    def check_memory(self, runs_at_once: int = 1) -> None:
        """Refuse a Kademlia scenario that cannot fit in this machine's memory (a clear error
        instead of the kernel killing the run after minutes), with the way out."""
        total = _total_memory()
        need = self.table_memory_gib() * runs_at_once
        if total is None or need <= 0.9 * total:
            return
        hint = ""
        if not self.compact_tables:
            compact = dataclasses.replace(self, compact_tables=True).table_memory_gib()
            hint = f"; with --compact-tables about {compact * runs_at_once:.1f} GiB"
        raise ScenarioError(
            f"{self.nodes:,} nodes need about {need:.1f} GiB"
            f"{' for ' + str(runs_at_once) + ' runs at once' if runs_at_once > 1 else ''}; "
            f"this machine has {total:.1f} GiB{hint}")

    def latency_model(self) -> LatencyModel:
        if self.topology is not None:
            return self.topology  # type: ignore[no-any-return]
        name, *args = self.latency.split(":")
        try:
            nums = [float(a) for a in args]
            if name == "constant":
                return Constant(nums[0] / 1000.0)
            if name == "uniform":
                return Uniform(nums[0] / 1000.0, nums[1] / 1000.0, seed=self.seed)
            if name == "lognormal":
                return LogNormal(nums[0] / 1000.0, nums[1], seed=self.seed)
        except (IndexError, ValueError):
            pass
        raise ScenarioError(
            f"bad --latency {self.latency!r}: use constant:MS, uniform:LO_MS:HI_MS or "
            "lognormal:MEDIAN_MS:SIGMA"
        )

    def scenario(self, progress: Progress | None, puzzle: int = 0) -> Scenario:
        net = NetworkModel(latency=self.latency_model(), loss=self.loss)
        kad = KademliaConfig(k=self.k, alpha=self.alpha,
                             bootstrap_contacts=self.bootstrap_contacts,
                             bucket_spread_bits=self.spread_bits,
                             evict_ping_after=self.evict_ping_after)
        crypto = CryptoModel(mode=self.crypto, verify_cost=self.verify_cost, id_puzzle=puzzle)
        return Scenario(self.nodes, self.seed, supers=self.supers, network=net, kad=kad,
                        crypto=crypto, join_rate=self.join_rate, progress=progress,
                        compact_tables=self.compact_tables)


# (bytes per table entry, bytes per node besides its table): the fits of
# benchmarks/sim_memory.py (2026-11-29; plain on 10k + 100k nodes, compact on 100k + 1M)
_PLAIN_BYTES = (120.0, 6000.0)
_COMPACT_BYTES = (26.0, 3800.0)


def _total_memory() -> float | None:
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") / 2**30
    except (AttributeError, ValueError, OSError):  # not every platform says
        return None


Figures = dict[str, Any]
ScenarioFn = Callable[[RunParams, Progress], tuple[Scenario | GossipScenario, Figures]]


def _built(p: RunParams, progress: Progress, **kw: Any) -> Scenario:
    sc = p.scenario(progress)
    sc.build(**kw)
    sc.refresh_all()
    return sc


def lookup(p: RunParams, progress: Progress) -> tuple[Scenario, Figures]:
    sc = _built(p, progress)
    sc.lookups(p.lookups, tag="lookup")
    return sc, {"lookup": sc.summary("lookup")}


def ideal(p: RunParams, progress: Progress) -> tuple[Scenario, Figures]:
    sc = p.scenario(progress)
    sc.build(ideal=True)
    sc.lookups(p.lookups, tag="ideal")
    return sc, {"ideal": sc.summary("ideal")}


def publish(p: RunParams, progress: Progress) -> tuple[Scenario, Figures]:
    sc = _built(p, progress)
    sc.publish(max(1, p.lookups // 5), tag="publish")
    return sc, {"publish": sc.summary("publish")}


def churn(p: RunParams, progress: Progress) -> tuple[Scenario, Figures]:
    sc = _built(p, progress)
    sc.make_stale(p.stale)
    ch = sc.churn(p.churn)
    ch.start()
    sc.sim.metrics.sample("alive", sc.now, len(sc.sim.alive))
    sc.lookups(p.lookups, tag="churn", spacing=p.duration / p.lookups)
    ch.stop()
    sc.sim.metrics.sample("alive", sc.now, len(sc.sim.alive))
    return sc, {"churn": sc.summary("churn"), "departures": ch.departures, "joins": ch.joins}


def partition(p: RunParams, progress: Progress) -> tuple[Scenario, Figures]:
    sc = _built(p, progress)
    sc.split(2)
    sc.lookups(p.lookups, tag="partitioned")
    sc.heal()
    sc.refresh_all()
    sc.lookups(p.lookups, tag="healed")
    return sc, {"partitioned": sc.summary("partitioned"), "healed": sc.summary("healed")}


def _set_disjoint(sc: Scenario, d: int) -> None:
    for node in sc.sim.nodes:
        if node.behaviour is None:
            node.core.config = dataclasses.replace(node.core.config, disjoint_paths=d)


def adversarial(p: RunParams, progress: Progress) -> tuple[Scenario, Figures]:
    coalition = Coalition(p.k)
    n_bad = int(p.attackers * p.nodes)
    stride = (p.nodes - p.supers) / n_bad if n_bad else 0.0
    marks = {p.supers + int(i * stride) for i in range(n_bad)}

    def add(sc: Scenario, idx: int) -> SimNode:
        if idx in marks:
            node = sc.sim.add_node(
                role="attacker", bootstrap=sc.supers, behaviour=Colluding(coalition)
            )
            coalition.add(node)
            return node
        return sc.sim.add_node(bootstrap=sc.supers)

    sc = _built(p, progress, add=add)
    figs: Figures = {"attackers": len(coalition.members)}
    for d in p.disjoint:
        _set_disjoint(sc, d)
        sc.lookups(p.lookups, tag=f"d={d}")
        figs[f"d={d}"] = sc.summary(f"d={d}")
    return sc, figs


def eclipse(p: RunParams, progress: Progress) -> tuple[Scenario, Figures]:
    """Attackers grind ids next to ``targets`` content keys, then try to hide their providers."""
    figs: Figures = {}
    sc: Scenario | None = None
    for puzzle in p.id_puzzle:
        sc, figs[f"puzzle={puzzle}"] = _eclipse_once(p, progress, puzzle)
    assert sc is not None
    return sc, figs


def _eclipse_once(p: RunParams, progress: Progress, puzzle: int) -> tuple[Scenario, Figures]:
    keys = [f"/mn/eclipse-target-{i}".encode() for i in range(p.targets)]
    n_bad = int(p.attackers * p.nodes)
    coalition = Coalition(p.k)
    stride = (p.nodes - p.supers) / n_bad if n_bad else 0.0
    marks = {p.supers + int(i * stride): i for i in range(n_bad)}
    sc = p.scenario(progress, puzzle)

    def add(s: Scenario, idx: int) -> SimNode:
        i = marks.get(idx)
        if i is None:
            return s.sim.add_node(bootstrap=s.supers)
        target = kad_key(keys[i % len(keys)])
        key = ground_key(target, s.sim.rng, p.budget_bits, puzzle)
        node = s.sim.add_node(role="attacker", key=key, bootstrap=s.supers,
                              behaviour=Colluding(coalition))
        coalition.add(node)
        return node

    sc.build(add=add)
    sc.refresh_all()
    _set_disjoint(sc, max(p.disjoint))
    sim = sc.sim
    providers = {}
    for key in keys:
        src = sc._pick(None, None)
        providers[key] = src.peer_id
        sim.query(src, "provide", key, tag=f"provide p={puzzle}")
    sim.settle()
    sim.finish_tracked()
    tag = f"get_providers p={puzzle}"
    per_key = max(1, p.lookups // len(keys))
    for key in keys:
        want = providers[key]
        for _ in range(per_key):
            src = sc._pick(None, None)

            def check(ev: QueryFinished, want: bytes = want) -> bool:
                return any(info.peer_id == want for info in ev.result or ())

            sim.query(src, "get_providers", key, tag=tag, on_done=check)
            sim.run_for(0.05)
    sim.settle()
    sim.finish_tracked()
    honest_best = _honest_cpl(sc, keys)
    bad_best = _attacker_cpl(coalition, keys)
    return sc, {
        "get_providers": sc.summary(tag),
        "id_puzzle_bits": puzzle,
        "attacker_tries_log2": max(0.0, p.budget_bits - puzzle),
        "honest_join_cost_s": sc.sim.crypto.join_cost,
        "closest_honest_cpl_mean": honest_best,
        "closest_attacker_cpl_mean": bad_best,
    }


def _honest_cpl(sc: Scenario, keys: list[bytes]) -> float:
    out = []
    for key in keys:
        t = kad_key(key)
        out.append(max(256 - (n.key ^ t).bit_length() for n in sc.sim.nodes if n.behaviour is None))
    return sum(out) / len(out)


def _attacker_cpl(coalition: Coalition, keys: list[bytes]) -> float:
    if not coalition._keys:
        return 0.0
    out = [max(256 - (k ^ kad_key(key)).bit_length() for k in coalition._keys) for key in keys]
    return sum(out) / len(out)


SCENARIOS: dict[str, ScenarioFn] = {
    "lookup": lookup,
    "ideal": ideal,
    "publish": publish,
    "churn": churn,
    "partition": partition,
    "adversarial": adversarial,
    "eclipse": eclipse,
    **GOSSIP_SCENARIOS,
}


def run_scenario(
    name: str, params: RunParams, progress: Progress
) -> tuple[Scenario | GossipScenario, Figures]:
    fn = SCENARIOS.get(name)
    if fn is None:
        raise ScenarioError(f"unknown scenario {name!r}; choose one of: {', '.join(SCENARIOS)}")
    params.check()
    sc, figures = fn(params, progress)
    if isinstance(sc, Scenario) and "super_load" not in figures:
        figures["super_load"] = sc.super_load()
    return sc, figures
