"""Forged registrations on real sockets: a node gossips a record that names another node as
the server (signed with its own key). The watcher's registry rejects it (counted, and gossip
scores the sender), and the real instance list is unchanged. Once with every node in this
process, once with the super node, the server and the forger in their own OS processes."""

from __future__ import annotations

import pytest
import trio

from jsonproc import JsonProcess
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


async def test_forged_registrations_from_another_process_are_rejected(cluster) -> None:
    """Across OS processes (node_proc.py): a forger process gossips two forged records of
    ``echo`` (one naming the real server but signed with the forger's key, one naming the
    forger but signed with a stranger's key) while a server process announces the genuine one.
    The watcher (this process) and the server both reject the forgeries and count them; the
    watcher holds and lists only the genuine instance."""
    with trio.fail_after(60):  # a few seconds on an idle machine; process start-up dominates
        sup = await cluster.start("super")
        boot = sup.addrs[0]
        procs: dict[str, JsonProcess] = {}

        async def start(role: str) -> None:
            procs[role] = await cluster.start("peer", boot)

        async with trio.open_nursery() as nursery:  # both start at once
            nursery.start_soon(start, "server")
            nursery.start_soon(start, "forger")
        server, forger = procs["server"], procs["forger"]
        async with Node.open(NodeConfig.peer(bootstrap=(boot,))) as watcher:
            async with watcher.registry.watch("echo") as events:
                await watcher.connect(server.addrs[0])
                await watcher.connect(forger.addrs[0])
                assert (await server.call("serve", version="1.0.0"))["ok"]
                ev = await events.receive()  # the genuine registration, by gossip
                assert (ev.kind, str(ev.peer)) == ("created", server.peer_id)
                assert ev.registration.version == "1.0.0"
                assert watcher.stats().get("registry_rejected", 0) == 0

                answer = await forger.call("forge", name="echo", claim=server.peer_id,
                                           to=str(watcher.peer_id))
                assert answer["ok"] and answer["published"] == 2, answer
                # No event says "rejected": poll the counter, bounded by fail_after.
                while watcher.stats().get("registry_rejected", 0) < 2:
                    await trio.sleep(0.02)
                stats = watcher.stats()
                assert stats["registry_rejected"] == 2
                assert stats["gossip_rejected"] >= 2  # gossip scored the forger for both

                # Only the genuine instance: in known, get and list, and no event for a forgery.
                known = watcher.registry.known("echo")
                assert [(str(i.peer), i.version) for i in known] == [(server.peer_id, "1.0.0")]
                found = await watcher.registry.get("echo")
                assert [str(i.peer) for i in found] == [server.peer_id]
                assert [(s.name, s.version, s.instances) for s in watcher.registry.list()] == [
                    ("echo", "1.0.0", 1)
                ]
                with pytest.raises(trio.WouldBlock):
                    events.receive_nowait()

                # The server's own process got the forgeries too (it is on the topic): rejected.
                while (await server.call("stats"))["stats"].get("registry_rejected", 0) < 2:
                    await trio.sleep(0.05)
                served = await server.call("services_get", name="echo")
                assert served["instances"] == [server.peer_id]
