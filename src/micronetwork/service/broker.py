"""``node.broker``: publish events to topics and subscribe with catch-up (trio).

::

    await node.broker.publish("orders", b"...", headers={"type": "created"})
    async with node.broker.subscribe("orders", since=0) as sub:     # from the oldest retained
        async for item in sub:
            if isinstance(item, Event):
                handle(item.payload)
                token = sub.cursor()                 # resume token: store it, pass as since=
            elif isinstance(item, Missed):
                print(f"{item.count} events were no longer retained")

The sans-IO :class:`~micronetwork.broker.BrokerCore` does the work (signing, retention,
replay-then-live merge, gap filling, queue groups); this facade feeds it and turns its
deliveries into one channel per subscription, handing credit back as the application takes
events (so a slow subscriber is told it lags instead of slowing anyone down).

Retention nodes: the bootstrap (super) nodes, which retain every topic by default. A publish
goes out by gossip; when no retention node is subscribed to the topic yet (a fresh topic, a
short-lived publisher) it is also handed to one directly, and ``publish(..., retained=True)``
waits until a retention node has stored it.
"""

from __future__ import annotations

import math
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from datetime import datetime
from typing import TYPE_CHECKING, Any

import multiaddr
import trio

from ..broker import (
    CaughtUp,
    Cursor,
    Delivery,
    Event,
    FromOffset,
    FromTime,
    Lagging,
    Missed,
    Since,
    Stored,
    gossip_topic,
)
from ..errors import NetworkError, RequestTimeout
from ..identity.peerid import PeerId

if TYPE_CHECKING:
    from ..node import Node

__all__ = ["Broker", "Subscription"]

Item = Event | Missed | Lagging


class Subscription:
    """The events of one ``subscribe``: iterate it; ``cursor()`` is the resume token."""

    def __init__(self, broker: Broker, sid: int, recv: trio.MemoryReceiveChannel[Any]) -> None:
        self._broker = broker
        self.id = sid
        self._recv = recv
        self.caught_up = trio.Event()  # set when the replay asked for with since= is done
        self.replayed = 0
        self.missed = 0  # events reported missed so far (sum of Missed.count)

    def cursor(self) -> Cursor:
        """Everything handed to the application so far: ``subscribe(topic, since=cursor)``
        later receives every retained event after it, exactly once."""
        cursor: Cursor = self._broker._core.cursor(self.id)
        return cursor

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> Item:
        while True:
            try:
                item = await self._recv.receive()
            except (trio.EndOfChannel, trio.ClosedResourceError):
                raise StopAsyncIteration from None
            if isinstance(item, Delivery):
                self._broker._consumed(self.id)
                return item.event
            if isinstance(item, Missed):
                self.missed += item.count
            assert isinstance(item, Missed | Lagging)
            return item

    async def receive(self) -> Item:
        """The next item (``StopAsyncIteration`` becomes ``trio.EndOfChannel``)."""
        try:
            return await self.__anext__()
        except StopAsyncIteration:
            raise trio.EndOfChannel from None


class Broker:
    def __init__(self, node: Node) -> None:
        self._node = node
        self._subs: dict[int, trio.MemorySendChannel[Any]] = {}
        self._objects: dict[int, Subscription] = {}
        self._stored: dict[int, tuple[trio.Event, list[Stored]]] = {}
        self._inflight: set[int] = set()  # fire-and-forget pushes not answered yet
        self._settled = trio.Event()
        self.dropped = 0

    @property
    def _core(self) -> Any:
        return self._node._core.broker

    def start(self) -> None:
        """Use the bootstrap nodes as retention nodes (called once the node runs)."""
        peers = []
        for addr in self._node.config.bootstrap:
            try:
                peers.append(PeerId.from_base58(multiaddr.Multiaddr(addr).value_for_protocol("p2p")))
            except Exception:
                continue
        self._core.set_retention_peers(peers)

    def on_event(self, event: Any) -> None:
        if isinstance(event, Stored):
            if event.request_id in self._inflight:
                self._inflight.discard(event.request_id)
                if not self._inflight:
                    self._settled.set()
            waiter = self._stored.get(event.request_id)
            if waiter is not None:
                waiter[1].append(event)
                waiter[0].set()
            return
        if isinstance(event, CaughtUp):
            sub = self._objects.get(event.subscription)
            if sub is not None:
                sub.replayed = event.replayed
                sub.caught_up.set()
            return
        ch = self._subs.get(event.subscription)
        if ch is None:
            return
        try:
            ch.send_nowait(event)
        except (trio.WouldBlock, trio.BrokenResourceError, trio.ClosedResourceError):
            self.dropped += 1

    def _consumed(self, sid: int) -> None:
        if not self._node._closed:
            self._core.consumed(sid, 1, self._node._driver.now())
            self._node._driver.pump()

    async def settle(self) -> None:
        """Return once every event handed to a retention node was answered (the node waits
        for this, bounded, before it closes, so a publish just before close is not lost)."""
        while self._inflight:
            self._settled = trio.Event()
            await self._settled.wait()

    def close(self) -> None:
        for ch in self._subs.values():
            ch.close()
        for ev, _ in self._stored.values():
            ev.set()
        if self._node._started:
            self._core.close(self._node._driver.now())

    # -- publishing ---------------------------------------------------------------------------

    async def publish(
        self,
        topic: str,
        payload: bytes,
        *,
        headers: Mapping[str, str] | None = None,
        retained: bool = False,
        timeout: float = 10.0,
    ) -> Event:
        """Sign and publish an event (gossip to the topic's subscribers; also handed to a
        retention node if none is subscribed yet). With ``retained=True`` wait until a
        retention node stored it (``NetworkError`` if none would, ``RequestTimeout``)."""
        node = self._node
        node._check_open()
        now = node._driver.now()
        event: Event = self._core.publish(topic, bytes(payload), now,
                                          headers=dict(headers or {}), wall=time.time())
        peers = [p for p in self._core._candidates(topic) if p != node.peer_id]
        listening = node._core.gossip.topic_peers(gossip_topic(topic))
        if peers and (retained or not any(p in listening for p in peers)):
            if retained:
                await self._push_and_wait(event, peers, timeout)
            else:
                self._inflight.add(self._core.push(event, peers[0], now))
        node._driver.pump()
        await trio.lowlevel.checkpoint()
        return event

    async def _push_and_wait(self, event: Event, peers: list[PeerId], timeout: float) -> None:
        errors = []
        try:
            with trio.fail_after(timeout):
                for peer in peers:
                    rid = self._core.push(event, peer, self._node._driver.now())
                    done = trio.Event()
                    self._stored[rid] = (done, [])
                    try:
                        self._node._driver.pump()
                        await done.wait()
                        answers = self._stored[rid][1]
                    finally:
                        del self._stored[rid]
                    if answers and answers[0].offset is not None:
                        return
                    errors.append(f"{peer.short()}: {answers[0].error if answers else 'closed'}")
        except trio.TooSlowError as exc:
            raise RequestTimeout(f"no retention node stored the event within {timeout} s") from exc
        raise NetworkError("no retention node stored the event: " + "; ".join(errors))

    # -- subscribing --------------------------------------------------------------------------

    @asynccontextmanager
    async def subscribe(
        self,
        topic: str,
        *,
        group: str | None = None,
        since: Cursor | FromTime | FromOffset | float | int | datetime | None = None,
    ) -> AsyncIterator[Subscription]:
        """Events of ``topic`` while the block runs.

        ``since``: None (live only), ``0`` (from the oldest retained event), a wall time
        (epoch seconds or a datetime), a :class:`Cursor` from ``sub.cursor()`` (resume: every
        event after it exactly once, within the retention window), or a ``FromOffset``.
        ``group``: a queue group; each event goes to one member of the group.
        """
        node = self._node
        node._check_open()
        buffer = self._core.config.subscriber_buffer + 256
        send, recv = trio.open_memory_channel[Any](buffer if buffer < math.inf else 0)
        sid = self._core.subscribe(topic, node._driver.now(), group=group,
                                   since=_since(since), wall=time.time())
        self._subs[sid] = send
        node._driver.pump()
        sub = Subscription(self, sid, recv)
        self._objects[sid] = sub
        if since is None:
            sub.caught_up.set()
        try:
            async with recv:
                yield sub
        finally:
            self._subs.pop(sid, None)
            self._objects.pop(sid, None)
            send.close()
            if not node._closed:
                self._core.unsubscribe(sid, node._driver.now())
                node._driver.pump()


def _since(value: Any) -> Since | None:
    if value is None or isinstance(value, Cursor | FromTime | FromOffset):
        return value
    if isinstance(value, datetime):
        return FromTime(value.timestamp())
    if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
        return FromTime(float(value))
    raise ValueError(f"since must be None, 0, a time, a Cursor or FromOffset, not {value!r}")
