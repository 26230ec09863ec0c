"""Gossipsub on real hosts (127.0.0.1): meshes form, every message arrives exactly once."""

from __future__ import annotations

from contextlib import AsyncExitStack

import pytest
import trio

from micronetwork import Node, NodeConfig
from micronetwork.gossip import GossipConfig

pytestmark = pytest.mark.integration

FAST = GossipConfig(heartbeat_interval=0.2, heartbeat_initial_delay=0.05)


async def test_publish_reaches_every_subscriber_exactly_once() -> None:
    with trio.fail_after(60):
        async with AsyncExitStack() as stack:
            sup = await stack.enter_async_context(Node.open(NodeConfig.super_node(gossip=FAST)))
            nodes = [
                await stack.enter_async_context(
                    Node.open(NodeConfig.peer(bootstrap=(sup.addrs[0],), gossip=FAST))
                )
                for _ in range(6)
            ]
            subs = [await stack.enter_async_context(n.subscribe("news")) for n in nodes]
            # Subscriptions travel as gossip RPCs; Node has no event for them yet, so poll
            # (bounded by the fail_after above) until the publisher knows every subscriber.
            while len(sup.topic_peers("news")) < len(nodes):
                await trio.sleep(0.02)
            count = 200
            received: list[list[bytes]] = [[] for _ in nodes]

            async def consume(i: int, channel) -> None:  # type: ignore[no-untyped-def]
                async for msg in channel:
                    assert msg.topic == "news" and msg.from_peer == sup.peer_id
                    received[i].append(msg.data)
                    if len(received[i]) == count:
                        return

            async with trio.open_nursery() as nursery:
                for i, ch in enumerate(subs):
                    nursery.start_soon(consume, i, ch)
                for i in range(count):
                    await sup.publish("news", b"%05d" % i + b"x" * 195)
            expected = [b"%05d" % i + b"x" * 195 for i in range(count)]
            for got in received:
                assert sorted(got) == expected  # all of them, no duplicates
            assert sup.topic_stats("news").published == count
            stats = sup.stats()
            assert stats.get("gossip_rpcs_dropped_by_driver", 0) == 0
            for n in nodes:
                assert 1 <= len(n.mesh_peers("news")) <= 12
