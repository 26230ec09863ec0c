"""The gossipsub heartbeat: mesh and fanout maintenance, gossip emission, cache shifting.

Rules applied every ``heartbeat_interval``, per subscribed topic, in this order (go-libp2p's):

1. prune mesh peers with a negative score (no PX to them);
2. fewer than ``d_lo``: graft up to ``d`` from the topic's peers that are not backing off and
   score >= 0, those recently heard from first (:func:`.discovery.prefer_active`);
3. more than ``d_hi``: keep the ``d_score`` best scored, fill up to ``d`` at random, making sure
   ``d_out`` of those kept are outbound; prune the rest;
4. at least ``d_lo`` but fewer than ``d_out`` outbound: graft outbound peers;
5. every ``opportunistic_graft_ticks``: if the median mesh score is under the threshold,
   graft up to ``opportunistic_graft_peers`` peers scoring above the median;
6. below ``d_lo`` with no peer left to graft, or fewer than ``d_lo`` mesh peers and candidates
   heard from lately while the topic has traffic: topic discovery (:mod:`.discovery`,
   ``FindPeers`` with a backoff);
7. IHAVE the ids of the last ``mcache_gossip`` windows to ``max(d_lazy, gossip_factor * n)``
   non-mesh peers scoring at least the gossip threshold.

Fanout topics unused for ``fanout_ttl`` are dropped, the others refilled to ``d``. GRAFT,
PRUNE and IHAVE for one peer leave in one RPC. Broken IWANT promises (asked, never delivered
within ``iwant_followup_time``) cost the peer one behaviour penalty (P7) each.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..identity.peerid import PeerId
from . import control as _control
from . import discovery as _discovery
from .messages import RPC, Control, Graft, IHave, Prune

if TYPE_CHECKING:
    from .router import GossipCore

__all__ = ["fanout_for", "heartbeat", "pick_mesh"]


class _Batch:
    __slots__ = ("graft", "prune", "ihave", "nopx")

    def __init__(self) -> None:
        self.graft: dict[PeerId, list[str]] = {}
        self.prune: dict[PeerId, list[str]] = {}
        self.ihave: dict[PeerId, list[IHave]] = {}
        self.nopx: set[PeerId] = set()


def heartbeat(core: GossipCore, now: float) -> None:
    core.tick += 1
    core.counters["heartbeats"] += 1
    scores = {p: core.peer_score(p, now) for p in core.peers}
    _housekeeping(core, now)
    batch = _Batch()
    for topic, mesh in core.mesh.items():
        _maintain_mesh(core, topic, mesh, scores, batch, now)
        if core.config.discovery:
            _discovery.check(core, topic, mesh, _candidates(core, topic, mesh, scores, now))
        _gossip(core, topic, mesh, scores, batch)
    _maintain_fanout(core, scores, batch, now)
    _flush(core, batch, now)
    core.mcache.shift()
    core.seen.sweep(now)


def _housekeeping(core: GossipCore, now: float) -> None:
    cfg = core.config
    slack = 2 * cfg.heartbeat_interval
    for topic, table in list(core.backoff.items()):
        for p in [p for p, exp in table.items() if exp + slack < now]:
            del table[p]
        if not table:
            del core.backoff[topic]
    for mid, promised in list(core.promises.items()):
        for p in [p for p, by in promised.items() if by < now]:
            del promised[p]
            core.counters["broken_promises"] += 1
            if core.score is not None and p in core.peers:
                core.score.add_penalty(p, 1)
        if not promised:
            del core.promises[mid]
    ttl = cfg.idontwant_ttl_heartbeats
    for st in core.peers.values():
        st.ihaves = st.iasked = st.idontwants = 0
        if st.dontwant:
            st.dontwant = {m: t for m, t in st.dontwant.items() if core.tick - t < ttl}


def _candidates(
    core: GossipCore, topic: str, exclude: set[PeerId], scores: dict[PeerId, float], now: float
) -> list[PeerId]:
    out = [
        p
        for p in core.topics.get(topic, ())
        if p not in exclude and scores.get(p, 0.0) >= 0 and not core.in_backoff(p, topic, now)
    ]
    out.sort()  # sets iterate in hash order; sort so that a seeded rng gives one result
    return out


def pick_mesh(core: GossipCore, cands: list[PeerId], k: int) -> list[PeerId]:
    """``k`` of ``cands`` (sorted) for the mesh: ``round(k * mesh_latency_share)`` with the
    lowest RTTs the driver reported, the others at random."""
    k = min(k, len(cands))
    if k <= 0:
        return []
    rtt = core.rtt
    fast_n = round(k * core.config.mesh_latency_share) if rtt else 0
    if fast_n <= 0:
        return core.rng.sample(cands, k)
    inf = float("inf")
    fast = sorted(cands, key=lambda p: rtt.get(p, inf))[:fast_n]  # stable: ties by id
    taken = set(fast)
    rest = [p for p in cands if p not in taken]
    return fast + core.rng.sample(rest, k - fast_n)


def _maintain_mesh(
    core: GossipCore,
    topic: str,
    mesh: set[PeerId],
    scores: dict[PeerId, float],
    batch: _Batch,
    now: float,
) -> None:
    cfg = core.config
    rng = core.rng

    def graft(p: PeerId) -> None:
        mesh.add(p)
        if core.score is not None:
            core.score.graft(p, topic, now)
        batch.graft.setdefault(p, []).append(topic)

    def prune(p: PeerId) -> None:
        mesh.discard(p)
        if core.score is not None:
            core.score.prune(p, topic, now)
        batch.prune.setdefault(p, []).append(topic)

    for p in sorted(mesh):
        if scores.get(p, 0.0) < 0:
            batch.nopx.add(p)
            prune(p)
    if len(mesh) < cfg.d_lo:
        cands = _candidates(core, topic, mesh, scores, now)
        active, rest = _discovery.prefer_active(core, topic, cands)
        picked = pick_mesh(core, active, cfg.d - len(mesh))
        for p in picked + pick_mesh(core, rest, cfg.d - len(mesh) - len(picked)):
            graft(p)
    elif len(mesh) > cfg.d_hi:
        ranked = sorted(mesh)
        rng.shuffle(ranked)
        ranked.sort(key=lambda p: scores.get(p, 0.0), reverse=True)
        keep, rest = ranked[: cfg.d_score], ranked[cfg.d_score :]
        picked = pick_mesh(core, sorted(rest), cfg.d - cfg.d_score)
        taken = set(picked)
        rest = picked + [p for p in rest if p not in taken]
        chosen = keep + rest[: cfg.d - cfg.d_score]
        missing = cfg.d_out - sum(core.peers[p].outbound for p in chosen)
        if missing > 0:
            spare_out = [p for p in rest[cfg.d - cfg.d_score :] if core.peers[p].outbound]
            drop_in = [p for p in reversed(chosen[cfg.d_score :]) if not core.peers[p].outbound]
            for add, drop in zip(spare_out[:missing], drop_in, strict=False):
                chosen[chosen.index(drop)] = add
        kept = set(chosen)
        for p in ranked:
            if p not in kept:
                prune(p)
    if len(mesh) >= cfg.d_lo:
        outbound = sum(core.peers[p].outbound for p in mesh)
        if outbound < cfg.d_out:
            cands = [
                p for p in _candidates(core, topic, mesh, scores, now) if core.peers[p].outbound
            ]
            for p in rng.sample(cands, min(cfg.d_out - outbound, len(cands))):
                graft(p)
    if core.tick % cfg.opportunistic_graft_ticks == 0 and len(mesh) > 1:
        ordered = sorted(scores.get(p, 0.0) for p in mesh)
        median = ordered[len(ordered) // 2]
        if median < cfg.thresholds.opportunistic_graft_threshold:
            cands = [
                p for p in _candidates(core, topic, mesh, scores, now) if scores.get(p, 0) > median
            ]
            for p in rng.sample(cands, min(cfg.opportunistic_graft_peers, len(cands))):
                core.counters["opportunistic_grafts"] += 1
                graft(p)


def _gossip(
    core: GossipCore,
    topic: str,
    exclude: set[PeerId],
    scores: dict[PeerId, float],
    batch: _Batch,
) -> None:
    cfg = core.config
    ids = core.mcache.gossip_ids(topic)
    if not ids:
        return
    threshold = cfg.thresholds.gossip_threshold
    peers = sorted(
        p
        for p in core.topics.get(topic, ())
        if p not in exclude and scores.get(p, 0.0) >= threshold
    )
    target = max(cfg.d_lazy, int(cfg.gossip_factor * len(peers)))
    tc = core.topic_counter(topic)
    for p in core.rng.sample(peers, min(target, len(peers))):
        send = ids
        if len(ids) > cfg.max_ihave_length:
            send = core.rng.sample(ids, cfg.max_ihave_length)
        batch.ihave.setdefault(p, []).append(IHave(topic, tuple(send)))
        tc["ihave_sent"] += 1


def fanout_for(core: GossipCore, topic: str, now: float) -> set[PeerId]:
    """The fanout peers of an unsubscribed topic we publish to, chosen on first use."""
    core.fanout_last[topic] = now
    fan = core.fanout.get(topic)
    if fan is None:
        threshold = core.config.thresholds.publish_threshold
        cands = sorted(
            p for p in core.topics.get(topic, ()) if core.peer_score(p, now) >= threshold
        )
        fan = core.fanout[topic] = set(core.rng.sample(cands, min(core.config.d, len(cands))))
    return fan


def _maintain_fanout(
    core: GossipCore, scores: dict[PeerId, float], batch: _Batch, now: float
) -> None:
    cfg = core.config
    threshold = cfg.thresholds.publish_threshold
    for topic, last in list(core.fanout_last.items()):
        if last + cfg.fanout_ttl < now:
            del core.fanout_last[topic]
            core.fanout.pop(topic, None)
    for topic, fan in core.fanout.items():
        subscribed = core.topics.get(topic, set())
        for p in [p for p in fan if p not in subscribed or scores.get(p, 0.0) < threshold]:
            fan.discard(p)
        if len(fan) < cfg.d:
            cands = sorted(p for p in subscribed if p not in fan and scores.get(p, 0) >= threshold)
            fan.update(core.rng.sample(cands, min(cfg.d - len(fan), len(cands))))
        _gossip(core, topic, fan, scores, batch)


def _flush(core: GossipCore, batch: _Batch, now: float) -> None:
    do_px = core.config.do_px
    peers = set(batch.graft) | set(batch.prune) | set(batch.ihave)
    for p in sorted(peers):
        prunes: tuple[Prune, ...] = tuple(
            _control.make_prune(core, p, t, do_px and p not in batch.nopx, now)
            for t in batch.prune.get(p, ())
        )
        control = Control(
            ihave=tuple(batch.ihave.get(p, ())),
            graft=tuple(Graft(t) for t in batch.graft.get(p, ())),
            prune=prunes,
        )
        core.send_rpc(p, RPC(control=control))
