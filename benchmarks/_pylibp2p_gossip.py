"""The baseline of benchmarks/gossip_real.py: py-libp2p 0.8.1's own Pubsub + GossipSub.

``open_network(...)`` starts N py-libp2p hosts on 127.0.0.1 in this process, each with a
``Pubsub`` and a ``GossipSub`` router, subscribes nodes 1..N-1 to the topic (node 0, the
publisher, is not subscribed: it publishes through its fanout, as py-libp2p does for an
unsubscribed topic), connects the given edges, and yields a ``Net`` that the harness in
``gossip_real.py`` drives (the same harness drives our side, see ``_micronetwork_gossip.py``).

Configurations (``VARIANTS``; every knob not listed keeps its py-libp2p 0.8.1 default):

* ``defaults``: ``GossipSub(protocols=[P], degree=6, degree_low=5, degree_high=12)`` (the
  three degrees are required arguments; 6/5/12 are go-libp2p's and ours) and
  ``Pubsub(host, router)``: heartbeat 120 s, spam limit 10 msg/s per peer and topic
  (``spam_protection_enabled=True``, ``max_messages_per_topic_per_second=10``; it also gates
  the publisher's *own* messages, in ``GossipSub.publish``, before anything is sent), per-peer
  outbound queue of 32 RPCs (``rpc_queue.OutBoundQueueSize``; a full queue rejects the RPC,
  logged at DEBUG only), subscription channel of 32 (``pubsub.SUBSCRIPTION_CHANNEL_SIZE``;
  full: the message is not delivered, logged as a warning), ``strict_signing=True``.
* ``queue32``: ``defaults`` + ``heartbeat_interval=1`` + ``spam_protection_enabled=False``:
  only the two queues of 32 remain.
* ``raised``: ``queue32`` + the per-peer outbound queue and the subscription channel raised
  to 1,000,000 (neither is a constructor argument: ``Pubsub._handle_new_peer`` calls
  ``RpcQueue()`` with the module default, so ``libp2p.pubsub.pubsub.RpcQueue`` is replaced by
  a subclass with a larger ``max_size`` while the network exists, and
  ``libp2p.pubsub.pubsub.SUBSCRIPTION_CHANNEL_SIZE`` is raised likewise; both are restored when
  the network closes).

Signatures are on in every variant (``strict_signing=True``, the default: each message is
signed with the host's Ed25519 key and verified on receipt).

Drop counters (``Net.counters()``), by wrapping three py-libp2p methods for the whole process
(the wrappers call the originals and only count): ``RpcQueue.push`` returning False
(outbound queue full), ``GossipSub._check_spam_protection`` returning False (spam limit), and
``Pubsub.notify_subscriptions`` finding the subscription channel full.

Pitfalls handled here: each ``Pubsub`` starts an OS thread (its ``LastSeenCache`` sweeper)
that nothing stops, so ``seen_messages.stop()`` is called at teardown; the ``Pubsub`` service
is started (``background_trio_service``) before the host connects anywhere, since a Pubsub
built on a host whose service is not running makes ``connect()`` hang; hosts are closed
explicitly and concurrently (see ``_pylibp2p_baseline._Hosts``).
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import multiaddr
import trio

import _pylibp2p_baseline  # noqa: F401  (quiets py-libp2p's logging on import)

LISTEN = "/ip4/127.0.0.1/tcp/0"
CLOSE_TIMEOUT = 60.0
CONNECT_CONCURRENCY = 16
RAISED_QUEUE = 1_000_000
DEGREES = {"degree": 6, "degree_low": 5, "degree_high": 12}

VARIANTS: dict[str, dict[str, Any]] = {
    "defaults": {"gossipsub": {}, "pubsub": {}, "raise_queues": False},
    "queue32": {"gossipsub": {"heartbeat_interval": 1, "spam_protection_enabled": False},
                "pubsub": {}, "raise_queues": False},
    "raised": {"gossipsub": {"heartbeat_interval": 1, "spam_protection_enabled": False},
               "pubsub": {}, "raise_queues": True},
}

# -- drop counters (process-wide wrappers; reset per network) ------------------------------------

COUNTERS: dict[str, int] = {}


def _reset_counters() -> None:
    COUNTERS.clear()
    COUNTERS.update({"outbound_queue_full": 0, "spam_limit_rejected": 0,
                     "subscription_channel_full": 0})


def _install_counters() -> None:
    from libp2p.pubsub import gossipsub, pubsub, rpc_queue

    if getattr(rpc_queue.RpcQueue.push, "_counted", False):
        return
    orig_push = rpc_queue.RpcQueue.push
    orig_spam = gossipsub.GossipSub._check_spam_protection
    orig_notify = pubsub.Pubsub.notify_subscriptions

    @functools.wraps(orig_push)
    def push(self: Any, rpc: Any, priority: bool = False) -> bool:
        ok = orig_push(self, rpc, priority)
        if not ok and not self.closed:
            COUNTERS["outbound_queue_full"] = COUNTERS.get("outbound_queue_full", 0) + 1
        return ok

    @functools.wraps(orig_spam)
    def spam(self: Any, peer_id: Any, msg: Any) -> bool:
        ok = orig_spam(self, peer_id, msg)
        if not ok:
            COUNTERS["spam_limit_rejected"] = COUNTERS.get("spam_limit_rejected", 0) + 1
        return ok

    @functools.wraps(orig_notify)
    def notify(self: Any, msg: Any) -> None:
        for topic in msg.topicIDs:
            ch = self.subscribed_topics_send.get(topic) if topic in self.topic_ids else None
            if ch is not None:
                st = ch.statistics()
                if st.current_buffer_used >= st.max_buffer_size:
                    COUNTERS["subscription_channel_full"] = (
                        COUNTERS.get("subscription_channel_full", 0) + 1)
        orig_notify(self, msg)

    push._counted = True  # type: ignore[attr-defined]
    rpc_queue.RpcQueue.push = push  # type: ignore[method-assign]
    gossipsub.GossipSub._check_spam_protection = spam  # type: ignore[method-assign]
    pubsub.Pubsub.notify_subscriptions = notify  # type: ignore[method-assign]


# -- the network ---------------------------------------------------------------------------------


@dataclass
class _Node:
    host: Any
    pubsub: Any
    router: Any
    sub: Any = None


@dataclass
class Net:
    """What the harness drives: one publisher (node 0), subscribers 1..N-1."""

    name: str
    topic: str
    nodes: list[_Node]
    config: dict[str, Any] = field(default_factory=dict)

    async def publish(self, data: bytes) -> None:
        await self.nodes[0].pubsub.publish(self.topic, data)

    async def receive_loop(self, i: int, on_data: Callable[[bytes], None]) -> None:
        """Call ``on_data(payload)`` for every message subscriber ``i`` receives."""
        async for msg in self.nodes[i].sub:
            on_data(msg.data)

    def mesh_sizes(self) -> list[int]:
        return [len(n.router.mesh.get(self.topic, ())) for n in self.nodes]

    def topic_peer_counts(self) -> list[int]:
        return [len(n.pubsub.peer_topics.get(self.topic, ())) for n in self.nodes]

    def counters(self) -> dict[str, int]:
        return dict(COUNTERS)


@asynccontextmanager
async def _raised_queues(enabled: bool) -> AsyncIterator[None]:
    from libp2p.pubsub import pubsub as ps
    from libp2p.pubsub.rpc_queue import RpcQueue

    if not enabled:
        yield
        return

    class RaisedRpcQueue(RpcQueue):  # type: ignore[misc]
        def __init__(self, max_size: int = RAISED_QUEUE, **kw: Any) -> None:
            super().__init__(max_size=max_size, **kw)

    saved = (ps.RpcQueue, ps.SUBSCRIPTION_CHANNEL_SIZE)
    ps.RpcQueue = RaisedRpcQueue
    ps.SUBSCRIPTION_CHANNEL_SIZE = RAISED_QUEUE
    try:
        yield
    finally:
        ps.RpcQueue, ps.SUBSCRIPTION_CHANNEL_SIZE = saved


@asynccontextmanager
async def open_network(n: int, edges: Sequence[tuple[int, int]], topic: str, *,
                       variant: str = "raised", protocol: str = "/meshsub/1.1.0",
                       setup_timeout: float = 120.0,
                       subscribed: Sequence[int] | None = None) -> AsyncIterator[Net]:
    """N py-libp2p gossipsub nodes on 127.0.0.1, connected along ``edges`` (i dials j).

    ``subscribed``: the nodes that subscribe to ``topic`` (default 1..N-1; the others publish
    through their fanout); ``Net.nodes[i].sub`` is node i's subscription, or None.
    """
    from libp2p import new_host
    from libp2p.peer.peerinfo import PeerInfo
    from libp2p.pubsub.gossipsub import GossipSub
    from libp2p.pubsub.pubsub import Pubsub
    from libp2p.tools.anyio_service import background_trio_service

    _install_counters()
    _reset_counters()
    knobs = VARIANTS[variant]
    nodes: list[_Node] = []
    stack = AsyncExitStack()
    try:
        # No cancel scope around entering the hosts' contexts: they open nurseries that must
        # be exited inside the scope they were opened in (the caller bounds all of this).
        # Raised queues stay patched for the network's lifetime: pubsub streams (and their
        # RpcQueue) are set up by background tasks after connect() returns.
        await stack.enter_async_context(_raised_queues(knobs["raise_queues"]))
        for _ in range(n):
            host = new_host()
            router = GossipSub(protocols=[protocol], **DEGREES, **knobs["gossipsub"])
            ps = Pubsub(host, router, **knobs["pubsub"])
            node = _Node(host, ps, router)
            nodes.append(node)
            await stack.enter_async_context(
                host.run(listen_addrs=[multiaddr.Multiaddr(LISTEN)]))
            await stack.enter_async_context(background_trio_service(ps))
            await stack.enter_async_context(background_trio_service(router))
            with trio.fail_after(setup_timeout):
                await ps.wait_until_ready()
        for i in (range(1, n) if subscribed is None else subscribed):
            nodes[i].sub = await nodes[i].pubsub.subscribe(topic)
        limiter = trio.CapacityLimiter(CONNECT_CONCURRENCY)

        async def dial(i: int, j: int) -> None:
            async with limiter:
                b = nodes[j].host
                await nodes[i].host.connect(PeerInfo(b.get_id(), b.get_addrs()))

        with trio.fail_after(setup_timeout):
            async with trio.open_nursery() as nursery:
                for i, j in edges:
                    nursery.start_soon(dial, i, j)
        net = Net(
            name=f"py-libp2p {variant}", topic=topic, nodes=nodes,
            config={"variant": variant, "protocol": protocol, **DEGREES,
                    "gossipsub_knobs": knobs["gossipsub"], "pubsub_knobs": knobs["pubsub"],
                    "outbound_queue": RAISED_QUEUE if knobs["raise_queues"] else 32,
                    "subscription_channel": RAISED_QUEUE if knobs["raise_queues"] else 32,
                    "strict_signing": True},
        )
        yield net
    finally:
        with trio.CancelScope(shield=True), trio.move_on_after(CLOSE_TIMEOUT):
            for node in nodes:
                node.pubsub.seen_messages.stop()  # its sweeper thread (never stopped otherwise)
            async with trio.open_nursery() as nursery:
                for node in nodes:
                    nursery.start_soon(node.host.close)
        await stack.aclose()
