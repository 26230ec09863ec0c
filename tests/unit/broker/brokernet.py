"""An in-memory network of BrokerCores: gossip is a fan-out to every subscriber (with a
drop filter), requests are answered synchronously. No sockets, no trio, virtual time."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

from micronetwork.broker import BrokerConfig, BrokerCore, StoreFactory
from micronetwork.commands import Emit, Request, Respond
from micronetwork.gossip.events import Message, Outcome
from micronetwork.identity.keys import KeyPair
from micronetwork.identity.peerid import PeerId


class Ports:
    def __init__(self, net: Net, peer: PeerId) -> None:
        self.net, self.peer = net, peer
        self.topics: set[str] = set()

    def publish(self, topic: str, data: bytes, now: float) -> None:
        self.net.queue.append((self.peer, topic, data))

    def subscribe(self, topic: str, now: float) -> None:
        self.topics.add(topic)

    def unsubscribe(self, topic: str, now: float) -> None:
        self.topics.discard(topic)


class Net:
    def __init__(self) -> None:
        self.nodes: dict[PeerId, BrokerCore] = {}
        self.ports: dict[PeerId, Ports] = {}
        self.queue: list[tuple[PeerId, str, bytes]] = []
        self.events: dict[PeerId, list[Any]] = {}
        self.drop: Callable[[PeerId, PeerId, bytes], bool] = lambda src, dst, data: False
        self.down: set[PeerId] = set()
        self.hold_requests = False
        self.held: list[tuple[PeerId, Request]] = []
        self.now = 0.0
        self._n = 0

    def add(
        self, seed: int, config: BrokerConfig | None = None,
        store_factory: StoreFactory | None = None, seq_base: int = 0,
    ) -> BrokerCore:
        key = KeyPair.from_seed(bytes([seed]) * 32)
        ports = Ports(self, key.peer_id)
        core = BrokerCore(key, ports, config=config, now=self.now, wall_offset=1000.0,
                          store_factory=store_factory, seq_base=seq_base)
        self.nodes[key.peer_id] = core
        self.ports[key.peer_id] = ports
        self.events.setdefault(key.peer_id, [])
        return core

    def gossip(self, src: PeerId, topic: str, data: bytes) -> list[Outcome]:
        """Deliver one gossip message to every other subscribed node."""
        self._n += 1
        outcomes = []
        for peer, core in self.nodes.items():
            if peer == src or peer in self.down or topic not in self.ports[peer].topics:
                continue
            if self.drop(src, peer, data):
                continue
            mid = hashlib.sha256(data + self._n.to_bytes(8, "big")).digest()
            msg = Message(topic, data, src, b"", mid, src)
            outcome = core.validate(msg)
            outcomes.append(outcome)
            if outcome is Outcome.ACCEPT:
                core.on_message(msg, self.now)
        return outcomes

    def pump(self) -> None:
        """Run until no gossip and no request is left."""
        for _ in range(10_000):
            busy = False
            while self.queue:
                busy = True
                self.gossip(*self.queue.pop(0))
            for peer, core in list(self.nodes.items()):
                for cmd in core.drain():
                    busy = True
                    if isinstance(cmd, Emit):
                        self.events[peer].append(cmd.event)
                    elif isinstance(cmd, Request):
                        if self.hold_requests:
                            self.held.append((peer, cmd))
                        else:
                            self.request(peer, cmd)
            if not busy:
                return
        raise AssertionError("the network did not settle")

    def request(self, src: PeerId, cmd: Request) -> None:
        client = self.nodes[src]
        server = self.nodes.get(cmd.peer)
        if server is None or cmd.peer in self.down:
            client.on_request_failed(cmd.peer, cmd.request_id, "unreachable", self.now)
            return
        server.on_request(src, 1, client.encode(cmd.message), self.now)
        answer = None
        keep = []
        for c in server.drain():
            if isinstance(c, Respond) and c.token == 1 and answer is None:
                answer = c
            else:
                keep.append(c)
        for c in keep:
            if isinstance(c, Emit):
                self.events[cmd.peer].append(c.event)
        assert answer is not None
        if answer.message is None:
            client.on_request_failed(cmd.peer, cmd.request_id, "closed", self.now)
        else:
            client.on_response(cmd.peer, cmd.request_id, server.encode(answer.message), self.now)

    def release(self) -> None:
        held, self.held = self.held, []
        for src, cmd in held:
            self.request(src, cmd)

    def advance(self, until: float) -> None:
        """Fire every timer up to ``until`` (virtual time)."""
        while True:
            self.pump()
            deadlines = [d for c in self.nodes.values() if (d := c.next_deadline()) is not None]
            nxt = min(deadlines, default=None)
            if nxt is None or nxt > until:
                break
            self.now = max(self.now, nxt)
            for core in self.nodes.values():
                d = core.next_deadline()
                if d is not None and d <= self.now:
                    core.on_timer(self.now)
        self.now = until
        self.pump()
