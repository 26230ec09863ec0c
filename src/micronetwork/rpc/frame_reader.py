"""Splitting received bytes into RPC frames (sans-IO): the reading half of ``frames.py``.

:class:`FrameReader` takes chunks as they arrive (bytes or views), reads each frame's varint
length prefix, refuses a frame over the limit from its prefix alone (or skips it, naming its
call, with ``skip_oversized``), and decodes whole frames with :func:`frames.decode_item`; a Data
frame's bytes body is cut out of the chunk it arrived in without a copy where it can be.
"""

from __future__ import annotations

from collections import deque

from ..errors import MessageTooLarge, RemoteProtocolError
from .frames import (
    _DATA,
    _DATA_HEAD,
    _MAX_HEAD,
    DEFAULT_MAX_MESSAGE_SIZE,
    FRAME_OVERHEAD,
    Data,
    Frame,
    OversizedFrame,
    _data_bytes_at,
    _Decoder,
    _peek_head,
    _uint,
    decode_item,
)

__all__ = ["FrameReader"]


_SMALL = 1024  # payloads up to this size are sliced out (copied) rather than viewed


class FrameReader:
    """Split received bytes into frames (sans-IO). A length prefix over the limit raises
    :class:`MessageTooLarge` before any of the frame is buffered; with ``skip_oversized`` it
    raises :class:`OversizedFrame` instead and the reader goes on after that frame.

    Buffering (no copy of what arrives, as far as possible): chunks are kept as they are fed,
    queued, and frames are decoded from views of them. Only a frame split across chunks is
    gathered, into a bytearray of its own, with exactly the bytes it lacks from the chunks
    after it; the rest of those chunks is read in place."""

    __slots__ = (
        "_buf", "_pos", "_more", "_more_pos", "_more_size", "_max", "_limit", "_skip",
        "_skip_oversized", "_decoder",
    )

    def __init__(
        self, max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE, *, skip_oversized: bool = False
    ) -> None:
        # the chunk being read: as fed (bytes, or a view of bytes), or a gathered frame (ours)
        self._buf: bytes | bytearray | memoryview = b""
        self._pos = 0  # where its unread bytes start
        self._more: deque[bytes | memoryview] = deque()  # chunks fed after it
        self._more_pos = 0  # bytes of _more[0] already taken (into a gathered frame)
        self._more_size = 0  # unread bytes in _more
        self._max = max_message_size
        self._limit = max_message_size + FRAME_OVERHEAD
        self._skip = 0  # bytes of an oversized frame still to discard
        self._skip_oversized = skip_oversized
        self._decoder = _Decoder()

    def feed(self, data: bytes | memoryview) -> None:
        """Take ``data`` (bytes, or a view of bytes: kept as it is, not copied)."""
        if self._skip:
            n = min(self._skip, len(data))
            self._skip -= n
            data = data[n:]
        if not data:
            return
        if type(data) is not bytes and not (
            isinstance(data, memoryview) and type(data.obj) is bytes
        ):  # keep no reference to a caller's mutable buffer
            data = bytes(data)
        if self._pos == len(self._buf) and not self._more:
            self._buf, self._pos = data, 0
        else:
            self._more.append(data)
            self._more_size += len(data)

    @property
    def buffered(self) -> int:
        """Bytes of an unfinished frame (including one being skipped)."""
        return len(self._buf) - self._pos + self._more_size - self._more_pos + self._skip

    def _consume(self, end: int) -> None:
        """The current chunk is read up to ``end``; move on to the next when it is done."""
        if end < len(self._buf):
            self._pos = end
        elif self._more:
            self._buf, self._pos = self._more.popleft(), self._more_pos
            self._more_size -= len(self._buf)
            self._more_pos = 0
        else:
            self._buf, self._pos = b"", 0

    def _gather(self, lack: int) -> None:
        """Make the current chunk a bytearray holding its unread bytes and the next ``lack``
        bytes (all there are, if fewer) of the chunks after it."""
        buf = self._buf
        if isinstance(buf, bytearray):
            if self._pos:
                del buf[:self._pos]
        else:
            buf = bytearray(memoryview(buf)[self._pos:])
        more = self._more
        while lack > 0 and more:
            chunk, at = more[0], self._more_pos
            take = min(lack, len(chunk) - at)
            buf += memoryview(chunk)[at:at + take]
            lack -= take
            if at + take == len(chunk):
                more.popleft()
                self._more_size -= len(chunk)
                self._more_pos = 0
            else:
                self._more_pos = at + take
        self._buf, self._pos = buf, 0

    def _bounds(self) -> tuple[int, int] | None:
        """Where the next whole frame's payload is in the current chunk (start, end), after
        gathering it if it is split; None when more bytes are needed."""
        while True:
            buf, pos = self._buf, self._pos
            have = len(buf) - pos
            if not have:
                if not self._more:
                    return None
                self._consume(pos)  # an empty chunk: take the next
                continue
            b = buf[pos]
            if b < 0x80:  # a one-byte prefix: frames under 128 bytes
                start, end = pos + 1, pos + 1 + b
            else:
                length = 0
                end = -1
                for i in range(min(have, 10)):
                    b = buf[pos + i]
                    length |= (b & 0x7F) << (7 * i)
                    if not b & 0x80:
                        start = pos + i + 1
                        if length > self._limit:
                            self._oversized(length, start)
                        end = start + length
                        break
                if end < 0:  # the prefix is not complete in this chunk
                    if have >= 10:
                        raise RemoteProtocolError("varint length prefix longer than 10 bytes")
                    if not self._more:
                        return None
                    self._gather(10 - have)
                    continue
            if end <= len(buf):
                return start, end
            if self._more_size - self._more_pos < end - len(buf):
                return None  # the rest of the frame has not arrived
            return start, end  # all here, in this chunk and the next ones

    def _whole(self, start: int, end: int) -> tuple[int, int]:
        """Gather a frame that goes on in the next chunks; its bounds in the gathered one."""
        shift = self._pos
        self._gather(end - len(self._buf))
        return start - shift, end - shift

    def _drop(self, n: int) -> int:
        """Drop the next ``n`` unread bytes, across chunks; how many have not arrived."""
        while n and (have := len(self._buf) - self._pos):
            take = min(n, have)
            n -= take
            self._consume(self._pos + take)
        return n

    def _split_data(self, start: int, end: int) -> tuple[int, Frame] | None:
        """A Data frame with a byte-string body that goes on in the next chunks: the body
        joined straight from them (one copy); None for any other frame (it is gathered)."""
        buf = self._buf
        fast = _data_bytes_at(buf, start, end - start)
        if fast is None:
            return None
        call_id, at = fast
        size = end - start - len(_DATA_HEAD) - len(_uint(call_id))
        views = [memoryview(buf)[start + at:]]
        left = end - len(buf)
        pos = self._more_pos
        for chunk in self._more:
            if not left:
                break
            take = min(left, len(chunk) - pos)
            views.append(memoryview(chunk)[pos:pos + take])
            left -= take
            pos = 0
        body = b"".join(views) if size <= self._max else b""
        for view in views:
            view.release()
        self._drop(end - self._pos)
        if size > self._max:
            raise OversizedFrame(
                f"message of {size} bytes exceeds the limit of {self._max}", call_id, _DATA
            )
        return call_id, Data(body)

    def next_payload(self) -> bytes | None:
        """The next whole frame's payload, or None when more bytes are needed."""
        bounds = self._bounds()
        if bounds is None:
            return None
        start, end = bounds
        if end > len(self._buf):
            start, end = self._whole(start, end)
        buf = self._buf
        self._consume(end)
        with memoryview(buf) as view:
            return bytes(view[start:end])

    def _oversized(self, length: int, start: int) -> None:
        message = f"peer announced a frame of {length} bytes; the limit is {self._limit}"
        if not self._skip_oversized:
            raise MessageTooLarge(message)
        if len(self._buf) < start + _MAX_HEAD and self._more:  # the head may be split
            shift = self._pos
            self._gather(start + _MAX_HEAD - len(self._buf))
            start -= shift  # the gathered chunk starts where the frame did
        head = _peek_head(self._buf, start)
        if head is None:
            if len(self._buf) >= start + _MAX_HEAD:  # pragma: no cover - _peek_head decides
                raise RemoteProtocolError("malformed RPC frame header")
            raise _NeedMore
        ftype, call_id = head
        # discard the frame: what has arrived of it now, the rest as it arrives
        self._skip = self._drop(start + length - self._pos)
        raise OversizedFrame(message, call_id, ftype)

    def next_item(self) -> tuple[int, Frame] | None:
        """The next (call id, frame), or None when more bytes are needed."""
        try:
            bounds = self._bounds()
        except _NeedMore:
            return None
        if bounds is None:
            return None
        start, end = bounds
        if end > len(self._buf):
            item = self._split_data(start, end)
            if item is not None:
                return item
            start, end = self._whole(start, end)
        buf = self._buf
        self._consume(end)
        if end - start <= _SMALL:  # a copy is cheaper than views
            return decode_item(buf[start:end], self._max, self._decoder)
        # decoded from a view (no copy of the payload); the views are released here, even
        # when decoding fails, so that a bytearray of ours can grow again
        with memoryview(buf) as view, view[start:end] as payload:
            return decode_item(payload, self._max, self._decoder)

    def next_frame(self) -> Frame | None:
        item = self.next_item()
        return None if item is None else item[1]


class _NeedMore(Exception):
    """Internal: the head of an oversized frame has not fully arrived yet."""
