"""The k-bucket routing table, with liveness-based eviction.

Theory of operation. Peers are kept in buckets by the length of the prefix their key shares
with ours (``cpl``), at most ``k`` per bucket, least recently seen first. A peer we hear from
moves to the tail of its bucket. When a bucket is full, the newcomer does not push anyone out:
it waits as the bucket's candidate, and the table answers ``PENDING`` with the least recently
seen entry, which stands for eviction (later newcomers get ``FULL`` with the same entry and
replace the candidate: the newest waits). The caller pings that entry, at once or, if it was
heard from lately, not yet (the Kademlia core's ``evict_ping_after``); ``resolve_ping(peer,
alive)`` then keeps the old peer (alive) or replaces it with the candidate (dead), and any
removal of an entry of that bucket (failures, a failed liveness check) lets the candidate in.
This is Kademlia's preference for long-lived peers, which is what makes tables hard to flood.

Spread within a bucket (``spread_bits``, off by default; 4 for k = 20; at most log2(k)). A
bucket's subtree splits into ``2**spread_bits`` parts by the next bits of the distance; a full
bucket keeps at least ``k >> spread_bits`` entries per part (k = 20: one in each of 16 parts)
when peers of that part come along. A newcomer whose part holds fewer than that quota takes
the slot of the least recently seen entry of the most crowded part, if that part is above
quota (``REPLACED``); otherwise the usual ping rule applies. Why:
tables filled by lookups hold the peers met near a few keys, crowded into one corner of each
far bucket; a spread bucket's best entry shares more bits with any target, so lookups take
fewer rounds (docs/simulator.md, "Spread within a k-bucket"). Old peers still keep their place:
only entries above their part's quota can be replaced, so a flood of newcomers can at most even
out a bucket, never empty a part. The idea is the Kademlia paper's sub-buckets (section 4.2).
Off by default: an attacker that grinds ids next to one key gets the empty part of every far
bucket that holds the key, the one entry lookups for that key go to first (measured: the
eclipse benchmark, docs/simulator.md).

``closest(target, n)`` does not sort the whole table: entries of the bucket that shares the
target's prefix are nearest, then all deeper buckets together, then shallower buckets one by one
(each strictly farther than the last), so only the groups needed for ``n`` results are sorted.
"""

from __future__ import annotations

from collections.abc import Iterator
from enum import Enum

from ..identity.peerid import PeerId
from .keyspace import KEY_BITS, kad_key

__all__ = ["Entry", "Outcome", "RoutingTable", "bucket_order"]


def bucket_order(diff: int, cpls: list[int]) -> list[int]:
    """The buckets ``cpls`` (ascending) in the order of their entries' distance to a target
    whose key differs from ours by ``diff``: every entry of a bucket in the list is nearer than
    every entry of the buckets after it, so only one bucket at a time needs sorting.

    Why: the target shares ``b`` bits with us (``b = cpl(diff)``); bucket ``b`` is nearest. An
    entry of a deeper bucket ``c`` differs from us first at bit ``c``, so against the target it
    differs at bit ``c`` exactly when ``diff`` does not: if ``diff`` has bit ``c``, bucket ``c``
    is nearer than every bucket deeper than ``c``, otherwise farther. The deeper buckets thus go
    those with the bit set, ascending, then those without, descending; the shallower buckets
    (``c < b``, whose entries differ from the target at bit ``c``, above bit ``b``) last,
    descending.
    """
    b = KEY_BITS - diff.bit_length()
    near: list[int] = []
    far: list[int] = []
    shallow: list[int] = []
    first: list[int] = []
    for c in cpls:
        if c < b:
            shallow.append(c)
        elif c == b:
            first.append(c)
        elif (diff >> (KEY_BITS - 1 - c)) & 1:
            near.append(c)
        else:
            far.append(c)
    far.reverse()
    shallow.reverse()
    return first + near + far + shallow


class Outcome(Enum):
    INSERTED = "inserted"
    UPDATED = "updated"
    PENDING = "pending"  # bucket full: ping the returned entry, then resolve_ping()
    REPLACED = "replaced"  # bucket full: the newcomer took the returned entry's slot (spread)
    # bucket full and an entry already stands for eviction (returned): the newcomer replaces
    # the waiting candidate; the caller may ping that entry (if it did not yet)
    FULL = "full"
    SELF = "self"


class Entry:
    """One peer in the table."""

    __slots__ = ("peer_id", "key", "addrs", "last_seen", "failures")

    def __init__(self, peer_id: PeerId, key: int, addrs: tuple[bytes, ...], now: float) -> None:
        self.peer_id = peer_id
        self.key = key
        self.addrs = addrs
        self.last_seen = now
        self.failures = 0

    def __repr__(self) -> str:
        return f"Entry({self.peer_id.short()}, seen={self.last_seen:.1f})"


class RoutingTable:
    __slots__ = ("local_id", "local_key", "k", "spread_bits", "_quota", "_buckets", "_where",
                 "_pending")

    def __init__(
        self,
        local_id: PeerId,
        k: int = 20,
        local_key: int | None = None,
        spread_bits: int = 0,
    ) -> None:
        if k < 1:
            raise ValueError("k must be at least 1")
        if not 0 <= spread_bits <= 8:
            raise ValueError("spread_bits must be between 0 and 8")
        self.local_id = local_id
        self.local_key = kad_key(local_id) if local_key is None else local_key
        self.k = k
        self.spread_bits = min(spread_bits, k.bit_length() - 1)  # at least 1 entry per part
        self._quota = k >> self.spread_bits if self.spread_bits else 0  # 0: spread off
        self._buckets: dict[int, list[Entry]] = {}
        self._where: dict[PeerId, int] = {}
        # cpl -> (candidate waiting for the slot, entry being pinged)
        self._pending: dict[int, tuple[Entry, Entry]] = {}

    # -- queries -----------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._where)

    def __contains__(self, peer: object) -> bool:
        return peer in self._where

    def get(self, peer: PeerId) -> Entry | None:
        cpl = self._where.get(peer)
        if cpl is None:
            return None
        for e in self._buckets[cpl]:
            if e.peer_id == peer:
                return e
        return None  # pragma: no cover - _where and buckets agree

    def entries(self) -> Iterator[Entry]:
        for cpl in sorted(self._buckets):
            yield from self._buckets[cpl]

    def peers(self) -> list[PeerId]:
        """The peers in the table, bucket by bucket (farthest first), as :meth:`entries`."""
        return [e.peer_id for e in self.entries()]

    def bucket_sizes(self) -> dict[int, int]:
        return {cpl: len(b) for cpl, b in sorted(self._buckets.items())}

    def cpl_of(self, key: int) -> int:
        return KEY_BITS - (key ^ self.local_key).bit_length()

    def closest(self, target: int, n: int, exclude: PeerId | None = None) -> list[Entry]:
        """Up to ``n`` entries nearest to ``target`` by XOR distance, nearest first."""
        if n <= 0 or not self._where:
            return []
        buckets = self._buckets
        out: list[Entry] = []
        for cpl in bucket_order(target ^ self.local_key, sorted(buckets)):
            group = buckets[cpl]
            if len(group) > 1:
                group = sorted(group, key=lambda e: e.key ^ target)
            for e in group:
                if e.peer_id != exclude:
                    out.append(e)
                    if len(out) >= n:
                        return out
        return out

    # -- updates -----------------------------------------------------------------------------

    def update(
        self, peer: PeerId, addrs: tuple[bytes, ...], now: float, key: int | None = None
    ) -> tuple[Outcome, Entry | None]:
        """Record that ``peer`` is alive and reachable at ``addrs``.

        Returns the outcome and, for ``PENDING`` and ``FULL``, the entry that stands for
        eviction (the least recently seen of the bucket when it filled): the caller pings it,
        or not yet if it was heard from lately (the candidate then waits; it takes the place
        when that entry fails or is removed).
        """
        if peer == self.local_id:
            return Outcome.SELF, None
        cpl = self._where.get(peer)
        if cpl is not None:
            bucket = self._buckets[cpl]
            for i, e in enumerate(bucket):
                if e.peer_id == peer:
                    del bucket[i]
                    bucket.append(e)
                    e.last_seen = now
                    e.failures = 0
                    if addrs:
                        e.addrs = addrs
                    pending = self._pending.get(cpl)
                    if pending is not None and pending[1] is e:
                        del self._pending[cpl]  # heard from the pinged peer: it stays
                    return Outcome.UPDATED, None
        if key is None:
            key = kad_key(peer)
        cpl = KEY_BITS - (key ^ self.local_key).bit_length()
        bucket = self._buckets.setdefault(cpl, [])
        entry = Entry(peer, key, addrs, now)
        if len(bucket) < self.k:
            bucket.append(entry)
            self._where[peer] = cpl
            return Outcome.INSERTED, None
        pending = self._pending.get(cpl)
        if self._quota:
            victim = self._crowded(bucket, cpl, key, pending[1] if pending else None)
            if victim is not None:
                bucket.remove(victim)
                del self._where[victim.peer_id]
                bucket.append(entry)
                self._where[peer] = cpl
                return Outcome.REPLACED, victim
        if pending is not None:
            self._pending[cpl] = (entry, pending[1])
            return Outcome.FULL, pending[1]
        oldest = bucket[0]
        self._pending[cpl] = (entry, oldest)
        return Outcome.PENDING, oldest

    def part_of(self, key: int, cpl: int) -> int:
        """Which of the ``2**spread_bits`` parts of bucket ``cpl`` the ``key`` falls in."""
        shift = KEY_BITS - cpl - 1 - self.spread_bits
        if shift < 0:
            return 0
        return ((key ^ self.local_key) >> shift) & ((1 << self.spread_bits) - 1)

    def _crowded(
        self, bucket: list[Entry], cpl: int, key: int, pinged: Entry | None
    ) -> Entry | None:
        """The entry a newcomer with ``key`` replaces to spread bucket ``cpl``, or None."""
        shift = KEY_BITS - cpl - 1 - self.spread_bits
        if shift < 0:
            return None
        local, mask = self.local_key, (1 << self.spread_bits) - 1
        part = ((key ^ local) >> shift) & mask
        parts = [((e.key ^ local) >> shift) & mask for e in bucket]
        if parts.count(part) >= self._quota:
            return None
        # The bucket is full (k >= quota * parts) and this part is short, so the most crowded
        # part is above quota (pigeonhole).
        most = max(range(mask + 1), key=parts.count)
        for e, p in zip(bucket, parts, strict=True):  # least recently seen first
            if p == most and e is not pinged:
                return e
        return None  # pragma: no cover - a part above quota has more than the pinged entry

    def candidate(self, peer: PeerId) -> PeerId | None:
        """The newcomer waiting for a slot in ``peer``'s bucket (it takes the slot when an entry
        leaves), or None."""
        cpl = self._where.get(peer)
        pending = None if cpl is None else self._pending.get(cpl)
        return None if pending is None else pending[0].peer_id

    def resolve_ping(self, peer: PeerId, alive: bool, now: float) -> PeerId | None:
        """Settle a ping asked for by ``update``; returns the peer that was admitted, if any."""
        if peer not in self:
            return None
        candidate = self.candidate(peer)
        if alive:
            self.update(peer, (), now)
            return None
        self.remove(peer)  # promotes the candidate waiting for this bucket
        return candidate

    def remove(self, peer: PeerId) -> bool:
        """Drop ``peer``; a candidate waiting for a slot in its bucket takes the place."""
        cpl = self._where.pop(peer, None)
        if cpl is None:
            return False
        bucket = self._buckets[cpl]
        bucket[:] = [e for e in bucket if e.peer_id != peer]
        pending = self._pending.pop(cpl, None)
        if pending is not None:
            candidate = pending[0]
            if candidate.peer_id not in self._where and len(bucket) < self.k:
                bucket.append(candidate)
                self._where[candidate.peer_id] = cpl
        if not bucket:
            del self._buckets[cpl]
        return True

    def record_failure(self, peer: PeerId, max_failures: int) -> bool:
        """Count a failed request to ``peer``; evict after ``max_failures`` in a row."""
        entry = self.get(peer)
        if entry is None:
            return False
        entry.failures += 1
        if entry.failures >= max_failures:
            self.remove(peer)
            return True
        return False

    def stale(self, now: float, older_than: float) -> list[Entry]:
        """Entries not heard from within ``older_than`` seconds (liveness checks)."""
        limit = now - older_than
        return [e for e in self.entries() if e.last_seen < limit]
