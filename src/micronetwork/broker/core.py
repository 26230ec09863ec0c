"""BrokerCore: the sans-IO publish/subscribe broker of one node.

What it does, by input:

* ``publish(topic, payload, now, headers=...)``: the node's next seq on the topic, signed by
  the node (:mod:`.event`), appended to its own retention log (the topic's full log if it
  retains the topic, else a small publisher log) and published on the topic's gossip topic
  ``/micronetwork/broker/1/<topic>``; local subscriptions get it at once.
* gossip messages of broker topics (``validate`` then ``on_message``): signature, signer ==
  author == publisher, topic, limits; duplicates and replays (a seq every subscription already
  has) are ignored. Every rejection is counted by reason (``counters["rejected_<reason>"]``).
  A valid event is stored if the node retains the topic, and offered to its subscriptions.
* ``subscribe(topic, now, group=, since=)``: a :class:`~.subscription.Subscription`. With
  ``since`` (a :class:`~.events.Cursor`, :class:`~.events.FromTime` or
  :class:`~.events.FromOffset`) it first replays from retention: from the node's own log if it
  retains the topic, else by ``replay`` requests to the retention peers in order (the first
  that answers serves every page), buffering live events meanwhile, then goes live.
* gaps (see :mod:`.subscription`) are filled by ``range`` requests: the publisher first, then
  the retention peers; at ``gap_timeout`` what is missing is reported missed.
* ``on_request``: a retaining node answers ``replay`` (pages of its log) and ``range``; a
  publisher answers ``range`` for its own events.
* queue groups: membership records on the topic's gossip topic (:mod:`.groups`).

Outputs (``drain``): ``Request`` / ``Respond`` on ``/micronetwork/broker/1.0.0`` and ``Emit`` of
:class:`~.events.Delivery`, :class:`~.events.Missed`, :class:`~.events.Lagging`,
:class:`~.events.CaughtUp`. Gossip goes through :class:`BrokerPorts`. Time: ``now`` drives
timers; the wall clock (event times, retention ages) is ``wall`` when given, else
``now + wall_offset``.
"""

from __future__ import annotations

import heapq
import logging
import random
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import cbor2

from ..commands import Command, Emit, Request
from ..errors import ConfigError, MicronetworkError, SignatureError, ValidationError
from ..gossip.events import Message, Outcome
from ..gossip.verified import Verified
from ..identity.keys import KeyPair
from ..identity.peerid import PeerId
from . import _catchup, _serve
from ._catchup import PendingRequest, ReplayState
from .config import TOPIC_PREFIX, BrokerConfig, gossip_topic
from .event import EVENT_PAYLOAD_TYPE, Event, InvalidEvent, open_event, seal_event, valid_topic
from .events import Cursor, FromTime, Since, Stored
from .groups import MEMBER_PAYLOAD_TYPE, GroupTable, Membership, open_membership
from .log import RetentionLog
from .store import SegmentStore
from .subscription import Subscription
from .wire import (
    StoreRequest,
    decode,
)

__all__ = ["BrokerCore", "BrokerPorts", "StoreFactory"]

log = logging.getLogger(__name__)

StoreFactory = Callable[[str, str], SegmentStore]
"""``factory(kind, topic)``: the store of a log; kind is ``"retained"`` or ``"own"``."""


class BrokerPorts(Protocol):
    """What the broker needs from the gossip core of its node."""

    def publish(self, topic: str, data: bytes, now: float) -> None: ...
    def subscribe(self, topic: str, now: float) -> None: ...
    def unsubscribe(self, topic: str, now: float) -> None: ...


@dataclass(slots=True)
class _Own:
    last: int = 0
    prev_known: bool = field(default=False)


class BrokerCore:
    def __init__(
        self,
        key: KeyPair,
        ports: BrokerPorts,
        *,
        config: BrokerConfig | None = None,
        rng: random.Random | None = None,
        now: float = 0.0,
        wall_offset: float = 0.0,
        store_factory: StoreFactory | None = None,
        seq_base: int = 0,
    ) -> None:
        self.key = key
        self.local_id = key.peer_id
        self.ports = ports
        self.config = config or BrokerConfig()
        self.rng = rng or random.Random(0)
        self.wall_offset = wall_offset
        self.store_factory = store_factory
        self.seq_base = seq_base
        self.logs: dict[str, RetentionLog] = {}  # topics this node retains
        self.own_logs: dict[str, RetentionLog] = {}  # publisher logs of topics it does not
        self.subs: dict[int, Subscription] = {}
        self.by_topic: dict[str, set[int]] = {}
        self.groups = GroupTable(self.local_id)
        self.retention_peers: dict[str | None, list[PeerId]] = {None: []}
        self.counters: Counter[str] = Counter()
        self.subscribed: set[str] = set()
        self._own: dict[str, _Own] = {}
        self._out: list[Command] = []
        self._verified: Verified[Event | Membership] = Verified()
        self._next_id = 0
        self._next_sid = 0
        self._member_seq = seq_base
        self._pending: dict[int, PendingRequest] = {}
        self._replays: dict[int, ReplayState] = {}
        self._timeouts: list[tuple[float, int]] = []
        self._announce_at: dict[tuple[str, str], float] = {}
        if self.config.retain_topics != "*":
            for topic in sorted(self.config.retain_topics):
                self.retain(topic, now)

    # == clocks, topics ========================================================================

    def _wall(self, now: float, wall: float | None = None) -> float:
        return now + self.wall_offset if wall is None else wall

    def is_broker_topic(self, topic: str) -> bool:
        return topic.startswith(TOPIC_PREFIX)

    def _topic_of(self, gtopic: str) -> str | None:
        if not gtopic.startswith(TOPIC_PREFIX):
            return None
        topic = gtopic[len(TOPIC_PREFIX) :]
        return topic if valid_topic(topic) else None

    def _interested(self, topic: str) -> bool:
        return topic in self.logs or bool(self.by_topic.get(topic))

    def _sync_topic(self, topic: str, now: float) -> None:
        g = gossip_topic(topic)
        if self._interested(topic) and g not in self.subscribed:
            self.subscribed.add(g)
            self.ports.subscribe(g, now)
        elif not self._interested(topic) and g in self.subscribed:
            self.subscribed.discard(g)
            self.ports.unsubscribe(g, now)

    def set_retention_peers(self, peers: Sequence[PeerId], topic: str | None = None) -> None:
        """The retention nodes to replay from, best first (for ``topic``, or the default)."""
        self.retention_peers[topic] = [p for p in peers if p != self.local_id]

    def _candidates(self, topic: str) -> list[PeerId]:
        return list(self.retention_peers.get(topic) or self.retention_peers[None])

    # == retention =============================================================================

    def retain(self, topic: str, now: float, wall: float | None = None) -> RetentionLog:
        """Keep ``topic``'s full log from now on (loading it from the store if there is one)."""
        if not valid_topic(topic):
            raise ConfigError(f"invalid broker topic {topic!r}")
        current = self.logs.get(topic)
        if current is not None:
            return current
        rlog = self._open_log("retained", topic, self.config.retention, now, wall)
        own = self.own_logs.pop(topic, None)
        if own is not None:
            for entry in own.entries():
                rlog.append(entry.event, entry.stored_at)
            if own.sink is not None and isinstance(own.sink, SegmentStore):
                own.sink.close()
        self.logs[topic] = rlog
        self._sync_topic(topic, now)
        return rlog

    def _open_log(
        self, kind: str, topic: str, limits: Any, now: float, wall: float | None
    ) -> RetentionLog:
        rlog = RetentionLog(topic, limits)
        if self.store_factory is not None:
            store = self.store_factory(kind, topic)
            records = []
            for rec in store.load():
                try:
                    ev = open_event(rec.signed)
                except MicronetworkError:
                    self.counters["store_bad_records"] += 1
                    continue
                if ev.topic == topic:
                    records.append((rec.offset, rec.stored_at, ev))
            rlog.restore(records, self._wall(now, wall))
            rlog.sink = store
            if rlog.next_offset < store.next_offset:
                rlog._next = store.next_offset  # offsets are never reused after a restart
        return rlog

    def _own_log(self, topic: str, now: float, wall: float | None) -> RetentionLog | None:
        if topic in self.logs:
            return self.logs[topic]
        if self.config.publisher_retention is None:
            return None
        if topic not in self.own_logs:
            self.own_logs[topic] = self._open_log(
                "own", topic, self.config.publisher_retention, now, wall
            )
        return self.own_logs[topic]

    # == publishing ============================================================================

    def publish(
        self,
        topic: str,
        payload: bytes,
        now: float,
        *,
        headers: dict[str, str] | None = None,
        wall: float | None = None,
    ) -> Event:
        """Sign and send an event; raises :class:`InvalidEvent` if it breaks the limits."""
        if not valid_topic(topic):
            raise InvalidEvent("topic", f"invalid topic name {topic!r}")
        w = self._wall(now, wall)
        rlog = self._own_log(topic, now, wall)
        own = self._own.get(topic)
        if own is None:
            head = rlog.head(self.local_id) if rlog is not None else 0
            own = self._own[topic] = _Own(max(head, self.seq_base), head > 0 or not self.seq_base)
        seq = own.last + 1
        prev = own.last if own.prev_known else 0
        event = seal_event(self.key, topic, seq, w, payload, headers, prev)
        own.last, own.prev_known = seq, True
        self.counters["published"] += 1
        entry = rlog.append(event, w) if rlog is not None else None
        self.ports.publish(gossip_topic(topic), event.signed, now)
        if topic in self.logs and entry is not None:
            self._offer(event, entry.offset, self.local_id, now)
        else:
            self._offer(event, None, None, now)
        return event

    def push(self, event: Event, peer: PeerId, now: float) -> int:
        """Hand our ``event`` to the retention node ``peer``; a :class:`Stored` event
        answers (with the offset it was stored at, or the refusal)."""
        return self._request(peer, StoreRequest(event.signed).to_wire(),
                             PendingRequest("store", -1, peer), now)

    def _offer(self, ev: Event, offset: int | None, source: PeerId | None, now: float) -> None:
        for sid in sorted(self.by_topic.get(ev.topic, ())):
            self.subs[sid].offer(ev, offset, source, now)

    # == subscriptions =========================================================================

    def subscribe(
        self,
        topic: str,
        now: float,
        *,
        group: str | None = None,
        since: Since | None = None,
        wall: float | None = None,
    ) -> int:
        """A new subscription's id; its events come as ``Emit(Delivery(...))``."""
        if not valid_topic(topic):
            raise ConfigError(f"invalid broker topic {topic!r}")
        if group is not None and not valid_topic(group):
            raise ConfigError(f"invalid queue group name {group!r}")
        if len(self.subs) >= self.config.max_subscriptions:
            raise ConfigError("too many broker subscriptions on this node")
        self._next_sid += 1
        sid = self._next_sid
        if isinstance(since, FromTime):
            start, seqs = since.wall, None
        elif isinstance(since, Cursor):
            start, seqs = since.time, since.as_dict()
        else:
            start, seqs = self._wall(now, wall), None
        sub = Subscription(sid, topic, group, start, self.config, self.groups, self._emit, seqs)
        self.subs[sid] = sub
        self.by_topic.setdefault(topic, set()).add(sid)
        if group is not None:
            self.groups.join(topic, group)
        self._sync_topic(topic, now)
        if group is not None:
            self._announce(topic, group, now, leaving=False)
        if since is not None:
            _catchup.start_replay(self, sub, since, now)
        return sid

    def unsubscribe(self, sid: int, now: float) -> None:
        sub = self.subs.pop(sid, None)
        if sub is None:
            return
        self._replays.pop(sid, None)
        self.by_topic[sub.topic].discard(sid)
        if not self.by_topic[sub.topic]:
            del self.by_topic[sub.topic]
        if sub.group is not None and not any(
            s.group == sub.group and s.topic == sub.topic for s in self.subs.values()
        ):
            self._announce(sub.topic, sub.group, now, leaving=True)
            self.groups.leave(sub.topic, sub.group)
            self._announce_at.pop((sub.topic, sub.group), None)
        self._sync_topic(sub.topic, now)

    def cursor(self, sid: int) -> Cursor:
        """Resume token of everything delivered so far on ``sid``."""
        return self.subs[sid].cursor()

    def consumed(self, sid: int, n: int, now: float) -> None:
        """The application took ``n`` deliveries of ``sid`` off its buffer (credit back)."""
        sub = self.subs.get(sid)
        if sub is not None and sub.consumed(n):
            self.counters["lag_resumes"] += 1
            _catchup.start_replay(self, sub, sub.cursor(), now)

    def _emit(self, event: object) -> None:
        self._out.append(Emit(event))

    # == requests to peers ====================================================================

    def _request(self, peer: PeerId, message: Any, pending: PendingRequest, now: float) -> int:
        self._next_id += 1
        rid = self._next_id
        pending.deadline = now + self.config.request_timeout
        self._pending[rid] = pending
        heapq.heappush(self._timeouts, (pending.deadline, rid))
        self._out.append(Request(peer, self.config.protocol_id, rid, message))
        return rid

    def _verified_events(
        self, topic: str, raw: Iterable[tuple[int | None, bytes]], now: float
    ) -> list[tuple[Event, int | None]]:
        out = []
        rlog = self.logs.get(topic)
        for offset, signed in raw:
            try:
                ev = open_event(signed)
            except InvalidEvent as exc:
                self.counters[f"rejected_{exc.reason}"] += 1
                continue
            except (SignatureError, ValidationError):
                self.counters["rejected_forged"] += 1
                continue
            if ev.topic != topic:
                self.counters["rejected_topic_mismatch"] += 1
                continue
            if rlog is not None:
                rlog.append(ev, self._wall(now))
            out.append((ev, offset))
        return out

    # == gossip input ==========================================================================

    def validate(self, msg: Message) -> Outcome:
        """The synchronous gossip validator of broker topics."""
        if msg.from_peer == self.local_id:
            return Outcome.ACCEPT
        topic = self._topic_of(msg.topic)
        if topic is None or not self._interested(topic):
            return self._reject("unknown_topic", Outcome.IGNORE)
        try:
            item = self._open(msg.data)
        except InvalidEvent as exc:
            return self._reject(exc.reason, Outcome.REJECT)
        except SignatureError:
            return self._reject("forged", Outcome.REJECT)
        except ValidationError:
            return self._reject("malformed", Outcome.REJECT)
        author = item.publisher if isinstance(item, Event) else item.peer
        if author != msg.from_peer:
            return self._reject("forged", Outcome.REJECT)
        if item.topic != topic:
            return self._reject("topic_mismatch", Outcome.REJECT)
        if isinstance(item, Event) and not self._fresh(item):
            return self._reject("replayed", Outcome.IGNORE)
        self._verified.put(msg.msg_id, item)
        return Outcome.ACCEPT

    def _reject(self, reason: str, outcome: Outcome) -> Outcome:
        self.counters[f"rejected_{reason}"] += 1
        return outcome

    def _open(self, data: bytes) -> Event | Membership:
        try:
            raw = cbor2.loads(data) if len(data) <= 1 << 20 else None
        except Exception as exc:
            raise InvalidEvent("malformed", f"not CBOR: {exc}") from exc
        if isinstance(raw, list) and len(raw) == 5 and raw[2] == MEMBER_PAYLOAD_TYPE:
            return open_membership(data)
        if raw is not None and not (isinstance(raw, list) and len(raw) == 5
                                    and raw[2] == EVENT_PAYLOAD_TYPE):
            raise InvalidEvent("malformed", "not a broker message")
        return open_event(data)

    def _fresh(self, ev: Event) -> bool:
        rlog = self.logs.get(ev.topic)
        if rlog is not None and ev.id not in rlog:
            return True
        return any(self.subs[s].wants(ev) for s in self.by_topic.get(ev.topic, ()))

    def on_message(self, msg: Message, now: float, wall: float | None = None) -> None:
        """A gossip message of a broker topic (after ``validate`` accepted it)."""
        if msg.from_peer == self.local_id:
            return
        item = self._verified.take(msg, self.validate)
        if item is None:
            return
        if isinstance(item, Membership):
            self.groups.on_membership(item, now)
            return
        self.counters["received"] += 1
        rlog = self.logs.get(item.topic)
        entry = rlog.append(item, self._wall(now, wall)) if rlog is not None else None
        if entry is not None:
            self._offer(item, entry.offset, self.local_id, now)
        else:
            self._offer(item, None, None, now)

    def on_peer_subscribed(self, peer: PeerId, gtopic: str, now: float) -> None:
        """A gossip peer joined a topic: a ``retain_topics="*"`` node starts retaining it."""
        topic = self._topic_of(gtopic)
        if topic is not None and self.config.retain_topics == "*" and topic not in self.logs:
            self.retain(topic, now)

    # == groups ================================================================================

    def _announce(self, topic: str, group: str, now: float, *, leaving: bool) -> None:
        self._member_seq += 1
        m = Membership(topic, group, self.local_id, self._member_seq, self.config.group_ttl,
                       leaving)
        self.ports.publish(gossip_topic(topic), m.seal(self.key), now)
        if not leaving:
            self._announce_at[(topic, group)] = now + self.config.group_announce_interval

    # == requests (server side) ================================================================

    def encode(self, message: Any) -> bytes:
        return cbor2.dumps(message)

    def on_request(self, peer: PeerId, token: int, data: Any, now: float) -> None:
        """A request on ``/micronetwork/broker/1.0.0``: answered by :mod:`._serve`."""
        _serve.on_request(self, peer, token, data, now)

    def on_response(self, peer: PeerId, request_id: int, data: Any, now: float) -> None:
        p = self._pending.pop(request_id, None)
        if p is None:
            return
        answer = decode(data)
        if p.kind == "replay":
            _catchup.on_replay_answer(self, p, request_id, answer, now)
        elif p.kind == "store":
            off = answer.get("offset") if isinstance(answer, dict) else None
            if isinstance(off, int) and not isinstance(off, bool):
                self._emit(Stored(request_id, peer, off))
            else:
                err = answer.get("error") if isinstance(answer, dict) else None
                self._emit(Stored(request_id, peer, None, str(err or "malformed answer")))
        else:
            _catchup.on_range_answer(self, p, request_id, answer, now)

    def on_request_failed(self, peer: PeerId, request_id: int, reason: str, now: float) -> None:
        p = self._pending.pop(request_id, None)
        if p is not None:
            self._failed(p, request_id, now)

    def _failed(self, p: PendingRequest, rid: int, now: float) -> None:
        self.counters["requests_failed"] += 1
        if p.kind == "store":
            self._emit(Stored(rid, p.peer, None, "request failed"))
            return
        sub = self.subs.get(p.sid)
        if sub is None:
            return
        if p.kind == "replay":
            rp = self._replays.get(p.sid)
            if rp is not None and rp.request == rid:
                _catchup.replay_failed(self, sub, rp, now)
        elif p.publisher is not None:
            st = sub.pubs.get(p.publisher)
            if st is not None and st.fetching == rid:
                st.fetching = None  # the next timer asks the next candidate

    def on_bad_message(self, peer: PeerId, reason: str, now: float) -> None:
        self.counters["bad_messages"] += 1

    # == time ==================================================================================

    def next_deadline(self) -> float | None:
        times: list[float] = []
        if self._timeouts:
            times.append(self._timeouts[0][0])
        cfg = self.config
        for sub in self.subs.values():
            for pub in sub.open_gaps:
                p = sub.pubs[pub]
                assert p.gap_opened is not None
                times.append(p.gap_opened + cfg.gap_timeout)
                if p.fetching is None:
                    times.append(p.gap_opened + cfg.reorder_grace)
        times.extend(self._announce_at.values())
        expiry = self.groups.next_expiry()
        if expiry is not None:
            times.append(expiry)
        for rlog in (*self.logs.values(), *self.own_logs.values()):
            oldest = rlog.oldest_time()
            if oldest is not None:
                times.append(oldest + rlog.limits.max_age - self.wall_offset)
        return min(times) if times else None

    def on_timer(self, now: float, wall: float | None = None) -> None:
        while self._timeouts and self._timeouts[0][0] <= now:
            _, rid = heapq.heappop(self._timeouts)
            p = self._pending.pop(rid, None)
            if p is not None:
                self.counters["requests_timed_out"] += 1
                self._failed(p, rid, now)
        cfg = self.config
        for sub in list(self.subs.values()):
            for pub in list(sub.open_gaps):
                st = sub.pubs.get(pub)
                if st is None or st.gap_opened is None:
                    continue
                if now >= st.gap_opened + cfg.gap_timeout:
                    sub.close_gap(pub, now)
                elif st.fetching is None and now >= st.gap_opened + cfg.reorder_grace:
                    _catchup.fetch_gap(self, sub, pub, st, now)
        for (topic, group), when in list(self._announce_at.items()):
            if when <= now:
                self._announce(topic, group, now, leaving=False)
        for topic, group, peer, heard in self.groups.expire(now):
            for sub in self.subs.values():
                if sub.topic == topic and sub.group == group:
                    sub.member_expired(peer, heard, now)
        w = self._wall(now, wall)
        for rlog in (*self.logs.values(), *self.own_logs.values()):
            rlog.expire(w)

    def drain(self) -> list[Command]:
        """Commands and events so far; flushes the retention stores (one write per batch)."""
        for rlog in (*self.logs.values(), *self.own_logs.values()):
            if rlog.sink is not None:
                rlog.sink.flush()
        out, self._out = self._out, []
        return out

    def close(self, now: float) -> None:
        """Leave the queue groups and close the stores."""
        for topic, group in list(self._announce_at):
            self._announce(topic, group, now, leaving=True)
        self._announce_at.clear()
        for rlog in (*self.logs.values(), *self.own_logs.values()):
            if isinstance(rlog.sink, SegmentStore):
                rlog.sink.flush()
                rlog.sink.close()

