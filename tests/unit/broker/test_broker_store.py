"""SegmentStore: round trip, rollover, eviction, and crash safety at every byte."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from micronetwork.broker import RetentionLimits, RetentionLog, SegmentStore, seal_event
from micronetwork.broker.store import HEADER, encode_record
from micronetwork.errors import ConfigError
from micronetwork.identity.keys import KeyPair

A = KeyPair.from_seed(b"\x01" * 32)


def records(n: int, start: int = 0) -> list[tuple[int, float, bytes]]:
    return [(o, float(o), b"event-%d" % o + b"." * (o % 7)) for o in range(start, start + n)]


def write(directory: Path, recs: list[tuple[int, float, bytes]], **kw: object) -> SegmentStore:
    store = SegmentStore(directory, **kw)  # type: ignore[arg-type]
    store.load()
    for r in recs:
        store.persist(*r)
    store.flush()
    return store


def read(directory: Path, **kw: object) -> list[tuple[int, float, bytes]]:
    store = SegmentStore(directory, **kw)  # type: ignore[arg-type]
    return [(r.offset, r.stored_at, r.signed) for r in store.load()]


def test_round_trip_rollover_and_eviction(tmp_path: Path) -> None:
    recs = records(200)
    store = write(tmp_path, recs, segment_bytes=1024)
    assert len(store.segments) > 3
    assert read(tmp_path) == recs
    segs = sorted(p.name for p in tmp_path.iterdir())
    assert segs[0] == f"{0:020d}.seg"
    store.evict_below(100)
    store.flush()
    got = read(tmp_path)
    assert got[-1] == recs[-1] and got[0][0] <= 100 and got == recs[got[0][0]:]
    store.evict_below(10**9)  # everything: the active segment stays, so offsets go on
    assert len(store.segments) == 1
    reopened = SegmentStore(tmp_path)
    reopened.load()
    assert reopened.next_offset == 200
    with pytest.raises(ValueError):
        reopened.persist(150, 0.0, b"x")  # offsets only grow
    store.close()
    reopened.close()


def test_fsync_policies_and_config(tmp_path: Path) -> None:
    for policy in ("never", "batch", "always"):
        d = tmp_path / policy
        write(d, records(5), fsync=policy).close()
        assert read(d) == records(5)
    with pytest.raises(ConfigError):
        SegmentStore(tmp_path, fsync="sometimes")  # type: ignore[arg-type]


def _tail_records(n: int) -> tuple[list[tuple[int, float, bytes]], list[int]]:
    """Records and the byte offset at which each record starts in a single segment."""
    recs = records(n)
    starts, pos = [], len(HEADER)
    for r in recs:
        starts.append(pos)
        pos += len(encode_record(*r))
    return recs, [*starts, pos]


def test_truncation_at_every_byte_of_the_last_records(tmp_path: Path) -> None:
    n = 6
    recs, bounds = _tail_records(n)
    base = tmp_path / "base"
    write(base, recs).close()
    (seg,) = base.iterdir()
    data = seg.read_bytes()
    assert len(data) == bounds[-1]
    # cut anywhere inside the last two records (and inside the header)
    cuts = [*range(0, len(HEADER) + 1), *range(bounds[n - 2], bounds[n] + 1)]
    for cut in cuts:
        d = tmp_path / f"cut{cut}"
        d.mkdir()
        (d / seg.name).write_bytes(data[:cut])
        complete = sum(1 for end in bounds[1:] if end <= cut)
        store = SegmentStore(d)
        got = [(r.offset, r.stored_at, r.signed) for r in store.load()]
        assert got == recs[:complete], cut
        # appending goes on right after the last complete record, and survives a reopen
        nxt = recs[complete - 1][0] + 1 if complete else 0
        store.persist(nxt, 99.0, b"after-crash")
        store.flush()
        store.close()
        assert read(d) == [*recs[:complete], (nxt, 99.0, b"after-crash")], cut


def test_flipped_bytes_lose_only_the_corrupt_record_and_what_follows(tmp_path: Path) -> None:
    n = 5
    recs, bounds = _tail_records(n)
    base = tmp_path / "base"
    write(base, recs).close()
    (seg,) = base.iterdir()
    data = seg.read_bytes()
    for pos in range(bounds[n - 2], bounds[n]):  # every byte of the last two records
        for flip in (0x01, 0x80, 0xFF):
            bad = bytearray(data)
            bad[pos] ^= flip
            d = tmp_path / f"flip{pos}-{flip}"
            d.mkdir()
            (d / seg.name).write_bytes(bytes(bad))
            index = next(i for i in range(n) if bounds[i] <= pos < bounds[i + 1])
            assert read(d) == recs[:index], (pos, flip)
            # the file was truncated to the good prefix: a second open agrees
            assert (d / seg.name).stat().st_size == bounds[index]
            assert read(d) == recs[:index]


def test_corruption_in_an_old_segment_keeps_the_later_segments(tmp_path: Path) -> None:
    recs = records(60)
    write(tmp_path, recs, segment_bytes=1024).close()
    first = sorted(tmp_path.iterdir())[0]
    raw = bytearray(first.read_bytes())
    raw[len(HEADER) + 30] ^= 0xFF  # inside the first record of the first segment
    first.write_bytes(bytes(raw))
    second = int(sorted(tmp_path.iterdir())[1].name[:20])
    # the first record survives, the rest of that segment is lost, later segments all come back
    assert read(tmp_path) == [recs[0], *recs[second:]]


def test_log_persists_through_its_store_and_restarts(tmp_path: Path) -> None:
    limits = RetentionLimits(max_events=50)
    store = SegmentStore(tmp_path, segment_bytes=2048)
    store.load()
    log = RetentionLog("t", limits, sink=store)
    events = [seal_event(A, "t", s, float(s), b"p" * 20) for s in range(1, 121)]
    for e in events:
        log.append(e, float(e.seq))
    store.flush()
    store.close()
    # restart
    from micronetwork.broker import open_event

    store2 = SegmentStore(tmp_path, segment_bytes=2048)
    recovered = [(r.offset, r.stored_at, open_event(r.signed)) for r in store2.load()]
    assert len(os.listdir(tmp_path)) < 120 // 5  # old segments were deleted
    log2 = RetentionLog("t", limits, sink=store2)
    log2.restore(recovered, 120.0)
    assert [e.event for e in log2.entries()] == events[-50:]
    assert log2.next_offset == 120 and log2.first_offset == 70
    assert log2.read(since_offset=60).missed == 10
    entry = log2.append(seal_event(A, "t", 121, 121.0, b""), 121.0)
    assert entry is not None and entry.offset == 120
    store2.flush()
    assert [r.offset for r in store2.records()][-1] == 120
    store2.close()
