"""A routing table stored as arrays, for simulations of a million nodes.

Theory of operation. :class:`~micronetwork.kademlia.routing_table.RoutingTable` keeps an
:class:`Entry` object per peer and a ``dict`` from peer to bucket: ~143 bytes per entry, 46 GiB
for the ~330 M entries of a 1,000,000-node network. In a simulation every peer is a node the
simulator made, so a table can name its peers by their number instead. A :class:`Directory`
(one per simulation) holds each node's peer id, key and addresses once; a
:class:`CompactTable` keeps, per bucket, an ``array('I')`` of node numbers (least recently seen
first) and a parallel ``array('d')`` of last-seen times: 12 bytes per entry plus ~400 bytes per
full bucket in all (the arrays' headers).

It is the same table, not an approximation: every method gives the answer
``RoutingTable`` gives after the same calls (the same outcomes, the same entries in the same
order, the same pings asked for; ``tests/unit/sim/test_compact_table.py`` checks it on random
call sequences), so a simulation run with either is the same trace, event for event. What
differs: ``get``, ``closest``, ``entries`` and ``stale`` return :class:`Entry` snapshots built
on demand, so changing one does not change the table (the Kademlia core only reads them).
Failure counts and addresses that differ from the directory's are kept in small ``dict`` s,
only for the peers that have them. A peer the directory does not know is added to it.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterator, Sequence

from ..identity.peerid import PeerId
from ..kademlia.keyspace import KEY_BITS, kad_key
from ..kademlia.routing_table import Entry, Outcome, RoutingTable, bucket_order

__all__ = ["CompactTable", "Directory"]


class Directory:
    """Peer id, key and addresses of every node, by number (shared by all compact tables)."""

    __slots__ = ("ids", "keys", "addrs", "index")

    def __init__(self) -> None:
        self.ids: list[PeerId] = []
        self.keys: list[int] = []
        self.addrs: list[tuple[bytes, ...]] = []
        self.index: dict[PeerId, int] = {}

    def __len__(self) -> int:
        return len(self.ids)

    def add(self, peer: PeerId, key: int, addrs: tuple[bytes, ...]) -> int:
        """The number of ``peer`` (a new one if it is new)."""
        i = self.index.get(peer)
        if i is None:
            i = len(self.ids)
            self.ids.append(peer)
            self.keys.append(key)
            self.addrs.append(addrs)
            self.index[peer] = i
        return i


class CompactTable(RoutingTable):
    """:class:`RoutingTable` with its entries stored as node numbers (see the module doc)."""

    __slots__ = ("_dir", "_ids", "_seen", "_n", "_fails", "_addrs", "_pend")

    def __init__(
        self,
        directory: Directory,
        local_id: PeerId,
        k: int = 20,
        local_key: int | None = None,
        spread_bits: int = 0,
    ) -> None:
        super().__init__(local_id, k, local_key, spread_bits)
        del self._buckets, self._where, self._pending  # the arrays below replace them
        self._dir = directory
        self._ids: list[array[int] | None] = []  # by cpl: node numbers, least recent first
        self._seen: list[array[float] | None] = []  # by cpl: their last-seen times
        self._n = 0
        self._fails: dict[int, int] | None = None  # node -> failures in a row (nonzero only)
        self._addrs: dict[int, tuple[bytes, ...]] | None = None  # where not the directory's
        # cpl -> (candidate waiting for the slot, node number being pinged)
        self._pend: dict[int, tuple[Entry, int]] | None = None

    # -- helpers -----------------------------------------------------------------------------

    def _entry(self, i: int, seen: float) -> Entry:
        d = self._dir
        e = Entry(d.ids[i], d.keys[i], self._addrs_of(i), seen)
        if self._fails is not None:
            e.failures = self._fails.get(i, 0)
        return e

    def _addrs_of(self, i: int) -> tuple[bytes, ...]:
        if self._addrs is not None:
            own = self._addrs.get(i)
            if own is not None:
                return own
        return self._dir.addrs[i]

    def _set_addrs(self, i: int, addrs: tuple[bytes, ...]) -> None:
        if addrs == self._dir.addrs[i]:
            if self._addrs is not None:
                self._addrs.pop(i, None)
        else:
            if self._addrs is None:
                self._addrs = {}
            self._addrs[i] = addrs

    def _forget(self, i: int) -> None:
        if self._fails is not None:
            self._fails.pop(i, None)
        if self._addrs is not None:
            self._addrs.pop(i, None)

    def _find(self, peer: PeerId) -> tuple[int, int, int] | None:
        """(node number, cpl, position in its bucket) of ``peer``, or None."""
        i = self._dir.index.get(peer)
        if i is None:
            return None
        cpl = KEY_BITS - (self._dir.keys[i] ^ self.local_key).bit_length()
        ids = self._ids[cpl] if cpl < len(self._ids) else None
        if ids is None:
            return None
        try:
            return i, cpl, ids.index(i)
        except ValueError:
            return None

    def _bucket(self, cpl: int) -> tuple[array[int], array[float]]:
        ids, seen = self._ids, self._seen
        while len(ids) <= cpl:
            ids.append(None)
            seen.append(None)
        b, s = ids[cpl], seen[cpl]
        if b is None or s is None:
            b, s = ids[cpl], seen[cpl] = array("I"), array("d")
        return b, s

    def _drop_empty(self, cpl: int) -> None:
        b = self._ids[cpl]
        if b is not None and not b:
            self._ids[cpl] = self._seen[cpl] = None
            while self._ids and self._ids[-1] is None:
                self._ids.pop()
                self._seen.pop()

    def _pending_of(self, cpl: int) -> tuple[Entry, int] | None:
        return None if self._pend is None else self._pend.get(cpl)

    def _buckets_by_cpl(self) -> Iterator[tuple[int, array[int], array[float]]]:
        for cpl, b in enumerate(self._ids):
            s = self._seen[cpl]
            if b is not None and s is not None:
                yield cpl, b, s

    # -- queries -----------------------------------------------------------------------------

    def __len__(self) -> int:
        return self._n

    def __contains__(self, peer: object) -> bool:
        return isinstance(peer, PeerId) and self._find(peer) is not None

    def get(self, peer: PeerId) -> Entry | None:
        found = self._find(peer)
        if found is None:
            return None
        i, cpl, pos = found
        seen = self._seen[cpl]
        assert seen is not None
        return self._entry(i, seen[pos])

    def entries(self) -> Iterator[Entry]:
        for _, b, s in self._buckets_by_cpl():
            for i, t in zip(b, s, strict=True):
                yield self._entry(i, t)

    def peers(self) -> list[PeerId]:
        ids = self._dir.ids
        return [ids[i] for _, b, _ in self._buckets_by_cpl() for i in b]

    def bucket_sizes(self) -> dict[int, int]:
        return {cpl: len(b) for cpl, b, _ in self._buckets_by_cpl()}

    def closest(self, target: int, n: int, exclude: PeerId | None = None) -> list[Entry]:
        if n <= 0 or not self._n:
            return []
        keys = self._dir.keys
        present = [cpl for cpl, b in enumerate(self._ids) if b is not None]
        skip = -1 if exclude is None else self._dir.index.get(exclude, -1)
        out: list[Entry] = []
        for cpl in bucket_order(target ^ self.local_key, present):
            ids, seen = self._ids[cpl], self._seen[cpl]
            assert ids is not None and seen is not None
            group = list(zip(ids, seen, strict=True))
            if len(group) > 1:
                group.sort(key=lambda it: keys[it[0]] ^ target)
            for i, t in group:
                if i != skip:
                    out.append(self._entry(i, t))
                    if len(out) >= n:
                        return out
        return out

    def stale(self, now: float, older_than: float) -> list[Entry]:
        limit = now - older_than
        return [self._entry(i, t) for _, b, s in self._buckets_by_cpl()
                for i, t in zip(b, s, strict=True) if t < limit]

    # -- updates -----------------------------------------------------------------------------

    def fill(self, cpl: int, nodes: Sequence[int], now: float) -> None:
        """Put ``nodes`` (numbers, at most ``k``, none in the table) into the empty bucket
        ``cpl``: what ``update`` of each in turn does, without the checks (ideal tables)."""
        b, s = self._bucket(cpl)
        if b or len(nodes) > self.k:
            raise ValueError(f"bucket {cpl} is not empty, or more than k nodes")
        b.extend(nodes)
        s.extend([now] * len(nodes))
        self._n += len(nodes)
        if not b:
            self._drop_empty(cpl)

    def update(
        self, peer: PeerId, addrs: tuple[bytes, ...], now: float, key: int | None = None
    ) -> tuple[Outcome, Entry | None]:
        if peer == self.local_id:
            return Outcome.SELF, None
        found = self._find(peer)
        if found is not None:
            i, cpl, pos = found
            b, s = self._ids[cpl], self._seen[cpl]
            assert b is not None and s is not None
            del b[pos], s[pos]
            b.append(i)
            s.append(now)
            if self._fails is not None:
                self._fails.pop(i, None)
            if addrs:
                self._set_addrs(i, addrs)
            pending = self._pending_of(cpl)
            if pending is not None and pending[1] == i:
                del self._pend[cpl]  # type: ignore[union-attr]  # heard from the pinged peer
            return Outcome.UPDATED, None
        if key is None:
            key = kad_key(peer)
        i = self._dir.add(peer, key, addrs)
        key = self._dir.keys[i]
        cpl = KEY_BITS - (key ^ self.local_key).bit_length()
        b, s = self._bucket(cpl)
        if len(b) < self.k:
            b.append(i)
            s.append(now)
            self._n += 1
            self._forget(i)
            self._set_addrs(i, addrs)
            return Outcome.INSERTED, None
        pending = self._pending_of(cpl)
        if self._quota:
            victim = self._crowded_at(b, cpl, key, pending[1] if pending else -1)
            if victim is not None:
                old = self._entry(b[victim], s[victim])
                self._forget(b[victim])
                del b[victim], s[victim]
                b.append(i)
                s.append(now)
                self._forget(i)
                self._set_addrs(i, addrs)
                return Outcome.REPLACED, old
        entry = Entry(peer, key, addrs, now)
        if self._pend is None:
            self._pend = {}
        if pending is not None:
            self._pend[cpl] = (entry, pending[1])
            pos = b.index(pending[1])
            return Outcome.FULL, self._entry(b[pos], s[pos])
        self._pend[cpl] = (entry, b[0])
        return Outcome.PENDING, self._entry(b[0], s[0])

    def _crowded_at(self, bucket: array[int], cpl: int, key: int, pinged: int) -> int | None:
        """Position of the entry a newcomer with ``key`` replaces to spread bucket ``cpl``
        (``RoutingTable._crowded``, on node numbers)."""
        shift = KEY_BITS - cpl - 1 - self.spread_bits
        if shift < 0:
            return None
        keys, local, mask = self._dir.keys, self.local_key, (1 << self.spread_bits) - 1
        part = ((key ^ local) >> shift) & mask
        parts = [((keys[i] ^ local) >> shift) & mask for i in bucket]
        if parts.count(part) >= self._quota:
            return None
        most = max(range(mask + 1), key=parts.count)
        for pos, (i, p) in enumerate(zip(bucket, parts, strict=True)):
            if p == most and i != pinged:
                return pos
        return None  # pragma: no cover - a part above quota has more than the pinged entry

    def candidate(self, peer: PeerId) -> PeerId | None:
        found = self._find(peer)
        pending = None if found is None else self._pending_of(found[1])
        return None if pending is None else pending[0].peer_id

    def remove(self, peer: PeerId) -> bool:
        found = self._find(peer)
        if found is None:
            return False
        i, cpl, pos = found
        b, s = self._ids[cpl], self._seen[cpl]
        assert b is not None and s is not None
        del b[pos], s[pos]
        self._n -= 1
        self._forget(i)
        pending = self._pend.pop(cpl, None) if self._pend is not None else None
        if pending is not None:
            cand = pending[0]
            if cand.peer_id not in self and len(b) < self.k:
                j = self._dir.add(cand.peer_id, cand.key, cand.addrs)
                b.append(j)
                s.append(cand.last_seen)
                self._n += 1
                self._set_addrs(j, cand.addrs)
        self._drop_empty(cpl)
        return True

    def record_failure(self, peer: PeerId, max_failures: int) -> bool:
        found = self._find(peer)
        if found is None:
            return False
        i = found[0]
        if self._fails is None:
            self._fails = {}
        n = self._fails[i] = self._fails.get(i, 0) + 1
        if n >= max_failures:
            self.remove(peer)
            return True
        return False
