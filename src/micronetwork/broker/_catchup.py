"""How a BrokerCore subscription catches up (client side, sans-IO): replays from retention
(the node's own log, else ``replay`` requests to the retention peers in order, page by page)
and gap fills (``range`` requests: the publisher first, then the retention peers). Functions
of the :class:`~.core.BrokerCore` they act on, as the gossip router's heartbeat and control
modules are of the router."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..identity.peerid import PeerId
from .events import FromOffset, FromTime, Missed, Since
from .log import RetentionLog
from .subscription import PubState, Subscription
from .wire import RangeRequest, ReplayRequest, parse_answer

if TYPE_CHECKING:
    from .core import BrokerCore


@dataclass(slots=True)
class ReplayState:
    sid: int
    peers: list[PeerId]
    since_offset: int | None
    since_time: float | None
    after: dict[PeerId, int]
    by_offset: bool = False
    peer: PeerId | None = None
    request: int | None = None


@dataclass(slots=True)
class PendingRequest:
    kind: str  # "replay" | "range" | "store"
    sid: int
    peer: PeerId
    publisher: PeerId | None = None
    deadline: float = 0.0


def start_replay(core: BrokerCore, sub: Subscription, since: Since, now: float) -> None:
    sub.begin_replay()
    skew = core.config.clock_skew
    if isinstance(since, FromOffset):
        rp = ReplayState(sub.id, [since.node], since.offset, None, {}, by_offset=True)
    elif isinstance(since, FromTime):
        rp = ReplayState(sub.id, [], None, since.wall - skew, {})
    else:
        rp = ReplayState(sub.id, [], None, since.time - skew, since.as_dict())
    local = core.logs.get(sub.topic)
    if local is not None and (not rp.peers or rp.peers == [core.local_id]):
        replay_local(core, sub, rp, local, now)
        return
    if not rp.peers:
        rp.peers = core._candidates(sub.topic)
    rp.peers = [p for p in rp.peers if p != core.local_id]
    core._replays[sub.id] = rp
    replay_next_peer(core, sub, rp, now)


def replay_local(
    core: BrokerCore, sub: Subscription, rp: ReplayState, rlog: RetentionLog, now: float
) -> None:
    since_offset, first = rp.since_offset, True
    while sub.state == "replaying":
        r = rlog.read(
            since_offset=since_offset,
            since_time=rp.since_time,
            after=rp.after,
            limit=core.config.page_events,
        )
        if r.missed:
            core._emit(Missed(sub.id, r.missed, "evicted", exact=r.exact))
        heads = {}
        if first:
            heads = {p: rlog.head(p) for p in rp.after if rlog.head(p) > rp.after[p]}
        items = [(e.event, e.offset) for e in r.entries]
        sub.replay_page(items, core.local_id, r.evicted, heads, now, r.counted)
        if not r.more:
            break
        since_offset, first = r.next_offset, False
    sub.end_replay(now)


def replay_next_peer(core: BrokerCore, sub: Subscription, rp: ReplayState, now: float) -> None:
    if not rp.peers:
        core._replays.pop(sub.id, None)
        core._emit(Missed(sub.id, 0, "unavailable", exact=False))
        if sub.state == "replaying":
            sub.end_replay(now)
        return
    rp.peer = rp.peers.pop(0)
    send_replay(core, sub, rp, rp.since_offset, now)


def send_replay(
    core: BrokerCore, sub: Subscription, rp: ReplayState, offset: int | None, now: float
) -> None:
    assert rp.peer is not None
    req = ReplayRequest(sub.topic, offset, rp.since_time, rp.after, core.config.page_bytes)
    rp.request = core._request(
        rp.peer, req.to_wire(), PendingRequest("replay", sub.id, rp.peer), now
    )


def on_replay_answer(
    core: BrokerCore, p: PendingRequest, rid: int, answer: Any, now: float
) -> None:
    sub = core.subs.get(p.sid)
    rp = core._replays.get(p.sid)
    if sub is None or rp is None or rp.request != rid:
        return
    a = parse_answer(answer)
    if a is None or a.error is not None:
        core.counters["bad_answers" if a is None else "replay_refused"] += 1
        replay_failed(core, sub, rp, now)
        return
    if a.missed:
        core._emit(Missed(sub.id, a.missed, "evicted", exact=a.exact))
    items = core._verified_events(sub.topic, a.events, now)
    sub.replay_page(items, p.peer, a.evicted or {}, a.heads or {}, now, a.counted)
    progress = a.next > (-1 if rp.since_offset is None else rp.since_offset)
    if sub.state != "replaying":
        core._replays.pop(sub.id, None)  # it went lagging: resumes later from its cursor
    elif a.more and progress:
        rp.since_offset = a.next
        send_replay(core, sub, rp, a.next, now)
    else:
        core._replays.pop(sub.id, None)
        sub.end_replay(now)


def replay_failed(core: BrokerCore, sub: Subscription, rp: ReplayState, now: float) -> None:
    if rp.by_offset:
        rp.peers = []  # offsets mean nothing on another node
    else:
        rp.since_offset = None
        rp.after = sub.cursor().as_dict()
    replay_next_peer(core, sub, rp, now)


# == gaps (client side) ====================================================================


def fetch_gap(core: BrokerCore, sub: Subscription, pub: PeerId, p: PubState, now: float) -> None:
    lo, hi = p.delivered + 1, p.upper()
    for rlog in (core.logs.get(sub.topic), core.own_logs.get(sub.topic)):
        if rlog is not None:
            for entry in rlog.range(pub, lo, hi):
                sub.offer(entry.event, None, core.local_id, now, replay=True)
    if not p.upper() or pub not in sub.open_gaps:
        return
    candidates = [pub, *core._candidates(sub.topic)]
    for peer in candidates:
        if peer != core.local_id and peer not in p.tried:
            p.tried.add(peer)
            req = RangeRequest(sub.topic, pub, lo, p.upper())
            p.fetching = core._request(
                peer, req.to_wire(), PendingRequest("range", sub.id, peer, pub), now
            )
            core.counters["gap_fetches"] += 1
            return
    p.fetching = 0  # nobody left to ask: wait for the gap's deadline


def on_range_answer(core: BrokerCore, p: PendingRequest, rid: int, answer: Any, now: float) -> None:
    sub = core.subs.get(p.sid)
    if sub is None or p.publisher is None:
        return
    st = sub.pubs.get(p.publisher)
    if st is None or st.fetching != rid:
        return
    st.fetching = None
    a = parse_answer(answer)
    if a is None:
        core.counters["bad_answers"] += 1
        return
    for ev, _offset in core._verified_events(sub.topic, a.events, now):
        if ev.publisher == p.publisher:
            sub.offer(ev, None, p.peer, now, replay=True)
