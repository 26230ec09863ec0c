"""Stream reuse between two real py-libp2p hosts on 127.0.0.1: unary calls share pooled
streams; a broken stream is never reused; the pool follows idle timeouts and disconnects.

Every test runs under ``trio.fail_after``; waits are on events, never sleeps.
"""

from __future__ import annotations

from typing import Any

import pytest
import trio
from test_rpc_transport import LIMIT, echo, rpc_pair

from micronetwork.errors import CallCancelled, DeadlineExceeded, MessageTooLarge, RemoteError
from micronetwork.host.rpc.client_conn import ClientStream
from micronetwork.rpc import PoolConfig, RpcTransport, ServerCall

pytestmark = pytest.mark.integration


async def call_echo(client: RpcTransport, peer: Any, body: Any, timeout: float = 10) -> Any:
    async with await client.open_call(peer, "svc", "echo", kind="unary", timeout=timeout) as c:
        return (await c.unary(body))["echo"]


def pooled(client: RpcTransport, peer: Any) -> list[ClientStream]:
    return client._pool.streams(peer)


async def test_a_second_call_reuses_the_stream() -> None:
    with trio.fail_after(LIMIT):
        async with rpc_pair() as p:
            p.handlers["echo"] = echo
            assert await call_echo(p.client, p.server_peer, 1) == 1
            assert await call_echo(p.client, p.server_peer, 2) == 2
            stats = p.client.stats()
            assert stats["calls_opened"] == 2 and stats["streams_opened"] == 1
            assert stats["pooled_streams"] == 1 and stats["idle_streams"] == 1
            assert p.server.stats()["streams_served"] == 1
            assert p.server.stats()["calls_served"] == 2


async def test_concurrent_calls_share_streams_up_to_the_limits() -> None:
    results: dict[int, Any] = {}
    with trio.fail_after(LIMIT):
        async with rpc_pair(pool=PoolConfig(max_calls_per_stream=4, max_streams_per_peer=2)) as p:
            p.handlers["echo"] = echo

            async def one(i: int) -> None:
                results[i] = await call_echo(p.client, p.server_peer, i)

            async with trio.open_nursery() as nursery:
                for i in range(20):  # more than 2 streams x 4 calls: the rest wait for a slot
                    nursery.start_soon(one, i)
            assert results == {i: i for i in range(20)}
            assert p.client.stats()["streams_opened"] == 2
            assert p.server.stats().get("calls_refused", 0) == 0


async def test_a_calls_own_failure_leaves_the_shared_stream_to_the_next_call() -> None:
    """Error, cancellation and deadline end the call, not the stream: the next call on the
    same stream gets its own answer, never a late frame of the call before."""
    release, late_sent = trio.Event(), trio.Event()

    async def fails(call: ServerCall) -> None:
        await call.receive()
        raise RemoteError("not_found", "nope")

    async def late(call: ServerCall) -> None:
        request = await call.receive()
        with trio.CancelScope(shield=True):  # answers after the client gave up
            await release.wait()
            try:
                await call.send({"echo": f"late {request}"})
            finally:
                late_sent.set()

    with trio.fail_after(LIMIT):
        async with rpc_pair() as p:
            p.handlers.update(echo=echo, fails=fails, late=late)
            assert await call_echo(p.client, p.server_peer, 0) == 0
            async with await p.client.open_call(
                p.server_peer, "svc", "fails", kind="unary", timeout=10
            ) as call:
                with pytest.raises(RemoteError):
                    await call.unary(None)
            assert await call_echo(p.client, p.server_peer, 1) == 1
            async with await p.client.open_call(
                p.server_peer, "svc", "late", kind="unary", timeout=0.5
            ) as call:
                with pytest.raises(DeadlineExceeded):
                    await call.unary("a")
            async with await p.client.open_call(
                p.server_peer, "svc", "late", kind="unary", timeout=10
            ) as call:
                await call.send("b")
                await call.end()
                await call.cancel("changed my mind")
            release.set()
            await late_sent.wait()
            for i in range(2, 5):
                assert await call_echo(p.client, p.server_peer, i) == i
            stats = p.client.stats()
            assert stats["streams_opened"] == 1 and stats["cancels_sent"] == 2
            assert stats.get("streams_broken", 0) == 0


async def test_a_broken_stream_is_never_reused() -> None:
    async def crash(call: ServerCall) -> None:
        await call.receive()
        await call._conn.stream.reset()  # the server kills the shared stream mid-call
        await trio.sleep_forever()

    with trio.fail_after(LIMIT):
        async with rpc_pair() as p:
            p.handlers.update(echo=echo, crash=crash)
            assert await call_echo(p.client, p.server_peer, 1) == 1
            (first,) = pooled(p.client, p.server_peer)
            with pytest.raises(CallCancelled):
                async with await p.client.open_call(
                    p.server_peer, "svc", "crash", kind="unary", timeout=10
                ) as call:
                    await call.unary(None)
            await first.done.wait()
            assert first.broken is not None and first not in pooled(p.client, p.server_peer)
            assert await call_echo(p.client, p.server_peer, 2) == 2
            assert p.client.stats()["streams_opened"] == 2


async def test_an_oversized_answer_fails_its_call_only() -> None:
    async def big(call: ServerCall) -> None:
        await call.receive()
        await call.send(b"x" * 4000)
        await call.finish()

    with trio.fail_after(LIMIT):
        async with rpc_pair(client_max=2048) as p:
            p.handlers.update(echo=echo, big=big)
            assert await call_echo(p.client, p.server_peer, 1) == 1
            async with await p.client.open_call(
                p.server_peer, "svc", "big", kind="unary", timeout=10
            ) as call:
                with pytest.raises(MessageTooLarge):
                    await call.unary(None)
            assert await call_echo(p.client, p.server_peer, 2) == 2
            assert p.client.stats()["streams_opened"] == 1


async def test_a_server_reset_of_an_idle_pooled_stream_is_transparent() -> None:
    server_streams: list[Any] = []

    async def echo_and_note(call: ServerCall) -> None:
        server_streams.append(call._conn.stream)
        await echo(call)

    with trio.fail_after(LIMIT):
        async with rpc_pair() as p:
            p.handlers["echo"] = echo_and_note
            assert await call_echo(p.client, p.server_peer, 1) == 1
            (first,) = pooled(p.client, p.server_peer)
            await server_streams[0].reset()  # e.g. the server restarted its side
            await first.done.wait()  # the client has seen the reset: the stream left the pool
            assert first not in pooled(p.client, p.server_peer)
            assert await call_echo(p.client, p.server_peer, 2) == 2  # no error reaches us
            assert p.client.stats()["streams_opened"] == 2


async def test_server_idle_timeout_resets_and_the_client_opens_a_fresh_stream() -> None:
    with trio.fail_after(LIMIT):
        async with rpc_pair(server_pool=PoolConfig(server_idle_timeout=0.2)) as p:
            p.handlers["echo"] = echo
            assert await call_echo(p.client, p.server_peer, 1) == 1
            (first,) = pooled(p.client, p.server_peer)
            await first.done.wait()
            assert p.server.stats()["streams_closed_idle"] == 1
            assert await call_echo(p.client, p.server_peer, 2) == 2
            assert p.client.stats()["streams_opened"] == 2


async def test_client_idle_timeout_closes_the_stream_cleanly() -> None:
    with trio.fail_after(LIMIT):
        async with rpc_pair(pool=PoolConfig(idle_timeout=0.2)) as p:
            p.handlers["echo"] = echo
            assert await call_echo(p.client, p.server_peer, 1) == 1
            (first,) = pooled(p.client, p.server_peer)
            await first.done.wait()
            assert first.broken is None  # FIN both ways, no reset
            assert p.client.stats()["streams_closed_idle"] == 1
            assert p.client.stats()["pooled_streams"] == 0
            assert await call_echo(p.client, p.server_peer, 2) == 2


async def test_extra_idle_streams_are_closed() -> None:
    gate = trio.Event()
    arrived = 0
    all_in = trio.Event()

    async def held(call: ServerCall) -> None:
        nonlocal arrived
        request = await call.receive()
        arrived += 1
        if arrived == 4:
            all_in.set()
        await gate.wait()
        await call.send({"echo": request})

    with trio.fail_after(LIMIT):
        pool = PoolConfig(max_calls_per_stream=2, max_idle_streams_per_peer=1)
        async with rpc_pair(pool=pool) as p:
            p.handlers["echo"] = held
            async with trio.open_nursery() as nursery:
                for i in range(4):
                    nursery.start_soon(call_echo, p.client, p.server_peer, i)
                await all_in.wait()
                assert len(pooled(p.client, p.server_peer)) == 2
                gate.set()
            assert len(pooled(p.client, p.server_peer)) == 1  # one idle stream is kept


async def test_the_pool_is_dropped_when_the_peer_disconnects() -> None:
    with trio.fail_after(LIMIT):
        async with rpc_pair() as p:
            p.handlers["echo"] = echo
            assert await call_echo(p.client, p.server_peer, 1) == 1
            (first,) = pooled(p.client, p.server_peer)
            await p.server_host.get_network().close_peer(p.client_host.get_id())
            await first.done.wait()
            assert pooled(p.client, p.server_peer) == []
            assert p.client.stats()["pooled_streams"] == 0
            assert await call_echo(p.client, p.server_peer, 2) == 2  # redialled, new stream
            assert p.client.stats()["streams_opened"] == 2
