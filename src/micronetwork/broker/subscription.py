"""One subscription's delivery state: order per publisher, gaps, replay merge, credit.

Theory of operation. A subscription keeps, per publisher, the last seq it delivered (or
skipped as missed): ``delivered``. An event with a seq at or below it is a duplicate and goes
no further; this is what makes a replay and the live stream merge without duplicates, and
what the resume :class:`~.events.Cursor` records. Events are delivered in seq order per
publisher: one that arrives early is *held*, and the seqs between open a *gap*. A gap first
waits ``reorder_grace`` for gossip to bring the missing events, then the core fetches them
from retention (``op: "range"``); at ``gap_timeout`` whatever is still missing is reported as
:class:`~.events.Missed` and the held events go out. ``prev`` (the publisher's previous seq)
marks seqs that were never published, so they never count as a gap.

While a replay runs (``state == "replaying"``) live events are buffered (``replay_buffer``;
past it they are dropped, and come back through gap filling) and offered after the replay.

Credit: at most ``subscriber_buffer`` deliveries may be un-consumed. Past it the subscription
goes ``"lagging"``: it drops what arrives (the publisher and the other subscriptions do not
wait) and reports :class:`~.events.Lagging` with its cursor; once the application has consumed
half of its buffer the core resumes it from retention at that cursor.

A subscription in a queue group delivers only the events its node owns (see :mod:`.groups`)
but tracks every event, so gaps and duplicates are handled the same way.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Literal

from ..identity.peerid import PeerId
from .config import BrokerConfig
from .event import Event, event_id
from .events import CaughtUp, Cursor, Delivery, Lagging, Missed
from .groups import GroupTable

__all__ = ["Subscription"]

_MAX_OWNER_CHECKS = 100_000
_MAX_COUNTED = 65_536  # seqs remembered as "reported missed" per subscription

_Held = tuple[Event, int | None, PeerId | None]


@dataclass(slots=True)
class PubState:
    delivered: int
    held: dict[int, _Held] = field(default_factory=dict)
    skip: set[int] = field(default_factory=set)
    want: int = 0  # a seq retention says exists: we must reach it
    gap_opened: float | None = None
    fetching: int | None = None  # request id of the range fetch under way
    tried: set[PeerId] = field(default_factory=set)
    lag_seen: int = 0

    def upper(self) -> int:
        """The last seq of the open gap (0 if none)."""
        hi = self.want
        if self.held:
            first = min(self.held)
            hi = max(hi, self.held[first][0].prev)
        return hi if hi > self.delivered else 0


class Subscription:
    def __init__(
        self,
        sid: int,
        topic: str,
        group: str | None,
        start_time: float,
        config: BrokerConfig,
        groups: GroupTable,
        emit: Callable[[object], None],
        seqs: dict[PeerId, int] | None = None,
    ) -> None:
        self.id = sid
        self.topic = topic
        self.group = group
        self.start_time = start_time
        self.config = config
        self.groups = groups
        self.emit = emit
        self.state: Literal["replaying", "live", "lagging"] = "live"
        self.pubs: OrderedDict[PeerId, PubState] = OrderedDict(
            (p, PubState(s)) for p, s in (seqs or {}).items()
        )
        self.live: list[_Held] = []
        self.in_flight = 0
        self.delivered_count = 0
        self.replayed = 0
        self.duplicates = 0
        self.dropped = 0
        self.handoff: deque[tuple[_Held, float]] = deque()
        self.open_gaps: set[PeerId] = set()
        # Seqs of publishers we had nothing from that a replay reported missed (evicted): a
        # late copy of one is dropped, so that what was counted is never also delivered.
        self.counted: dict[PeerId, set[int]] = {}

    # == views ==================================================================================

    def cursor(self) -> Cursor:
        return Cursor.of(self.start_time, {p: s.delivered for p, s in self.pubs.items()})

    def wants(self, event: Event) -> bool:
        """False if ``event`` is one this subscription already has (a duplicate or replay)."""
        p = self.pubs.get(event.publisher)
        if p is None:
            return event.seq not in self.counted.get(event.publisher, ())
        return event.seq > p.delivered and event.seq not in p.held

    # == input ==================================================================================

    def offer(
        self, ev: Event, offset: int | None, source: PeerId | None, now: float, *,
        replay: bool = False,
    ) -> None:
        if self.state == "lagging":
            self.dropped += 1
            p = self.pubs.get(ev.publisher)
            if p is not None:
                p.lag_seen = max(p.lag_seen, ev.seq)
            return
        if self.state == "replaying" and not replay:
            if len(self.live) < self.config.replay_buffer:
                self.live.append((ev, offset, source))
            return
        if ev.publisher not in self.pubs and ev.seq in self.counted.get(ev.publisher, ()):
            self.duplicates += 1  # reported missed already: not delivered as well
            return
        p = self._pub(ev)
        if ev.seq <= p.delivered or ev.seq in p.held:
            self.duplicates += 1
            return
        if len(p.held) >= self.config.max_held:
            self.close_gap(ev.publisher, now)
            if ev.seq <= p.delivered:
                return
        p.held[ev.seq] = (ev, offset, source)
        if replay:
            self.replayed += 1
        self._advance(ev.publisher, p, now)

    def _pub(self, ev: Event) -> PubState:
        p = self.pubs.get(ev.publisher)
        if p is None:
            while len(self.pubs) >= self.config.max_publishers:
                old, _ = self.pubs.popitem(last=False)
                self.open_gaps.discard(old)
            p = self.pubs[ev.publisher] = PubState(ev.seq - 1)
        else:
            self.pubs.move_to_end(ev.publisher)
        return p

    def _advance(self, pub: PeerId, p: PubState, now: float) -> None:
        skipped = 0
        while self.state != "lagging":
            nxt = p.delivered + 1
            item = p.held.pop(nxt, None)
            if item is not None:
                if not self._deliver(item, now):
                    return
                p.delivered = nxt
            elif nxt in p.skip:
                p.skip.discard(nxt)
                p.delivered = nxt
                skipped += self._owned(pub, nxt, nxt)
            elif p.held and p.held[min(p.held)][0].prev <= p.delivered:
                p.delivered = min(p.held) - 1  # seqs the publisher never used
            else:
                break
        if skipped:
            self.emit(Missed(self.id, skipped, "evicted", pub))
        if p.upper():
            if p.gap_opened is None:
                p.gap_opened = now
                p.tried.clear()
                self.open_gaps.add(pub)
        else:
            p.gap_opened = None
            p.fetching = None
            self.open_gaps.discard(pub)

    def _deliver(self, item: _Held, now: float) -> bool:
        ev, offset, source = item
        if self.group is not None and not self.groups.owns(self.topic, self.group, ev.id):
            self.handoff.append((item, now))
            while len(self.handoff) > self.config.replay_buffer:
                self.handoff.popleft()
            return True
        if self.in_flight >= self.config.subscriber_buffer:
            self._lag()
            return False
        self.in_flight += 1
        self.delivered_count += 1
        self.emit(Delivery(self.id, ev, offset, source))
        return True

    def _owned(self, pub: PeerId, lo: int, hi: int) -> int:
        """How many of seqs lo..hi of ``pub`` this member would have delivered."""
        n = hi - lo + 1
        if self.group is None or n <= 0:
            return max(n, 0)
        if n > _MAX_OWNER_CHECKS:
            return n // len(self.groups.members(self.topic, self.group))
        return sum(
            self.groups.owns(self.topic, self.group, event_id(pub, self.topic, s))
            for s in range(lo, hi + 1)
        )

    def close_gap(self, pub: PeerId, now: float) -> None:
        """Give up on ``pub``'s missing seqs: count them missed and deliver what is held."""
        p = self.pubs.get(pub)
        if p is None:
            return
        lost = evicted = 0
        while self.state != "lagging":
            hi = p.upper()
            if not hi:
                break
            for s in range(p.delivered + 1, hi + 1):
                if s in p.skip:
                    evicted += self._owned(pub, s, s)
            owned = self._owned(pub, p.delivered + 1, hi)
            lost += owned
            p.skip = {s for s in p.skip if s > hi}
            p.delivered = hi
            p.gap_opened = None
            p.fetching = None
            self.open_gaps.discard(pub)
            self._advance(pub, p, now)
        lost -= evicted
        if evicted:
            self.emit(Missed(self.id, evicted, "evicted", pub))
        if lost:
            self.emit(Missed(self.id, lost, "gap", pub))

    # == replay =================================================================================

    def begin_replay(self) -> None:
        self.state = "replaying"
        self.live = []

    def replay_page(
        self,
        events: Iterable[tuple[Event, int | None]],
        source: PeerId | None,
        evicted: dict[PeerId, list[int]],
        heads: dict[PeerId, int],
        now: float,
        counted: dict[PeerId, list[int]] | None = None,
    ) -> None:
        for pub, seqs in (counted or {}).items():
            if pub not in self.pubs and sum(map(len, self.counted.values())) < _MAX_COUNTED:
                self.counted.setdefault(pub, set()).update(seqs)
        for pub, seqs in evicted.items():
            p = self.pubs.get(pub)
            if p is not None:
                p.skip.update(s for s in seqs if s > p.delivered)
        for pub, head in heads.items():
            p = self.pubs.get(pub)
            if p is not None and head > p.delivered:
                p.want = max(p.want, head)
        for ev, offset in events:
            self.offer(ev, offset, source, now, replay=True)
        for pub in set(evicted) | set(heads):
            p = self.pubs.get(pub)
            if p is not None:
                self._advance(pub, p, now)

    def end_replay(self, now: float) -> None:
        if self.state != "replaying":
            return
        self.state = "live"
        live, self.live = self.live, []
        for ev, offset, source in live:
            self.offer(ev, offset, source, now)
        self.emit(CaughtUp(self.id, self.replayed))

    # == credit =================================================================================

    def _lag(self) -> None:
        self.state = "lagging"
        for p in self.pubs.values():
            self.dropped += len(p.held)
            p.lag_seen = max([p.lag_seen, *p.held])
            p.held.clear()
            p.gap_opened = None
            p.fetching = None
        self.open_gaps.clear()
        self.emit(Lagging(self.id, self.cursor()))

    def consumed(self, n: int) -> bool:
        """The application took ``n`` deliveries; True if a lagging subscription may resume."""
        self.in_flight = max(0, self.in_flight - n)
        return self.state == "lagging" and self.in_flight <= self.config.subscriber_buffer // 2

    def give_up_lag(self, now: float) -> None:
        """Resume live without a replay: what was dropped is reported missed."""
        if self.dropped:
            self.emit(Missed(self.id, self.dropped, "overflow"))
        for p in self.pubs.values():
            p.delivered = max(p.delivered, p.lag_seen)
        self.dropped = 0
        self.state = "live"

    # == groups =================================================================================

    def member_expired(self, peer: PeerId, heard: float, now: float) -> None:
        """A member crashed: deliver the events it may have missed that we own now."""
        keep: deque[tuple[_Held, float]] = deque()
        horizon = now - 2 * self.config.group_ttl
        for item, arrived in self.handoff:
            if arrived < horizon:
                continue
            ev = item[0]
            if arrived >= heard and self.groups.owns(self.topic, self.group or "", ev.id):
                if self.state != "lagging" and self.in_flight < self.config.subscriber_buffer:
                    self.in_flight += 1
                    self.delivered_count += 1
                    self.emit(Delivery(self.id, ev, item[1], item[2]))
                continue
            keep.append((item, arrived))
        self.handoff = keep
