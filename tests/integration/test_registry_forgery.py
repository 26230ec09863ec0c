"""A forged registration on real sockets: a node gossips a record that names another node as
the server (signed with its own key). The watcher's registry rejects it (counted, and gossip
scores the sender), and the real instance list is unchanged."""

from __future__ import annotations

import pytest
import trio

from micronetwork import Node, NodeConfig
from micronetwork.cli.demo_services import greeter_service
from micronetwork.identity.envelope import seal
from micronetwork.registry import Registration, service_topic

pytestmark = pytest.mark.integration


async def test_forged_registration_is_rejected() -> None:
    with trio.fail_after(60):
        async with Node.open(NodeConfig.super_node()) as sup:
            boot = (sup.addrs[0],)
            async with Node.open(NodeConfig.peer(bootstrap=boot)) as server, \
                    Node.open(NodeConfig.peer(bootstrap=boot)) as watcher, \
                    Node.open(NodeConfig.peer(bootstrap=boot)) as forger:
                await server.serve(greeter_service("real"))
                await watcher.registry.get("greeter")
                async with watcher.registry.watch("greeter") as events:
                    await watcher.connect(forger.addrs[0])
                    topic = service_topic("greeter")
                    forger._core.gossip.subscribe(topic, trio.current_time())
                    forger._driver.pump()
                    while watcher.peer_id not in forger.topic_peers(topic):
                        await trio.sleep(0.02)  # no event for this: poll, bounded above
                    forged = Registration(greeter_service("fake", "9.9.9").describe(),
                                          server.peer_id, (), 1 << 60, 20.0)
                    data = seal(forger.key, "micronetwork-registry",
                                b"/micronetwork/registry/1", forged.to_wire())
                    forger._core.gossip.publish(topic, data, trio.current_time())
                    forger._driver.pump()
                    while watcher.stats().get("registry_rejected", 0) == 0:
                        await trio.sleep(0.02)
                    assert watcher.stats()["gossip_rejected"] >= 1  # gossip scored it too
                    versions = {i.version for i in watcher.registry.known("greeter")}
                    assert versions == {"1.0.0"}
                    first = await events.receive()  # the real instance, replayed on watch
                    assert first.kind == "created" and first.registration.version == "1.0.0"
