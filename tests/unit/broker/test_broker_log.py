"""RetentionLog: offsets, dedupe, bounds, reads by offset/time/cursor, missed counts."""

from __future__ import annotations

from micronetwork.broker import Event, RetentionLimits, RetentionLog, seal_event
from micronetwork.identity.keys import KeyPair

A = KeyPair.from_seed(b"\x01" * 32)
B = KeyPair.from_seed(b"\x02" * 32)


def ev(key: KeyPair, seq: int, size: int = 0) -> Event:
    return seal_event(key, "t", seq, float(seq), b"x" * size)


def test_append_offsets_and_dedupe() -> None:
    log = RetentionLog("t", RetentionLimits())
    e1 = log.append(ev(A, 1), 10.0)
    e2 = log.append(ev(B, 1), 11.0)
    assert e1 is not None and e2 is not None and (e1.offset, e2.offset) == (0, 1)
    assert log.append(ev(A, 1), 12.0) is None  # same id
    assert len(log) == 2 and log.next_offset == 2 and log.first_offset == 0
    assert log.head(A.peer_id) == 1 and log.head(B.peer_id) == 1
    e3 = log.append(ev(A, 2), 5.0)  # the wall clock went back: stored_at stays monotonic
    assert e3 is not None and e3.stored_at == 11.0


def test_bounds_by_count_bytes_and_age() -> None:
    log = RetentionLog("t", RetentionLimits(max_events=3))
    for s in range(1, 6):
        log.append(ev(A, s), float(s))
    assert [e.event.seq for e in log.entries()] == [3, 4, 5] and log.first_offset == 2
    size = ev(A, 1, 100).size
    log = RetentionLog("t", RetentionLimits(max_bytes=size * 2 + 10))
    for s in range(1, 5):
        log.append(ev(A, s, 100), 0.0)
    assert len(log) == 2 and log.bytes <= size * 2 + 10
    log = RetentionLog("t", RetentionLimits(max_age=10.0))
    for s in range(1, 5):
        log.append(ev(A, s), s * 5.0)  # stored at 5, 10, 15, 20
    assert [e.event.seq for e in log.entries()] == [2, 3, 4]
    assert log.expire(100.0) == 3 and len(log) == 0 and log.next_offset == 4
    assert A.peer_id in log.heads() and log.head(A.peer_id) == 4


def test_read_by_offset_with_pages_and_missed() -> None:
    log = RetentionLog("t", RetentionLimits(max_events=5))
    for s in range(1, 11):
        log.append(ev(A, s), float(s))
    r = log.read(since_offset=7, limit=2)
    assert [e.offset for e in r.entries] == [7, 8] and r.next_offset == 9 and r.more
    assert r.missed == 0
    r = log.read(since_offset=9)
    assert [e.offset for e in r.entries] == [9] and not r.more and r.next_offset == 10
    r = log.read(since_offset=2)
    assert r.missed == 3 and r.exact and [e.offset for e in r.entries] == [5, 6, 7, 8, 9]
    r = log.read()
    assert r.missed == 5 and r.exact
    assert log.read(since_offset=10).entries == [] and log.read(since_offset=99).missed == 0


def test_read_by_time() -> None:
    log = RetentionLog("t", RetentionLimits(max_events=5))
    for s in range(1, 11):
        log.append(ev(A, s), float(s * 10))
    r = log.read(since_time=75.0)
    assert [e.event.seq for e in r.entries] == [8, 9, 10] and r.missed == 0
    r = log.read(since_time=25.0)
    assert [e.event.seq for e in r.entries] == [6, 7, 8, 9, 10] and r.missed == 3 and r.exact


def test_read_with_after_lists_evicted_seqs_of_known_publishers() -> None:
    log = RetentionLog("t", RetentionLimits(max_events=4))
    for s in range(1, 5):
        log.append(ev(A, s), float(s))
        log.append(ev(B, s), float(s))
    # retained: A3 B3 A4 B4; evicted: A1 B1 A2 B2
    r = log.read(since_time=0.0, after={A.peer_id: 1})
    assert r.evicted == {A.peer_id: [2]}
    assert r.missed == 2  # B1, B2: B is not known to the reader
    assert [(e.event.publisher, e.event.seq) for e in r.entries] == [
        (A.peer_id, 3), (B.peer_id, 3), (A.peer_id, 4), (B.peer_id, 4)]
    r = log.read(since_time=0.0, after={A.peer_id: 3, B.peer_id: 4})
    assert [e.event.seq for e in r.entries] == [4] and r.missed == 0 and r.evicted == {}


def test_ledger_overflow_makes_counts_upper_bounds() -> None:
    log = RetentionLog("t", RetentionLimits(max_events=2, ledger_size=3))
    for s in range(1, 11):
        log.append(ev(A, s), float(s))
    r = log.read(since_offset=0)
    assert r.missed == 8 and r.exact  # offsets are contiguous: the count is exact
    r = log.read(since_time=0.0)
    assert r.missed == 8 and not r.exact
    r = log.read(since_time=6.0)
    assert r.missed == 3 and r.exact  # 6, 7, 8 are in the ledger; what it forgot is older


def test_range_and_restore_with_hole() -> None:
    log = RetentionLog("t", RetentionLimits())
    for s in range(1, 6):
        log.append(ev(A, s), float(s))
        log.append(ev(B, s), float(s))
    assert [e.event.seq for e in log.range(A.peer_id, 2, 4)] == [2, 3, 4]
    assert [e.event.seq for e in log.range(A.peer_id, 0, 10**9)] == [1, 2, 3, 4, 5]
    fresh = RetentionLog("t", RetentionLimits())
    records = [(0, 1.0, ev(A, 1)), (1, 2.0, ev(A, 2)), (5, 3.0, ev(A, 3)), (6, 4.0, ev(A, 4))]
    fresh.restore(records, 4.0)
    assert fresh.first_offset == 5 and fresh.next_offset == 7
    assert [e.event.seq for e in fresh.entries()] == [3, 4]
    r = fresh.read(since_offset=0)
    assert r.missed == 5 and [e.offset for e in r.entries] == [5, 6]
