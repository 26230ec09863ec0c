"""A new instance of a service joins the existing ones: ``serve`` connects it to the other
providers, each provider forwards its service topic to every watcher (a gossip hub), and a
watcher that looked the service up before the new instance existed hears of it."""

from __future__ import annotations

import pytest
import trio

from micronetwork import Node, NodeConfig
from micronetwork.cli.demo_services import greeter_service
from micronetwork.registry import service_topic

pytestmark = pytest.mark.integration


async def test_a_new_instance_connects_to_the_providers_and_reaches_their_watchers() -> None:
    topic = service_topic("greeter")
    with trio.fail_after(60):
        async with Node.open(NodeConfig.super_node()) as sup:
            boot = (sup.addrs[0],)
            async with Node.open(NodeConfig.peer(bootstrap=boot)) as first, \
                    Node.open(NodeConfig.peer(bootstrap=boot)) as second, \
                    Node.open(NodeConfig.peer(bootstrap=boot)) as watcher:
                await first.serve(greeter_service("first"))
                assert topic in first._core.gossip.hubs
                assert [i.peer for i in await watcher.registry.get("greeter")] == [first.peer_id]
                async with watcher.registry.watch("greeter") as events:
                    assert (await events.receive()).peer == first.peer_id  # replayed on watch
                    await second.serve(greeter_service("second"))
                    # serve looked the other providers up and is connected to them
                    assert await second.registry.join_providers("greeter", 5.0) == 1
                    event = await events.receive()
                    assert event.kind == "created" and event.peer == second.peer_id
                await second.unserve("greeter")
                assert topic not in second._core.gossip.hubs
                assert topic in first._core.gossip.hubs
