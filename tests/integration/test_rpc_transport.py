"""RPC calls between two real py-libp2p hosts on 127.0.0.1 (TCP, Noise, yamux).

Every test runs under ``trio.fail_after``; waits are on events, never sleeps.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
import trio
from libp2p.peer.id import ID
from libp2p.peer.peerinfo import PeerInfo

from micronetwork.errors import (
    CallCancelled,
    DeadlineExceeded,
    MessageTooLarge,
    NetworkError,
    RemoteError,
)
from micronetwork.host.build import build_host, quiet_libp2p_logging
from micronetwork.identity.keys import KeyPair
from micronetwork.identity.peerid import PeerId
from micronetwork.rpc import PoolConfig, RpcTransport, ServerCall

pytestmark = pytest.mark.integration

LIMIT = 30  # seconds per test

Handler = Callable[[ServerCall], Awaitable[None]]


@dataclass
class Pair:
    client: RpcTransport
    server: RpcTransport
    client_host: Any
    server_host: Any
    server_peer: PeerId
    handlers: dict[str, Handler] = field(default_factory=dict)

    def connections(self) -> int:
        return len(self.client_host.get_network().get_connections(ID(bytes(self.server_peer))))


@asynccontextmanager
async def rpc_pair(
    *,
    client_max: int = 4 * 1024 * 1024,
    server_max: int = 4 * 1024 * 1024,
    pool: PoolConfig | None = None,
    server_pool: PoolConfig | None = None,
) -> AsyncIterator[Pair]:
    """Two hosts, connected; the server dispatches on the endpoint name to ``handlers``."""
    quiet_libp2p_logging()
    handlers: dict[str, Handler] = {}

    async def dispatch(call: ServerCall) -> None:
        await handlers[call.endpoint](call)

    ckey, skey = KeyPair.generate(), KeyPair.generate()
    chost, clisten = build_host(ckey, ("/ip4/127.0.0.1/tcp/0",))
    shost, slisten = build_host(skey, ("/ip4/127.0.0.1/tcp/0",))
    async with (
        chost.run(listen_addrs=clisten),
        shost.run(listen_addrs=slisten),
        trio.open_nursery() as nursery,
    ):
        client = RpcTransport(chost, max_message_size=client_max, pool=pool)
        server = RpcTransport(shost, max_message_size=server_max, handler=dispatch,
                              pool=server_pool)
        client.attach(nursery)
        server.attach(nursery)
        await chost.connect(PeerInfo(shost.get_id(), list(shost.get_addrs())))
        pair = Pair(client, server, chost, shost, skey.peer_id, handlers)
        try:
            yield pair
        finally:
            nursery.cancel_scope.cancel()


# -- handlers -------------------------------------------------------------------------------------


async def echo(call: ServerCall) -> None:
    body = await call.receive()
    await call.send({"echo": body, "headers": call.headers})
    await call.finish()


async def count_up(call: ServerCall) -> None:
    request = await call.receive()
    for i in range(request["n"]):
        await call.send(i)
    await call.finish()


async def total(call: ServerCall) -> None:
    s = 0
    async for x in call:
        s += x
    await call.send(s)
    await call.finish()


async def doubler(call: ServerCall) -> None:
    async for x in call:
        await call.send(2 * x)
    await call.finish()


# -- the four kinds -------------------------------------------------------------------------------


async def test_unary() -> None:
    with trio.fail_after(LIMIT):
        async with rpc_pair() as p:
            p.handlers["echo"] = echo
            async with await p.client.open_call(
                p.server_peer, "svc", "echo", kind="unary", headers={"trace": "t1"}, timeout=10
            ) as call:
                answer = await call.unary({"hello": [1, 2.5, b"x", None, True]})
            assert answer == {"echo": {"hello": [1, 2.5, b"x", None, True]},
                              "headers": {"trace": "t1"}}
            assert call.status is not None and call.status.ok


async def test_server_stream_ends_cleanly() -> None:
    with trio.fail_after(LIMIT):
        async with rpc_pair() as p:
            p.handlers["count"] = count_up
            async with await p.client.open_call(
                p.server_peer, "svc", "count", kind="server_stream"
            ) as call:
                await call.send({"n": 5})
                await call.end()
                got = [x async for x in call]  # go-micro #476: the loop must end
            assert got == [0, 1, 2, 3, 4]


async def test_client_stream() -> None:
    with trio.fail_after(LIMIT):
        async with rpc_pair() as p:
            p.handlers["total"] = total
            async with await p.client.open_call(
                p.server_peer, "svc", "total", kind="client_stream"
            ) as call:
                for i in range(10):
                    await call.send(i)
                await call.end()
                assert await call.receive() == 45
                with pytest.raises(trio.EndOfChannel):
                    await call.receive()


async def test_bidi_interleaved() -> None:
    with trio.fail_after(LIMIT):
        async with rpc_pair() as p:
            p.handlers["double"] = doubler
            async with await p.client.open_call(
                p.server_peer, "svc", "double", kind="bidi"
            ) as call:
                for i in range(5):  # one in, one out: the server answers before our End
                    await call.send(i)
                    assert await call.receive() == 2 * i
                await call.end()
                assert [x async for x in call] == []


async def test_large_messages_flow_through_the_yamux_window() -> None:
    chunk = bytes(range(256)) * 256  # 64 KiB

    async def blob_stream(call: ServerCall) -> None:
        n = await call.receive()
        for i in range(n):
            await call.send([i, chunk])
        await call.finish()

    with trio.fail_after(LIMIT):
        async with rpc_pair() as p:
            p.handlers["echo"] = echo
            p.handlers["blobs"] = blob_stream
            big = b"\x07" * (3 * 1024 * 1024)
            async with await p.client.open_call(
                p.server_peer, "svc", "echo", kind="unary", timeout=20
            ) as call:
                assert (await call.unary(big))["echo"] == big
            async with await p.client.open_call(
                p.server_peer, "svc", "blobs", kind="server_stream", timeout=20
            ) as call:
                await call.send(40)  # 2.5 MiB, ten times the initial window
                await call.end()
                received = 0
                async for i, data in call:
                    assert i == received and data == chunk
                    received += 1
                assert received == 40


# -- errors ---------------------------------------------------------------------------------------


async def test_remote_errors_carry_code_message_details() -> None:
    async def typed(call: ServerCall) -> None:
        await call.receive()
        raise RemoteError("not_found", "no such user", {"user": 7})

    async def crashes(call: ServerCall) -> None:
        await call.receive()
        raise ValueError("boom")

    async def refuses(call: ServerCall) -> None:
        await call.fail("overloaded", "busy")

    async def silent(call: ServerCall) -> None:
        await call.receive()  # returns without an answer: a unary call needs one

    with trio.fail_after(LIMIT):
        async with rpc_pair() as p:
            p.handlers.update(typed=typed, crashes=crashes, refuses=refuses, silent=silent)
            expected = {
                "typed": ("not_found", "no such user", {"user": 7}),
                "crashes": ("internal", "boom", None),
                "refuses": ("overloaded", "busy", None),
            }
            for endpoint, (code, message, details) in expected.items():
                async with await p.client.open_call(
                    p.server_peer, "svc", endpoint, kind="unary", timeout=10
                ) as call:
                    with pytest.raises(RemoteError) as info:
                        await call.unary(None)
                assert (info.value.code, info.value.message, info.value.details) == (
                    code, message, details,
                )
            async with await p.client.open_call(
                p.server_peer, "svc", "silent", kind="unary", timeout=10
            ) as call:
                with pytest.raises(RemoteError) as info:
                    await call.unary(None)
            assert info.value.code == "internal"
            assert p.server.stats()["errors_sent"] == 4


async def test_server_failing_early_stops_a_client_stream() -> None:
    async def picky(call: ServerCall) -> None:
        await call.receive()
        raise RemoteError("bad_request", "one is enough")

    with trio.fail_after(LIMIT):
        async with rpc_pair() as p:
            p.handlers["picky"] = picky
            async with await p.client.open_call(
                p.server_peer, "svc", "picky", kind="client_stream", timeout=20
            ) as call:
                with pytest.raises(RemoteError, match="one is enough"):
                    for _ in range(200):  # 2 MiB: more than the window, the server stops reading
                        await call.send(b"z" * 10_000)
                    await call.end()
                    await call.receive()


async def test_deadline_exceeded_cancels_the_handler() -> None:
    started, finished = trio.Event(), trio.Event()
    seen: list[Any] = []

    async def slow(call: ServerCall) -> None:
        await call.receive()
        seen.append(call.deadline)
        started.set()
        try:
            await trio.sleep_forever()
        finally:
            finished.set()

    with trio.fail_after(LIMIT):
        async with rpc_pair() as p:
            p.handlers["slow"] = slow
            t0 = trio.current_time()
            async with await p.client.open_call(
                p.server_peer, "svc", "slow", kind="unary", timeout=0.5
            ) as call:
                with pytest.raises(DeadlineExceeded):
                    await call.unary("x")
            assert trio.current_time() - t0 < 5
            await finished.wait()  # the server's handler was cancelled, its finally ran
            assert started.is_set() and seen[0] is not None


async def test_server_enforces_the_deadline_and_says_so() -> None:
    finished = trio.Event()

    async def slow(call: ServerCall) -> None:
        await call.receive()
        try:
            await trio.sleep_forever()
        finally:
            finished.set()

    with trio.fail_after(LIMIT):
        async with rpc_pair() as p:
            p.handlers["slow"] = slow
            p.handlers["echo"] = echo
            async with await p.client.open_call(  # opens the shared stream (not timed)
                p.server_peer, "svc", "echo", kind="unary", timeout=10
            ) as call:
                await call.unary(None)
            async with await p.client.open_call(
                p.server_peer, "svc", "slow", kind="unary", timeout=0.3
            ) as call:
                call._state.deadline = trio.current_time() + 20  # the client does not enforce
                with pytest.raises(DeadlineExceeded, match="at the server"):
                    await call.unary("x")
            await finished.wait()
            assert p.server.stats()["deadline_exceeded"] == 1


@pytest.mark.parametrize("how", ["async_with_exit", "cancel", "task_cancelled"])
async def test_client_cancel_mid_stream_runs_the_handlers_finally(how: str) -> None:
    finished = trio.Event()
    outcome: list[str] = []

    async def forever(call: ServerCall) -> None:
        await call.receive()
        i = 0
        try:
            while True:
                await call.send(i)
                i += 1
        except BaseException as exc:
            outcome.append(type(exc).__name__)
            raise
        finally:
            finished.set()

    with trio.fail_after(LIMIT):
        async with rpc_pair() as p:
            p.handlers["forever"] = forever
            async with await p.client.open_call(
                p.server_peer, "svc", "forever", kind="server_stream"
            ) as call:
                await call.send(None)
                await call.end()
                if how == "async_with_exit":
                    async for x in call:
                        if x == 3:
                            break
                elif how == "cancel":
                    assert await call.receive() == 0
                    await call.cancel("enough")
                    with pytest.raises(CallCancelled):
                        await call.receive()
                else:
                    with trio.CancelScope() as scope:
                        async for x in call:
                            if x == 3:
                                scope.cancel()
                    assert scope.cancelled_caught
            await finished.wait()
            assert outcome and outcome[0] in ("Cancelled", "CallCancelled")
            assert p.client.stats().get("cancels_sent", 0) == 1


async def test_server_reset_mid_stream_gives_call_cancelled() -> None:
    async def crash(call: ServerCall) -> None:
        await call.receive()
        await call.send(0)
        await call.send(1)
        await call._conn.stream.reset()  # the server side dies mid-stream
        await trio.sleep_forever()

    with trio.fail_after(LIMIT):
        async with rpc_pair() as p:
            p.handlers["crash"] = crash
            got = []
            async with await p.client.open_call(
                p.server_peer, "svc", "crash", kind="server_stream"
            ) as call:
                await call.send(None)
                await call.end()
                with pytest.raises(CallCancelled):
                    async for x in call:
                        got.append(x)
            assert got in ([], [0], [0, 1])  # a reset may overtake buffered data


async def test_connection_dropped_mid_call_no_hang_either_side() -> None:
    sent, finished = trio.Event(), trio.Event()

    async def hold(call: ServerCall) -> None:
        await call.receive()
        await call.send("first")
        sent.set()
        try:
            await trio.sleep_forever()
        finally:
            finished.set()

    with trio.fail_after(LIMIT):
        async with rpc_pair() as p:
            p.handlers["hold"] = hold
            async with await p.client.open_call(
                p.server_peer, "svc", "hold", kind="server_stream"
            ) as call:
                await call.send(None)
                await call.end()
                assert await call.receive() == "first"
                await sent.wait()
                client_id = p.client_host.get_id()
                await p.server_host.get_network().close_peer(client_id)
                with pytest.raises(CallCancelled):
                    await call.receive()
            await finished.wait()


async def test_message_too_large_both_directions() -> None:
    big = b"x" * 4000

    async def sends_big(call: ServerCall) -> None:
        await call.receive()
        await call.send(big)
        await call.finish()

    with trio.fail_after(LIMIT):
        # our own limit: refused before anything is written
        async with rpc_pair(client_max=2048) as p:
            p.handlers["echo"] = echo
            p.handlers["sends_big"] = sends_big
            async with await p.client.open_call(
                p.server_peer, "svc", "echo", kind="unary", timeout=10
            ) as call:
                sent_before = p.client.stats().get("bytes_sent", 0)
                with pytest.raises(MessageTooLarge):
                    await call.send(big)
                assert p.client.stats().get("bytes_sent", 0) == sent_before
                assert await call.unary("small") == {"echo": "small", "headers": {}}
            # the server's answer is over our limit: we refuse it and cancel
            async with await p.client.open_call(
                p.server_peer, "svc", "sends_big", kind="unary", timeout=10
            ) as call:
                with pytest.raises(MessageTooLarge):
                    await call.unary(None)
            assert p.client.stats()["too_large_received"] == 1

        async with rpc_pair(server_max=2048) as p:
            p.handlers["echo"] = echo
            p.handlers["sends_big"] = sends_big
            # over the server's limit: it answers "message_too_large" and resets
            async with await p.client.open_call(
                p.server_peer, "svc", "echo", kind="unary", timeout=10
            ) as call:
                with pytest.raises(MessageTooLarge):
                    await call.unary(big)
            assert p.server.stats()["too_large_received"] == 1
            # the handler's answer is over its own limit: refused at the server
            async with await p.client.open_call(
                p.server_peer, "svc", "sends_big", kind="unary", timeout=10
            ) as call:
                with pytest.raises(MessageTooLarge):
                    await call.unary(None)


async def test_client_only_transport_serves_nothing() -> None:
    with trio.fail_after(LIMIT):
        async with rpc_pair() as p:
            client_peer = PeerId(p.client_host.get_id().to_bytes())
            with pytest.raises(NetworkError):
                await p.server.open_call(client_peer, "svc", "echo", kind="unary", timeout=5)


async def test_garbage_open_is_answered_with_protocol_error() -> None:
    from micronetwork.rpc import FrameReader, Status

    with trio.fail_after(LIMIT):
        async with rpc_pair() as p:
            stream = await p.client_host.new_stream(ID(bytes(p.server_peer)), [p.server.protocol])
            await stream.write(b"\x03\xff\xff\xff")
            reader = FrameReader()
            frame = None
            while frame is None:
                chunk = await stream.read(1024)
                assert chunk
                reader.feed(chunk)
                frame = reader.next_frame()
            assert isinstance(frame, Status) and frame.code == "protocol_error"
            assert p.server.stats()["protocol_errors"] == 1


# -- many calls, one connection -------------------------------------------------------------------


async def test_sequential_and_concurrent_calls_share_one_connection() -> None:
    with trio.fail_after(60):
        async with rpc_pair() as p:
            p.handlers["echo"] = echo
            for i in range(100):
                async with await p.client.open_call(
                    p.server_peer, "svc", "echo", kind="unary", timeout=10
                ) as call:
                    assert (await call.unary(i))["echo"] == i
            results: dict[int, Any] = {}

            async def one(i: int) -> None:
                async with await p.client.open_call(
                    p.server_peer, "svc", "echo", kind="unary", timeout=20
                ) as call:
                    results[i] = (await call.unary(i))["echo"]

            async with trio.open_nursery() as nursery:
                for i in range(50):
                    nursery.start_soon(one, i)
            assert results == {i: i for i in range(50)}
            assert p.connections() == 1
            stats = p.server.stats()
            assert stats["calls_served"] == 150 and stats["in_flight"] == 0
            assert p.client.stats()["calls_opened"] == 150
            assert p.client.stats()["streams_opened"] == 1  # every call on one shared stream
