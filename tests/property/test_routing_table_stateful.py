"""Hypothesis stateful test: the routing table against a brute-force model."""

from __future__ import annotations

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from micronetwork.identity import PeerId
from micronetwork.kademlia import Outcome, RoutingTable
from micronetwork.kademlia.keyspace import kad_key

K = 3
POOL = [PeerId(b"\x00\x24" + i.to_bytes(2, "big") * 18) for i in range(40)]
LOCAL = PeerId(b"\x00\x24" + b"\xaa" * 36)


class RoutingTableMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.table = RoutingTable(LOCAL, k=K, spread_bits=0)  # the plain rule (spread: below)
        self.model: set[PeerId] = set()  # who must be in the table
        self.pings: dict[PeerId, PeerId] = {}  # pinged -> candidate that asked
        self.now = 0.0

    def cpl(self, p: PeerId) -> int:
        return self.table.cpl_of(kad_key(p))

    @rule(i=st.integers(0, len(POOL) - 1))
    def update(self, i: int) -> None:
        p = POOL[i]
        self.now += 1
        in_bucket = sum(1 for q in self.model if self.cpl(q) == self.cpl(p))
        outcome, to_ping = self.table.update(p, (b"a",), self.now)
        if p in self.model:
            assert outcome is Outcome.UPDATED
            self.pings.pop(p, None)
        elif in_bucket < K:
            assert outcome is Outcome.INSERTED
            self.model.add(p)
        else:
            assert outcome in (Outcome.PENDING, Outcome.FULL)
            assert p not in self.table
            if outcome is Outcome.PENDING:
                assert to_ping is not None and to_ping.peer_id in self.model
                self.pings = {k: v for k, v in self.pings.items() if self.cpl(k) != self.cpl(p)}
                self.pings[to_ping.peer_id] = p
            else:
                for pinged in self.pings:
                    if self.cpl(pinged) == self.cpl(p):
                        self.pings[pinged] = p

    @precondition(lambda self: bool(self.pings))
    @rule(alive=st.booleans(), data=st.data())
    def resolve(self, alive: bool, data: st.DataObject) -> None:
        pinged = data.draw(st.sampled_from(sorted(self.pings)))
        candidate = self.pings.pop(pinged)
        self.now += 1
        admitted = self.table.resolve_ping(pinged, alive, self.now)
        if alive:
            assert pinged in self.table and candidate not in self.table
        else:
            self.model.discard(pinged)
            assert admitted == candidate
            self.model.add(candidate)

    @precondition(lambda self: bool(self.model))
    @rule(data=st.data())
    def remove(self, data: st.DataObject) -> None:
        p = data.draw(st.sampled_from(sorted(self.model)))
        assert self.table.remove(p)
        self.model.discard(p)
        for pinged in [q for q in self.pings if self.cpl(q) == self.cpl(p)]:
            candidate = self.pings.pop(pinged)
            self.model.add(candidate)  # the waiting candidate takes the freed slot

    @rule(point=st.integers(0, 2**256 - 1), n=st.integers(0, 25))
    def closest_is_brute_force(self, point: int, n: int) -> None:
        got = [e.peer_id for e in self.table.closest(point, n)]
        want = sorted(self.model, key=lambda p: kad_key(p) ^ point)[:n]
        assert got == want

    @invariant()
    def matches_model(self) -> None:
        assert set(self.table.peers()) == self.model
        assert len(self.table) == len(self.model)
        for size in self.table.bucket_sizes().values():
            assert 0 < size <= K
        for e in self.table.entries():
            assert self.cpl(e.peer_id) == self.table.cpl_of(e.key)


TestRoutingTable = RoutingTableMachine.TestCase
TestRoutingTable.settings = settings(max_examples=150, stateful_step_count=60, deadline=None)
