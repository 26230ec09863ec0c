"""KademliaCore: the sans-IO Kademlia node (server and client side).

Theory of operation. The core owns a routing table, a record store and a provider store. It
never touches a socket or a clock: the driver reports what happened (a peer identified, a
request arrived, a response or failure came back, time passed) and collects commands with
:meth:`drain`. Outbound requests carry ids; the core keeps their deadlines in a heap and fails
them itself in :meth:`on_timer`, so the same code behaves identically on real sockets and in
virtual time. :meth:`next_deadline` tells the driver when to call :meth:`on_timer` next.

Peers enter the routing table only when they have shown they serve the DHT: identify listed
our protocol, or they answered one of our requests. A newcomer to a full bucket waits as the
bucket's candidate (see :mod:`.routing_table`) while the least recently seen entry is pinged:
at once by default, or only once it has not been heard from for ``evict_ping_after`` (the
Kademlia paper's replacement cache, section 4.1; measured slower under churn, so off:
docs/decisions.md, "Liveness"). A peer whose requests keep failing, whose liveness ping fails,
or that keeps sending garbage, leaves the table (a waiting candidate takes the slot, reported
as ``PeerAdded``); the garbage sender is also disconnected.

Queries (``find_closest``, ``find_peer``, ``get_value``, ``put_value``, ``get_providers``,
``provide``, ``bootstrap``) return an id and end with an ``Emit(QueryFinished)``.
Maintenance runs every ``maintenance_interval`` (:mod:`.maintenance`): expiry, bucket refresh,
liveness pings, provider republish, and re-bootstrap when the table has emptied.
"""

from __future__ import annotations

import heapq
import logging
import random
from collections import Counter
from collections.abc import Iterable, Mapping

from ..commands import Command, Disconnect, Emit, Request, Respond
from ..errors import RemoteProtocolError, ValidationError
from ..identity.peerid import PeerId
from .config import KademliaConfig
from .events import PeerAdded, PeerRemoved, QueryFinished, QueryKind
from .keyspace import kad_key, peer_key, preimage_for_cpl
from .lookup import ClosestPeersIter, DisjointPathsIter
from .maintenance import maintain
from .messages import KadMessage, MessageType, PeerInfo, Record
from .query import (
    LOOKUP,
    REQ_EVICT_PING,
    REQ_LIVENESS_PING,
    REQ_QUERY,
    REQ_STORE,
    STORE,
    Pending,
    Query,
)
from .routing_table import Outcome, RoutingTable
from .server import answer
from .store import ProviderStore, RecordStore, Validator, default_validators
from .wire import decode_message, encode_message

__all__ = ["KademliaCore"]

log = logging.getLogger(__name__)

# Stores must reach the k closest; a bootstrap meets the k closest to fill the table at once.
_ALL_K = (QueryKind.PUT_VALUE, QueryKind.ADD_PROVIDER, QueryKind.BOOTSTRAP)


class KademliaCore:
    """One node's Kademlia state machine. See the module docstring."""

    encode = staticmethod(encode_message)
    decode = staticmethod(decode_message)

    def __init__(
        self,
        local_id: PeerId,
        *,
        config: KademliaConfig | None = None,
        rng: random.Random | None = None,
        now: float = 0.0,
        local_addrs: tuple[bytes, ...] = (),
        validators: Mapping[str, Validator] | None = None,
        local_key: int | None = None,
        table: RoutingTable | None = None,
    ) -> None:
        """``table``: the routing table to use, empty, for ``local_id`` with ``config.k`` (the
        simulator passes its compact one); by default a new :class:`RoutingTable`."""
        self.config = cfg = config or KademliaConfig()
        self.local_id = local_id
        self.local_addrs = local_addrs
        self.rng = rng or random.Random(0)
        if table is None:
            table = RoutingTable(local_id, cfg.k, local_key, cfg.bucket_spread_bits)
        elif table.local_id != local_id or table.k != cfg.k or len(table):
            raise ValueError("the table must be empty, for this peer and k")
        self.table = table
        self.records = RecordStore(
            validators if validators is not None else default_validators(cfg.max_value_size),
            cfg.record_ttl,
            cfg.max_records,
        )
        self.providers = ProviderStore(cfg.provider_ttl, cfg.max_providers_per_key, cfg.max_records)
        self.counters: Counter[str] = Counter()
        self._out: list[Command] = []
        self._pending: dict[int, Pending] = {}
        self._timeouts: list[tuple[float, int]] = []
        self._queries: dict[int, Query] = {}
        self._next_id = 1
        self._bootstrap_peers: dict[PeerId, tuple[bytes, ...]] = {}
        self._bad: Counter[PeerId] = Counter()
        self._banned: dict[PeerId, float] = {}  # garbage senders, until when
        self._provided: dict[bytes, float] = {}
        self._refreshed: dict[int, float] = {}
        self._pinging: set[PeerId] = set()
        self._started = now
        self._last_bootstrap = -1e18
        self._next_maintenance = now + cfg.maintenance_interval

    # == driver interface ======================================================================

    def drain(self) -> list[Command]:
        out, self._out = self._out, []
        return out

    def next_deadline(self) -> float | None:
        timeouts = self._timeouts
        while timeouts and timeouts[0][1] not in self._pending:
            heapq.heappop(timeouts)
        if timeouts and timeouts[0][0] < self._next_maintenance:
            return timeouts[0][0]
        return self._next_maintenance

    def on_timer(self, now: float) -> None:
        timeouts = self._timeouts
        while timeouts and timeouts[0][0] <= now:
            _, rid = heapq.heappop(timeouts)
            p = self._pending.get(rid)
            if p is not None:
                self.counters["timeouts"] += 1
                self._fail(rid, p, "timeout", now)
        if now >= self._next_maintenance:
            self._next_maintenance = now + self.config.maintenance_interval
            maintain(self, now)

    def on_peer_identified(
        self, peer: PeerId, addrs: tuple[bytes, ...], protocols: Iterable[str], now: float
    ) -> None:
        """A connection to ``peer`` is up and identify told us its protocols."""
        if self.config.protocol_id in protocols:
            self._admit(peer, addrs, now)
        elif peer in self.table:
            self._drop(peer, "no longer serves the DHT")

    def on_peer_disconnected(self, peer: PeerId, now: float) -> None:
        """All connections to ``peer`` closed: check it is still alive before trusting it."""
        entry = self.table.get(peer)
        if entry is not None:
            self._ping(peer, entry.addrs, REQ_LIVENESS_PING, now)

    def on_request(self, peer: PeerId, token: int, message: KadMessage | bytes, now: float) -> None:
        """An inbound request on stream ``token``; answered with a ``Respond`` command."""
        if isinstance(message, bytes):
            try:
                message = decode_message(message)
            except RemoteProtocolError as exc:
                self._out.append(Respond(token, None))
                self._bad_message(peer, str(exc), now)
                return
        self.counters["requests_in"] += 1
        if self.config.mode == "client" or (self._banned and self._is_banned(peer, now)):
            self._out.append(Respond(token, None))
            return
        try:
            reply = self._handle_request(peer, message, now)
        except ValidationError as exc:
            self.counters["records_rejected"] += 1
            log.debug("rejected record from %s: %s", peer, exc)
            reply = None
        self._out.append(Respond(token, reply))

    def on_bad_message(self, peer: PeerId, reason: str, now: float) -> None:
        """The driver could not even frame what ``peer`` sent (e.g. an oversized length)."""
        self._bad_message(peer, reason, now)

    def on_response(
        self, peer: PeerId, request_id: int, message: KadMessage | bytes | None, now: float
    ) -> None:
        p = self._pending.pop(request_id, None)
        if p is None:
            return  # already timed out
        if isinstance(message, bytes):
            try:
                message = decode_message(message)
            except RemoteProtocolError as exc:
                self._bad_message(peer, str(exc), now)
                self._fail(request_id, p, "bad response", now, popped=True)
                return
        self.counters["responses"] += 1
        self._pinging.discard(peer)
        if p.purpose == REQ_EVICT_PING:
            self.table.resolve_ping(peer, True, now)
        else:
            self._admit(peer, p.addrs, now)
        if p.purpose == REQ_QUERY:
            self._on_query_response(p, message, now)
        elif p.purpose == REQ_STORE:
            q = self._queries.get(p.query)
            if q is not None and request_id in q.store_pending:
                q.store_pending.discard(request_id)
                q.stored += 1
                self._advance(q, now)

    def on_request_failed(self, peer: PeerId, request_id: int, reason: str, now: float) -> None:
        p = self._pending.get(request_id)
        if p is not None:
            self.counters["failures"] += 1
            self._fail(request_id, p, reason, now)

    # == queries ===============================================================================

    def find_closest(self, key: bytes, now: float) -> int:
        """Result: the ``k`` closest peers to ``key`` that answered (``list[PeerInfo]``)."""
        return self._start(QueryKind.FIND_CLOSEST, key, now)

    def find_peer(self, peer: PeerId, now: float) -> int:
        """Result: the peer's ``PeerInfo`` or None."""
        entry = self.table.get(peer)
        if entry is not None and entry.addrs:
            qid = self._new_id()
            q = Query(qid, QueryKind.FIND_PEER, bytes(peer), entry.key, self._iter(0, []), now)
            q.found = PeerInfo(peer, entry.addrs)
            self._queries[qid] = q
            self._finish(q, now)
            return qid
        return self._start(QueryKind.FIND_PEER, bytes(peer), now)

    def get_value(self, key: bytes, now: float) -> int:
        """Result: the best valid value (``bytes``) or None."""
        q = self._start(QueryKind.GET_VALUE, key, now, want=self.config.get_quorum, run=False)
        local = self.records.get(key, now)
        query = self._queries[q]
        if local is not None:
            query.values.append(local)
        self._advance(query, now)
        return q

    def put_value(self, key: bytes, value: bytes, now: float) -> int:
        """Validate, store locally, then at the ``k`` closest. Result: peers that stored it.

        Raises :class:`ValidationError` at once for a value its namespace rejects.
        """
        self.records.put(key, value, now)
        qid = self._start(QueryKind.PUT_VALUE, key, now, run=False)
        self._queries[qid].value = value
        self._advance(self._queries[qid], now)
        return qid

    def get_providers(self, key: bytes, now: float, count: int | None = None) -> int:
        """Result: providers of ``key`` (``list[PeerInfo]``), up to ``count``."""
        want = count or self.config.max_providers_returned
        qid = self._start(QueryKind.GET_PROVIDERS, key, now, want=want, run=False)
        q = self._queries[qid]
        for peer, addrs in self.providers.get(key, now):
            q.providers[peer] = PeerInfo(peer, addrs)
        self._advance(q, now)
        return qid

    def provide(self, key: bytes, now: float) -> int:
        """Announce this node as a provider of ``key`` at the ``k`` closest; republished.

        Result: the number of peers that received the provider record.
        """
        self.providers.add(key, self.local_id, self.local_addrs, now)
        self._provided[key] = now
        return self._start(QueryKind.ADD_PROVIDER, key, now)

    def stop_providing(self, key: bytes) -> None:
        self._provided.pop(key, None)

    def add_bootstrap_peer(self, peer: PeerId, addrs: tuple[bytes, ...]) -> None:
        self._bootstrap_peers[peer] = addrs

    def bootstrap(self, now: float) -> int:
        """Look up our own id, meeting the k closest, then refresh every bucket.

        The lookup starts from what the table holds plus ``bootstrap_contacts`` bootstrap
        peers picked at random; the others are fallbacks, asked one at a time while the lookup
        has met fewer than k peers: nobody answered, or the network it reached is that small
        (bootstrap nodes that start together each know only the one they asked, and without
        this would split the network into groups that never meet). A bootstrap peer enters
        the table when it answers, like any other.
        So a join costs the bootstrap nodes one request, not one per bootstrap node: the rest
        of the join goes through the peers the first answer named (as go-libp2p and
        rust-libp2p clients do), and many nodes can join through a few bootstrap nodes.
        """
        self._last_bootstrap = now
        order = list(self._bootstrap_peers.items())
        self.rng.shuffle(order)
        first = self.config.bootstrap_contacts
        seeds = [(peer, peer_key(peer), addrs) for peer, addrs in order[:first]]
        qid = self._start(QueryKind.BOOTSTRAP, bytes(self.local_id), now, run=False, seeds=seeds)
        q = self._queries[qid]
        q.refresh_after = True
        q.fallback = order[first:]
        self._advance(q, now)
        return qid

    def refresh(self, now: float, force: bool = False) -> list[int]:
        """Look up a random key in each bucket not looked into for ``refresh_interval``."""
        cfg = self.config
        top = max(self.table.bucket_sizes(), default=0)
        out = []
        for cpl in range(min(top, cfg.max_refresh_cpl) + 1):
            last = self._refreshed.get(cpl, self._started)
            if force or now - last >= cfg.refresh_interval:
                preimage = preimage_for_cpl(self.table.local_key, cpl, self.rng)
                if preimage is not None:
                    out.append(self._start(QueryKind.REFRESH, preimage, now))
        return out

    @property
    def active_queries(self) -> int:
        return len(self._queries)

    # == internals: queries ====================================================================

    def _new_id(self) -> int:
        i = self._next_id
        self._next_id += 1
        return i

    def _iter(
        self,
        target: int,
        initial: list[tuple[PeerId, int, tuple[bytes, ...]]],
        beta: int | None = None,
        alpha: int | None = None,
    ) -> ClosestPeersIter | DisjointPathsIter:
        cfg = self.config
        beta = cfg.beta if beta is None else beta
        alpha = cfg.alpha if alpha is None else alpha
        if cfg.disjoint_paths > 1:
            return DisjointPathsIter(
                target, initial, d=cfg.disjoint_paths, k=cfg.k, alpha=alpha,
                beta=beta, local_id=self.local_id,
            )
        return ClosestPeersIter(
            target, initial, k=cfg.k, alpha=alpha, beta=beta, local_id=self.local_id
        )

    def _start(
        self,
        kind: QueryKind,
        key: bytes,
        now: float,
        want: int = 0,
        run: bool = True,
        seeds: Iterable[tuple[PeerId, int, tuple[bytes, ...]]] = (),
    ) -> int:
        target = kad_key(key)
        self._refreshed[self.table.cpl_of(target)] = now
        initial = [(e.peer_id, e.key, e.addrs) for e in self.table.closest(target, self.config.k)]
        initial.extend(seeds)
        qid = self._new_id()
        q = Query(qid, kind, key, target, self._iter_for(kind, target, initial), now, want)
        self._queries[qid] = q
        self.counters[f"queries_{kind.value}"] += 1
        if run:
            self._advance(q, now)
        return qid

    def _iter_for(
        self, kind: QueryKind, target: int, initial: list[tuple[PeerId, int, tuple[bytes, ...]]]
    ) -> ClosestPeersIter | DisjointPathsIter:
        beta = self.config.k if kind in _ALL_K else None
        alpha = self.config.bootstrap_alpha if kind is QueryKind.BOOTSTRAP else None
        return self._iter(target, initial, beta, alpha)

    def _advance(self, q: Query, now: float) -> None:
        if q.id not in self._queries:
            return
        if q.phase == STORE:
            if not q.store_pending:
                self._finish(q, now)
            return
        if q.satisfied():
            self._finish(q, now)
            return
        it = q.iter
        if it.finished and q.fallback and it.successes < self.config.k:
            # The bootstrap met fewer than k peers (see bootstrap()): go on from the next
            # bootstrap peer (those met are in the table already).
            peer, addrs = q.fallback.pop(0)
            it = q.iter = self._iter_for(q.kind, q.target, [(peer, peer_key(peer), addrs)])
        if it.finished:
            self._lookup_done(q, now)
            return
        for peer, addrs in it.next():
            self._send(peer, addrs, self._query_message(q), REQ_QUERY, q.id, now)

    def _query_message(self, q: Query) -> KadMessage:
        kind = q.kind
        if kind is QueryKind.GET_VALUE:
            return KadMessage(MessageType.GET_VALUE, key=q.key)
        if kind is QueryKind.GET_PROVIDERS:
            return KadMessage(MessageType.GET_PROVIDERS, key=q.key)
        return KadMessage(MessageType.FIND_NODE, key=q.key)

    def _on_query_response(self, p: Pending, msg: KadMessage | None, now: float) -> None:
        q = self._queries.get(p.query)
        if q is None or msg is None:
            return
        local = self.local_id
        closer = [
            (info.peer_id, peer_key(info.peer_id), info.addrs)
            for info in msg.closer_peers
            if info.peer_id != local
        ]
        if q.kind is QueryKind.FIND_PEER:
            for info in msg.closer_peers:
                if info.peer_id != local and info.addrs and bytes(info.peer_id) == q.key:
                    q.found = info
        if q.kind is QueryKind.FIND_PEER and bytes(p.peer) == q.key:
            q.found = PeerInfo(p.peer, p.addrs)
        elif q.kind is QueryKind.GET_VALUE and msg.record is not None:
            self._collect_value(q, msg.record, now)
        elif q.kind is QueryKind.GET_PROVIDERS:
            for info in msg.provider_peers:
                q.providers.setdefault(info.peer_id, info)
        q.iter.on_success(p.peer, closer)
        self._advance(q, now)

    def _collect_value(self, q: Query, record: Record, now: float) -> None:
        if record.key != q.key:
            self.counters["records_rejected"] += 1
            return
        try:
            self.records.validate(record.key, record.value)
        except ValidationError:
            self.counters["records_rejected"] += 1
            return
        q.values.append(record.value)

    def _lookup_done(self, q: Query, now: float) -> None:
        kind = q.kind
        if kind in (QueryKind.PUT_VALUE, QueryKind.ADD_PROVIDER):
            q.phase = STORE
            if kind is QueryKind.PUT_VALUE:
                assert q.value is not None
                msg = KadMessage(
                    MessageType.PUT_VALUE, key=q.key, record=Record(q.key, q.value)
                )
            else:
                me = PeerInfo(self.local_id, self.local_addrs)
                msg = KadMessage(MessageType.ADD_PROVIDER, key=q.key, provider_peers=(me,))
            targets = q.iter.closest(self.config.k, answered_only=True)
            for peer in targets:
                entry = self.table.get(peer)
                addrs = entry.addrs if entry is not None else ()
                rid = self._send(
                    peer, addrs, msg, REQ_STORE, q.id, now,
                    expect=kind is QueryKind.PUT_VALUE,
                )
                q.store_pending.add(rid)
        if q.phase == LOOKUP or not q.store_pending:
            self._finish(q, now)

    def _finish(self, q: Query, now: float) -> None:
        if self._queries.pop(q.id, None) is None:
            return
        kind = q.kind
        error = None
        result: object
        if kind is QueryKind.FIND_PEER:
            result = q.found
            error = None if q.found else "peer not found"
        elif kind is QueryKind.GET_VALUE:
            if q.values:
                result = q.values[self.records.select(q.key, q.values)]
            else:
                result, error = None, "no value found"
        elif kind is QueryKind.GET_PROVIDERS:
            result = list(q.providers.values())[: q.want]
        elif kind in (QueryKind.PUT_VALUE, QueryKind.ADD_PROVIDER):
            result = q.stored
            if q.stored == 0:
                error = "no peer stored the record"
        else:
            result = [PeerInfo(p, a) for p, a in q.iter.closest_with_addrs(self.config.k)]
            if not result and not len(self.table):
                error = "routing table is empty"
        stats = q.stats(now)
        self.counters["queries_finished"] += 1
        self._out.append(Emit(QueryFinished(q.id, kind, result, stats, error)))
        if q.refresh_after and len(self.table):
            self.refresh(now, force=True)

    # == internals: requests ===================================================================

    def _send(
        self,
        peer: PeerId,
        addrs: tuple[bytes, ...],
        msg: KadMessage,
        purpose: int,
        query: int,
        now: float,
        expect: bool = True,
    ) -> int:
        rid = self._new_id()
        self._pending[rid] = Pending(peer, purpose, query, addrs)
        heapq.heappush(self._timeouts, (now + self.config.request_timeout, rid))
        self.counters["requests_out"] += 1
        self._out.append(Request(peer, self.config.protocol_id, rid, msg, addrs, expect))
        return rid

    def _ping(self, peer: PeerId, addrs: tuple[bytes, ...], purpose: int, now: float) -> None:
        if peer in self._pinging:
            return
        self._pinging.add(peer)
        self._send(peer, addrs, KadMessage(MessageType.PING), purpose, 0, now)

    def _fail(self, rid: int, p: Pending, reason: str, now: float, popped: bool = False) -> None:
        if not popped:
            self._pending.pop(rid, None)
        peer = p.peer
        self._pinging.discard(peer)
        if p.purpose == REQ_EVICT_PING:
            admitted = self.table.resolve_ping(peer, False, now)
            self._out.append(Emit(PeerRemoved(peer, f"eviction ping failed: {reason}")))
            if admitted is not None and admitted in self.table:
                entry = self.table.get(admitted)
                self._out.append(Emit(PeerAdded(admitted, entry.addrs if entry else ())))
        elif p.purpose == REQ_LIVENESS_PING:
            self._drop(peer, f"liveness ping failed: {reason}")
        else:
            candidate = self.table.candidate(peer)
            if self.table.record_failure(peer, self.config.max_failures):
                self._out.append(Emit(PeerRemoved(peer, f"requests failed: {reason}")))
                self._admitted(candidate)
        q = self._queries.get(p.query)
        if q is None:
            return
        if p.purpose == REQ_QUERY:
            q.iter.on_failure(peer)
            self._advance(q, now)
        elif p.purpose == REQ_STORE and rid in q.store_pending:
            q.store_pending.discard(rid)
            self._advance(q, now)

    def _drop(self, peer: PeerId, reason: str) -> None:
        """Remove ``peer`` from the table (reported), and report the candidate that took its
        place, if one was waiting."""
        candidate = self.table.candidate(peer)
        if self.table.remove(peer):
            self._out.append(Emit(PeerRemoved(peer, reason)))
            self._admitted(candidate)

    def _admitted(self, candidate: PeerId | None) -> None:
        if candidate is not None:
            entry = self.table.get(candidate)
            if entry is not None:
                self._out.append(Emit(PeerAdded(candidate, entry.addrs)))

    def _admit(self, peer: PeerId, addrs: tuple[bytes, ...], now: float) -> None:
        if self._banned and self._is_banned(peer, now):
            return
        outcome, to_ping = self.table.update(peer, addrs, now, peer_key(peer))
        if outcome is Outcome.INSERTED:
            self._out.append(Emit(PeerAdded(peer, addrs)))
        elif outcome in (Outcome.PENDING, Outcome.FULL) and to_ping is not None:
            # Not pinged while heard from within evict_ping_after: the newcomer just waits.
            if now - to_ping.last_seen >= self.config.evict_ping_after:
                self._ping(to_ping.peer_id, to_ping.addrs, REQ_EVICT_PING, now)
        elif outcome is Outcome.REPLACED and to_ping is not None:
            self.counters["spread_replacements"] += 1
            self._out.append(Emit(PeerRemoved(to_ping.peer_id, "replaced to spread its bucket")))
            self._out.append(Emit(PeerAdded(peer, addrs)))

    def _is_banned(self, peer: PeerId, now: float) -> bool:
        until = self._banned.get(peer)
        if until is None:
            return False
        if until <= now:
            del self._banned[peer]
            self._bad.pop(peer, None)
            return False
        return True

    def _bad_message(self, peer: PeerId, why: str, now: float) -> None:
        self.counters["bad_messages"] += 1
        self._bad[peer] += 1
        log.debug("bad message from %s: %s", peer, why)
        if self._bad[peer] >= self.config.bad_message_limit:
            self.counters["peers_disconnected"] += 1
            self._out.append(Disconnect(peer, f"sent {self._bad[peer]} malformed messages"))
            self._banned[peer] = now + self.config.ban_duration
            self._drop(peer, "sent malformed messages")

    # == internals: serving ====================================================================

    def _handle_request(self, peer: PeerId, msg: KadMessage, now: float) -> KadMessage | None:
        return answer(self, peer, msg, now)
