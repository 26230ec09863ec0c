"""BrokerCore end to end over an in-memory network: live delivery, resume exactly once,
missed counts beyond the window, gap filling, replays, bad input, queue groups, lag."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from brokernet import Net

from micronetwork.broker import (
    BrokerConfig,
    CaughtUp,
    Cursor,
    Delivery,
    FromOffset,
    FromTime,
    Lagging,
    Missed,
    RetentionLimits,
    SegmentStore,
    gossip_topic,
    seal_event,
)
from micronetwork.broker.event import DOMAIN, EVENT_PAYLOAD_TYPE
from micronetwork.commands import Respond
from micronetwork.errors import ConfigError, ValidationError
from micronetwork.gossip.events import Message, Outcome
from micronetwork.identity.envelope import seal
from micronetwork.identity.peerid import PeerId

T = "orders"
G = gossip_topic(T)
RETAIN = BrokerConfig(retain_topics=frozenset({T}))
NO_OWN = BrokerConfig(publisher_retention=None)


def deliveries(net: Net, peer: PeerId, sid: int | None = None) -> list[Delivery]:
    return [e for e in net.events[peer] if isinstance(e, Delivery)
            and (sid is None or e.subscription == sid)]


def payloads(net: Net, peer: PeerId, sid: int | None = None) -> list[bytes]:
    return [d.event.payload for d in deliveries(net, peer, sid)]


def of(net: Net, peer: PeerId, kind: type) -> list[Any]:
    return [e for e in net.events[peer] if isinstance(e, kind)]


def p(i: int) -> bytes:
    return b"e%d" % i


def setup(retention: BrokerConfig = RETAIN, pub: BrokerConfig = NO_OWN) -> tuple[Net, Any, Any]:
    net = Net()
    r = net.add(1, retention)
    a = net.add(2, pub)
    for core in (a, r):
        core.set_retention_peers([r.local_id])
    return net, r, a


def test_publish_live_delivery_and_retention() -> None:
    net, r, a = setup()
    s = net.add(3)
    sid = s.subscribe(T, net.now)
    ev = a.publish(T, b"hello", net.now, headers={"k": "v"})
    net.pump()
    (d,) = deliveries(net, s.local_id)
    assert d.event == ev and d.subscription == sid and d.offset is None
    assert d.event.publisher == a.local_id and d.event.seq == 1 and d.event.headers == {"k": "v"}
    assert d.event.time == pytest.approx(1000.0)  # wall = now + wall_offset
    assert [e.event.id for e in r.logs[T].entries()] == [ev.id]
    # the publisher's own subscription gets its own event at once
    mine = a.subscribe(T, net.now)
    a.publish(T, b"two", net.now)
    net.pump()
    assert payloads(net, a.local_id, mine) == [b"two"]
    assert payloads(net, s.local_id) == [b"hello", b"two"]
    with pytest.raises(ConfigError):
        s.subscribe("Bad Topic", net.now)
    with pytest.raises(ValidationError):
        a.publish(T, b"x" * (1 << 20), net.now)


def test_resume_within_window_is_exactly_once_even_with_live_traffic_during_replay() -> None:
    net, r, a = setup()
    s = net.add(3)
    s.set_retention_peers([r.local_id])
    sid = s.subscribe(T, net.now)
    for i in range(1, 6):
        a.publish(T, p(i), net.now)
    net.pump()
    assert payloads(net, s.local_id) == [p(i) for i in range(1, 6)]
    cursor = Cursor.from_bytes(s.cursor(sid).to_bytes())  # what the app persists
    s.unsubscribe(sid, net.now)
    for i in range(6, 11):  # while the subscriber is away
        a.publish(T, p(i), net.now)
    net.pump()
    net.events[s.local_id].clear()
    # resume; the replay answer is held back while live events 11..12 arrive
    net.hold_requests = True
    sid2 = s.subscribe(T, net.now, since=cursor)
    net.pump()
    for i in range(11, 13):
        a.publish(T, p(i), net.now)
    net.pump()
    assert payloads(net, s.local_id) == []  # buffered until the replay is done
    net.hold_requests = False
    net.release()
    net.pump()
    assert payloads(net, s.local_id, sid2) == [p(i) for i in range(6, 13)]
    assert of(net, s.local_id, Missed) == []
    assert of(net, s.local_id, CaughtUp) == [CaughtUp(sid2, 7)]
    replayed = deliveries(net, s.local_id, sid2)
    assert [d.offset for d in replayed[:5]] == [5, 6, 7, 8, 9]
    assert all(d.source == r.local_id for d in replayed[:5])


def test_resume_beyond_window_reports_how_many_were_missed() -> None:
    small = BrokerConfig(retain_topics=frozenset({T}), retention=RetentionLimits(max_events=5))
    net, r, a = setup(small)
    s = net.add(3)
    s.set_retention_peers([r.local_id])
    sid = s.subscribe(T, net.now)
    a.publish(T, p(1), net.now)
    net.pump()
    cursor = s.cursor(sid)
    s.unsubscribe(sid, net.now)
    for i in range(2, 22):  # 20 while away; retention keeps the last 5
        a.publish(T, p(i), net.now)
    net.pump()
    net.events[s.local_id].clear()
    sid2 = s.subscribe(T, net.now, since=cursor)
    net.pump()
    assert payloads(net, s.local_id, sid2) == [p(i) for i in range(17, 22)]
    missed = of(net, s.local_id, Missed)
    assert sum(m.count for m in missed) == 15 and all(m.exact for m in missed)
    # a brand-new subscriber asking by time: evicted events are counted too
    n = net.add(4)
    n.set_retention_peers([r.local_id])
    n.subscribe(T, net.now, since=FromTime(0.0))
    net.pump()
    assert payloads(net, n.local_id) == [p(i) for i in range(17, 22)]
    assert sum(m.count for m in of(net, n.local_id, Missed)) == 16


def test_an_event_reported_missed_is_not_also_delivered_when_a_late_copy_arrives() -> None:
    """A subscriber that had nothing from publisher a is told a's evicted events were missed;
    a late gossip copy of one of them (from a neighbour's cache) must not be delivered too,
    or the count would say exact and be wrong (found by the broker simulator)."""
    small = BrokerConfig(retain_topics=frozenset({T}), retention=RetentionLimits(max_events=5))
    net, r, a = setup(small)
    c = net.add(5, NO_OWN)
    c.set_retention_peers([r.local_id])
    early = [a.publish(T, p(i), net.now) for i in (1, 2)]
    for i in range(10, 15):  # c's five events push a's two out of retention
        c.publish(T, p(i), net.now)
    net.pump()
    n = net.add(4)
    n.set_retention_peers([r.local_id])
    sid = n.subscribe(T, net.now, since=FromTime(0.0))
    net.pump()
    assert payloads(net, n.local_id, sid) == [p(i) for i in range(10, 15)]
    missed = of(net, n.local_id, Missed)
    assert sum(m.count for m in missed) == 2 and all(m.exact for m in missed)
    net.gossip(a.local_id, G, early[0].signed)  # the late copy
    net.pump()
    assert payloads(net, n.local_id, sid) == [p(i) for i in range(10, 15)]
    # a's next event is delivered as usual
    a.publish(T, p(3), net.now)
    net.pump()
    assert payloads(net, n.local_id, sid)[-1] == p(3)


def test_from_offset_and_local_replay_on_a_retention_node() -> None:
    net, r, a = setup()
    for i in range(1, 6):
        a.publish(T, p(i), net.now)
    net.pump()
    s = net.add(3)
    s.subscribe(T, net.now, since=FromOffset(r.local_id, 3))
    net.pump()
    assert payloads(net, s.local_id) == [p(4), p(5)]
    assert [d.offset for d in deliveries(net, s.local_id)] == [3, 4]
    # the retention node itself replays from its own log without a request
    rid = r.subscribe(T, net.now, since=FromTime(0.0))
    net.pump()
    assert payloads(net, r.local_id, rid) == [p(i) for i in range(1, 6)]


def test_gap_is_filled_from_retention() -> None:
    net, r, a = setup()
    s = net.add(3)
    s.set_retention_peers([r.local_id])
    s.subscribe(T, net.now)
    dropped = {p(3), p(4)}
    net.drop = lambda src, dst, data: dst == s.local_id and any(x in data for x in dropped)
    for i in range(1, 7):
        a.publish(T, p(i), net.now)
    net.pump()
    assert payloads(net, s.local_id) == [p(1), p(2)]  # 5, 6 held behind the gap
    net.advance(net.now + 1.0)  # reorder grace passes: range request to the publisher,
    assert payloads(net, s.local_id) == [p(i) for i in range(1, 7)]  # then to retention
    assert of(net, s.local_id, Missed) == []
    assert s.counters["gap_fetches"] >= 1


def test_gap_that_nobody_can_fill_is_reported_after_the_timeout() -> None:
    net = Net()
    a = net.add(2, NO_OWN)
    s = net.add(3)
    sid = s.subscribe(T, net.now)
    net.drop = lambda src, dst, data: p(2) in data
    for i in range(1, 4):
        a.publish(T, p(i), net.now)
    net.pump()
    assert payloads(net, s.local_id) == [p(1)]
    net.advance(net.now + 5.0)
    assert payloads(net, s.local_id) == [p(1)]
    net.advance(net.now + 6.0)  # gap_timeout (10 s) passed
    assert payloads(net, s.local_id) == [p(1), p(3)]
    assert of(net, s.local_id, Missed) == [Missed(sid, 1, "gap", a.local_id)]
    assert net.nodes[s.local_id].next_deadline() is None


def test_publisher_restart_without_log_is_not_a_gap() -> None:
    net = Net()
    a = net.add(2, NO_OWN)
    s = net.add(3)
    s.subscribe(T, net.now)
    a.publish(T, p(1), net.now)
    net.pump()
    a2 = net.add(2, NO_OWN, seq_base=10**6)  # same key, restarted, new seq range
    ev = a2.publish(T, p(2), net.now)
    net.pump()
    assert ev.seq == 10**6 + 1 and ev.prev == 0
    assert payloads(net, s.local_id) == [p(1), p(2)] and of(net, s.local_id, Missed) == []


def test_duplicates_and_replayed_messages_are_dropped_and_counted() -> None:
    net, r, a = setup()
    s = net.add(3)
    s.subscribe(T, net.now)
    ev = a.publish(T, p(1), net.now)
    net.pump()
    # an old message injected again (after gossip's seen-cache forgot it)
    assert net.gossip(a.local_id, G, ev.signed) == [Outcome.IGNORE, Outcome.IGNORE]
    net.pump()
    assert payloads(net, s.local_id) == [p(1)]
    assert s.counters["rejected_replayed"] == 1 and r.counters["rejected_replayed"] == 1
    assert len(r.logs[T]) == 1


def test_forged_huge_and_unknown_are_rejected_and_counted() -> None:
    net, r, a = setup()
    s = net.add(3)
    s.subscribe(T, net.now)
    net.pump()
    mallory = net.add(9)
    wire = {"v": 1, "topic": T, "publisher": bytes(a.local_id), "seq": 1, "prev": 0,
            "time": 1.0, "headers": {}, "payload": b"forged"}
    forged = seal(mallory.key, DOMAIN, EVENT_PAYLOAD_TYPE, wire)
    assert net.gossip(mallory.local_id, G, forged) == [Outcome.REJECT] * 2
    # A's genuine event relayed as if Mallory authored it
    genuine = seal_event(a.key, T, 1, 1.0, b"x").signed
    assert net.gossip(mallory.local_id, G, genuine) == [Outcome.REJECT] * 2
    # huge headers, properly signed by Mallory about herself
    huge = dict(wire, publisher=bytes(mallory.local_id), headers={"h": "x" * 10_000})
    assert net.gossip(mallory.local_id, G, seal(mallory.key, DOMAIN, EVENT_PAYLOAD_TYPE, huge)) \
        == [Outcome.REJECT] * 2
    # an event of another topic sent on ours
    other = seal_event(mallory.key, "other", 1, 1.0, b"x").signed
    assert net.gossip(mallory.local_id, G, other) == [Outcome.REJECT] * 2
    assert net.gossip(mallory.local_id, G, b"\xff garbage") == [Outcome.REJECT] * 2
    net.pump()
    assert payloads(net, s.local_id) == [] and len(r.logs[T]) == 0
    c = s.counters
    assert (c["rejected_forged"], c["rejected_oversized"], c["rejected_topic_mismatch"],
            c["rejected_malformed"]) == (2, 1, 1, 1)
    # an unknown topic: not subscribed, not retained
    msg = Message(gossip_topic("nobody"), genuine, a.local_id, b"", b"m", a.local_id)
    assert s.validate(msg) is Outcome.IGNORE and s.counters["rejected_unknown_topic"] == 1
    # replay requests: unknown topic and garbage
    r.on_request(s.local_id, 5, r.encode({"op": "replay", "topic": "nobody", "after": [],
                                          "max_bytes": 10}), net.now)
    r.on_request(s.local_id, 6, b"\x00\x01", net.now)
    r.on_request(s.local_id, 7, r.encode({"op": "replay", "topic": T, "after": [[b"x", 1]]}),
                 net.now)
    out = r.drain()
    assert out == [Respond(5, {"error": "unknown topic"}), Respond(6, None), Respond(7, None)]
    assert r.counters["rejected_unknown_topic"] == 1 and r.counters["bad_requests"] == 2


def test_malicious_retention_node_cannot_inject_events() -> None:
    net, r, a = setup()
    s = net.add(3)
    mallory = net.add(9)
    s.set_retention_peers([mallory.local_id])
    sid = s.subscribe(T, net.now, since=FromTime(0.0))
    (req,) = [c for c in s.drain()]
    wire = {"v": 1, "topic": T, "publisher": bytes(a.local_id), "seq": 1, "prev": 0,
            "time": 1.0, "headers": {}, "payload": b"forged"}
    forged = seal(mallory.key, DOMAIN, EVENT_PAYLOAD_TYPE, wire)
    answer = {"events": [[0, forged]], "missed": 0, "exact": True, "next": 1, "more": False,
              "evicted": [], "heads": []}
    s.on_response(mallory.local_id, req.request_id, s.encode(answer), net.now)  # type: ignore
    evs = [c.event for c in s.drain()]
    assert evs == [CaughtUp(sid, 0)] and s.counters["rejected_forged"] == 1


def test_replay_falls_over_to_the_next_retention_node() -> None:
    net, r, a = setup()
    for i in range(1, 4):
        a.publish(T, p(i), net.now)
    net.pump()
    s = net.add(3)
    dead = net.add(7)
    net.down.add(dead.local_id)
    s.set_retention_peers([dead.local_id, r.local_id])
    s.subscribe(T, net.now, since=FromTime(0.0))
    net.pump()
    assert payloads(net, s.local_id) == [p(1), p(2), p(3)]
    # nobody at all: told it is unavailable, then live
    lone = net.add(5)
    sid = lone.subscribe(T, net.now, since=FromTime(0.0))
    net.pump()
    assert of(net, lone.local_id, Missed) == [Missed(sid, 0, "unavailable", exact=False)]


def test_queue_group_splits_events_and_broadcast_still_gets_all() -> None:
    net, r, a = setup()
    members = [net.add(10 + i) for i in range(3)]
    sids = [m.subscribe(T, net.now, group="workers") for m in members]
    b = net.add(20)
    b.subscribe(T, net.now)
    net.pump()  # memberships spread
    for m in members:
        assert len(m.groups.members(T, "workers")) == 3
    for i in range(60):
        a.publish(T, p(i), net.now)
    net.pump()
    got = [payloads(net, m.local_id, sid) for m, sid in zip(members, sids, strict=True)]
    assert sorted(x for g in got for x in g) == sorted(p(i) for i in range(60))
    assert all(len(g) > 5 for g in got)
    assert len(payloads(net, b.local_id)) == 60
    # one member leaves gracefully: the other two take over everything at once
    members[0].unsubscribe(sids[0], net.now)
    net.pump()
    for i in range(60, 90):
        a.publish(T, p(i), net.now)
    net.pump()
    later = [x for m, sid in zip(members[1:], sids[1:], strict=True)
             for x in payloads(net, m.local_id, sid) if int(x[1:]) >= 60]
    assert sorted(later) == sorted(p(i) for i in range(60, 90))


def test_queue_group_member_crash_is_covered_after_expiry() -> None:
    net, r, a = setup()
    m1, m2 = net.add(11), net.add(12)
    s1 = m1.subscribe(T, net.now, group="w")
    s2 = m2.subscribe(T, net.now, group="w")
    net.pump()
    net.down.add(m1.local_id)  # m1 crashes silently
    del net.nodes[m1.local_id]
    net.advance(net.now + 1.0)
    for i in range(20):
        a.publish(T, p(i), net.now)
    net.pump()
    before = payloads(net, m2.local_id, s2)
    assert 0 < len(before) < 20
    net.advance(net.now + 20.0)  # m1's membership expires: m2 delivers what m1 owned
    assert sorted(payloads(net, m2.local_id, s2)) == sorted(p(i) for i in range(20))
    assert s1 == 1


def test_slow_subscriber_lags_without_slowing_others_then_resumes_from_retention() -> None:
    cfg = BrokerConfig(subscriber_buffer=4)
    net, r, a = setup()
    slow, fast = net.add(3, cfg), net.add(4)
    slow.set_retention_peers([r.local_id])
    sid = slow.subscribe(T, net.now)
    fast.subscribe(T, net.now)
    for i in range(1, 21):
        a.publish(T, p(i), net.now)
    net.pump()
    assert payloads(net, fast.local_id) == [p(i) for i in range(1, 21)]
    assert payloads(net, slow.local_id) == [p(i) for i in range(1, 5)]
    (lag,) = of(net, slow.local_id, Lagging)
    assert lag.cursor.seq(a.local_id) == 4
    # the app consumes what it had; the subscription resumes from retention, exactly once
    for _ in range(5):
        slow.consumed(sid, 4, net.now)
        net.pump()
    assert payloads(net, slow.local_id) == [p(i) for i in range(1, 21)]
    assert of(net, slow.local_id, Missed) == []


def test_retention_survives_a_restart(tmp_path: Path) -> None:
    def factory(kind: str, topic: str) -> SegmentStore:
        return SegmentStore(tmp_path / kind / topic)

    net = Net()
    r = net.add(1, RETAIN, store_factory=factory)
    a = net.add(2, NO_OWN)
    for i in range(1, 6):
        a.publish(T, p(i), net.now)
    net.pump()
    r.close(net.now)
    r2 = net.add(1, RETAIN, store_factory=factory)  # restarted
    assert [e.event.payload for e in r2.logs[T].entries()] == [p(i) for i in range(1, 6)]
    a.publish(T, p(6), net.now)
    net.pump()
    assert r2.logs[T].get(5) is not None and r2.logs[T].get(5).event.payload == p(6)  # type: ignore[union-attr]
    s = net.add(3)
    s.set_retention_peers([r2.local_id])
    s.subscribe(T, net.now, since=FromTime(0.0))
    net.pump()
    assert payloads(net, s.local_id) == [p(i) for i in range(1, 7)]


def test_publisher_keeps_its_seq_across_restarts_with_its_log(tmp_path: Path) -> None:
    def factory(kind: str, topic: str) -> SegmentStore:
        return SegmentStore(tmp_path / kind / topic)

    net = Net()
    a = net.add(2, store_factory=factory)
    for i in range(1, 4):
        a.publish(T, p(i), net.now)
    net.pump()
    a.close(net.now)
    a2 = net.add(2, store_factory=factory)
    ev = a2.publish(T, p(4), net.now)
    assert (ev.seq, ev.prev) == (4, 3)


def test_star_retention_node_retains_topics_it_hears_of() -> None:
    net = Net()
    star = net.add(1, BrokerConfig(retain_topics="*"))
    star.on_peer_subscribed(PeerId(b"\x00\x01x"), gossip_topic("fresh"), net.now)
    assert "fresh" in star.logs and gossip_topic("fresh") in net.ports[star.local_id].topics


def test_push_reaches_a_star_retention_node_nobody_subscribed_to() -> None:
    """A short-lived publisher: nobody is subscribed yet, so gossip carries its event to no
    one; pushing it to the retention node stores it for later subscribers."""
    from micronetwork.broker import Stored

    net = Net()
    star = net.add(1, BrokerConfig(retain_topics="*"))
    pub = net.add(2, NO_OWN)
    ev = pub.publish("news", b"first", net.now)
    net.pump()
    assert "news" not in star.logs  # gossip reached nobody
    rid = pub.push(ev, star.local_id, net.now)
    net.pump()
    (ack,) = of(net, pub.local_id, Stored)
    assert (ack.request_id, ack.offset, ack.error) == (rid, 0, None)
    pub.push(ev, star.local_id, net.now)  # a repeated push is answered with the same offset
    net.pump()
    assert [a.offset for a in of(net, pub.local_id, Stored)] == [0, 0]
    late = net.add(3, NO_OWN)
    late.set_retention_peers([star.local_id])
    late.subscribe("news", net.now, since=FromTime(0.0))
    net.pump()
    assert payloads(net, late.local_id) == [b"first"]
    # a node cannot hand in someone else's event, and garbage is refused
    other = net.add(4, NO_OWN)
    other.push(ev, star.local_id, net.now)
    net.pump()
    (refused,) = of(net, other.local_id, Stored)
    assert refused.offset is None and refused.error == "not the publisher"
    assert star.counters["rejected_store"] == 1
