"""Gossip scenarios: a topic on N nodes over a fixed topology, honest and under attack.

Theory of operation. :class:`GossipScenario` wraps a :class:`~.gossip.GossipSimulator`: it
creates the nodes (honest, or with a :class:`~.gossip.GossipBehaviour` for chosen indices),
connects them along a graph (random regular of ``degree`` by default; or given edges, e.g. the
routing tables of a Kademlia network built first, ``RunParams.gossip_dht``), subscribes every
node to one topic at a random moment of the first second and lets the meshes form. Then it
publishes a stream of messages from random honest nodes and measures, per message and honest
node, the delivery time and the copies received; :func:`delivery_figures` compares delivery
times with the shortest-path bound (Dijkstra from the publisher over link latency + one
validation per hop, on the same connections).

The named scenarios (registered in :data:`.scenarios.SCENARIOS`):

===============  ===================================================================
gossip           honest network: delivery, latency vs the bound, copies per node
gossip-sybil     ``attackers`` of the nodes are silent Sybils (subscribe, graft, never
                 forward); delivery within ``window`` s before and after scoring acts
gossip-flash     ``attackers`` behave for ``flash_at`` s, then go silent: time until
                 delivery is back above 99.9 %
gossip-eclipse   ``4 * degree`` silent Sybils connect to one target that dialed 4 honest
                 peers: the target's delivery and the Sybils' share of its mesh
gossip-spam      one node publishes invalid messages: when it is graylisted, and how many
                 nodes still spend CPU on its traffic
===============  ===================================================================

Attack scenarios score the topic with :func:`attack_score_params` (mesh delivery deficit P3
on, activation ``RunParams.activation``); the honest scenario uses the library defaults.
"""

from __future__ import annotations

import csv
import gc
import json
import math
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import networkx as nx

from ..gossip import GossipConfig, PeerScoreParams, TopicScoreParams
from ..identity.peerid import PeerId
from .crypto import CryptoModel
from .gossip import (
    INF,
    FlashSybil,
    GossipBehaviour,
    GossipSimNode,
    GossipSimulator,
    MsgRecord,
    SilentSybil,
    shortest_path_bound,
)
from .metrics import _jsonable
from .models import NetworkModel

if TYPE_CHECKING:
    from .scenarios import RunParams

__all__ = [
    "GOSSIP_SCENARIOS",
    "GossipScenario",
    "attack_score_params",
    "delivery_figures",
]

Progress = Callable[[float, str], None]
Figures = dict[str, Any]


def _no_progress(frac: float, label: str) -> None:
    pass


@contextmanager
def _no_gc() -> Iterator[None]:
    """The cyclic GC off while the loop runs: a 10k-node run holds millions of objects, full
    collections cost ~30 % of the run, and the event path makes no reference cycles (plain
    reference counting frees it)."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


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
            "msg_size": self.msg_size,
            "gossip": {
                "d": cfg.d, "d_lo": cfg.d_lo, "d_hi": cfg.d_hi, "d_lazy": cfg.d_lazy,
                "d_out": cfg.d_out, "heartbeat": cfg.heartbeat_interval,
                "flood_publish": cfg.flood_publish, "idontwant_threshold": cfg.idontwant_threshold,
                "protocols": list(cfg.protocols), "scoring": score is not None,
                "p3_weight": tp.mesh_message_deliveries_weight if tp else None,
                "p3_activation": tp.mesh_message_deliveries_activation if tp else None,
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


def _quantiles(xs: list[float], qs: Sequence[float]) -> list[float]:
    if not xs:
        return [math.nan for _ in qs]
    xs.sort()
    return [xs[max(0, math.ceil(q / 100.0 * len(xs)) - 1)] for q in qs]


def delivery_figures(
    sc: GossipScenario,
    recs: Sequence[MsgRecord],
    *,
    nodes: Sequence[GossipSimNode] | None = None,
    window: float = 4.0,
    bound: bool = True,
    honest_paths: bool = False,
) -> Figures:
    """Delivery ratio (within ``window`` and at all), latency percentiles, copies per node,
    and the shortest-path bound over the same (message, node) pairs.

    ``honest_paths``: the bound may only relay through honest nodes (nodes that no honest path
    reaches are counted as ``unreachable``; delivery is also reported relative to the others).
    """
    sim = sc.sim
    targets = [n.idx for n in (nodes if nodes is not None else sc.honest())]
    per_hop = sim.crypto.verify_cost
    honest_set = {n.idx for n in sc.honest()}
    allowed = honest_set.__contains__ if honest_paths else None
    lat: list[float] = []
    bnd: list[float] = []
    copies: list[float] = []
    pairs = in_window = delivered = reachable = reach_ok = 0
    cache: dict[int, list[float]] = {}
    for rec in recs:
        b: list[float] | None = None
        if bound:
            b = cache.get(rec.publisher)
            if b is None:
                b = cache[rec.publisher] = shortest_path_bound(sim, rec.publisher, per_hop, allowed)
        first = rec.first
        t0 = rec.t0
        for i in targets:
            if i == rec.publisher:
                continue
            pairs += 1
            dt = first[i] - t0
            ok = dt <= window
            in_window += ok
            if dt < INF:
                delivered += 1
                lat.append(dt)
            copies.append(rec.copies[i])
            if b is not None and b[i] < INF:
                reachable += 1
                reach_ok += ok
                bnd.append(b[i])
    lp = _quantiles(lat, (50, 90, 99, 100))
    bp = _quantiles(bnd, (50, 90, 99, 100))
    cp = _quantiles(copies, (50, 90, 99, 100))
    figs: Figures = {
        "messages": len(recs),
        "pairs": pairs,
        "delivery_within_window": in_window / pairs if pairs else math.nan,
        "window_s": window,
        "delivery": delivered / pairs if pairs else math.nan,
        "latency_p50": lp[0], "latency_p90": lp[1], "latency_p99": lp[2], "latency_max": lp[3],
        "copies_mean": sum(copies) / len(copies) if copies else math.nan,
        "copies_p50": cp[0], "copies_p90": cp[1], "copies_p99": cp[2], "copies_max": cp[3],
    }
    if bound:
        figs.update({
            "bound_p50": bp[0], "bound_p90": bp[1], "bound_p99": bp[2], "bound_max": bp[3],
            "p99_over_bound_p99": lp[2] / bp[2] if bp[2] and bp[2] == bp[2] else math.nan,
            "reachable": reachable / pairs if pairs else math.nan,
            "delivery_within_window_of_reachable": reach_ok / reachable if reachable else math.nan,
        })
    return figs


def per_message(sc: GossipScenario, recs: Sequence[MsgRecord], window: float) -> list[float]:
    """Delivery ratio within ``window`` of each message (honest nodes, publisher excluded)."""
    honest = [n.idx for n in sc.honest()]
    out = []
    for rec in recs:
        ok = sum(1 for i in honest if i != rec.publisher and rec.first[i] - rec.t0 <= window)
        out.append(ok / max(1, len(honest) - 1))
    return out


# == named scenarios ===========================================================================


def _gossip_config(p: RunParams, score: PeerScoreParams | None | str = "default") -> GossipConfig:
    kw: dict[str, Any] = {}
    if not p.idontwant:
        kw["idontwant_threshold"] = 1 << 62
    if score != "default":
        kw["score"] = score
    kw.update(p.extra.get("gossip", {}))  # e.g. {"d": 8, "d_lo": 6, "d_hi": 12}
    return GossipConfig(**kw)


def _scenario(p: RunParams, progress: Progress, cfg: GossipConfig) -> GossipScenario:
    net = NetworkModel(latency=p.latency_model(), loss=p.loss)
    crypto = CryptoModel(mode=p.crypto, verify_cost=p.verify_cost)
    return GossipScenario(p.nodes, p.seed, degree=p.degree, network=net, gossip=cfg,
                          crypto=crypto, progress=progress, msg_size=p.msg_size)


def _edges(p: RunParams, progress: Progress) -> list[tuple[int, int]] | None:
    """None: a random regular graph. With ``gossip_dht``: build the Kademlia network first and
    connect every node to up to ``degree / 2`` random peers of its routing table."""
    if p.topology is not None:
        g = p.topology.graph
        index = {s: i for i, s in enumerate(p.topology.sites)}
        if len(index) != p.nodes:
            raise ValueError("a gossip topology graph must have exactly --nodes nodes")
        return [(index[u], index[v]) for u, v in g.edges()]
    if not p.gossip_dht:
        return None
    kad = p.scenario(progress)
    kad.build()
    rng = kad.sim.rng
    pos = {n.peer_id: n.idx for n in kad.sim.nodes}
    edges: set[tuple[int, int]] = set()
    for node in kad.sim.nodes:
        peers = sorted(pos[q] for q in node.core.table.peers() if q in pos)
        for j in rng.sample(peers, min(len(peers), max(1, p.degree // 2))):
            edges.add((min(node.idx, j), max(node.idx, j)))
    return sorted(edges)


def gossip(p: RunParams, progress: Progress) -> tuple[GossipScenario, Figures]:
    sc = _scenario(p, progress, _gossip_config(p))
    sc.build(edges=_edges(p, progress))
    recs = sc.stream(p.messages / p.rate, p.rate, "gossip")
    figs = delivery_figures(sc, recs, window=p.window)
    return sc, {"gossip": figs, "counters": _counters(sc)}


def _counters(sc: GossipScenario) -> Figures:
    c = sc.sim.metrics.counters
    msgs = max(1, c["published"])
    totals: dict[str, int] = {}
    for n in sc.sim.nodes:
        for k in ("idontwant_suppressed", "duplicates", "delivered", "rpcs_graylisted",
                  "broken_promises", "iwant_sent"):
            totals[k] = totals.get(k, 0) + n.core.counters[k]
    return {
        "rpcs": c["rpcs"], "bytes": c["bytes"], "bytes_per_message_per_node":
        c["bytes"] / msgs / max(1, sc.n), "messages_sent": c["messages_sent"],
        "validations": c["validations"], **totals,
    }


def _pick(sc: GossipScenario, fraction: float, exclude: frozenset[int] = frozenset()) -> list[int]:
    pool = [i for i in range(sc.n) if i not in exclude]
    return sorted(sc.sim.rng.sample(pool, int(round(fraction * sc.n))))


def _attack_run(
    p: RunParams, progress: Progress, make: Callable[[], GossipBehaviour], label: str
) -> tuple[GossipScenario, set[PeerId], Callable[[], None]]:
    cfg = _gossip_config(p, attack_score_params(p.activation))
    sc = _scenario(p, progress, cfg)
    bad = _pick(sc, p.attackers)
    sc.build(behaviours={i: make() for i in bad}, edges=_edges(p, progress))
    bad_ids = {sc.sim.nodes[i].peer_id for i in bad}
    honest = sc.honest()
    sim = sc.sim

    def sample() -> None:
        if int(sim.now) % 2 == 0:
            sim.metrics.sample(f"{label} mesh share", sim.now, sim.mesh_share(honest, bad_ids))

    return sc, bad_ids, sample


def gossip_sybil(p: RunParams, progress: Progress) -> tuple[GossipScenario, Figures]:
    """Silent Sybils from the start; a steady stream at ``rate``: delivery before scoring
    (messages published during the activation window) and after (the rest)."""
    sc, bad_ids, sample = _attack_run(p, progress, SilentSybil, "sybil")
    honest = sc.honest()
    share_start = sc.sim.mesh_share(honest, bad_ids)
    early_span = p.activation + 3.0
    duration = max(early_span + p.messages / p.rate, 2 * early_span)
    recs = sc.stream(duration, p.rate, "sybil", every=sample)
    early = [r for r in recs if r.t0 < sc.built_at + early_span]
    late = [r for r in recs if r.t0 >= sc.built_at + early_span]
    return sc, {
        "sybils": len(bad_ids),
        "fraction": p.attackers,
        "sybil_mesh_share_start": share_start,
        "sybil_mesh_share_end": sc.sim.mesh_share(honest, bad_ids),
        "before_scoring": delivery_figures(sc, early, window=p.window, honest_paths=True),
        "after_scoring": delivery_figures(sc, late, window=p.window, honest_paths=True),
        "counters": _counters(sc),
    }


def gossip_flash(p: RunParams, progress: Progress) -> tuple[GossipScenario, Figures]:
    """Covert flash attack: Sybils forward honestly until ``flash_at``, then go silent."""
    flash_abs = 5.0 + p.flash_at  # build() warms up 5 s

    sc, bad_ids, sample = _attack_run(p, progress, lambda: FlashSybil(flash_abs), "flash")
    honest = sc.honest()
    after = p.activation + 20.0
    recs = sc.stream(p.flash_at + after, p.rate, "flash", every=sample)
    ratios = per_message(sc, recs, p.window)
    for rec, r in zip(recs, ratios, strict=True):
        sc.sim.metrics.sample("delivery within window", rec.t0, r)
    before = [r for rec, r in zip(recs, ratios, strict=True) if rec.t0 < flash_abs]
    post = [(rec.t0, r) for rec, r in zip(recs, ratios, strict=True) if rec.t0 >= flash_abs]
    worst = min((r for _, r in post), default=math.nan)
    # recovered: the first publish time from which every later message is above 99.9 %
    recovered_at = None
    for k in range(len(post)):
        if all(r >= 0.999 for _, r in post[k:]):
            recovered_at = post[k][0]
            break
    hb = sc.sim.config.heartbeat_interval
    return sc, {
        "sybils": len(bad_ids),
        "fraction": p.attackers,
        "flash_at": flash_abs,
        "min_delivery_before_flash": min(before, default=math.nan),
        "min_delivery_after_flash": worst,
        "recovery_s": None if recovered_at is None else max(0.0, recovered_at - flash_abs),
        "recovery_target_s": p.activation + 3 * hb,
        "sybil_mesh_share_at_end": sc.sim.mesh_share(honest, bad_ids),
        "before_flash": delivery_figures(
            sc, [r for r in recs if r.t0 < flash_abs], window=p.window, bound=False),
        "after_flash": delivery_figures(
            sc, [r for r in recs if r.t0 >= flash_abs], window=p.window, honest_paths=True),
        "counters": _counters(sc),
    }


def gossip_eclipse(p: RunParams, progress: Progress) -> tuple[GossipScenario, Figures]:
    """``4 * degree`` silent Sybils connect to one target, which dialed ``keep`` honest peers."""
    keep = 4
    n_sybil = 4 * p.degree
    n_honest = p.nodes - n_sybil
    if n_honest <= p.degree + 1:
        raise ValueError(f"eclipse needs more than {n_sybil + p.degree + 1} nodes")
    cfg = _gossip_config(p, attack_score_params(p.activation))
    sc = _scenario(p, progress, cfg)
    edges = regular_edges(n_honest, p.degree, p.seed)
    target = 0
    tn = sorted(v if u == target else u for u, v in edges if target in (u, v))
    kept = tn[:keep]
    edges = [(u, v) for u, v in edges if target not in (u, v)]
    sybils = list(range(n_honest, p.nodes))
    sc.build(behaviours={i: SilentSybil() for i in sybils}, edges=edges, warmup=0.0)
    sim = sc.sim
    t_node = sim.nodes[target]
    for j in kept:
        sim.connect(t_node, sim.nodes[j])  # the target dialed these (outbound)
    for s in sybils:
        sim.connect(sim.nodes[s], t_node)  # inbound to the target
    bad_ids = {sim.nodes[i].peer_id for i in sybils}
    sc.run(5.0, "warm-up")
    sc.built_at = sc.now
    share_start = sim.mesh_share([t_node], bad_ids)

    def sample() -> None:
        sim.metrics.sample("target mesh share", sim.now, sim.mesh_share([t_node], bad_ids))

    early_span = p.activation + 3.0
    duration = max(early_span + p.messages / p.rate, 2 * early_span)
    recs = sc.stream(duration, p.rate, "eclipse", every=sample)
    early = [r for r in recs if r.t0 < sc.built_at + early_span]
    late = [r for r in recs if r.t0 >= sc.built_at + early_span]
    return sc, {
        "sybils": n_sybil,
        "target_honest_links": keep,
        "target_mesh_sybil_share_start": share_start,
        "target_mesh_sybil_share_end": sim.mesh_share([t_node], bad_ids),
        "target_before_scoring": delivery_figures(
            sc, early, nodes=[t_node], window=p.window, honest_paths=True),
        "target_after_scoring": delivery_figures(
            sc, late, nodes=[t_node], window=p.window, honest_paths=True),
        "others_after_scoring": delivery_figures(sc, late, window=p.window, bound=False),
        "counters": _counters(sc),
    }


def gossip_spam(p: RunParams, progress: Progress) -> tuple[GossipScenario, Figures]:
    """One node publishes invalid messages (5/s for 30 s, ``extra["spam_for"]``) next to an
    honest stream."""
    cfg = _gossip_config(p, attack_score_params(p.activation))
    sc = _scenario(p, progress, cfg)
    sc.build(edges=_edges(p, progress))
    sim = sc.sim
    spammer = sim.nodes[sim.rng.randrange(sc.n)]
    spammer.role = "spammer"
    neighbours = [sim.nodes[i] for i in spammer.neighbours]
    graylist = cfg.thresholds.graylist_threshold
    spam: list[MsgRecord] = []
    spam_rate, spam_for = 5.0, float(p.extra.get("spam_for", 30.0))
    t0 = sc.now
    for i in range(int(spam_rate * spam_for)):
        sim.loop.call_at(t0 + i / spam_rate,
                         lambda: spam.append(sim.publish(spammer, sc.msg_size, "spam", True)))
    all_gray_at: list[float] = []

    def sample() -> None:
        gray = sum(1 for n in neighbours if n.core.peer_score(spammer.peer_id, sim.now) < graylist)
        share = gray / max(1, len(neighbours))
        sim.metrics.sample("neighbours graylisting the spammer", sim.now, share)
        if share == 1.0 and not all_gray_at:
            all_gray_at.append(sim.now)

    pubs = [n for n in sc.honest() if n is not spammer]
    recs = sc.stream(spam_for + 5.0, p.rate, "honest", publishers=pubs, every=sample)
    for rec in spam:
        sim.metrics.sample("nodes validating each spam message", rec.t0, rec.validations)
    gray_t = all_gray_at[0] if all_gray_at else None
    after = [r for r in spam if gray_t is not None and r.t0 >= gray_t]
    honest_nodes = [n for n in sc.honest() if n is not spammer]
    return sc, {
        "spammer": spammer.idx,
        "spammer_neighbours": len(neighbours),
        "spam_messages": len(spam),
        "all_neighbours_graylist_after_s": None if gray_t is None else gray_t - t0,
        "spam_validations_total": sum(r.validations for r in spam),
        "spam_validations_first_message": spam[0].validations if spam else 0,
        "spam_validations_after_graylist": sum(r.validations for r in after),
        "spam_validations_possible_after_graylist": len(after) * len(neighbours),
        "spam_delivered_anywhere": sum(
            1 for r in spam for n in honest_nodes if r.first[n.idx] < INF),
        "honest_delivery": delivery_figures(sc, recs, nodes=honest_nodes, window=p.window),
        "counters": _counters(sc),
    }


GOSSIP_SCENARIOS: dict[str, Callable[[RunParams, Progress], tuple[GossipScenario, Figures]]] = {
    "gossip": gossip,
    "gossip-sybil": gossip_sybil,
    "gossip-flash": gossip_flash,
    "gossip-eclipse": gossip_eclipse,
    "gossip-spam": gossip_spam,
}
