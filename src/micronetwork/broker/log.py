"""RetentionLog: the bounded, offset-numbered log of one topic on one retaining node.

Theory of operation. A retaining node numbers the events of a topic in the order it stores
them: offsets 0, 1, 2, ... with no holes (they are this node's, not the publisher's: another
retention node numbers the same events differently). An event is stored once (by id); the log
is bounded by count, bytes and age, and evicts from the oldest end, so the retained events are
always one contiguous offset range ``[first_offset, next_offset)``. ``stored_at`` is this
node's wall clock when it stored the event, forced non-decreasing so reads by time can bisect.

Evicted events leave a line in a bounded *ledger* (offset, publisher, seq, stored_at): a read
that starts before ``first_offset`` is told exactly how many matching events it missed while
the ledger still covers the range (``exact=True``), and an upper bound after that.

A read filters by start (``since_offset``, ``since_time``) and, for a subscriber that resumes,
by what it already has (``after``: publisher -> last seq delivered). For publishers named in
``after`` the evicted seqs are listed (``ReadResult.evicted``) rather than counted, so the
subscriber can skip exactly those and count them once.

A :class:`LogSink` (the on-disk store) sees every append and eviction; ``flush()`` is the
caller's (once per batch).
"""

from __future__ import annotations

import bisect
from collections import OrderedDict, deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from ..identity.peerid import PeerId
from .config import RetentionLimits
from .event import Event

__all__ = ["LogEntry", "LogSink", "ReadResult", "RetentionLog"]

MAX_HEADS = 4096


class LogSink(Protocol):
    """Where a log's appends and evictions go (the on-disk store)."""

    def persist(self, offset: int, stored_at: float, signed: bytes) -> None: ...
    def evict_below(self, offset: int) -> None: ...
    def flush(self) -> None: ...


@dataclass(frozen=True, slots=True)
class LogEntry:
    offset: int
    stored_at: float
    event: Event


@dataclass(frozen=True, slots=True)
class ReadResult:
    """One page of a read.

    ``missed``: events at or after the requested point that matched the filter but were
    evicted (publishers not in ``after``); ``exact`` is False when part of that range is older
    than the ledger remembers and ``missed`` is an upper bound. ``evicted``: for publishers in
    ``after``, the seqs above ``after[publisher]`` that were evicted; ``counted``: for the
    other publishers, the seqs counted in ``missed`` (so that a subscriber can drop a late copy
    of one instead of delivering an event it was told it missed). ``next_offset``: where
    the next page starts; ``more``: whether the log held more past this page.
    """

    entries: list[LogEntry]
    missed: int
    next_offset: int
    more: bool
    exact: bool = True
    evicted: dict[PeerId, list[int]] = field(default_factory=dict)
    counted: dict[PeerId, list[int]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class _Evicted:
    offset: int
    publisher: PeerId
    seq: int
    stored_at: float


class RetentionLog:
    def __init__(
        self, topic: str, limits: RetentionLimits, *, sink: LogSink | None = None
    ) -> None:
        self.topic = topic
        self.limits = limits
        self.sink = sink
        self._entries: list[LogEntry] = []
        self._head = 0
        self._next = 0
        self._bytes = 0
        self._by_id: dict[bytes, int] = {}
        self._by_pub: dict[PeerId, dict[int, int]] = {}
        self._heads: OrderedDict[PeerId, int] = OrderedDict()
        self._ledger: deque[_Evicted] = deque()
        self._lost_max_time = float("-inf")  # stored_at of events evicted past the ledger
        self._lost_known = True  # False after a restart: what came before is not remembered
        self._last_time = float("-inf")
        self.evictions = 0

    # == state ==================================================================================

    @property
    def first_offset(self) -> int:
        return self._entries[self._head].offset if len(self) else self._next

    @property
    def next_offset(self) -> int:
        return self._next

    @property
    def bytes(self) -> int:
        return self._bytes

    def __len__(self) -> int:
        return len(self._entries) - self._head

    def __contains__(self, event_id: object) -> bool:
        return event_id in self._by_id

    def entries(self) -> list[LogEntry]:
        return self._entries[self._head :]

    def get(self, offset: int) -> LogEntry | None:
        if not self.first_offset <= offset < self._next:
            return None
        return self._entries[self._head + offset - self.first_offset]

    def head(self, publisher: PeerId) -> int:
        """The highest seq of ``publisher`` this log ever stored (0 if none)."""
        return self._heads.get(publisher, 0)

    def heads(self) -> dict[PeerId, int]:
        return dict(self._heads)

    def oldest_time(self) -> float | None:
        return self._entries[self._head].stored_at if len(self) else None

    # == writing ================================================================================

    def append(self, event: Event, wall: float) -> LogEntry | None:
        """Store ``event`` (None if this log has it already) and evict past the limits."""
        if event.id in self._by_id:
            self._enforce(wall)
            return None
        entry = LogEntry(self._next, max(wall, self._last_time), event)
        self._push(entry)
        if self.sink is not None:
            self.sink.persist(entry.offset, entry.stored_at, event.signed)
        self._enforce(wall)
        return entry

    def restore(self, records: Iterable[tuple[int, float, Event]], wall: float) -> None:
        """Load what a store recovered (offsets ascending); a hole drops what came before it."""
        for offset, stored_at, event in records:
            if offset < self._next or event.id in self._by_id:
                continue
            if len(self) and offset != self._next:
                self._drop_all()
            if not len(self):
                self._next = offset
            self._push(LogEntry(offset, max(stored_at, self._last_time), event))
        if self._next > 0:
            self._lost_known = False
        self._enforce(wall)

    def expire(self, wall: float) -> int:
        """Evict what is older than ``max_age``; the number evicted."""
        before = self.evictions
        self._enforce(wall)
        return self.evictions - before

    def _push(self, entry: LogEntry) -> None:
        ev = entry.event
        self._entries.append(entry)
        self._next = entry.offset + 1
        self._last_time = entry.stored_at
        self._bytes += ev.size
        self._by_id[ev.id] = entry.offset
        self._by_pub.setdefault(ev.publisher, {})[ev.seq] = entry.offset
        if ev.seq > self._heads.get(ev.publisher, 0):
            self._heads[ev.publisher] = ev.seq
        self._heads.move_to_end(ev.publisher)
        while len(self._heads) > MAX_HEADS:
            self._heads.popitem(last=False)

    def _enforce(self, wall: float) -> None:
        lim = self.limits
        evicted = False
        while len(self) and (
            len(self) > lim.max_events
            or self._bytes > lim.max_bytes
            or self._entries[self._head].stored_at < wall - lim.max_age
        ):
            self._evict_one()
            evicted = True
        if evicted and self.sink is not None:
            self.sink.evict_below(self.first_offset)

    def _evict_one(self) -> None:
        entry = self._entries[self._head]
        self._entries[self._head] = None  # type: ignore[call-overload]  # release the event
        self._head += 1
        if self._head > 1024 and self._head * 2 > len(self._entries):
            del self._entries[: self._head]
            self._head = 0
        ev = entry.event
        self._bytes -= ev.size
        del self._by_id[ev.id]
        seqs = self._by_pub[ev.publisher]
        seqs.pop(ev.seq, None)
        if not seqs:
            del self._by_pub[ev.publisher]
        self.evictions += 1
        if self.limits.ledger_size:
            self._ledger.append(_Evicted(entry.offset, ev.publisher, ev.seq, entry.stored_at))
            if len(self._ledger) > self.limits.ledger_size:
                self._forget(self._ledger.popleft().stored_at)
        else:
            self._forget(entry.stored_at)

    def _forget(self, stored_at: float) -> None:
        self._lost_max_time = max(self._lost_max_time, stored_at)

    def _drop_all(self) -> None:
        while len(self):
            self._evict_one()
        self._ledger.clear()
        self._lost_known = False

    # == reading ================================================================================

    def read(
        self,
        *,
        since_offset: int | None = None,
        since_time: float | None = None,
        after: Mapping[PeerId, int] | None = None,
        limit: int = 512,
        max_bytes: int | None = None,
    ) -> ReadResult:
        """Events from ``since_offset`` (else from the start) stored at or after
        ``since_time`` (for publishers not in ``after``) or with a seq above ``after[p]``."""
        after = after or {}
        start = 0 if since_offset is None else max(0, since_offset)
        missed, exact, evicted, counted = self._missed(start, since_time, after)
        first = max(start, self.first_offset)
        if since_time is not None and not after and len(self):
            times = _Times(self._entries, self._head)
            i = bisect.bisect_left(times, since_time)
            first = max(first, self.first_offset + i)
        out: list[LogEntry] = []
        size = 0
        offset = first
        while offset < self._next and len(out) < limit:
            entry = self._entries[self._head + offset - self.first_offset]
            ev = entry.event
            if max_bytes is not None and out and size + ev.size > max_bytes:
                break
            offset += 1
            if _wanted(ev.publisher, ev.seq, entry.stored_at, since_time, after):
                out.append(entry)
                size += ev.size
        return ReadResult(out, missed, offset, offset < self._next, exact, evicted, counted)

    def _missed(
        self, start: int, since_time: float | None, after: Mapping[PeerId, int]
    ) -> tuple[int, bool, dict[PeerId, list[int]], dict[PeerId, list[int]]]:
        if start >= self.first_offset:
            return 0, True, {}, {}
        missed = 0
        evicted: dict[PeerId, list[int]] = {}
        counted: dict[PeerId, list[int]] = {}
        for e in self._ledger:
            if e.offset < start or not _wanted(e.publisher, e.seq, e.stored_at, since_time, after):
                continue
            if e.publisher in after:
                evicted.setdefault(e.publisher, []).append(e.seq)
            else:
                missed += 1
                counted.setdefault(e.publisher, []).append(e.seq)
        covered = self._ledger[0].offset if self._ledger else self.first_offset
        lost = max(0, covered - start)
        exact = True
        if lost:
            if since_time is not None and self._lost_known and since_time > self._lost_max_time:
                lost = 0
            elif after or since_time is not None or not self._lost_known:
                exact = False
        return missed + lost, exact, evicted, counted

    def range(self, publisher: PeerId, first_seq: int, last_seq: int, limit: int = 512) -> list[
        LogEntry
    ]:
        """The retained events of ``publisher`` with ``first_seq <= seq <= last_seq``."""
        seqs = self._by_pub.get(publisher, {})
        out = []
        if last_seq - first_seq < len(seqs):
            wanted = (s for s in range(first_seq, last_seq + 1) if s in seqs)
        else:
            wanted = (s for s in sorted(seqs) if first_seq <= s <= last_seq)
        for s in wanted:
            entry = self.get(seqs[s])
            if entry is not None:
                out.append(entry)
            if len(out) >= limit:
                break
        return out


def _wanted(
    publisher: PeerId, seq: int, stored_at: float, since_time: float | None,
    after: Mapping[PeerId, int],
) -> bool:
    known = after.get(publisher)
    if known is not None:
        return seq > known
    return since_time is None or stored_at >= since_time


class _Times:
    """A sequence view of the retained entries' ``stored_at`` for bisect."""

    __slots__ = ("_entries", "_head")

    def __init__(self, entries: list[LogEntry], head: int) -> None:
        self._entries = entries
        self._head = head

    def __len__(self) -> int:
        return len(self._entries) - self._head

    def __getitem__(self, i: int) -> float:
        return self._entries[self._head + i].stored_at
