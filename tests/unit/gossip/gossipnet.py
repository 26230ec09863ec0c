"""An in-memory network of gossip cores for unit tests (no sockets, virtual time).

Each ``Send`` is encoded with the real protobuf codec and delivered as bytes after the link's
latency (FIFO per link, like the long-lived stream it stands for). ``intercept`` may drop or
rewrite an RPC in flight: ``intercept(src, dst, rpc) -> rpc | None``.
"""

from __future__ import annotations

import heapq
import itertools
import random
from collections.abc import Callable
from typing import Any

from micronetwork.commands import Dial, Disconnect, Emit
from micronetwork.gossip import (
    PROTOCOL_V11,
    PROTOCOL_V12,
    RPC,
    GossipConfig,
    GossipCore,
    Message,
    Outcome,
    Send,
    ValidateMessage,
)
from micronetwork.identity import KeyPair, PeerId

Intercept = Callable[[PeerId, PeerId, RPC], RPC | None]


class GossipNet:
    def __init__(self, seed: int = 1, latency: float = 0.01) -> None:
        self.rng = random.Random(seed)
        self.latency = latency
        self.now = 0.0
        self.nodes: dict[PeerId, GossipCore] = {}
        self.protocols: dict[PeerId, tuple[str, ...]] = {}
        self.links: dict[tuple[PeerId, PeerId], float] = {}
        self.events: dict[PeerId, list[Any]] = {}
        self.disconnects: list[tuple[PeerId, PeerId, str]] = []
        self.dials: list[tuple[PeerId, PeerId]] = []
        self.sent: list[tuple[PeerId, PeerId, RPC]] = []
        self.intercept: Intercept | None = None
        self.validation_delay: float | None = None  # answer ValidateMessage(ACCEPT) after this
        self._heap: list[tuple[float, int, Callable[[], None]]] = []
        self._seq = itertools.count()
        self._timer_at: dict[PeerId, float] = {}

    # == building ==============================================================================

    def add_node(
        self, config: GossipConfig | None = None, protocols: tuple[str, ...] | None = None
    ) -> GossipCore:
        key = KeyPair.from_seed(self.rng.randbytes(32))
        core = GossipCore(key, config=config, rng=random.Random(self.rng.random()), now=self.now)
        self.nodes[core.local_id] = core
        self.protocols[core.local_id] = protocols or (PROTOCOL_V12, PROTOCOL_V11)
        self.events[core.local_id] = []
        self.pump(core)
        return core

    def connect(
        self, a: GossipCore, b: GossipCore, latency: float | None = None, ip: str | None = None
    ) -> None:
        """``a`` dials ``b``."""
        lat = self.latency if latency is None else latency
        self.links[(a.local_id, b.local_id)] = self.links[(b.local_id, a.local_id)] = lat
        a.on_peer_connected(b.local_id, self.protocols[b.local_id], True, self.now, ip)
        b.on_peer_connected(a.local_id, self.protocols[a.local_id], False, self.now, ip)
        self.pump(a)
        self.pump(b)

    def disconnect(self, a: PeerId, b: PeerId) -> None:
        if self.links.pop((a, b), None) is None:
            return
        self.links.pop((b, a), None)
        for x, y in ((a, b), (b, a)):
            self.nodes[x].on_peer_disconnected(y, self.now)
            self.pump(self.nodes[x])

    def build(
        self,
        n: int,
        degree: int = 8,
        config: GossipConfig | None = None,
        topic: str | None = "t",
        jitter: float = 0.0,
    ) -> list[GossipCore]:
        """n nodes in a ring plus random links up to about ``degree`` links per node."""
        cores = [self.add_node(config) for _ in range(n)]
        for i, c in enumerate(cores):
            self.connect(c, cores[(i + 1) % n], self._lat(jitter))
        for c in cores:
            while sum(1 for (x, _) in self.links if x == c.local_id) < degree:
                other = self.rng.choice(cores)
                if other is not c and (c.local_id, other.local_id) not in self.links:
                    self.connect(c, other, self._lat(jitter))
        if topic is not None:
            for c in cores:
                self.call(c, "subscribe", topic)
        return cores

    def _lat(self, jitter: float) -> float:
        return self.latency + self.rng.uniform(0, jitter)

    # == running ===============================================================================

    def call(self, core: GossipCore, method: str, *args: Any) -> Any:
        result = getattr(core, method)(*args, self.now)
        self.pump(core)
        return result

    def pump(self, core: GossipCore) -> None:
        src = core.local_id
        for cmd in core.drain():
            if isinstance(cmd, Send):
                self._send(src, cmd)
            elif isinstance(cmd, Emit):
                self.events[src].append(cmd.event)
                if isinstance(cmd.event, ValidateMessage) and self.validation_delay is not None:
                    self._accept_later(core, cmd.event.msg_id)
            elif isinstance(cmd, Disconnect):
                self.disconnects.append((src, cmd.peer, cmd.reason))
            elif isinstance(cmd, Dial):
                self.dials.append((src, cmd.peer))
        deadline = core.next_deadline()
        if deadline is not None and deadline < self._timer_at.get(src, float("inf")):
            self._timer_at[src] = deadline
            heapq.heappush(self._heap, (deadline, next(self._seq), lambda: self._timer(core)))

    def _accept_later(self, core: GossipCore, msg_id: bytes) -> None:
        def accept() -> None:
            core.report_validation(msg_id, Outcome.ACCEPT, self.now)
            self.pump(core)

        assert self.validation_delay is not None
        heapq.heappush(self._heap, (self.now + self.validation_delay, next(self._seq), accept))

    def _timer(self, core: GossipCore) -> None:
        src = core.local_id
        if self._timer_at.get(src, float("inf")) > self.now:
            return  # superseded
        del self._timer_at[src]
        core.on_timer(self.now)
        self.pump(core)

    def _send(self, src: PeerId, cmd: Send) -> None:
        dst = cmd.peer
        lat = self.links.get((src, dst))
        if lat is None:
            return
        rpc: RPC | None = cmd.message
        if self.intercept is not None:
            rpc = self.intercept(src, dst, cmd.message)
        if rpc is None:
            return
        self.sent.append((src, dst, rpc))
        data = GossipCore.encode(rpc)

        def deliver() -> None:
            if (src, dst) in self.links:
                core = self.nodes[dst]
                core.on_rpc(src, data, self.now)
                self.pump(core)

        heapq.heappush(self._heap, (self.now + lat, next(self._seq), deliver))

    def step(self) -> None:
        t, _, fn = heapq.heappop(self._heap)
        self.now = max(self.now, t)
        fn()

    def run_for(self, seconds: float) -> None:
        end = self.now + seconds
        while self._heap and self._heap[0][0] <= end:
            self.step()
        self.now = end

    # == observing =============================================================================

    def delivered(self, core: GossipCore, msg_id: bytes | None = None) -> list[Message]:
        return [
            e
            for e in self.events[core.local_id]
            if isinstance(e, Message) and (msg_id is None or e.msg_id == msg_id)
        ]
