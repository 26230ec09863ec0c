"""The gossip scenario harness: one topic on N nodes over a topology, publish, record.

Theory of operation. :class:`GossipScenario` wraps a :class:`~.gossip.GossipSimulator`: it
creates the nodes (honest, or with a :class:`~.gossip.GossipBehaviour` for chosen indices),
connects them along a graph (random regular of ``degree`` by default, :func:`regular_edges`; or
given edges, e.g. the routing tables of a Kademlia network built first,
``RunParams.gossip_dht``), subscribes every node to one topic at a random moment of the first
second and lets the meshes form (the cores may add connections: PX dials and topic discovery,
``GossipSimulator.dial``; ``initial_neighbours`` keeps the graph as built). Then
:meth:`GossipScenario.stream` publishes a stream of messages from random honest nodes; the
simulator records, per message and node, the delivery time and the copies received
(:class:`~.gossip.MsgRecord`), and :meth:`GossipScenario.export` writes them out with plots.
The cyclic GC is off while the loop runs.

:func:`attack_score_params` is the topic score of the attack scenarios (mesh delivery deficit P3
on). The figures over the records are in :mod:`.gossip_figures`, the named scenarios in
:mod:`.gossip_scenarios`.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import networkx as nx

from ..gossip import GossipConfig, PeerScoreParams, TopicScoreParams
from .crypto import CryptoModel
from .gossip import INF, GossipBehaviour, GossipSimNode, GossipSimulator, MsgRecord
from .loop import no_gc as _no_gc
from .metrics import _jsonable
from .models import NetworkModel

__all__ = ["Figures", "GossipScenario", "Progress", "attack_score_params", "regular_edges"]

Progress = Callable[[float, str], None]
Figures = dict[str, Any]


def _no_progress(frac: float, label: str) -> None:
    pass




def attack_score_params(
    activation: float = 10.0, threshold: float = 0.5, window: float = 2.0
) -> PeerScoreParams:
    """Topic score with the mesh delivery deficit (P3, P3b) on, for a topic with steady traffic.

    Counters decay by 0.9 per second, so a mesh peer that delivers every message of a 1 msg/s
    topic holds ~10 (the cap); one that delivers none scores ``-10 * threshold**2`` once it has
    been in the mesh ``activation`` seconds, and keeps that as a sticky P3b penalty when pruned.
    A copy counts for P3 if it arrives before validation ends or within ``window`` after: an
    honest mesh peer downstream of us (or told IDONTWANT) delivers little, so a low threshold
    and a wide window keep honest peers out of the penalty (measured: threshold 1 and a 0.5 s
    window made twice as many honest links negative at 80 % Sybils).
    """
    tp = TopicScoreParams(
        time_in_mesh_weight=0.01,
        time_in_mesh_quantum=1.0,
        time_in_mesh_cap=300.0,
        first_message_deliveries_weight=1.0,
        first_message_deliveries_decay=0.9,
        first_message_deliveries_cap=10.0,
        mesh_message_deliveries_weight=-10.0,
        mesh_message_deliveries_decay=0.9,
        mesh_message_deliveries_cap=10.0,
        mesh_message_deliveries_threshold=threshold,
        mesh_message_deliveries_window=window,
        mesh_message_deliveries_activation=activation,
        mesh_failure_penalty_weight=-10.0,
        mesh_failure_penalty_decay=0.9,
        invalid_message_deliveries_weight=-10.0,
        invalid_message_deliveries_decay=0.99,
    )
    return PeerScoreParams(default_topic=tp)


class GossipScenario:
    """Build a gossip network, publish, measure (see the module docstring)."""

    def __init__(
        self,
        nodes: int,
        seed: int = 0,
        *,
        degree: int = 20,
        network: NetworkModel | None = None,
        gossip: GossipConfig | None = None,
        crypto: CryptoModel | None = None,
        progress: Progress | None = None,
        msg_size: int = 2048,
    ) -> None:
        if nodes < 2:
            raise ValueError("a gossip scenario needs at least 2 nodes")
        self.n = nodes
        self.degree = degree
        self.msg_size = msg_size
        self.progress = progress or _no_progress
        self.sim = GossipSimulator(seed, network=network, gossip=gossip, crypto=crypto)
        self.built_at = 0.0
        self.edges = 0
        self.initial_neighbours: list[tuple[int, ...]] = []

    @property
    def now(self) -> float:
        return self.sim.now

    # == building ==============================================================================

    def build(
        self,
        behaviours: dict[int, GossipBehaviour] | None = None,
        edges: Sequence[tuple[int, int]] | None = None,
        warmup: float = 5.0,
    ) -> None:
        """Create the nodes, connect them, subscribe all, run ``warmup`` seconds."""
        sim = self.sim
        behaviours = behaviours or {}
        for i in range(self.n):
            beh = behaviours.get(i)
            sim.add_node(role="peer" if beh is None else "attacker", behaviour=beh)
            if i % 1024 == 0:
                self.progress(0.3 * i / self.n, "build")
        if edges is None:
            edges = regular_edges(self.n, self.degree, sim.seed)
        self.progress(0.35, "connect")
        sim.connect_edges(edges)
        self.edges = len(edges)
        # The graph before any dial of the cores (PX, topic discovery) adds to it.
        self.initial_neighbours = [tuple(n.neighbours) for n in sim.nodes]
        for node in sim.nodes:
            sim.loop.call_at(self.now + sim.rng.random(), sim.subscribe, node)
        self.run(warmup, "warm-up")
        self.built_at = self.now

    def run(self, seconds: float, label: str) -> None:
        """Run ``seconds`` of virtual time, reporting progress every virtual second."""
        sim = self.sim
        t0 = self.now
        end = t0 + seconds
        with _no_gc():
            while self.now < end:
                sim.run_until(min(end, self.now + 1.0))
                self.progress((self.now - t0) / seconds if seconds else 1.0, label)

    def honest(self) -> list[GossipSimNode]:
        return [n for n in self.sim.nodes if n.behaviour is None and n.role == "peer"]

    def stream(
        self,
        duration: float,
        rate: float,
        tag: str,
        *,
        publishers: Sequence[GossipSimNode] | None = None,
        tail: float = 5.0,
        every: Callable[[], None] | None = None,
        label: str | None = None,
    ) -> list[MsgRecord]:
        """Publish at ``rate`` per second for ``duration`` s from random ``publishers`` (random
        honest nodes by default), then run ``tail`` s more. ``every()`` runs once a second."""
        sim = self.sim
        pool = list(publishers) if publishers is not None else self.honest()
        out: list[MsgRecord] = []
        count = max(1, round(duration * rate))
        t0 = self.now

        def one() -> None:
            node = pool[sim.rng.randrange(len(pool))]
            out.append(sim.publish(node, self.msg_size, tag))

        for i in range(count):
            sim.loop.call_at(t0 + i / rate, one)
        end = t0 + duration + tail
        total = end - t0
        with _no_gc():
            while self.now < end - 1e-9:
                sim.run_until(min(end, self.now + 1.0))
                if every is not None:
                    every()
                self.progress((self.now - t0) / total, label or tag)
        return out

    # == results ===============================================================================

    def params(self) -> dict[str, Any]:
        sim = self.sim
        cfg = sim.config
        score = cfg.score
        tp = score.default_topic if score is not None else None
        return {
            "nodes": self.n,
            "degree": self.degree,
            "edges": self.edges,
            "seed": sim.seed,
            "network": sim.network.describe(),
            "crypto": sim.crypto.describe(),
            "dial": {"lookup_rounds": sim.dial.lookup_rounds,
                     "handshake_rtts": sim.dial.handshake_rtts, "max_links": sim.dial.max_links},
            "msg_size": self.msg_size,
            "gossip": {
                "d": cfg.d, "d_lo": cfg.d_lo, "d_hi": cfg.d_hi, "d_lazy": cfg.d_lazy,
                "d_out": cfg.d_out, "heartbeat": cfg.heartbeat_interval,
                "flood_publish": cfg.flood_publish, "idontwant_threshold": cfg.idontwant_threshold,
                "protocols": list(cfg.protocols), "scoring": score is not None,
                "p3_weight": tp.mesh_message_deliveries_weight if tp else None,
                "p3_activation": tp.mesh_message_deliveries_activation if tp else None,
                "discovery": cfg.discovery,
                "discovery_backoff_ticks": [cfg.discovery_backoff_ticks,
                                            cfg.discovery_backoff_max_ticks],
            },
        }

    def export(self, out: str | Path, extra: dict[str, Any] | None = None) -> dict[str, Any]:
        """``summary.json`` (params, counters, figures), ``messages.csv`` (one row per message),
        ``deliveries.csv`` (one row per message and node: latency, copies; runs of at most
        500,000 pairs) and plots: ``delivery_cdf.png``, ``copies.png``, ``series.png``."""
        sim = self.sim
        path = Path(out)
        path.mkdir(parents=True, exist_ok=True)
        honest = [n.idx for n in self.honest()]
        with (path / "messages.csv").open("w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["tag", "publisher", "t0", "invalid", "validations", "delivered",
                        "delivered_4s", "latency_p50", "latency_max", "copies_mean"])
            for rec in sim.published:
                lat = sorted(rec.first[i] - rec.t0 for i in honest if i != rec.publisher)
                got = [x for x in lat if x < INF]
                cps = [rec.copies[i] for i in honest if i != rec.publisher]
                n = max(1, len(lat))
                w.writerow([rec.tag, rec.publisher, f"{rec.t0:.3f}", rec.invalid, rec.validations,
                            f"{len(got) / n:.6f}", f"{sum(x <= 4.0 for x in got) / n:.6f}",
                            f"{got[len(got) // 2]:.4f}" if got else "",
                            f"{got[-1]:.4f}" if got else "", f"{sum(cps) / n:.3f}"])
        if len(sim.published) * len(sim.nodes) <= 500_000:  # per (message, node) records
            with (path / "deliveries.csv").open("w", newline="") as fh:
                w = csv.writer(fh)
                w.writerow(["message", "node", "role", "latency", "copies"])
                for k, rec in enumerate(sim.published):
                    for node in sim.nodes:
                        dt = rec.first[node.idx] - rec.t0
                        w.writerow([k, node.idx, node.role, f"{dt:.5f}" if dt < INF else "",
                                    rec.copies[node.idx]])
        summary: dict[str, Any] = {
            "params": self.params(),
            "counters": dict(sorted(sim.metrics.counters.items())),
            "events": sim.loop.events_run,
            "virtual_time": self.now,
            "series": sim.metrics.series,
        }
        if extra:
            summary.update(extra)
        (path / "summary.json").write_text(json.dumps(summary, indent=2, default=_jsonable))
        from .plots import plot_gossip

        plot_gossip(sim, honest, path, f"gossip, {self.n} nodes, seed {sim.seed}")
        return summary


def regular_edges(n: int, degree: int, seed: int) -> list[tuple[int, int]]:
    """Edges of a random ``degree``-regular graph on ``n`` nodes (networkx, seeded)."""
    if degree >= n:
        g = nx.complete_graph(n)
    else:
        if (n * degree) % 2:
            raise ValueError(f"no {degree}-regular graph on {n} nodes (n * degree is odd)")
        g = nx.random_regular_graph(degree, n, seed=seed)
    return [(int(u), int(v)) for u, v in g.edges()]
