"""Our yamux (micronetwork.host.muxer) on real hosts over 127.0.0.1: against itself and
against py-libp2p's own yamux (the same wire format), with large transfers, many streams at
once, half-close, a stalled reader, and a connection that closes under open streams.

Every test runs under ``trio.fail_after`` and waits on events only."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
import trio
from libp2p.custom_types import TProtocol
from libp2p.peer.peerinfo import PeerInfo

from micronetwork.host import muxer
from micronetwork.host._noiseio import NoiseFrames
from micronetwork.host.build import build_host, quiet_libp2p_logging
from micronetwork.identity.keys import KeyPair

pytestmark = pytest.mark.integration

ECHO = TProtocol("/test/echo/1.0.0")
SINK = TProtocol("/test/sink/1.0.0")


async def echo(stream: Any) -> None:
    """Echo until the peer half-closes, then half-close."""
    try:
        while True:
            try:
                data = await stream.read(65536)
            except EOFError:
                break
            if not data:
                break
            await stream.write(data)
    finally:
        await stream.close()


@asynccontextmanager
async def hosts(dialer: str, listener: str, sink: Any = None) -> AsyncIterator[tuple[Any, Any]]:
    quiet_libp2p_logging()
    a, alisten = build_host(KeyPair.generate(), ("/ip4/127.0.0.1/tcp/0",), muxer=dialer)
    b, blisten = build_host(KeyPair.generate(), ("/ip4/127.0.0.1/tcp/0",), muxer=listener)
    async with a.run(listen_addrs=alisten), b.run(listen_addrs=blisten):
        for h in (a, b):
            h.set_stream_handler(ECHO, echo)
            if sink is not None:
                h.set_stream_handler(SINK, sink)
        await a.connect(PeerInfo(b.get_id(), list(b.get_addrs())))
        try:
            yield a, b
        finally:
            with trio.CancelScope(shield=True), trio.move_on_after(10):
                for h in (a, b):
                    await h.close()


async def round_trip(src: Any, dst: Any, payload: bytes) -> bytes:
    stream = await src.new_stream(dst.get_id(), [ECHO])
    got = bytearray()

    async def reader() -> None:
        while True:
            try:
                data = await stream.read(65536)
            except EOFError:
                return
            if not data:
                return
            got.extend(data)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(reader)
        view = memoryview(payload)
        for i in range(0, len(payload), 100_000):
            await stream.write(bytes(view[i:i + 100_000]))
        await stream.close_write()  # half-close: the echo still comes back
    return bytes(got)


@pytest.mark.parametrize(("dialer", "listener"), [
    ("micronetwork", "micronetwork"),
    ("micronetwork", "py-libp2p"),
    ("py-libp2p", "micronetwork"),
])
async def test_many_large_streams_both_ways(dialer: str, listener: str) -> None:
    payloads = [bytes([i]) * (700_000 + i * 4099) for i in range(6)]  # > 2 windows each
    with trio.fail_after(60):
        async with hosts(dialer, listener) as (a, b):
            results: dict[int, bytes] = {}

            async def one(i: int) -> None:
                src, dst = (a, b) if i % 2 == 0 else (b, a)  # streams open from both ends
                results[i] = await round_trip(src, dst, payloads[i])

            async with trio.open_nursery() as nursery:
                for i in range(len(payloads)):
                    nursery.start_soon(one, i)
            for i, p in enumerate(payloads):
                assert results[i] == p, f"stream {i}: {len(results[i])} of {len(p)} bytes"
            conn = a.get_network().get_connections(b.get_id())[0].muxed_conn
            if dialer == "micronetwork":
                assert isinstance(conn, muxer.YamuxConnection)
                # the Noise messages go straight to the socket (host/_noiseio.py)
                assert isinstance(getattr(conn._read, "__self__", None), NoiseFrames)
                assert conn.streams == {}  # every stream forgotten once closed both ways


async def test_a_stalled_reader_gets_its_stream_reset_and_the_rest_goes_on(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(muxer, "STALL_TIMEOUT", 0.5)
    outcome: list[str] = []
    done = trio.Event()

    async def sink(stream: Any) -> None:  # writes until the reader's window is shut
        try:
            while True:
                await stream.write(b"z" * 65536)
        except Exception as exc:
            outcome.append(type(exc).__name__)
        finally:
            done.set()

    with trio.fail_after(30):
        async with hosts("micronetwork", "micronetwork", sink) as (a, b):
            stalled = await a.new_stream(b.get_id(), [SINK])
            await stalled.write(b"go")  # ... and never reads
            await done.wait()
            assert outcome and "Reset" in outcome[0]
            # the connection still serves other streams
            assert await round_trip(a, b, b"still here") == b"still here"


async def test_closing_a_connection_ends_its_open_streams() -> None:
    with trio.fail_after(30):
        async with hosts("micronetwork", "micronetwork") as (a, b):
            stream = await a.new_stream(b.get_id(), [ECHO])
            await stream.write(b"ping")
            assert await stream.read(100) == b"ping"
            conn = a.get_network().get_connections(b.get_id())[0].muxed_conn
            await conn.close()
            assert conn.is_closed
            with pytest.raises(Exception):  # noqa: B017 - py-libp2p wraps it as StreamReset
                await stream.read(100)
            with pytest.raises(Exception):  # noqa: B017
                await stream.write(b"late")
