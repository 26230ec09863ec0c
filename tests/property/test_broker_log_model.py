"""Hypothesis stateful test: the broker's RetentionLog against a plain list of everything."""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from micronetwork.broker import Event, RetentionLimits, RetentionLog, seal_event
from micronetwork.identity.keys import KeyPair
from micronetwork.identity.peerid import PeerId

KEYS = [KeyPair.from_seed(bytes([i + 1]) * 32) for i in range(3)]
POOL = {
    (k, s): seal_event(KEYS[k], "t", s, float(s), b"x" * (s * 37 % 200))
    for k in range(3) for s in range(1, 16)
}
PUBS = [k.peer_id for k in KEYS]


@dataclass
class Row:
    offset: int
    stored_at: float
    event: Event
    evicted: bool = False


def wanted(row: Row, since_time: float | None, after: dict[PeerId, int]) -> bool:
    if row.event.publisher in after:
        return row.event.seq > after[row.event.publisher]
    return since_time is None or row.stored_at >= since_time


class LogMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.limits = RetentionLimits(max_events=6, max_bytes=900, max_age=50.0,
                                      ledger_size=10_000)
        self.log = RetentionLog("t", self.limits)
        self.rows: list[Row] = []  # everything ever stored, in offset order
        self.wall = 0.0
        self.last = float("-inf")

    def retained(self) -> list[Row]:
        return [r for r in self.rows if not r.evicted]

    def evict(self) -> None:
        while True:
            live = self.retained()
            if not live:
                return
            if (len(live) > self.limits.max_events
                    or sum(r.event.size for r in live) > self.limits.max_bytes
                    or live[0].stored_at < self.wall - self.limits.max_age):
                live[0].evicted = True
            else:
                return

    @rule(k=st.integers(0, 2), s=st.integers(1, 15), dt=st.floats(-5, 20))
    def append(self, k: int, s: int, dt: float) -> None:
        self.wall += dt
        ev = POOL[(k, s)]
        got = self.log.append(ev, self.wall)
        if any(r.event.id == ev.id for r in self.retained()):
            assert got is None
            self.evict()
            return
        assert got is not None and got.offset == len(self.rows)
        self.last = max(self.last, self.wall)
        assert got.stored_at == self.last
        self.rows.append(Row(got.offset, got.stored_at, ev))
        self.evict()

    @rule(dt=st.floats(0, 60))
    def expire(self, dt: float) -> None:
        self.wall += dt
        self.log.expire(self.wall)
        self.evict()

    @rule(
        since_offset=st.none() | st.integers(0, 40),
        since_time=st.none() | st.floats(-10, 400),
        after=st.dictionaries(st.integers(0, 2), st.integers(0, 15), max_size=3),
        limit=st.integers(1, 8),
    )
    def read(
        self, since_offset: int | None, since_time: float | None, after: dict[int, int],
        limit: int,
    ) -> None:
        aft = {PUBS[k]: s for k, s in after.items()}
        r = self.log.read(since_offset=since_offset, since_time=since_time, after=aft,
                          limit=limit)
        start = since_offset or 0
        want = [row for row in self.retained() if row.offset >= start
                and wanted(row, since_time, aft)]
        assert [e.offset for e in r.entries] == [row.offset for row in want[:limit]]
        assert all(e.event == row.event for e, row in zip(r.entries, want, strict=False))
        assert r.more == (r.next_offset < len(self.rows))
        gone = [row for row in self.rows if row.evicted and row.offset >= start
                and wanted(row, since_time, aft)]
        assert r.exact
        assert r.missed == sum(1 for row in gone if row.event.publisher not in aft)
        expected: dict[PeerId, list[int]] = {}
        for row in gone:
            if row.event.publisher in aft:
                expected.setdefault(row.event.publisher, []).append(row.event.seq)
        assert r.evicted == expected
        # paging on from next_offset reaches every wanted event exactly once
        seen = [e.offset for e in r.entries]
        nxt = r.next_offset
        while r.more:
            r = self.log.read(since_offset=nxt, since_time=since_time, after=aft, limit=limit)
            seen += [e.offset for e in r.entries]
            nxt = r.next_offset
        assert seen == [row.offset for row in want]

    @rule(k=st.integers(0, 2), lo=st.integers(0, 16), hi=st.integers(0, 16))
    def range(self, k: int, lo: int, hi: int) -> None:
        got = [e.event.seq for e in self.log.range(PUBS[k], lo, hi)]
        want = sorted(r.event.seq for r in self.retained()
                      if r.event.publisher == PUBS[k] and lo <= r.event.seq <= hi)
        assert got == want

    @invariant()
    def same_state(self) -> None:
        live = self.retained()
        assert [e.offset for e in self.log.entries()] == [r.offset for r in live]
        assert len(self.log) == len(live)
        assert self.log.bytes == sum(r.event.size for r in live)
        assert self.log.next_offset == len(self.rows)
        assert self.log.first_offset == (live[0].offset if live else len(self.rows))
        for pub in PUBS:
            seqs = [r.event.seq for r in self.rows if r.event.publisher == pub]
            assert self.log.head(pub) == max(seqs, default=0)


TestLogModel = LogMachine.TestCase
TestLogModel.settings = settings(max_examples=150, stateful_step_count=40, deadline=None)
