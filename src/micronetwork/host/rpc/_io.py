"""What the client and server halves of the transport share: stream I/O with py-libp2p's
exceptions converted, and the mapping from a Status to the error a caller sees."""

from __future__ import annotations

from collections import Counter
from typing import Any

import trio

from ...errors import (
    CallCancelled,
    DeadlineExceeded,
    MessageTooLarge,
    MicronetworkError,
    RemoteError,
)
from ...rpc.frames import Status

CHUNK = 256 * 1024  # bytes asked of one stream read
ABORT_TIMEOUT = 1.0  # how long a Cancel / final Status may take to write while shutting down


class StreamBroken(Exception):
    """The stream was reset or failed (internal: becomes CallCancelled at the API)."""


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


async def read_chunks(stream: Any) -> list[bytes | memoryview] | None:
    """The next bytes of ``stream`` (at most ``CHUNK``), as the chunks our yamux holds (not
    joined: no copy) or as one chunk (any other stream); None at a clean end (FIN);
    StreamBroken otherwise."""
    reader = getattr(stream, "read_chunks", None)
    try:
        if reader is not None:
            chunks: list[bytes | memoryview] = await reader(CHUNK)
        else:
            chunk: bytes = await stream.read(CHUNK)
            chunks = [chunk] if chunk else []
    except EOFError:
        return None
    except trio.Cancelled:
        raise
    except Exception as exc:  # py-libp2p raises many types; all mean "this stream is gone"
        raise StreamBroken(_describe(exc)) from exc
    return chunks or None


async def write(stream: Any, chunks: list[bytes], size: int, counters: Counter[str]) -> None:
    """``chunks`` (``size`` bytes) in order: handed to our yamux as they are (it queues
    views, and each Noise message is gathered from them with one join), joined for any other
    stream."""
    try:
        write_parts = getattr(stream, "write_parts", None)
        if write_parts is not None:
            await write_parts(chunks)
        else:
            await stream.write(chunks[0] if len(chunks) == 1 else b"".join(chunks))
    except trio.Cancelled:
        raise
    except Exception as exc:
        raise StreamBroken(_describe(exc)) from exc
    counters["bytes_sent"] += size


async def close_quietly(stream: Any) -> None:
    """Half-close (yamux FIN): what was written is still delivered."""
    try:
        await stream.close()
    except Exception:
        pass


async def reset_quietly(stream: Any) -> None:
    """Reset (yamux RST). Data the peer has buffered after our FIN survives a later RST."""
    try:
        await stream.reset()
    except Exception:
        pass


def status_error(status: Status) -> MicronetworkError:
    """The exception a caller sees for a non-ok Status."""
    if status.code == "deadline_exceeded":
        return DeadlineExceeded(status.message or "the call's deadline passed at the server")
    if status.code == "cancelled":
        return CallCancelled(status.message or "the server cancelled the call")
    if status.code == "message_too_large":
        return MessageTooLarge(status.message or "a message was over the server's limit")
    return RemoteError(status.code, status.message, status.details)
