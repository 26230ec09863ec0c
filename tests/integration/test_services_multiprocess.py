"""Services across OS processes: serve, call, fail over, and the dead leave the registry.

One super node and two servers of ``echo`` run as separate processes (node_proc.py); the
client is a Node in this process, so the test sees its registry events as they happen. The
registry runs with ttl 4 s and re-announcement every 2 s, so "gone within ttl + one
announcement interval" is checked in seconds rather than the default 30.
"""

from __future__ import annotations

import pytest
import trio

from micronetwork import Node, NodeConfig
from micronetwork.registry import RegistryConfig

pytestmark = pytest.mark.integration

TTL, ANNOUNCE = 4.0, 2.0
ENV = {"MN_TEST_TTL": str(TTL), "MN_TEST_ANNOUNCE": str(ANNOUNCE)}


async def test_kill_9_leaves_registry_within_ttl_and_calls_fail_over(cluster) -> None:
    with trio.fail_after(90):
        sup = await cluster.start("super", env_extra=ENV)
        boot = sup.addrs[0]
        s1 = await cluster.start("peer", boot, env_extra=ENV)
        s2 = await cluster.start("peer", boot, env_extra=ENV)
        for s in (s1, s2):
            assert (await s.call("serve", version="1.4.0"))["ok"]

        config = NodeConfig.peer(
            bootstrap=(boot,), registry=RegistryConfig(ttl=TTL, announce_interval=ANNOUNCE)
        )
        async with Node.open(config) as client:
            found = await client.registry.get("echo", "^1.2")
            assert {str(i.peer) for i in found} <= {s1.peer_id, s2.peer_id}
            (ep,) = found[0].endpoints
            assert ep["name"] == "echo" and ep["request"] == {"type": "string"}
            async with client.registry.watch("echo") as events:
                seen: set[str] = set()
                while seen != {s1.peer_id, s2.peer_id}:
                    ev = await events.receive()
                    assert ev.kind in ("created", "updated")
                    seen.add(str(ev.peer))
                answers = {
                    (await client.client.call("echo", "echo", f"hi {i}",
                                              selector="round_robin"))["by"]
                    for i in range(4)
                }
                assert answers == {s1.peer_id, s2.peer_id}

                # kill -9: no withdrawal; the instance must expire within ttl + interval.
                s1.kill()
                killed_at = trio.current_time()
                await s1.proc.wait()
                # s1 is still registered: calls fail over to s2 (round robin hits s1 too).
                assert any(str(i.peer) == s1.peer_id for i in client.registry.known("echo"))
                for i in range(4):
                    answer = await client.client.call("echo", "echo", f"during {i}",
                                                      selector="round_robin")
                    assert answer == {"text": f"during {i}", "by": s2.peer_id}
                while True:
                    ev = await events.receive()
                    if ev.kind == "deleted" and str(ev.peer) == s1.peer_id:
                        break
                gone_after = trio.current_time() - killed_at
                assert ev.reason == "expired"
                assert gone_after <= TTL + ANNOUNCE + 1.0, gone_after
                for i in range(3):
                    answer = await client.client.call("echo", "echo", f"after {i}")
                    assert answer == {"text": f"after {i}", "by": s2.peer_id}

                # A graceful stop withdraws at once (well before the ttl).
                stopped_at = trio.current_time()
                await s2.proc.stdin.send_all(b'{"cmd": "exit"}\n')
                ev = await events.receive()
                assert (ev.kind, str(ev.peer), ev.reason) == ("deleted", s2.peer_id, "withdrawn")
                assert trio.current_time() - stopped_at < ANNOUNCE
            assert client.registry.known("echo") == []
