"""Gossip scenarios: a topic on N nodes over a topology, honest and under attack.

Theory of operation. :class:`GossipScenario` (:mod:`.gossip_harness`) wraps a
:class:`~.gossip.GossipSimulator`: it creates the nodes (honest, or with a
:class:`~.gossip.GossipBehaviour` for chosen indices), connects them along a graph (random
regular of ``degree`` by default; or given edges, e.g. the routing tables of a Kademlia network
built first, ``RunParams.gossip_dht``), subscribes every node to one topic at a random moment of
the first second and lets the meshes form. Then it publishes a stream of messages from random
honest nodes and measures, per message and honest node, the delivery time and the copies
received; :func:`delivery_figures` (:mod:`.gossip_figures`) compares delivery times with the
shortest-path bound (Dijkstra from the publisher over link latency + one validation per hop, on
the same connections).

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
Every scenario reports the connections its cores added (:func:`dial_figures`: PX dials and
topic discovery); the Sybil scenario also counts reachability over the graph as built
(:func:`initial_reach`), next to ``delivery_figures``' over the connections at the end.

This module holds the named scenarios; it re-exports the harness and the figures, so everything
above is importable from here.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from ..gossip import GossipConfig, PeerScoreParams
from ..identity.peerid import PeerId
from .crypto import CryptoModel
from .gossip import INF, FlashSybil, GossipBehaviour, MsgRecord, SilentSybil
from .gossip_figures import _counters, delivery_figures
from .gossip_figures import per_message as per_message
from .gossip_harness import Figures, GossipScenario, Progress, attack_score_params
from .gossip_harness import regular_edges as regular_edges
from .models import NetworkModel

if TYPE_CHECKING:
    from .scenarios import RunParams

__all__ = [
    "GOSSIP_SCENARIOS",
    "GossipScenario",
    "attack_score_params",
    "delivery_figures",
    "dial_figures",
    "initial_reach",
]


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
    return sc, {"gossip": figs, "dials": dial_figures(sc), "counters": _counters(sc)}


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
    dials = bool(p.extra.get("sybil_dials", False))
    sc, bad_ids, sample = _attack_run(p, progress, lambda: SilentSybil(dials=dials), "sybil")
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
        "before_scoring": {**delivery_figures(sc, early, window=p.window, honest_paths=True),
                           **initial_reach(sc, early, p.window)},
        "after_scoring": {**delivery_figures(sc, late, window=p.window, honest_paths=True),
                          **initial_reach(sc, late, p.window)},
        "dials": dial_figures(sc),
        "counters": _counters(sc),
    }


def _honest_reach(source: int, adj: Sequence[Sequence[int]], honest: set[int]) -> set[int]:
    """Nodes an all-honest path over ``adj`` joins to ``source`` (breadth first)."""
    seen = {source}
    todo = [source]
    while todo:
        u = todo.pop()
        for v in adj[u]:
            if v in honest and v not in seen:
                seen.add(v)
                todo.append(v)
    return seen


def initial_reach(sc: GossipScenario, recs: Sequence[MsgRecord], window: float) -> Figures:
    """Reachability over the graph as built, before any dial of the cores (``delivery_figures``
    counts it over the connections at the end of the run), and delivery within ``window`` of
    the pairs it reaches."""
    honest = {n.idx for n in sc.honest()}
    pairs = reach = ok = 0
    cache: dict[int, set[int]] = {}
    for rec in recs:
        seen = cache.get(rec.publisher)
        if seen is None:
            seen = cache[rec.publisher] = _honest_reach(rec.publisher, sc.initial_neighbours,
                                                        honest)
        for i in honest:
            if i == rec.publisher:
                continue
            pairs += 1
            if i in seen:
                reach += 1
                ok += rec.first[i] - rec.t0 <= window
    return {"reachable_initial": reach / pairs if pairs else math.nan,
            "delivery_within_window_of_reachable_initial": ok / reach if reach else math.nan}


def dial_figures(sc: GossipScenario) -> Figures:
    """Connections the cores added (PX, topic discovery) and honest nodes with no honest
    neighbour, on the graph as built and at the end."""
    sim = sc.sim
    c = sim.metrics.counters
    honest = {n.idx for n in sc.honest()}

    def isolated(adj: Sequence[Sequence[int]]) -> int:
        return sum(1 for i in honest if not any(j in honest for j in adj[i]))

    final = [n.neighbours for n in sim.nodes]
    return {
        "find_peers": c["find_peers"], "find_peers_found": c["find_peers_found"],
        "connections_found": c["connections_found"], "px_dials": c["px_dials"],
        "px_dials_skipped": c["px_dials_skipped"], "connections_px": c["connections_px"],
        "mean_degree_initial": sum(map(len, sc.initial_neighbours)) / max(1, sc.n),
        "mean_degree_final": sum(map(len, final)) / max(1, sc.n),
        "honest_without_honest_neighbour_initial": isolated(sc.initial_neighbours),
        "honest_without_honest_neighbour_final": isolated(final),
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
        "dials": dial_figures(sc),
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
        "dials": dial_figures(sc),
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
    # Its neighbours graylist it and stop talking to it, so its core's topic discovery would
    # find it new peers, each of which validates a message or two before graylisting it too.
    # A spammer that hunts for new victims is another attack; this one keeps its neighbours.
    spammer.core.config = replace(spammer.core.config, discovery=False)
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
        "dials": dial_figures(sc),
        "counters": _counters(sc),
    }


GOSSIP_SCENARIOS: dict[str, Callable[[RunParams, Progress], tuple[GossipScenario, Figures]]] = {
    "gossip": gossip,
    "gossip-sybil": gossip_sybil,
    "gossip-flash": gossip_flash,
    "gossip-eclipse": gossip_eclipse,
    "gossip-spam": gossip_spam,
}
