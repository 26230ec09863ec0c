"""The bytes waiting to go out on one stream, and the one task that writes them (trio).

Every frame of every call on a stream is put here and written by :meth:`Outbox.run`, never
by the calls' own tasks. That does two things: frames put while a write is under way go out
together in the next one (with many calls in flight, one yamux frame and one Noise message
carry many calls: py-libp2p's cost is per write, not per byte), and a caller cancelled at any
point never leaves half a frame on the stream. Callers wait in :meth:`drain` while more than
``high_water`` bytes are queued, so a peer that stops reading holds back whoever writes to it,
through the yamux window, and nothing here grows without bound.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

import trio

from .._streamio import muxed_of
from ._io import ABORT_TIMEOUT, StreamBroken, write

__all__ = ["HIGH_WATER", "Outbox"]

HIGH_WATER = 64 * 1024


class Outbox:
    __slots__ = (
        "_stream", "_counters", "high_water", "_chunks", "_size", "_wake", "_drained",
        "_closing", "broken", "finished", "_writing", "_on_fail",
    )

    def __init__(
        self,
        stream: Any,
        counters: Counter[str],
        high_water: int = HIGH_WATER,
        on_fail: Callable[[str], None] | None = None,
    ) -> None:
        self._stream = stream
        self._counters = counters
        self.high_water = high_water
        self._chunks: list[bytes] = []  # written together, not joined (see _io.write)
        self._size = 0  # bytes in _chunks
        self._wake = trio.Event()
        self._drained = trio.lowlevel.ParkingLot()
        self._closing = False  # FIN once the queue is empty
        self._writing = False
        self.broken: str | None = None  # why writing failed
        self.finished = trio.Event()  # the writer has stopped
        self._on_fail = on_fail  # told once, when writing fails or the stream is given up

    @property
    def buffered(self) -> int:
        return self._size

    @property
    def closing(self) -> bool:
        return self._closing

    def put(self, data: bytes) -> None:
        """Queue ``data``. Raises :class:`StreamBroken` if the stream can no longer be
        written."""
        if self.broken is not None:
            raise StreamBroken(self.broken)
        if self._closing:
            raise StreamBroken("the stream is closing")
        self._chunks.append(data)
        self._size += len(data)
        self._wake.set()

    def put_many(self, chunks: list[bytes]) -> None:
        """Queue ``chunks`` together (as :meth:`put` does one)."""
        if self.broken is not None:
            raise StreamBroken(self.broken)
        if self._closing:
            raise StreamBroken("the stream is closing")
        for data in chunks:
            self._chunks.append(data)
            self._size += len(data)
        self._wake.set()

    def _take(self) -> tuple[list[bytes], int]:
        chunks, self._chunks = self._chunks, []
        size, self._size = self._size, 0
        return chunks, size

    async def drain(self) -> None:
        """Until at most ``high_water`` bytes are queued (StreamBroken if writing failed)."""
        while self._size > self.high_water and self.broken is None:
            await self._drained.park()
        if self.broken is not None:
            raise StreamBroken(self.broken)

    def close(self) -> None:
        """Half-close (FIN) once everything queued is written."""
        self._closing = True
        self._wake.set()

    def fail(self, reason: str) -> None:
        """Stop writing (the stream is being reset); queued bytes are dropped."""
        first = self.broken is None
        if first:
            self.broken = reason
        self._chunks.clear()
        self._size = 0
        self._wake.set()
        self._drained.unpark_all()
        if first and self._on_fail is not None:
            self._on_fail(reason)

    async def run(self) -> None:
        """The writer: until :meth:`close` (then FIN) or :meth:`fail`."""
        stream = self._stream
        muxed = muxed_of(stream)
        try:
            while self.broken is None:
                if not self._size:
                    if self._closing:
                        await _close_quietly(stream)
                        return
                    self._wake = trio.Event()
                    await self._wake.wait()
                    continue
                data, size = self._take()
                self._writing = True
                try:
                    await write(muxed, data, size, self._counters)
                except StreamBroken as exc:
                    self.fail(str(exc))
                    return
                finally:
                    self._writing = False
                if self._size <= self.high_water:  # else they would only park again
                    self._drained.unpark_all()
        finally:
            if self._writing:  # cancelled in the middle of a write: the framing is torn
                self.fail("a write was interrupted")
            self.finished.set()
            self._drained.unpark_all()

    async def flush_quietly(self) -> None:
        """Best effort, when the writer has been cancelled (shutdown): write what is queued
        within ``ABORT_TIMEOUT``. Nothing if the framing may be torn."""
        if self.broken is not None or not self._size:
            return
        data, size = self._take()
        muxed = muxed_of(self._stream)
        with trio.CancelScope(shield=True, deadline=trio.current_time() + ABORT_TIMEOUT):
            try:
                await write(muxed, data, size, self._counters)
            except StreamBroken as exc:
                self.fail(str(exc))


async def _close_quietly(stream: Any) -> None:
    with trio.CancelScope(shield=True, deadline=trio.current_time() + ABORT_TIMEOUT):
        try:
            await stream.close()
        except Exception:
            pass
