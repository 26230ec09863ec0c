"""The scenario API: build a network, run it, break it, measure it, in a few lines.

Theory of operation. :class:`Scenario` wraps a :class:`~.network.Simulator` with the steps
every experiment repeats::

    sc = Scenario(nodes=1000, seed=1)        # U(20, 120) ms links, k=20, alpha=3
    sc.build()                               # super nodes, then peers join and bootstrap
    sc.refresh_all()                         # every node refreshes its buckets once
    sc.lookups(500)                          # find_closest of random live nodes' ids
    sc.churn(rate_per_hour=0.10).start()     # faults can be injected between steps
    sc.run_for(600)
    print(sc.summary())                      # success, rounds, latency percentiles
    sc.export("results/run1")                # JSON + CSV (+ plots with plots.plot_run)

Tables are built by the protocol: peers join one after another (``join_rate`` per second),
each bootstrapping as a real node does (``KademliaCore.bootstrap``: its own-id lookup starts
from one of the super nodes picked at random, the others being fallbacks, and goes on through
the peers that super named; then a refresh of every bucket), and :meth:`refresh_all` runs one
more refresh round so that the early joiners also learn about the late ones.
:meth:`ideal_tables` instead fills every table from the global view (each bucket holds ``k``
random members of its subtree): the baseline the protocol-built tables are compared with.
``compact_tables=True`` stores the tables as arrays (:mod:`.compact_table`): the same run in
about a quarter of the memory, for networks of a million nodes.

A :class:`~.load.LoadMonitor` watches the super nodes throughout (:meth:`super_load`), and
every stage reports its progress from 0 to 1 (join, settle, refresh, lookups), so that long
runs show an estimate of the time left.

A lookup succeeds when the target (a live node) is among the ``k`` peers the lookup returns.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..kademlia import KademliaConfig, QueryFinished
from .churn import Churn
from .compact_table import CompactTable
from .crypto import CryptoModel
from .load import LoadMonitor
from .models import NetworkModel, Uniform
from .network import Simulator
from .node import SimNode

__all__ = ["Progress", "Scenario"]

Progress = Callable[[float, str], None]
REFRESH_PACE = 100.0  # nodes starting their refresh round per second, in refresh_all


def _no_progress(frac: float, label: str) -> None:
    pass


class Scenario:
    def __init__(
        self,
        nodes: int,
        seed: int = 0,
        *,
        supers: int = 4,
        network: NetworkModel | None = None,
        kad: KademliaConfig | None = None,
        crypto: CryptoModel | None = None,
        join_rate: float = 50.0,
        progress: Progress | None = None,
        record_messages: bool = False,
        compact_tables: bool = False,
    ) -> None:
        if nodes < 2:
            raise ValueError("a scenario needs at least 2 nodes")
        if not 1 <= supers <= nodes:
            raise ValueError("supers must be between 1 and the number of nodes")
        self.n = nodes
        self.n_supers = supers
        self.join_rate = join_rate
        self.progress = progress or _no_progress
        net = network or NetworkModel(latency=Uniform(0.020, 0.120, seed=seed))
        self.sim = Simulator(seed, network=net, kad=kad, crypto=crypto,
                             record_messages=record_messages, compact_tables=compact_tables)
        self.supers: list[SimNode] = []
        self.load = LoadMonitor(self.sim, self.supers)
        self.built_at = 0.0

    # == building ==============================================================================

    @property
    def now(self) -> float:
        return self.sim.now

    def build(
        self, ideal: bool = False, add: Callable[[Scenario, int], SimNode] | None = None
    ) -> None:
        """Create the nodes; with ``ideal`` fill tables from the global view instead."""
        sim = self.sim
        for _ in range(self.n_supers):
            self.supers.append(sim.add_node(role="super"))
        for s in self.supers:
            for o in self.supers:
                if o is not s:
                    s.core.add_bootstrap_peer(o.peer_id, o.addrs)
        self.load.start("ideal tables" if ideal else "join")
        if ideal:
            for _ in range(self.n - self.n_supers):
                self._add_peer(add)
            self.ideal_tables()
            self.built_at = self.now
            return
        for s in self.supers:
            sim.start_bootstrap(s)
        sim.run_for(1.0)
        step = 1.0 / self.join_rate
        total = self.n - self.n_supers
        for i in range(total):
            node = self._add_peer(add)
            sim.start_bootstrap(node)
            sim.run_for(step)
            if i % 64 == 0:
                self.progress(i / total, "join")
        self.progress(1.0, "join")
        self._settle("join: settle", 120.0)
        sim.finish_tracked("bootstrap did not finish")
        self.built_at = self.now

    def _settle(self, label: str, limit: float) -> None:
        """Run until the tracked queries are done (at most ``limit`` s), showing how many are."""
        sim = self.sim
        first = sim.running_queries
        end = self.now + limit
        while sim.running_queries and self.now < end:
            sim.run_until(min(end, self.now + 1.0))
            self.progress(1.0 - sim.running_queries / first, label)

    def _run_stage(self, label: str, seconds: float, step: float = 1.0) -> None:
        """Run ``seconds`` of virtual time, reporting the fraction done every ``step``."""
        sim = self.sim
        t0 = self.now
        end = t0 + seconds
        while self.now < end:
            sim.run_until(min(end, self.now + step))
            self.progress((self.now - t0) / seconds if seconds else 1.0, label)

    def _add_peer(self, add: Callable[[Scenario, int], SimNode] | None) -> SimNode:
        if add is not None:
            return add(self, len(self.sim.nodes))
        return self.sim.add_node(bootstrap=self.supers)

    def refresh_all(self, window: float | None = None, settle: float = 60.0) -> None:
        """Every live node refreshes all its buckets once, at a random time in ``window``.

        The default window holds the pace at ``REFRESH_PACE`` nodes a second (at least 60 s,
        at most ``refresh_interval``, the period at which real nodes refresh on their own
        timers): the oldest nodes (the supers first) sit in nearly every table, so 10,000
        nodes refreshing within 60 s asked each super ~100 times a second, its whole CPU.
        """
        sim = self.sim
        if window is None:
            pace = len(sim.alive) / REFRESH_PACE
            window = min(max(60.0, pace), max(60.0, sim.kad.refresh_interval))
        self.load.phase("refresh")
        for node in list(sim.alive):
            sim.loop.call_at(self.now + sim.rng.random() * window, self._refresh, node)
        # Two stages: the refreshes start during the window (the work), then finish.
        self._run_stage("refresh", window)
        self._run_stage("refresh: settle", settle, step=5.0)

    def _refresh(self, node: SimNode) -> None:
        if node.alive:
            node.core.refresh(self.sim.now, force=True)
            self.sim._pump(node)

    def ideal_tables(self) -> None:
        """Fill every table from the global view: each bucket gets k random subtree members."""
        sim = self.sim
        nodes = sorted(sim.alive, key=lambda n: n.key)
        keys = [n.key for n in nodes]
        k = sim.kad.k
        rng = sim.rng
        now = self.now
        numbers = [n.idx for n in nodes]  # a compact table's names for them
        for i, node in enumerate(nodes):
            table = node.core.table
            for cpl in range(256):
                bit = 255 - cpl
                lo_key = ((node.key >> bit) ^ 1) << bit
                lo = bisect_left(keys, lo_key)
                hi = bisect_left(keys, lo_key + (1 << bit))
                if hi > lo:
                    picks = range(lo, hi) if hi - lo <= k else rng.sample(range(lo, hi), k)
                    if isinstance(table, CompactTable):
                        table.fill(cpl, [numbers[j] for j in picks], now)
                    else:
                        for j in picks:
                            other = nodes[j]
                            table.update(other.peer_id, other.addrs, now, other.key)
                mine = bisect_left(keys, (node.key >> bit) << bit)
                mine_hi = bisect_left(keys, ((node.key >> bit) + 1) << bit)
                if mine_hi - mine <= 1:
                    break
            if i % 1024 == 0:
                self.progress(i / len(nodes), "ideal tables")
        self.progress(1.0, "ideal tables")

    # == faults ================================================================================

    def churn(self, rate_per_hour: float, crash_share: float = 0.5) -> Churn:
        return Churn(self.sim, rate_per_hour, crash_share=crash_share, bootstrap=self.supers)

    def make_stale(self, fraction: float) -> list[SimNode]:
        """Crash ``fraction`` of the peers at once: their entries stay in others' tables."""
        sim = self.sim
        victims = []
        cand = [n for n in sim.alive if n.role == "peer"]
        for node in sim.rng.sample(cand, int(fraction * len(cand))):
            sim.crash(node)
            victims.append(node)
        return victims

    def split(self, groups: int = 2) -> None:
        """Partition the nodes into ``groups`` by index; :meth:`heal` undoes it."""
        self.sim.network.split({n.idx: n.idx % groups for n in self.sim.nodes})

    def heal(self) -> None:
        self.sim.network.heal()

    # == measuring =============================================================================

    def lookups(
        self,
        count: int,
        *,
        tag: str = "lookup",
        spacing: float = 0.05,
        sources: list[SimNode] | None = None,
        targets: list[SimNode] | None = None,
        settle: float = 120.0,
    ) -> None:
        """``count`` find_closest lookups of random live peers' ids from random live peers."""
        sim = self.sim
        self.load.phase(tag)
        t0 = self.now
        for i in range(count):
            sim.loop.call_at(t0 + i * spacing, self._one_lookup, tag, sources, targets)
        self._run_stage(tag, count * spacing, step=min(10.0, max(1.0, count * spacing / 20)))
        self._settle(f"{tag}: settle", settle)
        sim.finish_tracked("lookup did not finish")

    def _pick(self, pool: list[SimNode] | None, exclude: SimNode | None) -> SimNode:
        sim = self.sim
        for _ in range(1000):
            n = sim.rng.choice(pool) if pool else sim.random_alive(("attacker",))
            if n.alive and n is not exclude and n.behaviour is None:
                return n
        raise RuntimeError("no live honest node to pick")

    def _one_lookup(
        self, tag: str, sources: list[SimNode] | None, targets: list[SimNode] | None
    ) -> None:
        src = self._pick(sources, None)
        dst = self._pick(targets, src)
        want = dst.peer_id

        def check(ev: QueryFinished) -> bool:
            return any(info.peer_id == want for info in ev.result or ())

        self.sim.query(src, "find_closest", bytes(want), tag=tag, on_done=check)

    def publish(self, count: int, *, tag: str = "publish", spacing: float = 0.2) -> None:
        """``count`` provide() calls of random keys; durations are publication times."""
        sim = self.sim
        self.load.phase(tag)
        t0 = self.now
        for i in range(count):
            key = b"/mn/provider-" + sim.rng.randbytes(8).hex().encode()
            sim.loop.call_at(t0 + i * spacing, self._provide, key, tag)
        self._run_stage(tag, count * spacing)
        self._settle(f"{tag}: settle", 120.0)
        sim.finish_tracked("publication did not finish")

    def _provide(self, key: bytes, tag: str) -> None:
        src = self._pick(None, None)
        k = self.sim.kad.k

        def check(ev: QueryFinished) -> bool:
            return ev.error is None and ev.stats.stored >= min(k, len(self.sim.alive) - 1)

        self.sim.query(src, "provide", key, tag=tag, on_done=check)

    def run_for(self, seconds: float) -> None:
        self.sim.run_for(seconds)

    def super_load(self) -> dict[str, Any]:
        """Requests, CPU utilisation, backlog and queue wait of the super nodes, per phase."""
        return self.load.figures()

    def summary(self, tag: str | None = "lookup") -> dict[str, Any]:
        return self.sim.metrics.summary(tag)

    def params(self) -> dict[str, Any]:
        sim = self.sim
        kad = sim.kad
        return {
            "nodes": self.n,
            "supers": self.n_supers,
            "seed": sim.seed,
            "network": sim.network.describe(),
            "crypto": sim.crypto.describe(),
            "kademlia": {"k": kad.k, "alpha": kad.alpha, "beta": kad.beta,
                         "disjoint_paths": kad.disjoint_paths,
                         "request_timeout": kad.request_timeout,
                         "bootstrap_contacts": kad.bootstrap_contacts,
                         "bucket_spread_bits": kad.bucket_spread_bits},
            "join_rate": self.join_rate,
        }

    def export(self, out: str | Path, extra: dict[str, Any] | None = None) -> dict[str, Any]:
        info = {"params": self.params(), "events": self.sim.loop.events_run,
                "virtual_time": self.now}
        if extra:
            info.update(extra)
        return self.sim.metrics.export(Path(out), info)
