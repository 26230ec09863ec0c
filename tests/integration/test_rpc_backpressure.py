"""A client that stops reading in the middle of a server stream (issue 5): the server is held
back on that call's stream alone, everyone else keeps being served, and both ends of the
stalled call end with typed errors.

Real hosts on 127.0.0.1, every test under ``trio.fail_after``, waits on events only.
"""

from __future__ import annotations

import pytest
import trio
from test_rpc_transport import echo, rpc_pair

from micronetwork.errors import CallCancelled
from micronetwork.rpc import ServerCall

pytestmark = pytest.mark.integration

CHUNK = b"\x5a" * (64 * 1024)
MAX_YAMUX_WINDOW = 1 << 20  # a stream's yamux window (micronetwork.host.muxer)


async def test_a_client_that_stops_reading_holds_back_only_its_own_call() -> None:
    pushed = 0
    enough = trio.Event()  # the firehose is well under way
    ended = trio.Event()
    outcome: list[str] = []

    async def firehose(call: ServerCall) -> None:
        nonlocal pushed
        await call.receive()
        try:
            while True:
                await call.send(CHUNK)
                pushed += 1
                if pushed == 3:  # under one yamux window: always reached
                    enough.set()
        except BaseException as exc:
            outcome.append(type(exc).__name__)
            raise
        finally:
            ended.set()

    async def count(call: ServerCall) -> None:
        n = await call.receive()
        for i in range(n):
            await call.send(i)
        await call.finish()

    with trio.fail_after(60):
        async with rpc_pair() as p:
            p.handlers.update(firehose=firehose, echo=echo, count=count)
            async with await p.client.open_call(
                p.server_peer, "svc", "firehose", kind="server_stream"
            ) as stalled:
                await stalled.send(None)
                await stalled.end()
                assert await stalled.receive() == CHUNK
                # ... and the caller stops reading here.
                await enough.wait()

                # Everyone else is served meanwhile: unary calls on the shared stream, a
                # server stream on a stream of its own, and a second client.
                for i in range(20):
                    async with await p.client.open_call(
                        p.server_peer, "svc", "echo", kind="unary", timeout=10
                    ) as call:
                        assert (await call.unary(i))["echo"] == i
                async with await p.client.open_call(
                    p.server_peer, "svc", "count", kind="server_stream", timeout=10
                ) as call:
                    await call.send(50)
                    await call.end()
                    assert [x async for x in call] == list(range(50))

                # The firehose is held back once the stream's yamux window is used up
                # (1 MiB), and a write blocked on a closed window for STALL_TIMEOUT
                # (10 s) resets the stream: the handler is stopped - CallCancelled from its
                # blocked send if the writer sees the reset first, trio.Cancelled if the
                # stream's reader does (it cancels the handler's scope) - and the stalled
                # caller gets a typed error when it reads on.
                await ended.wait()
                assert outcome in (["CallCancelled"], ["Cancelled"])
                assert p.server.stats()["calls_cancelled_by_client"] >= 1
                assert pushed * len(CHUNK) <= MAX_YAMUX_WINDOW + (1 << 20)  # window + queues
                with pytest.raises(CallCancelled):
                    async for _chunk in stalled:
                        pass

            assert p.server.stats()["streams_broken"] >= 1
            async with await p.client.open_call(
                p.server_peer, "svc", "echo", kind="unary", timeout=10
            ) as call:
                assert (await call.unary("after"))["echo"] == "after"
