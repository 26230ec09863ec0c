"""Long-lived streams (gossipsub) on the host: :class:`LongStreams`, part of the host driver.

Outbound, ``Send`` commands go into a bounded per-peer queue that one sender task per peer
writes, in order, on its stream (opened on first use); what queued up during a write goes out
as one frame (:func:`coalesce_rpcs`). A full queue or a broken stream drops RPCs, and every
drop is reported to the core (``on_send_dropped``): counted, never silent. A stream that broke
while the connection stays up is re-opened: after a backoff the core hears ``on_stream_lost``
and re-sends what the peer must know (subscriptions, GRAFTs), which opens a new stream.
Inbound, every frame read is ``on_stream_message``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import trio
from libp2p.abc import INetStream

from ..errors import RemoteProtocolError
from ..framing import FrameDecoder, encode_frame
from ..gossip.commands import Send
from ..gossip.messages import RPC, merge_controls
from ..identity.peerid import PeerId
from ._streamio import (
    abort_stream,
    close_stream,
    from_libp2p_id,
    muxed_of,
    read_frame,
    to_libp2p_id,
)

if TYPE_CHECKING:
    from .driver import HostDriver

__all__ = ["LongStreams", "coalesce_rpcs"]

log = logging.getLogger(__name__)

_SEND_QUEUE = 4096  # RPCs queued per peer for a long-lived stream before drops (counted)
_MAX_MERGED = 64 * 1024  # queued RPCs to one peer merge into frames of up to this size
_MAX_REOPENS = 5  # broken outbound streams re-opened per connection before giving up
_REOPEN_BACKOFF = 0.25  # seconds before the first re-open; doubles with each failure


def coalesce_rpcs(items: list[tuple[Send, bytes]], encode: Callable[[RPC], bytes]) -> bytes:
    """One frame body for RPCs queued to one peer: ``items`` are (command, its encoding).

    Protobuf decodes concatenated encodings as their merge: repeated fields (subscriptions,
    messages) append, and so would the singular ``control`` field, merged field by field. But
    not every gossipsub decoder merges: js-libp2p-gossipsub's (protons) keeps only the *last*
    ``control`` of a frame, so a burst of GRAFTs (one per topic subscribed), IHAVEs or IDONTWANTs
    lost all but one. So the frame carries at most one ``control``: the RPCs without one are
    concatenated as encoded, and the controls are merged here and encoded once, at the end (a
    receiver handles a frame's subscriptions, then its messages, then its control, whatever the
    order of the fields).
    """
    controls = [cmd.message.control for cmd, _ in items if cmd.message.control]
    if len(controls) < 2:
        return b"".join(body for _, body in items)
    parts = []
    for cmd, body in items:
        rpc = cmd.message
        if not rpc.control:
            parts.append(body)
        elif rpc.subscriptions or rpc.publish:
            parts.append(encode(RPC(subscriptions=rpc.subscriptions, publish=rpc.publish)))
    parts.append(encode(RPC(control=merge_controls(controls))))
    return b"".join(parts)


class LongStreams:
    """The long-lived streams of one :class:`HostDriver` (its core, host, nursery, pump)."""

    def __init__(self, driver: HostDriver) -> None:
        self._d = driver
        self._senders: dict[PeerId, trio.MemorySendChannel[tuple[Send, bytes]]] = {}
        self._failures: dict[PeerId, int] = {}

    def peer_disconnected(self, peer: PeerId) -> None:
        sender = self._senders.pop(peer, None)
        if sender is not None:
            sender.close()
        self._failures.pop(peer, None)


    def send(self, cmd: Send, frame: bytes) -> None:
        if self._d.closed or self._d._nursery is None:
            return
        channel = self._senders.get(cmd.peer)
        if channel is None:
            send, recv = trio.open_memory_channel[tuple[Send, bytes]](_SEND_QUEUE)
            channel = self._senders[cmd.peer] = send
            self._d._nursery.start_soon(self._sender_task, cmd.peer, send, recv)
        try:
            channel.send_nowait((cmd, frame))
        except trio.WouldBlock:  # the peer's queue is full: it does not keep up
            self._d.counters["send_queue_full"] += 1
            self._d.core.on_send_dropped(cmd, self._d.now())
        except (trio.ClosedResourceError, trio.BrokenResourceError):
            self._d.core.on_send_dropped(cmd, self._d.now())

    async def _sender_task(
        self,
        peer: PeerId,
        send: trio.MemorySendChannel[tuple[Send, bytes]],
        recv: trio.MemoryReceiveChannel[tuple[Send, bytes]],
    ) -> None:
        """Write every queued RPC to ``peer`` in order on one stream; report what is lost.

        Whatever queued up while the last write was in flight goes out in one write, as one
        frame: serialized protobuf messages of the same type concatenate into their merge (the
        repeated fields of an RPC append; the controls are merged by :func:`coalesce_rpcs`),
        so N queued RPCs become one RPC. With py-libp2p each
        write costs a yamux frame, a Noise encryption and many scheduler passes, and each frame
        a decode at the receiver: coalescing is what keeps the CPU per message low under load.
        """
        stream: INetStream | None = None
        muxed: Any = None
        broke = False
        batch: list[Send] = []
        carry: tuple[Send, bytes] | None = None
        protocol = ""

        def encode(rpc: RPC) -> bytes:
            return self._d.core.encode(protocol, rpc)

        try:
            async with recv:
                while True:
                    if carry is not None:
                        (cmd, body), carry = carry, None
                    else:
                        try:
                            cmd, body = await recv.receive()
                        except trio.EndOfChannel:
                            break
                    items, size = [(cmd, body)], len(body)
                    batch, protocol = [cmd], cmd.protocol
                    max_size = self._d.core.max_message_size(cmd.protocol)
                    limit = min(_MAX_MERGED, max_size)
                    while size < limit:
                        try:
                            more = recv.receive_nowait()
                        except trio.WouldBlock:
                            break
                        if more[0].protocol != cmd.protocol or size + len(more[1]) > limit:
                            carry = more
                            break
                        batch.append(more[0])
                        items.append(more)
                        size += len(more[1])
                    if stream is None:
                        await self._d.ensure_connected(cmd.peer, ())
                        stream = await self._d.host.new_stream(to_libp2p_id(peer), [cmd.protocol])
                        muxed = muxed_of(stream)
                    await muxed.write(encode_frame(coalesce_rpcs(items, encode), max_size))
                    self._d.counters["stream_writes"] += 1
                    self._d.counters["stream_rpcs"] += len(items)
                    batch = []
        except Exception as exc:
            broke = True
            log.debug("gossip stream to %s broke: %s", peer.short(), exc)
        finally:
            if self._senders.get(peer) is send:
                del self._senders[peer]
            send.close()
            lost = batch + ([carry[0]] if carry is not None else [])
            while True:
                try:
                    lost.append(recv.receive_nowait()[0])
                except (trio.WouldBlock, trio.EndOfChannel, trio.ClosedResourceError):
                    break
            for cmd in lost:
                self._d.core.on_send_dropped(cmd, self._d.now())
            if broke and protocol:
                self._reopen_later(peer, protocol)
            elif lost:
                self._d.pump()
            if stream is not None:
                with trio.CancelScope(shield=True):
                    await close_stream(stream)

    def _reopen_later(self, peer: PeerId, protocol: str) -> None:
        """After a broken outbound stream: tell the core (it re-sends what the peer must know,
        which opens a new stream) while the peer is connected, after a backoff that doubles
        with each failure on this connection, at most ``_MAX_REOPENS`` times."""
        failures = self._failures[peer] = self._failures.get(peer, 0) + 1
        if failures > _MAX_REOPENS or self._d.closed or self._d._nursery is None:
            self._d.counters["stream_reopens_given_up"] += 1
            self._d.pump()
            return

        async def reopen() -> None:
            await trio.sleep(_REOPEN_BACKOFF * 2 ** (failures - 1))
            if self._d.closed or not self._d.host.get_network().get_connections(to_libp2p_id(peer)):
                return
            self._d.counters["stream_reopens"] += 1
            self._d.core.on_stream_lost(peer, protocol, self._d.now())
            self._d.pump()

        self._d.pump()
        self._d._nursery.start_soon(reopen)

    async def flush(self, poll: float = 0.005) -> None:
        """Return once every gossip send queue is empty and its last write has finished
        (callers bound it with a timeout; used to get withdrawals out before closing)."""
        while True:
            busy = [s for s in self._senders.values() if s.statistics().current_buffer_used]
            if not busy:
                break
            await trio.sleep(poll)
        await trio.sleep(poll)  # the last dequeued batch's write

    def make_handler(self, protocol: str) -> Callable[[INetStream], Any]:
        async def handler(stream: INetStream) -> None:
            await self._serve(protocol, stream)

        return handler

    async def _serve(self, protocol: str, stream: INetStream) -> None:
        peer = from_libp2p_id(stream.muxed_conn.peer_id)
        decoder = FrameDecoder(self._d.core.max_message_size(protocol))
        self._d.core.on_stream_opened(peer, protocol, self._d.now())
        self._d.pump()
        muxed = muxed_of(stream)
        try:
            while not self._d.closed:
                frame = await read_frame(muxed, decoder)
                if frame is None:
                    break
                now = self._d.now()
                self._d.core.on_stream_message(peer, protocol, frame, now)
                # Everything already buffered is handled before one pump.
                while (frame := decoder.next_frame()) is not None:
                    self._d.core.on_stream_message(peer, protocol, frame, now)
                self._d.pump()
        except RemoteProtocolError as exc:
            self._d.core.on_bad_message(peer, protocol, str(exc), self._d.now())
            self._d.pump()
            await abort_stream(stream)
            return
        except Exception as exc:
            log.debug("inbound %s stream from %s ended: %s", protocol, peer.short(), exc)
        await close_stream(stream)
