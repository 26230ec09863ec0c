"""Peer scoring, gossipsub v1.1 (P1-P7), with decay.

Theory of operation. The router tells the scorer what it sees: a peer joined or left a mesh
(``graft``/``prune``), a message id first arrived and is being validated (``validate``), a peer
delivered a message that then proved valid (``deliver``), invalid (``reject``) or uninteresting
(``ignore``), a peer sent a copy we already had (``duplicate``), a peer misbehaved
(``add_penalty``). Per topic with parameters, a peer has

* P1 time in mesh (quanta, capped), P2 first deliveries (capped, decaying),
* P3 mesh delivery deficit: after ``activation`` seconds in the mesh, a peer that delivered
  fewer than ``threshold`` messages (first or within ``window`` of the first) scores
  ``-(threshold - deliveries)^2`` times the weight; P3b keeps that deficit as a sticky penalty
  when the peer leaves the mesh,
* P4 invalid deliveries, squared (the spec's sign: the weight is negative; py-libp2p gets this
  wrong and rewards invalid messages),

and, across topics, P5 the application's score (the reputation layer's hook), P6 the square of
the surplus of peers sharing its IP over a threshold, P7 the square of the behaviour penalty
over a threshold (GRAFT during backoff, broken IWANT promises). Counters decay every
``decay_interval``. Messages whose signature failed penalise the sender (P4) but leave no
delivery record: their id may be forged to poison the real message.
"""

from __future__ import annotations

from ..identity.peerid import PeerId
from .config import PeerScoreParams, TopicScoreParams, _zero

__all__ = ["PeerScore"]

_PENDING, _VALID, _INVALID, _IGNORED = range(4)


class _TopicStats:
    __slots__ = ("params", "in_mesh", "graft_time", "first", "mesh", "failure", "invalid")

    def __init__(self, params: TopicScoreParams) -> None:
        self.params = params  # the topic's parameters, looked up once
        self.in_mesh = False
        self.graft_time = 0.0
        self.first = 0.0
        self.mesh = 0.0
        self.failure = 0.0
        self.invalid = 0.0


class _PeerStats:
    __slots__ = ("connected", "expire", "topics", "ip", "penalty")

    def __init__(self) -> None:
        self.connected = True
        self.expire = 0.0
        self.topics: dict[str, _TopicStats] = {}
        self.ip: str | None = None
        self.penalty = 0.0


class _Delivery:
    __slots__ = ("status", "validated", "peers", "expire")

    def __init__(self, expire: float) -> None:
        self.status = _PENDING
        self.validated = 0.0
        self.peers: set[PeerId] = set()
        self.expire = expire


class PeerScore:
    def __init__(self, params: PeerScoreParams, delivery_ttl: float = 120.0) -> None:
        self.params = params
        self.delivery_ttl = delivery_ttl
        self._peers: dict[PeerId, _PeerStats] = {}
        self._ips: dict[str, set[PeerId]] = {}
        self._deliveries: dict[bytes, _Delivery] = {}

    # == peers =================================================================================

    def add_peer(self, peer: PeerId, ip: str | None) -> None:
        st = self._peers.get(peer)
        if st is None:
            st = self._peers[peer] = _PeerStats()
        st.connected = True
        self._set_ip(peer, st, ip)

    def remove_peer(self, peer: PeerId, now: float) -> None:
        st = self._peers.get(peer)
        if st is None:
            return
        for topic, ts in st.topics.items():
            if ts.in_mesh:
                self.prune(peer, topic, now)
            ts.first = 0.0  # no credit kept across connections (as go)
        if self.score(peer, now) > 0:
            self._forget(peer, st)
            return
        st.connected = False
        st.expire = now + self.params.retain_score

    def _forget(self, peer: PeerId, st: _PeerStats) -> None:
        self._set_ip(peer, st, None)
        del self._peers[peer]

    def _set_ip(self, peer: PeerId, st: _PeerStats, ip: str | None) -> None:
        if st.ip == ip:
            return
        if st.ip is not None:
            group = self._ips.get(st.ip)
            if group is not None:
                group.discard(peer)
                if not group:
                    del self._ips[st.ip]
        st.ip = ip
        if ip is not None:
            self._ips.setdefault(ip, set()).add(peer)

    def _topic(self, peer: PeerId, topic: str) -> _TopicStats | None:
        st = self._peers.get(peer)
        if st is None:
            return None
        ts = st.topics.get(topic)
        if ts is None:
            tp = self.params.topic(topic)
            if tp is None:
                return None
            ts = st.topics[topic] = _TopicStats(tp)
        return ts

    def graft(self, peer: PeerId, topic: str, now: float) -> None:
        ts = self._topic(peer, topic)
        if ts is not None:
            ts.in_mesh = True
            ts.graft_time = now
            ts.mesh = 0.0

    def prune(self, peer: PeerId, topic: str, now: float) -> None:
        ts = self._topic(peer, topic)
        tp = self.params.topic(topic)
        if ts is None or tp is None or not ts.in_mesh:
            return
        active = now - ts.graft_time > tp.mesh_message_deliveries_activation
        if active and ts.mesh < tp.mesh_message_deliveries_threshold:
            deficit = tp.mesh_message_deliveries_threshold - ts.mesh
            ts.failure += deficit * deficit
        ts.in_mesh = False

    def add_penalty(self, peer: PeerId, count: float = 1.0) -> None:
        st = self._peers.get(peer)
        if st is not None:
            st.penalty += count

    # == messages ==============================================================================

    def validate(self, msg_id: bytes, now: float) -> None:
        if msg_id not in self._deliveries:
            self._deliveries[msg_id] = _Delivery(now + self.delivery_ttl)

    def deliver(self, peer: PeerId, msg_id: bytes, topic: str, now: float) -> None:
        rec = self._record(msg_id, now)
        rec.status = _VALID
        rec.validated = now
        self._first_delivery(peer, topic)
        for other in rec.peers:
            if other != peer:
                self._mesh_delivery(other, topic)
        rec.peers.add(peer)

    def reject(self, peer: PeerId, msg_id: bytes, topic: str, now: float) -> None:
        rec = self._record(msg_id, now)
        rec.status = _INVALID
        self._invalid(peer, topic)
        for other in rec.peers:
            if other != peer:
                self._invalid(other, topic)
        rec.peers.clear()

    def reject_unsigned(self, peer: PeerId, topic: str) -> None:
        """A bad or missing signature: penalise the sender, remember nothing about the id."""
        self._invalid(peer, topic)

    def ignore(self, msg_id: bytes, now: float) -> None:
        rec = self._record(msg_id, now)
        rec.status = _IGNORED
        rec.peers.clear()

    def duplicate(self, peer: PeerId, msg_id: bytes, topic: str, now: float) -> None:
        rec = self._deliveries.get(msg_id)
        if rec is None or peer in rec.peers:
            return
        if rec.status == _PENDING:
            rec.peers.add(peer)
        elif rec.status == _VALID:
            rec.peers.add(peer)
            tp = self.params.topic(topic)
            if tp is not None and now <= rec.validated + tp.mesh_message_deliveries_window:
                self._mesh_delivery(peer, topic)
        elif rec.status == _INVALID:
            self._invalid(peer, topic)

    def _record(self, msg_id: bytes, now: float) -> _Delivery:
        rec = self._deliveries.get(msg_id)
        if rec is None:
            rec = self._deliveries[msg_id] = _Delivery(now + self.delivery_ttl)
        return rec

    def _first_delivery(self, peer: PeerId, topic: str) -> None:
        ts = self._topic(peer, topic)
        tp = self.params.topic(topic)
        if ts is None or tp is None:
            return
        ts.first = min(ts.first + 1, tp.first_message_deliveries_cap)
        if ts.in_mesh:
            ts.mesh = min(ts.mesh + 1, tp.mesh_message_deliveries_cap)

    def _mesh_delivery(self, peer: PeerId, topic: str) -> None:
        ts = self._topic(peer, topic)
        tp = self.params.topic(topic)
        if ts is not None and tp is not None and ts.in_mesh:
            ts.mesh = min(ts.mesh + 1, tp.mesh_message_deliveries_cap)

    def _invalid(self, peer: PeerId, topic: str) -> None:
        ts = self._topic(peer, topic)
        if ts is not None:
            ts.invalid += 1

    # == score and decay =======================================================================

    def score(self, peer: PeerId, now: float) -> float:
        st = self._peers.get(peer)
        if st is None:
            return 0.0
        p = self.params
        total = 0.0
        # Hot path (every RPC is checked against the graylist): terms that are zero are
        # skipped, which leaves the sum unchanged; the order of the additions is the spec's.
        for ts in st.topics.values():
            tp = ts.params
            s = 0.0
            if ts.in_mesh:
                in_mesh = now - ts.graft_time
                p1 = in_mesh / tp.time_in_mesh_quantum
                if p1 > tp.time_in_mesh_cap:
                    p1 = tp.time_in_mesh_cap
                s += p1 * tp.time_in_mesh_weight
                if (
                    in_mesh > tp.mesh_message_deliveries_activation
                    and ts.mesh < tp.mesh_message_deliveries_threshold
                ):
                    deficit = tp.mesh_message_deliveries_threshold - ts.mesh
                    s += deficit * deficit * tp.mesh_message_deliveries_weight
            if ts.first:
                s += ts.first * tp.first_message_deliveries_weight
            if ts.failure:
                s += ts.failure * tp.mesh_failure_penalty_weight
            if ts.invalid:
                s += ts.invalid * ts.invalid * tp.invalid_message_deliveries_weight
            total += s * tp.topic_weight
        if p.topic_score_cap > 0 and total > p.topic_score_cap:
            total = p.topic_score_cap
        if p.app_specific_score is not _zero:
            total += p.app_specific_score(peer) * p.app_specific_weight
        if st.ip is not None and p.ip_scored(st.ip):
            surplus = len(self._ips.get(st.ip, ())) - p.ip_colocation_factor_threshold
            if surplus > 0:
                total += surplus * surplus * p.ip_colocation_factor_weight
        excess = st.penalty - p.behaviour_penalty_threshold
        if excess > 0:
            total += excess * excess * p.behaviour_penalty_weight
        return total

    def decay(self, now: float) -> None:
        """One decay interval passed: decay counters, forget retained peers that expired."""
        p = self.params
        zero = p.decay_to_zero
        for peer, st in list(self._peers.items()):
            if not st.connected and st.expire <= now:
                self._forget(peer, st)
                continue
            for ts in st.topics.values():  # zero counters stay zero: skipped (hot path)
                tp = ts.params
                if ts.first:
                    ts.first = _decayed(ts.first, tp.first_message_deliveries_decay, zero)
                if ts.mesh:
                    ts.mesh = _decayed(ts.mesh, tp.mesh_message_deliveries_decay, zero)
                if ts.failure:
                    ts.failure = _decayed(ts.failure, tp.mesh_failure_penalty_decay, zero)
                if ts.invalid:
                    ts.invalid = _decayed(ts.invalid, tp.invalid_message_deliveries_decay, zero)
            if st.penalty:
                st.penalty = _decayed(st.penalty, p.behaviour_penalty_decay, zero)
        d = self._deliveries
        while d:
            key = next(iter(d))
            if d[key].expire > now:
                break
            del d[key]

    def known(self, peer: PeerId) -> bool:
        return peer in self._peers


def _decayed(value: float, factor: float, zero: float) -> float:
    value *= factor
    return 0.0 if value < zero else value
