"""The registry in the simulator: a GossipSimulator whose nodes also run a RegistryCore.

Theory of operation. :class:`RegistrySimulator` adds a :class:`~micronetwork.registry.
RegistryCore` to chosen nodes (``add_registry``), wired as ``NodeCore`` wires it: the registry
publishes and subscribes through the node's gossip core (its validator checks each message of a
registry topic), and the pump routes gossip ``Message`` and ``PeerSubscribed`` events of
registry topics to it and asks both cores for their next deadline. It counts per node the gossip
bytes sent and received, every registry event by kind and deletion reason, and, for tracked
(service, instance) pairs, when each node created and deleted it. ``crash`` stops a node dead
(no withdrawal). Gossip signatures are real Ed25519 and checked once per message (a memo of
messages that verified, behind ``GossipCore.verify``); the cyclic GC is off while ``run`` runs.
Networks are built in :mod:`.registry_net`, the experiments are in :mod:`.registry`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from heapq import heappush
from typing import Any

from ..commands import Emit
from ..gossip.commands import Send
from ..gossip.events import Message, PeerSubscribed, ValidateMessage
from ..gossip.messages import PubMessage
from ..gossip.signing import verify_message
from ..identity.peerid import PeerId
from ..registry import RegistryConfig, RegistryCore, ServiceEvent
from .crypto import CryptoModel
from .gossip import GossipSimNode, GossipSimulator
from .loop import no_gc as _no_gc

__all__ = ["RegistrySimulator"]

INF = float("inf")
Progress = Callable[[float, str], None]


def _no_progress(frac: float, label: str) -> None:
    pass




class _Ports:
    def __init__(self, sim: RegistrySimulator, node: GossipSimNode) -> None:
        self.sim, self.node = sim, node

    def publish(self, topic: str, data: bytes, now: float) -> None:
        self.node.core.publish(topic, data, now)

    def subscribe(self, topic: str, now: float) -> None:
        regs, idx = self.sim.registries, self.node.idx
        self.node.core.set_validator(topic, lambda m: regs[idx].validate(m))
        self.node.core.subscribe(topic, now)

    def unsubscribe(self, topic: str, now: float) -> None:
        self.node.core.unsubscribe(topic, now)
        self.node.core.remove_validator(topic)

    def provide(self, key: bytes, now: float) -> None:
        pass  # the DHT is not simulated here

    def stop_providing(self, key: bytes) -> None:
        pass

    def set_hub(self, topic: str, on: bool) -> None:
        self.node.core.set_hub(topic, on)


class RegistrySimulator(GossipSimulator):
    """GossipSimulator whose nodes also run a RegistryCore (wired as NodeCore wires it).

    Counts per node the gossip bytes sent and received (``bytes_out``/``bytes_in``, indexed by
    node), every registry event by kind (``events``) and deletion reason (``deleted``), and for
    the (service, instance) pairs passed to :meth:`track`, when each node created and deleted it.
    """

    def __init__(self, seed: int, registry: RegistryConfig, **kw: Any) -> None:
        super().__init__(seed, crypto=CryptoModel(mode="execute"), **kw)
        self.registry_config = registry
        self.registries: dict[int, RegistryCore] = {}
        self.events: Counter[str] = Counter()
        self.deleted: Counter[str] = Counter()
        self.expired_live = 0  # "expired" deletions of instances whose node is alive
        self.bytes_out: list[int] = []
        self.bytes_in: list[int] = []
        self.tracked: set[tuple[str, PeerId]] = set()
        self.created_at: dict[tuple[str, PeerId], dict[int, float]] = {}
        self.deleted_at: dict[tuple[str, PeerId], dict[int, float]] = {}
        self.crashed_at: dict[int, float] = {}
        self._verified_msgs: set[PubMessage] = set()

    def add_node(self, **kw: Any) -> GossipSimNode:
        self.bytes_out.append(0)
        self.bytes_in.append(0)
        node = super().add_node(**kw)
        node.core.verify = self._verify
        return node

    def _verify(self, msg: PubMessage) -> None:
        # StrictSign, once per message: several peers forward the same signed message.
        if msg in self._verified_msgs:
            return
        verify_message(msg)
        if len(self._verified_msgs) > 1 << 20:
            self._verified_msgs.clear()
        self._verified_msgs.add(msg)

    def add_registry(self, node: GossipSimNode, config: RegistryConfig | None = None) -> None:
        key = node.core.key  # crypto "execute": a real Ed25519 key, the gossip author's too
        reg = RegistryCore(key, _Ports(self, node), config=config or self.registry_config,
                           now=self.now)
        reg.addrs = (b"\x04\x7f\x00\x00\x01",)
        self.registries[node.idx] = reg
        self._pump(node)

    def register(self, node: GossipSimNode, description: dict[str, Any]) -> None:
        if node.alive:
            self.registries[node.idx].register(description, self.now)
            self._pump(node)

    def watch(self, node: GossipSimNode, name: str) -> None:
        self.registries[node.idx].watch(name, self.now)
        self._pump(node)

    def crash(self, node: GossipSimNode) -> None:
        """The node stops dead: no withdrawal, nothing more leaves it, nothing reaches it."""
        node.alive = False
        self.crashed_at[node.idx] = self.now

    def track(self, name: str, peer: PeerId) -> None:
        """Record when each node creates and deletes the instance ``peer`` of ``name``."""
        key = (name, peer)
        self.tracked.add(key)
        self.created_at.setdefault(key, {})
        self.deleted_at.setdefault(key, {})

    def run(self, seconds: float, progress: Progress = _no_progress, label: str = "run",
            frac0: float = 0.0, frac1: float = 1.0) -> None:
        """Run ``seconds`` of virtual time (GC off), reporting progress every virtual second."""
        t0 = self.now
        end = t0 + seconds
        with _no_gc():
            while self.now < end - 1e-9:
                self.run_until(min(end, self.now + 1.0))
                done = (self.now - t0) / seconds if seconds else 1.0
                progress(frac0 + (frac1 - frac0) * done, label)

    # == driver ================================================================================

    # The base driver, with registry routing added (Message on registry topics -> registry).
    def _pump(self, node: GossipSimNode) -> None:
        if not node.alive:
            return
        core = node.core
        reg = self.registries.get(node.idx)
        while True:
            busy = False
            for cmd in core.drain():
                busy = True
                if type(cmd) is Send:
                    self._send(node, cmd)
                elif type(cmd) is Emit:
                    ev = cmd.event
                    if type(ev) is Message and reg is not None and reg.is_registry_topic(ev.topic):
                        reg.on_message(ev, self.now)
                    elif type(ev) is ValidateMessage:
                        self._validate(node, ev)
                    elif type(ev) is PeerSubscribed and reg is not None:
                        reg.on_peer_subscribed(ev.peer, ev.topic, self.now)
            if reg is not None:
                for out in reg.drain():
                    busy = True
                    if type(out) is Emit and type(out.event) is ServiceEvent:
                        self._on_service_event(node, out.event)
            if not busy:
                break
        d = core.next_deadline()
        if reg is not None:
            r = reg.next_deadline()
            if r is not None and (d is None or r < d):
                d = r
        if d is not None and d < node.timer_at:
            node.timer_at = d
            loop = self.loop
            heappush(loop.heap, (d if d > loop.now else loop.now, next(loop.counter),
                                 self.K_TIMER, node, d, None))

    def _on_service_event(self, node: GossipSimNode, ev: ServiceEvent) -> None:
        self.events[ev.kind] += 1
        if ev.kind == "deleted":
            self.deleted[ev.reason] += 1
            if ev.reason == "expired":
                owner = self.by_id.get(ev.peer)
                if owner is not None and owner.alive:
                    self.expired_live += 1
        key = (ev.name, ev.peer)
        if key in self.tracked:
            log = self.created_at if ev.kind == "created" else (
                self.deleted_at if ev.kind == "deleted" else None)
            if log is not None:
                log[key].setdefault(node.idx, self.now)

    def _on_timer(self, node: GossipSimNode, when: float, _c: Any) -> None:
        if not node.alive or node.timer_at != when:
            return
        node.timer_at = INF
        now = self.loop.now
        d = node.core.next_deadline()
        if d is not None and d <= now:
            node.core.on_timer(now)
        reg = self.registries.get(node.idx)
        if reg is not None:
            d = reg.next_deadline()
            if d is not None and d <= now:
                reg.on_timer(now)
        self._pump(node)

    def _send(self, node: GossipSimNode, cmd: Send) -> None:
        counters = self.metrics.counters
        before = counters["bytes"]
        super()._send(node, cmd)
        sent = counters["bytes"] - before
        if sent:
            self.bytes_out[node.idx] += sent
            self.bytes_in[node.links[cmd.peer][0].idx] += sent
