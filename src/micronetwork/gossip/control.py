"""Handling of gossipsub control messages: IHAVE, IWANT, GRAFT, PRUNE (with PX), IDONTWANT.

Rules (go-libp2p-pubsub's, which the v1.1 spec describes):

* IHAVE / IWANT are ignored from peers under the gossip threshold. From one peer per heartbeat
  we act on at most ``max_ihave_messages`` IHAVEs and ask for at most ``max_ihave_length`` ids;
  one id of every IWANT we send is a *promise* the peer must keep within
  ``iwant_followup_time`` (broken promises cost P7 at the heartbeat). An IWANT is answered from
  the mcache, at most ``gossip_retransmission`` times per message and peer.
* GRAFT for a topic we are not in is ignored (no PRUNE, no PX, so as not to leak peers). GRAFT
  from a peer that did not SUBSCRIBE, that is backing off (P7, doubled within
  ``graft_flood_threshold`` of the PRUNE), that scores below zero, or from an inbound peer when
  the mesh already has ``d_hi`` peers, is answered with PRUNE (PX only to well-behaved peers).
* PRUNE removes the peer from the mesh (P3b) and starts the backoff it names (or ours); its PX
  peers are dialed only if the pruning peer scores at least ``accept_px_threshold``.
* IDONTWANT ids are remembered for ``idontwant_ttl_heartbeats``, at most
  ``max_idontwant_messages`` per peer and heartbeat.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..commands import Dial
from ..identity.peerid import PeerId
from .discovery import note_heard
from .messages import RPC, Control, Graft, IDontWant, IHave, IWant, PeerExchange, Prune, PubMessage

if TYPE_CHECKING:
    from .peer_state import PeerState
    from .router import GossipCore

__all__ = ["make_prune", "on_control"]


def on_control(core: GossipCore, peer: PeerId, st: PeerState, ctl: Control, now: float) -> None:
    iwant = _on_ihave(core, peer, st, ctl.ihave, now) if ctl.ihave else ()
    msgs = _on_iwant(core, peer, ctl.iwant, now) if ctl.iwant else ()
    prunes = _on_graft(core, peer, st, ctl.graft, now) if ctl.graft else ()
    if ctl.prune:
        _on_prune(core, peer, ctl.prune, now)
    if ctl.idontwant:
        _on_idontwant(core, st, ctl.idontwant)
    if iwant or msgs or prunes:
        control = Control(iwant=(IWant(tuple(iwant)),) if iwant else (), prune=tuple(prunes))
        core.send_rpc(peer, RPC(publish=tuple(msgs), control=control))


def _on_ihave(
    core: GossipCore, peer: PeerId, st: PeerState, ihaves: tuple[IHave, ...], now: float
) -> list[bytes]:
    cfg = core.config
    if core.peer_score(peer, now) < cfg.thresholds.gossip_threshold:
        core.counters["ihave_ignored_score"] += 1
        return []
    st.ihaves += 1
    if st.ihaves > cfg.max_ihave_messages or st.iasked >= cfg.max_ihave_length:
        core.counters["ihave_ignored_flood"] += 1
        return []
    want: dict[bytes, None] = {}
    for ih in ihaves:
        if ih.topic not in core.mesh:
            continue
        core.topic_counter(ih.topic)["ihave_received"] += 1
        note_heard(st, ih.topic, core.tick)
        for mid in ih.message_ids:
            if mid not in core.seen:
                want[mid] = None
    if not want:
        return []
    ids = list(want)
    core.rng.shuffle(ids)
    ids = ids[: cfg.max_ihave_length - st.iasked]
    st.iasked += len(ids)
    promised = core.promises.setdefault(core.rng.choice(ids), {})
    promised.setdefault(peer, now + cfg.iwant_followup_time)
    core.counters["iwant_sent"] += 1
    return ids


def _on_iwant(
    core: GossipCore, peer: PeerId, iwants: tuple[IWant, ...], now: float
) -> list[PubMessage]:
    if core.peer_score(peer, now) < core.config.thresholds.gossip_threshold:
        core.counters["iwant_ignored_score"] += 1
        return []
    out = []
    for iw in iwants:
        for mid in iw.message_ids:
            msg, n = core.mcache.get_for_peer(mid, peer)
            if msg is None:
                continue
            if n > core.config.gossip_retransmission:
                core.counters["iwant_retransmission_limit"] += 1
                continue
            core.topic_counter(msg.topic)["iwant_received"] += 1
            out.append(msg)
    return out


def _on_graft(
    core: GossipCore, peer: PeerId, st: PeerState, grafts: tuple[Graft, ...], now: float
) -> list[Prune]:
    cfg = core.config
    score = core.peer_score(peer, now)
    prune: list[str] = []
    do_px = cfg.do_px
    for g in grafts:
        topic = g.topic
        mesh = core.mesh.get(topic)
        if mesh is None:
            do_px = False  # unknown topic: do not leak our peers
            continue
        if peer in mesh:
            continue
        if topic not in st.topics:  # a GRAFT must follow the peer's SUBSCRIBE
            core.counters["graft_unsubscribed"] += 1
            do_px = False
            prune.append(topic)
            continue
        expire = core.backoff.get(topic, {}).get(peer)
        if expire is not None and now < expire:
            core.counters["graft_during_backoff"] += 1
            if core.score is not None:
                core.score.add_penalty(peer, 1)
                if now < expire + cfg.graft_flood_threshold - cfg.prune_backoff:
                    core.score.add_penalty(peer, 1)
            do_px = False
            core.add_backoff(peer, topic, now)
            prune.append(topic)
            continue
        if score < 0 or (len(mesh) >= cfg.d_hi and not st.outbound):
            do_px = do_px and score >= 0
            core.add_backoff(peer, topic, now)
            prune.append(topic)
            continue
        mesh.add(peer)
        if core.score is not None:
            core.score.graft(peer, topic, now)
    return [make_prune(core, peer, t, do_px, now) for t in prune]


def _on_prune(core: GossipCore, peer: PeerId, prunes: tuple[Prune, ...], now: float) -> None:
    for pr in prunes:
        mesh = core.mesh.get(pr.topic)
        if mesh is None:
            continue
        if peer in mesh:
            mesh.discard(peer)
            if core.score is not None:
                core.score.prune(peer, pr.topic, now)
        core.add_backoff(peer, pr.topic, now, float(pr.backoff or core.config.prune_backoff))
        if pr.peers:
            if core.peer_score(peer, now) >= core.config.thresholds.accept_px_threshold:
                _px(core, pr.peers)
            else:
                core.counters["px_ignored"] += 1


def _px(core: GossipCore, peers: tuple[PeerExchange, ...]) -> None:
    for px in peers[: core.config.prune_peers]:
        if not 2 <= len(px.peer_id) <= 128:
            continue
        pid = PeerId(px.peer_id)
        if pid != core.local_id and pid not in core.peers:
            core.counters["px_dials"] += 1
            core.command(Dial(pid, ()))


def _on_idontwant(core: GossipCore, st: PeerState, idws: tuple[IDontWant, ...]) -> None:
    for idw in idws:
        for mid in idw.message_ids:
            if st.idontwants >= core.config.max_idontwant_messages:
                core.counters["idontwant_ignored_flood"] += 1
                return
            st.idontwants += 1
            st.dontwant[mid] = core.tick
            core.counters["idontwant_received"] += 1


def make_prune(
    core: GossipCore, peer: PeerId, topic: str, do_px: bool, now: float, unsubscribe: bool = False
) -> Prune:
    cfg = core.config
    backoff = cfg.unsubscribe_backoff if unsubscribe else cfg.prune_backoff
    core.add_backoff(peer, topic, now, backoff)
    peers: tuple[PeerExchange, ...] = ()
    if do_px:
        cands = [
            p for p in core.topics.get(topic, ()) if p != peer and core.peer_score(p, now) >= 0
        ]
        cands.sort()
        picked = core.rng.sample(cands, min(cfg.prune_peers, len(cands)))
        peers = tuple(PeerExchange(bytes(p)) for p in picked)
    return Prune(topic, peers, int(backoff))
