"""Stream I/O helpers shared by the host driver's modules: peer id conversion, the muxer's
stream under py-libp2p's, reading one varint-framed message, closing and resetting without
raising."""

from __future__ import annotations

from typing import Any

from libp2p.abc import INetStream
from libp2p.peer.id import ID

from ..errors import RemoteProtocolError
from ..framing import FrameDecoder
from ..identity.peerid import PeerId

__all__ = [
    "abort_stream", "close_stream", "from_libp2p_id", "muxed_of", "read_frame", "to_libp2p_id",
]


def muxed_of(stream: Any) -> Any:
    """The muxer's stream under py-libp2p's ``NetStream`` (anything else: itself). Gossip
    and RPC streams read and write it directly: the wrapper's state lock costs two lock round
    trips and a coroutine layer per call. EOF is still ``EOFError``; opening, closing and
    resetting still go through the ``NetStream``."""
    return getattr(stream, "muxed_stream", stream)


def to_libp2p_id(peer: PeerId) -> ID:
    return ID(bytes(peer))


def from_libp2p_id(peer: ID) -> PeerId:
    return PeerId(peer.to_bytes())


async def read_frame(stream: INetStream, decoder: FrameDecoder) -> bytes | None:
    """The next frame, or None at a clean end of stream (between frames)."""
    while True:
        frame = decoder.next_frame()
        if frame is not None:
            return frame
        try:
            chunk = await stream.read(65536)
        except EOFError:
            chunk = b""
        if not chunk:
            if decoder.buffered:
                raise RemoteProtocolError("stream ended inside a frame")
            return None
        decoder.feed(chunk)


async def close_stream(stream: INetStream) -> None:
    try:
        await stream.close()
    except Exception:
        pass


async def abort_stream(stream: INetStream) -> None:
    try:
        await stream.reset()
    except Exception:
        pass
