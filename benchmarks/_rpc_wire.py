"""The framing every baseline of ``rpc.py`` shares: unsigned-varint length prefix + CBOR.

A frame is ``varint(len(payload)) + payload`` with ``payload = cbor2.dumps({"id": n, "body":
bytes})``: the framing of ``/micronetwork/rpc/1.0.0`` (varint-prefixed CBOR), without its
Open/Data/End/Status frames. Calls are multiplexed by ``id`` on one byte stream by
:class:`MuxClient` (one reader task hands each response to the caller waiting for its id) and
:func:`mux_serve` (one task per request, like a real RPC server, writes under a lock). Both
work on any byte stream given as two coroutines, ``send(data)`` and ``receive() -> bytes``
(``b""`` at the end): a trio TCP stream or a py-libp2p stream.
"""

from __future__ import annotations

import itertools
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import cbor2
import trio

from micronetwork.framing import encode_varint

MAX_FRAME = 4 * 1024 * 1024  # as our RPC's default max_message_size
READ_SIZE = 64 * 1024  # as our RPC's read size

Send = Callable[[bytes], Awaitable[None]]
Receive = Callable[[], Awaitable[bytes]]


def encode(msg: Any) -> bytes:
    """One frame: varint length prefix + CBOR of ``msg``."""
    payload = cbor2.dumps(msg)
    return encode_varint(len(payload)) + payload


class Decoder:
    """Split received bytes into frame payloads (sans-IO)."""

    __slots__ = ("_buf",)

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes) -> Iterator[bytes]:
        """Take ``data``; yield every complete payload now buffered."""
        buf = self._buf
        buf += data
        pos = 0
        n = len(buf)
        while True:
            length = shift = 0
            i = pos
            while i < n:
                b = buf[i]
                length |= (b & 0x7F) << shift
                i += 1
                if not b & 0x80:
                    break
                shift += 7
                if shift > 63:
                    raise ValueError("varint too long")
            else:
                break  # prefix incomplete
            if length > MAX_FRAME:
                raise ValueError(f"frame of {length} bytes over the limit")
            if n - i < length:
                break
            yield bytes(buf[i:i + length])
            pos = i + length
        del buf[:pos]


async def read_one(receive: Receive) -> Any:
    """Read exactly one frame (stream-per-call protocols) and return its decoded message."""
    dec = Decoder()
    while True:
        data = await receive()
        if not data:
            raise EOFError("stream ended before a whole frame")
        for payload in dec.feed(data):
            return cbor2.loads(payload)


class MuxClient:
    """Calls multiplexed by id over one byte stream; ``run()`` is the reader task."""

    def __init__(self, send: Send, receive: Receive) -> None:
        self._send = send
        self._receive = receive
        self._lock = trio.Lock()
        self._ids = itertools.count(1)
        self._waiting: dict[int, list[Any]] = {}
        self._closed: BaseException | None = None

    async def run(self, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        dec = Decoder()
        task_status.started()
        try:
            while True:
                data = await self._receive()
                if not data:
                    break
                for payload in dec.feed(data):
                    msg = cbor2.loads(payload)
                    slot = self._waiting.pop(msg["id"])
                    slot[1] = msg["body"]
                    slot[0].set()
        finally:
            self._closed = EOFError("connection closed")
            for slot in self._waiting.values():
                slot[0].set()

    async def call(self, body: bytes) -> bytes:
        if self._closed is not None:
            raise self._closed
        i = next(self._ids)
        slot: list[Any] = [trio.Event(), None]
        self._waiting[i] = slot
        frame = encode({"id": i, "body": body})
        async with self._lock:
            await self._send(frame)
        await slot[0].wait()
        if slot[1] is None:
            raise EOFError("connection closed before the answer")
        return slot[1]  # type: ignore[no-any-return]


async def mux_serve(send: Send, receive: Receive) -> None:
    """Echo every request on this byte stream, each in a task of its own, until EOF."""
    lock = trio.Lock()

    async def handle(msg: Any) -> None:
        out = encode({"id": msg["id"], "body": msg["body"]})
        async with lock:
            await send(out)

    dec = Decoder()
    async with trio.open_nursery() as nursery:
        while True:
            data = await receive()
            if not data:
                break
            for payload in dec.feed(data):
                nursery.start_soon(handle, cbor2.loads(payload))
