"""GossipCore: the sans-IO gossipsub v1.1 / v1.2 router of one node.

Theory of operation. Per subscribed topic the core keeps a *mesh* of about ``d`` peers to which
it forwards every valid message in full; to other peers of the topic it only *gossips* the ids
of recent messages (IHAVE), and they pull what they miss (IWANT). The mesh is repaired every
heartbeat (:mod:`.heartbeat`): too few peers, graft; too many, prune keeping the best scored and
``d_out`` outbound ones; negative scores, prune. A pruned peer must not graft again before the
backoff; PRUNE may offer other peers (PX). Every message is signed by its author and verified
(StrictSign, :mod:`.signing`), deduplicated by id with a seen cache, validated (a synchronous
callback, or asynchronously through ``ValidateMessage`` events), delivered once to the
application and forwarded. Peer scores (:mod:`.score`) gate everything: below ``gossip`` no
gossip with the peer, below ``publish`` no flood publishing to it, below ``graylist`` its RPCs
are dropped unread. v1.2: for data over ``idontwant_threshold`` bytes we tell our mesh
peers IDONTWANT as soon as the signature checks out, and never send a message to a peer that
told us IDONTWANT for it.

Driver interface (the host driver and the simulator use only this):

* ``on_peer_connected(peer, protocols, outbound, now, ip=None)``: a connection is up and
  identify listed ``protocols``; only peers speaking ``/meshsub/1.2.0`` or ``/meshsub/1.1.0``
  take part (v1.2 features only toward 1.2 peers). ``outbound``: we dialed it (D_out).
  ``ip`` feeds the IP-colocation score (P6); without it P6 is skipped for that peer.
* ``on_peer_disconnected(peer, now)``; ``set_peer_rtt(peer, seconds)`` when a round-trip
  time is measured (optional: the mesh then prefers close peers for part of its slots).
* ``on_rpc(peer, rpc_or_bytes, now)``: one RPC frame read from the peer's stream (the driver
  strips the varint length; bytes are decoded here). Undecodable frames are counted; after
  ``bad_rpc_limit`` of them the core asks for a ``Disconnect``.
* ``on_send_dropped(peer, rpc, now)``: the driver could not deliver a ``Send`` (queue full,
  stream broken). Counted; the core itself never drops an RPC.
* ``on_timer(now)`` when ``next_deadline()`` has passed; ``drain()`` after every input.
* Commands: ``Send(peer, protocol, rpc)`` (write ``GossipCore.encode(rpc)`` on the long-lived
  outbound stream, opened on first use), ``Dial(peer, ())`` (PX: find and connect the peer),
  ``FindPeers(topic, count)`` (topic discovery: connect up to ``count`` more peers of a topic
  whose mesh is below ``d_lo`` with nobody left to graft, or that hears from too few of its
  peers, :mod:`.discovery`),
  ``Disconnect(peer, reason)``, ``Emit(event)`` with events ``Message``, ``ValidateMessage``,
  ``PeerSubscribed``, ``PeerUnsubscribed``.

Application interface: ``subscribe``, ``unsubscribe``, ``publish`` (returns the message id),
``set_validator``, ``report_validation``, ``set_hub``; views ``topic_peers``, ``mesh_peers``,
``fanout_peers``, ``topic_stats``, ``peer_score``, ``counters``.
"""

from __future__ import annotations

import heapq
import logging
import random
from collections import Counter
from collections.abc import Callable, Iterable

from ..commands import Disconnect, Emit
from ..errors import RemoteProtocolError, SignatureError, ValidationError
from ..identity.keys import KeyPair
from ..identity.peerid import PeerId
from . import control as _control
from . import heartbeat as _hb
from .caches import MessageCache, TimeCache
from .commands import GossipCommand, Send
from .config import PROTOCOL_V12, GossipConfig
from .discovery import DiscoveryWait, TopicTraffic
from .events import (
    Message,
    Outcome,
    PeerSubscribed,
    PeerUnsubscribed,
    TopicStats,
    ValidateMessage,
)
from .messages import (
    RPC,
    Control,
    Graft,
    IDontWant,
    PubMessage,
    SubOpts,
)
from .peer_state import PeerState
from .score import PeerScore
from .signing import default_msg_id, sign_message, verify_message
from .wire import decode_rpc, encode_rpc

__all__ = ["GossipCore", "Validator"]

log = logging.getLogger(__name__)

Validator = Callable[[Message], Outcome]

_TOPIC_COUNTERS = (
    "published delivered duplicates invalid ignored ihave_sent ihave_received iwant_sent "
    "iwant_received idontwant_sent idontwant_received"
).split()


class _Pending:
    __slots__ = ("msg", "event", "source", "also_from")

    def __init__(self, msg: PubMessage, event: Message, source: PeerId) -> None:
        self.msg = msg
        self.event = event
        self.source = source
        self.also_from: set[PeerId] = set()


class GossipCore:
    """One node's gossipsub router. See the module docstring."""

    encode = staticmethod(encode_rpc)
    decode = staticmethod(decode_rpc)

    def __init__(
        self,
        key: KeyPair,
        *,
        config: GossipConfig | None = None,
        rng: random.Random | None = None,
        now: float = 0.0,
    ) -> None:
        self.config = cfg = config or GossipConfig()
        self.key = key
        self.local_id = key.peer_id
        self.rng = rng or random.Random(0)
        self.msg_id = cfg.msg_id_fn or default_msg_id
        # The StrictSign check of an arriving message. A driver may swap it (the simulator
        # models signatures at scale instead of running Ed25519 for every copy).
        self.verify: Callable[[PubMessage], None] = verify_message
        self.score = PeerScore(cfg.score, cfg.seen_ttl) if cfg.score is not None else None
        self.peers: dict[PeerId, PeerState] = {}
        self.topics: dict[str, set[PeerId]] = {}  # topic -> peers subscribed to it
        self.mesh: dict[str, set[PeerId]] = {}  # our subscriptions -> mesh peers
        self.fanout: dict[str, set[PeerId]] = {}
        self.fanout_last: dict[str, float] = {}
        self.backoff: dict[str, dict[PeerId, float]] = {}
        self.discovery: dict[str, DiscoveryWait] = {}  # starved topics -> next FindPeers
        self.traffic: dict[str, TopicTraffic] = {}  # subscribed topics' traffic (discovery)
        self.delivered_tick: dict[str, int] = {}  # topic -> tick of the last peer's message
        self.promises: dict[bytes, dict[PeerId, float]] = {}  # IWANT asked: id -> peer -> by
        self.mcache = MessageCache(cfg.mcache_len, cfg.mcache_gossip)
        self.seen = TimeCache(cfg.seen_ttl)
        self.validators: dict[str, Validator | None] = {}
        self.hubs: set[str] = set()  # topics forwarded to every topic peer (set_hub)
        self.rtt: dict[PeerId, float] = {}  # round-trip times the driver reported
        self.counters: Counter[str] = Counter()
        self.dropped: Counter[PeerId] = Counter()
        self.topic_counters: dict[str, Counter[str]] = {}
        self.tick = 0
        self._pending: dict[bytes, _Pending] = {}
        self._validation_deadlines: list[tuple[float, bytes]] = []
        self._seqno = self.rng.getrandbits(40) << 16  # unique across restarts, as go's nanos
        self._out: list[GossipCommand] = []
        self.next_heartbeat = now + cfg.heartbeat_initial_delay
        self.next_decay = now + (cfg.score.decay_interval if cfg.score else 1e18)

    # == driver interface ======================================================================

    def drain(self) -> list[GossipCommand]:
        out, self._out = self._out, []
        return out

    def next_deadline(self) -> float | None:
        d = min(self.next_heartbeat, self.next_decay)
        heap = self._validation_deadlines
        while heap and heap[0][1] not in self._pending:
            heapq.heappop(heap)
        return min(d, heap[0][0]) if heap else d

    def on_timer(self, now: float) -> None:
        heap = self._validation_deadlines
        while heap and heap[0][0] <= now:
            _, mid = heapq.heappop(heap)
            if mid in self._pending:
                self.counters["validation_timeouts"] += 1
                self.report_validation(mid, Outcome.IGNORE, now)
        if self.score is not None and now >= self.next_decay:
            self.next_decay = now + self.score.params.decay_interval
            self.score.decay(now)
        if now >= self.next_heartbeat:
            self.next_heartbeat = now + self.config.heartbeat_interval
            _hb.heartbeat(self, now)

    def on_peer_connected(
        self,
        peer: PeerId,
        protocols: Iterable[str],
        outbound: bool,
        now: float,
        ip: str | None = None,
    ) -> None:
        theirs = set(protocols)
        proto = next((p for p in self.config.protocols if p in theirs), None)
        if proto is None or peer == self.local_id:
            return
        st = self.peers.get(peer)
        if st is not None:
            st.protocol, st.outbound = proto, st.outbound or outbound
            return
        self.peers[peer] = PeerState(proto, outbound, ip)
        if self.score is not None:
            self.score.add_peer(peer, ip)
        self.counters["peers_connected"] += 1
        if self.mesh:  # hello: our subscriptions
            subs = tuple(SubOpts(True, t) for t in sorted(self.mesh))
            self.send_rpc(peer, RPC(subscriptions=subs))

    def set_peer_rtt(self, peer: PeerId, rtt: float) -> None:
        """A measured round-trip time to ``peer`` (seconds): the mesh prefers low ones for
        ``mesh_latency_share`` of its slots. Forgotten when the peer disconnects."""
        if peer in self.peers and rtt >= 0:
            self.rtt[peer] = rtt

    def on_peer_disconnected(self, peer: PeerId, now: float) -> None:
        self.rtt.pop(peer, None)
        st = self.peers.pop(peer, None)
        if st is None:
            return
        for topic in st.topics:
            self.topics.get(topic, set()).discard(peer)
        for group in (*self.mesh.values(), *self.fanout.values()):
            group.discard(peer)
        if self.score is not None:
            self.score.remove_peer(peer, now)

    def on_rpc(self, peer: PeerId, rpc: RPC | bytes, now: float) -> None:
        st = self.peers.get(peer)
        if st is None:
            self.counters["rpcs_from_unknown_peers"] += 1
            return
        if self.peer_score(peer, now) < self.config.thresholds.graylist_threshold:
            self.counters["rpcs_graylisted"] += 1
            return
        if isinstance(rpc, bytes):
            try:
                rpc = decode_rpc(rpc, self.config.max_message_size)
            except RemoteProtocolError as exc:
                self._bad_rpc(peer, st, str(exc))
                return
        self.counters["rpcs_in"] += 1
        for sub in rpc.subscriptions:
            self._on_subscription(peer, st, sub, now)
        for msg in rpc.publish:
            self._on_message(peer, st, msg, now)
        if rpc.control:
            _control.on_control(self, peer, st, rpc.control, now)

    def on_bad_frame(self, peer: PeerId, reason: str, now: float) -> None:
        """The driver could not frame what ``peer`` sent (oversized length, cut frame)."""
        st = self.peers.get(peer)
        if st is None:
            self.counters["bad_frames_from_unknown_peers"] += 1
            return
        self._bad_rpc(peer, st, reason)

    def on_stream_lost(self, peer: PeerId, now: float) -> None:
        """Our outbound stream to a still-connected ``peer`` broke (and what was queued on it
        is reported dropped): the driver opens a new one on the next send. What the peer may
        have missed of our state is sent again on it: our subscriptions (the hello) and a
        GRAFT for each topic where it is in our mesh, both idempotent at the receiver; lost
        messages are recovered through IHAVE/IWANT like any other (go-libp2p likewise
        re-sends the hello when it reopens a dead peer's stream)."""
        if peer not in self.peers:
            return
        self.counters["streams_reopened"] += 1
        subs = tuple(SubOpts(True, t) for t in sorted(self.mesh))
        grafts = tuple(Graft(t) for t in sorted(self.mesh) if peer in self.mesh[t])
        if subs or grafts:
            self.send_rpc(peer, RPC(
                subscriptions=subs, control=Control(graft=grafts) if grafts else None,
            ))

    def on_send_dropped(self, peer: PeerId, rpc: RPC, now: float) -> None:
        """The driver dropped an RPC it was told to send: counted, per peer and in total."""
        self.counters["rpcs_dropped_by_driver"] += 1
        self.counters["messages_dropped_by_driver"] += len(rpc.publish)
        self.dropped[peer] += 1

    # == application interface =================================================================

    def subscribe(self, topic: str, now: float) -> None:
        if topic in self.mesh:
            return
        self._announce(topic, True)
        mesh = self.mesh[topic] = set()
        fan = self.fanout.pop(topic, set())
        self.fanout_last.pop(topic, None)
        # Sets iterate in hash order (PeerId hashes vary per process): sort before the seeded
        # shuffle, so that a seed gives one mesh.
        ok = sorted(p for p in fan if self._graftable(p, topic, now))
        more = sorted(p for p in self.topics.get(topic, ()) if p not in fan)
        more = [p for p in more if self._graftable(p, topic, now)]
        picked = ok[: self.config.d]
        picked += _hb.pick_mesh(self, more, self.config.d - len(picked))
        for p in picked:
            mesh.add(p)
            if self.score is not None:
                self.score.graft(p, topic, now)
            self.send_rpc(p, RPC(control=Control(graft=(Graft(topic),))))

    def unsubscribe(self, topic: str, now: float) -> None:
        mesh = self.mesh.pop(topic, None)
        if mesh is None:
            return
        self.discovery.pop(topic, None)
        self.traffic.pop(topic, None)
        self.delivered_tick.pop(topic, None)
        self._announce(topic, False)
        for p in mesh:
            if self.score is not None:
                self.score.prune(p, topic, now)
            prune = _control.make_prune(self, p, topic, self.config.do_px, now, unsubscribe=True)
            self.send_rpc(p, RPC(control=Control(prune=(prune,))))

    def set_validator(self, topic: str, validator: Validator | None = None) -> None:
        """``validator(message) -> Outcome`` runs synchronously; ``None`` means asynchronous:
        each message is reported as ``ValidateMessage`` and waits for ``report_validation``."""
        self.validators[topic] = validator

    def remove_validator(self, topic: str) -> None:
        self.validators.pop(topic, None)

    def set_hub(self, topic: str, on: bool = True) -> None:
        """Forward every valid message of ``topic`` to all its peers scoring at least the
        publish threshold, as flood publishing does for our own messages, not only to the mesh.

        For a topic this node is the natural centre of: the registry sets it on the topic of
        each service it serves, whose watchers connect to its providers. Without it a star of
        many watchers around one provider hears other instances' announcements only through
        the provider's mesh (``d_hi`` peers) and IHAVE gossip, seconds late or not at all.
        Costs one copy per topic peer for each message of the topic."""
        if on:
            self.hubs.add(topic)
        else:
            self.hubs.discard(topic)

    def publish(self, topic: str, data: bytes, now: float) -> bytes:
        """Sign and send ``data`` to ``topic``; returns the message id.

        Raises :class:`ValidationError` if the topic's synchronous validator does not accept it.
        """
        self._seqno += 1
        msg = sign_message(self.key, topic, data, self._seqno.to_bytes(8, "big"))
        mid = self.msg_id(msg)
        event = Message(topic, data, self.local_id, msg.seqno, mid, self.local_id)
        fn = self.validators.get(topic)
        if fn is not None and fn(event) is not Outcome.ACCEPT:
            raise ValidationError(f"own message to {topic!r} not accepted by its validator")
        self.seen.add(mid, now)
        self.mcache.put(mid, msg)
        self.topic_counter(topic)["published"] += 1
        self.counters["published"] += 1
        if topic in self.mesh:
            self.topic_counter(topic)["delivered"] += 1
            self._out.append(Emit(event))
        self._forward(msg, mid, self.local_id, now)
        return mid

    def report_validation(self, msg_id: bytes, outcome: Outcome, now: float) -> None:
        """The answer to a ``ValidateMessage``; unknown or timed-out ids are ignored."""
        p = self._pending.pop(msg_id, None)
        if p is not None:
            self._validated(p, msg_id, outcome, now)

    # == views =================================================================================

    def subscriptions(self) -> frozenset[str]:
        return frozenset(self.mesh)

    def topic_peers(self, topic: str) -> frozenset[PeerId]:
        return frozenset(self.topics.get(topic, ()))

    def mesh_peers(self, topic: str) -> frozenset[PeerId]:
        return frozenset(self.mesh.get(topic, ()))

    def fanout_peers(self, topic: str) -> frozenset[PeerId]:
        return frozenset(self.fanout.get(topic, ()))

    def peer_score(self, peer: PeerId, now: float) -> float:
        return self.score.score(peer, now) if self.score is not None else 0.0

    def scores(self, now: float) -> dict[PeerId, float]:
        return {p: self.peer_score(p, now) for p in self.peers}

    def topic_stats(self, topic: str) -> TopicStats:
        c = self.topic_counters.get(topic, Counter())
        values = {name: c[name] for name in _TOPIC_COUNTERS}
        return TopicStats(
            topic, len(self.topics.get(topic, ())), len(self.mesh.get(topic, ())), **values
        )

    # == internals: inbound ====================================================================

    def _bad_rpc(self, peer: PeerId, st: PeerState, why: str) -> None:
        self.counters["bad_rpcs"] += 1
        st.bad += 1
        log.debug("bad gossip RPC from %s: %s", peer, why)
        if st.bad == self.config.bad_rpc_limit:
            self.counters["peers_disconnected"] += 1
            self._out.append(Disconnect(peer, f"sent {st.bad} malformed gossipsub RPCs"))

    def _on_subscription(self, peer: PeerId, st: PeerState, sub: SubOpts, now: float) -> None:
        topic = sub.topic
        if sub.subscribe:
            if topic not in st.topics:
                st.topics.add(topic)
                self.topics.setdefault(topic, set()).add(peer)
                self._out.append(Emit(PeerSubscribed(peer, topic)))
        elif topic in st.topics:
            st.topics.discard(topic)
            self.topics[topic].discard(peer)
            if not self.topics[topic]:
                del self.topics[topic]
            self.fanout.get(topic, set()).discard(peer)
            mesh = self.mesh.get(topic)
            if mesh is not None and peer in mesh:
                mesh.discard(peer)
                if self.score is not None:
                    self.score.prune(peer, topic, now)
            self._out.append(Emit(PeerUnsubscribed(peer, topic)))

    def _on_message(self, peer: PeerId, st: PeerState, msg: PubMessage, now: float) -> None:
        topic = msg.topic
        if topic not in self.mesh:
            self.counters["messages_unsubscribed_topic"] += 1
            return
        tc = self.topic_counter(topic)
        mid = self.msg_id(msg)
        if mid in self.seen:
            if mid in self.mcache:  # a copy of a message we accepted: the peer forwards
                st.heard[topic] = self.tick  # discovery.note_heard, inline (hot path)
            tc["duplicates"] += 1
            self.counters["duplicates"] += 1
            self.promises.pop(mid, None)
            if self.score is not None:
                self.score.duplicate(peer, mid, topic, now)
            pending = self._pending.get(mid)
            if pending is not None:
                pending.also_from.add(peer)
            return
        if msg.from_peer == self.local_id:
            self.counters["self_origin_dropped"] += 1  # ours, but not in the seen cache
            return
        try:
            self.verify(msg)
        except SignatureError as exc:
            tc["invalid"] += 1
            self.counters["invalid_signatures"] += 1
            log.debug("bad signature from %s: %s", peer, exc)
            if self.score is not None:
                self.score.reject_unsigned(peer, topic)
            return
        self.seen.add(mid, now)
        self.promises.pop(mid, None)
        self.counters["messages_in"] += 1
        if self.score is not None:
            self.score.validate(mid, now)
        if len(msg.data) > self.config.idontwant_threshold:
            self._idontwant(topic, mid, peer, msg.from_peer)
        event = Message(topic, msg.data, PeerId(msg.from_peer), msg.seqno, mid, peer)
        pending = _Pending(msg, event, peer)
        if topic not in self.validators:
            self._validated(pending, mid, Outcome.ACCEPT, now)
            return
        fn = self.validators[topic]
        if fn is not None:
            self._validated(pending, mid, fn(event), now)
            return
        if len(self._pending) >= self.config.max_pending_validations:
            self.counters["validation_queue_full"] += 1
            self._validated(pending, mid, Outcome.IGNORE, now)
            return
        self._pending[mid] = pending
        heapq.heappush(self._validation_deadlines, (now + self.config.validation_timeout, mid))
        self._out.append(Emit(ValidateMessage(mid, event)))

    def _validated(self, p: _Pending, mid: bytes, outcome: Outcome, now: float) -> None:
        topic = p.msg.topic
        tc = self.topic_counter(topic)
        if outcome is Outcome.ACCEPT:
            peers, tick = self.peers, self.tick
            for q in (p.source, *p.also_from) if p.also_from else (p.source,):
                if (st := peers.get(q)) is not None:
                    st.heard[topic] = tick  # discovery.note_heard: it forwards valid messages
            self.delivered_tick[topic] = tick  # the topic has traffic (discovery)
            if self.score is not None:
                self.score.deliver(p.source, mid, topic, now)
            self.mcache.put(mid, p.msg)
            tc["delivered"] += 1
            self.counters["delivered"] += 1
            self._out.append(Emit(p.event))
            self._forward(p.msg, mid, p.source, now, p.also_from)
        elif outcome is Outcome.REJECT:
            tc["invalid"] += 1
            self.counters["rejected"] += 1
            if self.score is not None:
                self.score.reject(p.source, mid, topic, now)
        else:
            tc["ignored"] += 1
            self.counters["ignored"] += 1
            if self.score is not None:
                self.score.ignore(mid, now)

    # == internals: outbound ===================================================================

    def send_rpc(self, peer: PeerId, rpc: RPC) -> None:
        st = self.peers.get(peer)
        if st is None:
            return
        self.counters["rpcs_out"] += 1
        self._out.append(Send(peer, st.protocol, rpc))

    def _announce(self, topic: str, subscribe: bool) -> None:
        rpc = RPC(subscriptions=(SubOpts(subscribe, topic),))
        for p in self.peers:
            self.send_rpc(p, rpc)

    def _idontwant(self, topic: str, mid: bytes, source: PeerId, author: bytes) -> None:
        rpc = RPC(control=Control(idontwant=(IDontWant((mid,)),)))
        tc = self.topic_counter(topic)
        for p in self.mesh[topic]:
            if p != source and p != author and self.peers[p].protocol == PROTOCOL_V12:
                tc["idontwant_sent"] += 1
                self.send_rpc(p, rpc)

    def _forward(
        self,
        msg: PubMessage,
        mid: bytes,
        source: PeerId,
        now: float,
        skip: set[PeerId] | None = None,
    ) -> None:
        cfg = self.config
        topic = msg.topic
        own = source == self.local_id
        if (own and cfg.flood_publish) or topic in self.hubs:
            threshold = cfg.thresholds.publish_threshold
            targets: Iterable[PeerId] = [
                p for p in self.topics.get(topic, ()) if self.peer_score(p, now) >= threshold
            ]
        elif topic in self.mesh:
            targets = self.mesh[topic]
        else:
            targets = _hb.fanout_for(self, topic, now)
        author = msg.from_peer
        rpc = RPC(publish=(msg,))
        sent = 0
        for p in targets:
            if p == source or p == author or (skip and p in skip):
                continue
            if mid in self.peers[p].dontwant:
                self.counters["idontwant_suppressed"] += 1
                continue
            sent += 1
            self.send_rpc(p, rpc)
        self.counters["messages_out"] += sent

    # == helpers shared with the heartbeat =====================================================

    def command(self, cmd: GossipCommand) -> None:
        self._out.append(cmd)

    def topic_counter(self, topic: str) -> Counter[str]:
        c = self.topic_counters.get(topic)
        if c is None:
            c = self.topic_counters[topic] = Counter()
        return c

    def in_backoff(self, peer: PeerId, topic: str, now: float) -> bool:
        expire = self.backoff.get(topic, {}).get(peer)
        return expire is not None and now < expire

    def add_backoff(
        self, peer: PeerId, topic: str, now: float, duration: float | None = None
    ) -> None:
        expire = now + (self.config.prune_backoff if duration is None else duration)
        table = self.backoff.setdefault(topic, {})
        if table.get(peer, -1.0) < expire:
            table[peer] = expire

    def _graftable(self, peer: PeerId, topic: str, now: float) -> bool:
        return not self.in_backoff(peer, topic, now) and self.peer_score(peer, now) >= 0
