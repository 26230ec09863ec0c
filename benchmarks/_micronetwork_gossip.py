"""Our side of benchmarks/gossip_real.py: N micronetwork Nodes running our gossipsub.

Same shape as ``_pylibp2p_gossip.open_network``: N nodes on 127.0.0.1 in this process, nodes
1..N-1 subscribed (``node.subscribe(topic)``), node 0 the publisher (not subscribed: it
publishes through fanout, flood-publishing to every topic peer as gossipsub v1.1's
``flood_publish`` default says), the given edges dialled with ``node.connect(addr)``. Every
node runs ``NodeConfig`` defaults (gossip: D=6, D_lo=5, D_hi=12, heartbeat 1 s, scoring on,
/meshsub/1.2.0 then 1.1.0, signing and strict verification on, IDONTWANT only above 1024 B so
never for 200 B messages); ``seed`` seeds each node's RNG.

Drops are visible in ``node.stats()``: ``gossip_app_dropped`` (a subscriber's buffer full),
``gossip_messages_dropped_by_driver`` / ``gossip_rpcs_dropped_by_driver`` (the host driver's
outbound queues); ``Net.counters()`` sums every ``gossip_`` counter over the nodes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import trio

from micronetwork import Node, NodeConfig


def _config(seed: int) -> NodeConfig:
    # All N nodes share 127.0.0.1; P6 (IP colocation) exempts loopback by default
    # (docs/decisions.md), so these are plain defaults.
    return NodeConfig(seed=seed)

CONNECT_CONCURRENCY = 16


def available() -> tuple[bool, str]:
    """Whether this micronetwork has the gossip API the benchmark needs."""
    missing = [a for a in ("subscribe", "publish", "mesh_peers", "topic_peers")
               if not callable(getattr(Node, a, None))]
    if missing:
        return False, f"micronetwork.Node lacks {', '.join(missing)}"
    return True, "micronetwork.Node has subscribe/publish/mesh_peers/topic_peers"


@dataclass
class Net:
    name: str
    topic: str
    nodes: list[Any]
    subs: list[Any]
    config: dict[str, Any] = field(default_factory=dict)

    async def publish(self, data: bytes) -> None:
        await self.nodes[0].publish(self.topic, data)

    async def receive_loop(self, i: int, on_data: Callable[[bytes], None]) -> None:
        async for msg in self.subs[i]:
            on_data(msg.data)

    def mesh_sizes(self) -> list[int]:
        return [len(n.mesh_peers(self.topic)) for n in self.nodes]

    def topic_peer_counts(self) -> list[int]:
        return [len(n.topic_peers(self.topic)) for n in self.nodes]

    def counters(self) -> dict[str, int]:
        total: dict[str, int] = {}
        for n in self.nodes:
            for k, v in n.stats().items():
                if k.startswith("gossip_"):
                    total[k] = total.get(k, 0) + v
        return total


@asynccontextmanager
async def open_network(n: int, edges: Sequence[tuple[int, int]], topic: str, *,
                       seed: int = 0, setup_timeout: float = 120.0,
                       buffer: int = 4096) -> AsyncIterator[Net]:
    async with AsyncExitStack() as stack:
        # No cancel scope around entering the nodes' contexts (they open nurseries that must
        # be exited inside the scope they were opened in); the caller bounds all of this.
        nodes = []
        for i in range(n):  # sequential: each context is entered and left here
            nodes.append(await stack.enter_async_context(
                Node.open(_config(seed * 1000 + i))))
        subs: list[Any] = [None]
        for node in nodes[1:]:
            subs.append(await stack.enter_async_context(node.subscribe(topic, buffer=buffer)))
        limiter = trio.CapacityLimiter(CONNECT_CONCURRENCY)

        async def dial(i: int, j: int) -> None:
            async with limiter:
                await nodes[i].connect(nodes[j].addrs[0])

        with trio.fail_after(setup_timeout):
            async with trio.open_nursery() as nursery:
                for i, j in edges:
                    nursery.start_soon(dial, i, j)
        g = nodes[0].config.gossip
        yield Net(
            name="micronetwork", topic=topic, nodes=nodes, subs=subs,
            config={"NodeConfig": "defaults (seed per node)", "d": g.d, "d_lo": g.d_lo,
                    "d_hi": g.d_hi, "heartbeat_interval": g.heartbeat_interval,
                    "flood_publish": g.flood_publish, "protocols": list(g.protocols),
                    "scoring": g.score is not None, "signing": "on (strict)",
                    "subscribe_buffer": buffer},
        )
