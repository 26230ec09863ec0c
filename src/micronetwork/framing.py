"""Unsigned-varint length-prefixed framing, sans-IO (the framing of every libp2p protocol).

:class:`FrameDecoder` takes bytes as they arrive (``feed``) and yields whole frames
(``next_frame``); a length prefix over ``max_size`` or a varint longer than 10 bytes raises
:class:`~micronetwork.errors.RemoteProtocolError` before any of the payload is buffered.
"""

from __future__ import annotations

from .errors import LocalProtocolError, RemoteProtocolError

__all__ = ["FrameDecoder", "encode_frame", "encode_varint"]


def encode_varint(n: int) -> bytes:
    if n < 0:
        raise ValueError("varint of a negative number")
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def encode_frame(payload: bytes, max_size: int) -> bytes:
    if len(payload) > max_size:
        raise LocalProtocolError(f"message of {len(payload)} bytes exceeds the limit {max_size}")
    return encode_varint(len(payload)) + payload


class FrameDecoder:
    """Split a byte stream into varint-length-prefixed frames."""

    __slots__ = ("_buf", "_max")

    def __init__(self, max_size: int) -> None:
        self._buf = bytearray()
        self._max = max_size

    def feed(self, data: bytes) -> None:
        self._buf += data

    @property
    def buffered(self) -> int:
        return len(self._buf)

    def next_frame(self) -> bytes | None:
        """The next complete frame, or None if more bytes are needed."""
        buf = self._buf
        length = 0
        shift = 0
        for i in range(min(len(buf), 10)):
            b = buf[i]
            length |= (b & 0x7F) << shift
            if not b & 0x80:
                if length > self._max:
                    raise RemoteProtocolError(
                        f"frame of {length} bytes announced; the limit is {self._max}"
                    )
                start = i + 1
                if len(buf) < start + length:
                    return None
                frame = bytes(buf[start : start + length])
                del buf[: start + length]
                return frame
            shift += 7
        if len(buf) >= 10:
            raise RemoteProtocolError("varint length prefix longer than 10 bytes")
        return None
