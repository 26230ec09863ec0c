"""The trio sides of ``rpc.py``: each an async context manager that sets up a client and an
echo server in this process on 127.0.0.1 and yields a :class:`Side`
(``await side.call(body: bytes) -> bytes``).

* ``ours``: two micronetwork Nodes (a super node A that calls, a peer B bootstrapped through A
  that serves ``bench.echo``, an ``@endpoint`` taking and returning ``bytes``);
  ``A.client.call("bench", "echo", body)``: registry lookup, instance choice, request schema
  check, the RPC transport (RPC 1.0.0: a new stream per call; 1.1.0: unary calls share
  pooled long-lived streams, frames carry the call id), the service server's dispatch,
  limits and response conversion.
* ``ours-transport``: our ``RpcTransport`` alone between two hosts built by our
  ``build_host`` (TCP, Noise, yamux): ``open_call(peer, "bench", "echo", kind="unary")`` +
  ``call.unary(body)``, the server's handler ``send(await receive()); finish()``. No
  registry, no service layer.
* ``raw-trio``: a trio TCP echo server and one connection, calls multiplexed by id with the
  varint + CBOR framing of ``_rpc_wire`` (the floor of this framing in Python).
* ``libp2p-stream-per-call``: py-libp2p 0.8 default hosts (``new_host()``: TCP, Noise,
  yamux), a new stream per call (multistream-select of ``/bench/echo/1.0.0`` on each),
  one varint + CBOR frame each way, then close.
* ``libp2p-one-stream``: the same hosts, one long-lived stream, calls multiplexed by id
  (``_rpc_wire.MuxClient`` / ``mux_serve`` over the libp2p stream).
* ``libp2p-request-response``: py-libp2p 0.8's ``libp2p.request_response.RequestResponse``
  (a new stream per request, varint-length message each way, its default config) with a
  CBOR codec (``{"body": bytes}``).

Every setup binds 127.0.0.1 only; teardown cancels the servers and closes the hosts.
Each yields a :class:`Side`: ``call`` and, for ours, ``stats()`` (the RPC counters, to spot
errors and broken streams in the JSON).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import partial
from typing import Any

import cbor2
import trio

from _rpc_wire import READ_SIZE, MuxClient, encode, mux_serve, read_one

Call = Callable[[bytes], Awaitable[bytes]]

SERVICE, ENDPOINT = "bench", "echo"
LIBP2P_ONE = "/bench/echo-one/1.0.0"
LIBP2P_MUX = "/bench/echo-mux/1.0.0"
LIBP2P_RR = "/bench/echo-rr/1.0.0"
CALL_TIMEOUT = 30.0  # per call, where the API takes one


@dataclass
class Side:
    call: Call
    stats: Callable[[], dict[str, Any]] | None = None


# -- ours -------------------------------------------------------------------------------------


def make_service() -> Any:
    from micronetwork.service import Service

    bench = Service(SERVICE, version="1.0.0")

    @bench.endpoint
    async def echo(body: bytes) -> bytes:
        return body

    return bench


@asynccontextmanager
async def open_ours() -> AsyncIterator[Side]:
    from micronetwork import Node, NodeConfig

    async with Node.open(NodeConfig.super_node()) as a, \
            Node.open(NodeConfig.peer(bootstrap=(a.addrs[0],))) as b:
        await b.serve(make_service())

        async def call(body: bytes) -> bytes:
            out = await a.client.call(SERVICE, ENDPOINT, body, timeout=CALL_TIMEOUT)
            return out  # type: ignore[no-any-return]

        def stats() -> dict[str, Any]:
            return {"caller": {k: v for k, v in a.stats().items() if k.startswith("rpc_")},
                    "server": {k: v for k, v in b.stats().items() if k.startswith("rpc_")},
                    "served": b.server.stats()}

        yield Side(call, stats)


@asynccontextmanager
async def open_ours_transport(muxer: str = "micronetwork") -> AsyncIterator[Side]:
    from libp2p.peer.peerinfo import PeerInfo

    from micronetwork.host.build import build_host, quiet_libp2p_logging
    from micronetwork.identity.keys import KeyPair
    from micronetwork.rpc import RpcTransport, ServerCall

    quiet_libp2p_logging()

    async def echo(call: ServerCall) -> None:
        await call.send(await call.receive())
        await call.finish()

    ckey, skey = KeyPair.generate(), KeyPair.generate()
    chost, clisten = build_host(ckey, ("/ip4/127.0.0.1/tcp/0",), muxer=muxer)
    shost, slisten = build_host(skey, ("/ip4/127.0.0.1/tcp/0",), muxer=muxer)
    async with chost.run(listen_addrs=clisten), shost.run(listen_addrs=slisten), \
            trio.open_nursery() as nursery:
        client = RpcTransport(chost)
        server = RpcTransport(shost, handler=echo)
        client.attach(nursery)
        server.attach(nursery)
        await chost.connect(PeerInfo(shost.get_id(), list(shost.get_addrs())))
        peer = skey.peer_id

        async def call(body: bytes) -> bytes:
            async with await client.open_call(peer, SERVICE, ENDPOINT, kind="unary",
                                              timeout=CALL_TIMEOUT) as c:
                return await c.unary(body)  # type: ignore[no-any-return]

        try:
            yield Side(call, lambda: {"client": client.stats(), "server": server.stats()})
        finally:
            nursery.cancel_scope.cancel()
            with trio.CancelScope(shield=True), trio.move_on_after(10.0):
                for h in (chost, shost):
                    await h.close()


# -- raw trio TCP ------------------------------------------------------------------------------


@asynccontextmanager
async def open_raw_trio() -> AsyncIterator[Side]:
    async def serve_conn(stream: trio.SocketStream) -> None:
        async def receive() -> bytes:
            try:
                return await stream.receive_some(READ_SIZE)
            except trio.BrokenResourceError:
                return b""

        async with stream:
            await mux_serve(stream.send_all, receive)

    stream: trio.SocketStream | None = None
    try:
        async with trio.open_nursery() as nursery:
            listeners = await nursery.start(
                partial(trio.serve_tcp, serve_conn, 0, host="127.0.0.1"))
            port = listeners[0].socket.getsockname()[1]
            stream = await trio.open_tcp_stream("127.0.0.1", port)
            client = MuxClient(stream.send_all, stream.receive_some)
            await nursery.start(client.run)
            try:
                yield Side(client.call)
            finally:
                nursery.cancel_scope.cancel()
    finally:
        if stream is not None:
            await stream.aclose()


# -- py-libp2p ---------------------------------------------------------------------------------


def _reader(stream: Any) -> Callable[[], Awaitable[bytes]]:
    async def receive() -> bytes:
        try:
            data: bytes = await stream.read(READ_SIZE)
        except Exception:  # py-libp2p: StreamEOF, StreamReset, ... all mean "the end"
            return b""
        return data

    return receive


@asynccontextmanager
async def _libp2p_pair() -> AsyncIterator[tuple[Any, Any]]:
    """Two py-libp2p default hosts (``_pylibp2p_baseline._Hosts``), A connected to B."""
    from libp2p.peer.peerinfo import PeerInfo

    from _pylibp2p_baseline import _Hosts

    async with _Hosts() as hosts:
        a = await hosts.host()
        b = await hosts.host()
        await a.connect(PeerInfo(b.get_id(), b.get_addrs()))
        yield a, b


@asynccontextmanager
async def open_libp2p_stream_per_call() -> AsyncIterator[Side]:
    from libp2p.custom_types import TProtocol

    async def handler(stream: Any) -> None:
        try:
            msg = await read_one(_reader(stream))
            await stream.write(encode(msg))
            await stream.close()
        except Exception:
            await stream.reset()

    async with _libp2p_pair() as (a, b):
        b.set_stream_handler(TProtocol(LIBP2P_ONE), handler)
        peer = b.get_id()

        async def call(body: bytes) -> bytes:
            stream = await a.new_stream(peer, [TProtocol(LIBP2P_ONE)])
            try:
                await stream.write(encode({"id": 1, "body": body}))
                msg = await read_one(_reader(stream))
            except BaseException:
                await stream.reset()
                raise
            await stream.close()
            return msg["body"]  # type: ignore[no-any-return]

        yield Side(call)


@asynccontextmanager
async def open_libp2p_one_stream() -> AsyncIterator[Side]:
    from libp2p.custom_types import TProtocol

    async def handler(stream: Any) -> None:
        try:
            await mux_serve(stream.write, _reader(stream))
        finally:
            await stream.reset()

    async with _libp2p_pair() as (a, b):
        b.set_stream_handler(TProtocol(LIBP2P_MUX), handler)
        stream = await a.new_stream(b.get_id(), [TProtocol(LIBP2P_MUX)])
        client = MuxClient(stream.write, _reader(stream))
        async with trio.open_nursery() as nursery:
            await nursery.start(client.run)
            try:
                yield Side(client.call)
            finally:
                await stream.reset()
                nursery.cancel_scope.cancel()


class CborCodec:
    """``RequestResponseCodec[bytes, bytes]``: the body inside a CBOR map, as the others."""

    def encode_request(self, request: bytes) -> bytes:
        return cbor2.dumps({"body": request})

    def decode_request(self, payload: bytes) -> bytes:
        return cbor2.loads(payload)["body"]  # type: ignore[no-any-return]

    encode_response = encode_request
    decode_response = decode_request


@asynccontextmanager
async def open_libp2p_request_response() -> AsyncIterator[Side]:
    from libp2p.custom_types import TProtocol
    from libp2p.request_response import RequestResponse, RequestResponseConfig

    async def echo(request: bytes, _ctx: Any) -> bytes:
        return request

    codec = CborCodec()
    config = RequestResponseConfig(timeout=CALL_TIMEOUT)
    async with _libp2p_pair() as (a, b):
        RequestResponse(b).set_handler(TProtocol(LIBP2P_RR), echo, codec)
        rr = RequestResponse(a)
        peer = b.get_id()
        protocols = [TProtocol(LIBP2P_RR)]

        async def call(body: bytes) -> bytes:
            return await rr.send_request(peer, protocols, body, codec, config)  # type: ignore

        yield Side(call)


SIDES: dict[str, Callable[[], Any]] = {
    "ours": open_ours,
    "ours-transport": open_ours_transport,
    # the same, over py-libp2p's own yamux: what our yamux (host/muxer.py) changes
    "ours-transport-pyyamux": lambda: open_ours_transport("py-libp2p"),
    "raw-trio": open_raw_trio,
    "libp2p-stream-per-call": open_libp2p_stream_per_call,
    "libp2p-one-stream": open_libp2p_one_stream,
    "libp2p-request-response": open_libp2p_request_response,
}
