"""A tiny in-memory network of Kademlia cores for unit tests (no sockets, virtual time).

Every message is encoded and decoded with the real wire codec, so these tests cover the
protobuf path too. Latency is constant; dead nodes make requests fail after the latency.
"""

from __future__ import annotations

import heapq
import itertools
import random
from collections.abc import Callable
from typing import Any

from micronetwork.commands import Dial, Disconnect, Emit, Request, Respond
from micronetwork.identity import KeyPair, PeerId
from micronetwork.kademlia import KademliaConfig, KademliaCore, QueryFinished
from micronetwork.kademlia.wire import decode_message, encode_message


class MemNet:
    def __init__(self, seed: int = 1, latency: float = 0.01) -> None:
        self.rng = random.Random(seed)
        self.latency = latency
        self.now = 0.0
        self.nodes: dict[PeerId, KademliaCore] = {}
        self.dead: set[PeerId] = set()
        self.events: dict[PeerId, list[Any]] = {}
        self.disconnects: list[tuple[PeerId, PeerId]] = []
        self._heap: list[tuple[float, int, Callable[[], None]]] = []
        self._seq = itertools.count()
        self._tokens: dict[int, tuple[PeerId, PeerId, int, bool]] = {}
        self._token_seq = itertools.count(1)
        self._met: set[tuple[PeerId, PeerId]] = set()

    def add_node(self, config: KademliaConfig | None = None) -> KademliaCore:
        key = KeyPair.from_seed(self.rng.randbytes(32))
        pid = key.peer_id
        addr = b"\x04\x7f\x00\x00\x01\x06" + len(self.nodes).to_bytes(2, "big")
        core = KademliaCore(
            pid, config=config, rng=random.Random(self.rng.random()), now=self.now,
            local_addrs=(addr,),
        )
        self.nodes[pid] = core
        self.events[pid] = []
        self._pump(core)
        return core

    def kill(self, peer: PeerId) -> None:
        self.dead.add(peer)

    def schedule(self, delay: float, fn: Callable[[], None]) -> None:
        heapq.heappush(self._heap, (self.now + delay, next(self._seq), fn))

    def _meet(self, a: PeerId, b: PeerId) -> None:
        if (a, b) in self._met:
            return
        self._met.add((a, b))
        self._met.add((b, a))
        for x, y in ((a, b), (b, a)):
            cx, cy = self.nodes[x], self.nodes[y]
            protos = [cy.config.protocol_id] if cy.config.mode == "server" else []
            cx.on_peer_identified(y, cy.local_addrs, protos, self.now)
            self._pump(cx)

    def _pump(self, core: KademliaCore) -> None:
        src = core.local_id
        for cmd in core.drain():
            if isinstance(cmd, Request):
                self._request(src, cmd)
            elif isinstance(cmd, Respond):
                self._respond(src, cmd)
            elif isinstance(cmd, Emit):
                self.events[src].append(cmd.event)
            elif isinstance(cmd, Disconnect):
                self.disconnects.append((src, cmd.peer))
            elif isinstance(cmd, Dial):
                pass
        deadline = core.next_deadline()
        if deadline is not None:
            heapq.heappush(self._heap, (deadline, next(self._seq), lambda: self._timer(core)))

    def _timer(self, core: KademliaCore) -> None:
        if core.local_id in self.dead:
            return
        core.on_timer(self.now)
        self._pump(core)

    def _request(self, src: PeerId, cmd: Request) -> None:
        dst = cmd.peer
        data = encode_message(cmd.message)

        def deliver() -> None:
            if dst in self.dead or dst not in self.nodes:
                self.schedule(self.latency, lambda: self._failed(src, dst, cmd.request_id))
                return
            self._meet(src, dst)
            token = next(self._token_seq)
            self._tokens[token] = (dst, src, cmd.request_id, cmd.expect_response)
            core = self.nodes[dst]
            core.on_request(src, token, data, self.now)
            self._pump(core)

        self.schedule(self.latency, deliver)

    def _respond(self, src: PeerId, cmd: Respond) -> None:
        _, requester, rid, expect = self._tokens.pop(cmd.token)
        core = self.nodes[requester]
        if not expect:
            self.schedule(0.0, lambda: self._deliver_response(core, src, rid, None))
            return
        if cmd.message is None:
            self.schedule(self.latency, lambda: self._failed(requester, src, rid))
            return
        data = encode_message(cmd.message)
        self.schedule(self.latency, lambda: self._deliver_response(core, src, rid, data))

    def _deliver_response(
        self, core: KademliaCore, src: PeerId, rid: int, data: bytes | None
    ) -> None:
        if core.local_id in self.dead:
            return
        core.on_response(src, rid, None if data is None else decode_message(data), self.now)
        self._pump(core)

    def _failed(self, requester: PeerId, peer: PeerId, rid: int) -> None:
        if requester in self.dead:
            return
        core = self.nodes[requester]
        core.on_request_failed(peer, rid, "unreachable", self.now)
        self._pump(core)

    def call(self, core: KademliaCore, method: str, *args: Any) -> int:
        qid: int = getattr(core, method)(*args, self.now)
        self._pump(core)
        return qid

    def run_until_finished(
        self, core: KademliaCore, qid: int, limit: float = 120.0
    ) -> QueryFinished:
        end = self.now + limit
        while True:
            for ev in self.events[core.local_id]:
                if isinstance(ev, QueryFinished) and ev.query_id == qid:
                    return ev
            if not self._heap or self._heap[0][0] > end:
                raise AssertionError(f"query {qid} did not finish by t={end}")
            self.step()

    def step(self) -> None:
        t, _, fn = heapq.heappop(self._heap)
        self.now = max(self.now, t)
        fn()

    def run_for(self, seconds: float) -> None:
        end = self.now + seconds
        while self._heap and self._heap[0][0] <= end:
            self.step()
        self.now = end

    def build(self, n: int, config: KademliaConfig | None = None) -> list[KademliaCore]:
        """n nodes; the first is the bootstrap node of all the others, which bootstrap."""
        cores = [self.add_node(config) for _ in range(n)]
        boot = cores[0]
        for c in cores[1:]:
            c.add_bootstrap_peer(boot.local_id, boot.local_addrs)
        for c in cores[1:]:
            self.call(c, "bootstrap")
            self.run_for(0.5)
        self.run_for(30)
        return cores
