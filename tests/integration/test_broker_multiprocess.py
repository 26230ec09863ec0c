"""The broker across OS processes: catch-up after being away, retention that survives kill -9,
queue groups.

The super node (the retention node) and the publisher run as separate processes
(node_proc.py); subscribers are Nodes in this process, so the test sees exactly what reaches
the application.
"""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
import trio

from micronetwork import Node, NodeConfig
from micronetwork.broker import Cursor, Event

pytestmark = pytest.mark.integration


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def take(sub, n: int) -> list[bytes]:  # type: ignore[no-untyped-def]
    out: list[bytes] = []
    async for item in sub:
        assert isinstance(item, Event), item  # nothing missed, no lag notices
        out.append(item.payload)
        if len(out) == n:
            break
    return out


async def publish(proc, topic: str, first: int, last: int) -> None:  # type: ignore[no-untyped-def]
    for i in range(first, last + 1):
        answer = await proc.call("publish", topic=topic, data=f"e{i}", retained=True)
        assert answer["ok"], answer


async def test_away_subscriber_catches_up_exactly_once_and_retention_survives_kill_9(
    cluster, tmp_path: Path
) -> None:
    env = {"MN_TEST_DATA_DIR": str(tmp_path / "super"), "MN_TEST_KEY_SEED": "42" * 32,
           "MN_TEST_LISTEN": f"/ip4/127.0.0.1/tcp/{free_port()}"}
    with trio.fail_after(120):
        sup = await cluster.start("super", env_extra=env)
        boot = sup.addrs[0]
        pub = await cluster.start("peer", boot)
        config = NodeConfig.peer(bootstrap=(boot,))

        await publish(pub, "orders", 1, 5)
        async with Node.open(config) as sub_node:
            async with sub_node.broker.subscribe("orders", since=0) as sub:
                assert await take(sub, 5) == [b"e1", b"e2", b"e3", b"e4", b"e5"]
                cursor = sub.cursor()
        # The subscriber is away (its node is closed) while five more are published.
        await publish(pub, "orders", 6, 10)
        token = Cursor.from_bytes(cursor.to_bytes())  # what an application would store
        async with Node.open(config) as sub_node:
            async with sub_node.broker.subscribe("orders", since=token) as sub:
                assert await take(sub, 5) == [b"e6", b"e7", b"e8", b"e9", b"e10"]
                await sub.caught_up.wait()
                await publish(pub, "orders", 11, 11)  # then live, still exactly once
                assert await take(sub, 1) == [b"e11"]

        # kill -9 the retention node, start it again on the same key, address and directory.
        sup.kill()
        await sup.proc.wait()
        sup2 = await cluster.start("super", env_extra=env)
        assert sup2.addrs[0] == boot
        async with Node.open(config) as sub_node:
            async with sub_node.broker.subscribe("orders", since=0) as sub:
                got = await take(sub, 11)
        assert got == [f"e{i}".encode() for i in range(1, 12)]


async def test_queue_group_splits_the_events(cluster) -> None:
    with trio.fail_after(90):
        sup = await cluster.start("super")
        boot = sup.addrs[0]
        pub = await cluster.start("peer", boot)
        config = NodeConfig.peer(bootstrap=(boot,))
        async with Node.open(config) as a, Node.open(config) as b:
            async with a.broker.subscribe("jobs", group="workers") as sa, \
                    b.broker.subscribe("jobs", group="workers") as sb:
                # Both members know each other before work arrives (membership has no event
                # to wait on: poll, bounded by fail_after).
                while any(len(n._core.broker.groups.members("jobs", "workers")) < 2
                          for n in (a, b)):
                    await trio.sleep(0.05)
                got: dict[str, list[bytes]] = {"a": [], "b": []}
                all_in = trio.Event()

                async def collect(name: str, sub) -> None:  # type: ignore[no-untyped-def]
                    async for item in sub:
                        assert isinstance(item, Event)
                        got[name].append(item.payload)
                        if len(got["a"]) + len(got["b"]) >= 20:
                            all_in.set()

                async with trio.open_nursery() as nursery:
                    nursery.start_soon(collect, "a", sa)
                    nursery.start_soon(collect, "b", sb)
                    await publish(pub, "jobs", 1, 20)
                    await all_in.wait()
                    nursery.cancel_scope.cancel()
        everything = sorted(got["a"] + got["b"])
        assert everything == sorted(f"e{i}".encode() for i in range(1, 21))  # once each
        assert got["a"] and got["b"], got  # and both members worked
