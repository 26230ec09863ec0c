"""The host driver: runs a NodeCore on a real py-libp2p host (trio).

Theory of operation. The driver owns everything with I/O or a clock and nothing else:

* the py-libp2p host (TCP, Noise, yamux, identify, ping), built by :mod:`.build`;
* one stream handler per protocol the core serves: it reads varint-framed requests, hands each
  to the core with a *token*, waits for the core's ``Respond(token, ...)`` and writes it back;
  a stream carries any number of requests in turn, and a clean end of stream is the normal
  end of a conversation, not an error;
* outbound requests: a ``Request`` command becomes a task that dials if needed, takes an idle
  stream to that peer from a small pool (or opens one), writes the frame, reads one frame back
  and reports ``on_response`` or ``on_request_failed``;
* connection events: when py-libp2p's own identify exchange for a new connection completes, the
  core hears ``on_peer_identified`` with the protocols and listen addresses the peer announced;
  a closed last connection is ``on_peer_disconnected``;
* long-lived streams (gossipsub): :class:`~.long_streams.LongStreams` (``driver.streams``);
  ``Send`` commands go there: per-peer queues, one writer per peer, drops counted, broken
  streams re-opened;
* identify: py-libp2p's own exchange, retried when it failed (see ``_hook_identify``);
* the timer: a task that sleeps until ``core.next_deadline()`` (woken early when any input may
  have moved it) and calls ``core.on_timer``.

``pump()`` executes the commands the core produced; it never blocks (I/O goes to tasks), so
every input path is "call the core, then pump".
"""

from __future__ import annotations

import itertools
import logging
import math
import random
from collections import Counter
from collections.abc import Callable
from typing import Any

import multiaddr
import trio
from libp2p.abc import INetConn, INetStream, INotifee
from libp2p.peer.id import ID
from libp2p.peer.peerinfo import PeerInfo as Libp2pPeerInfo

from ..commands import Dial, Disconnect, Emit, FindPeers, Request, Respond
from ..core import NodeCore
from ..errors import DialError, RemoteProtocolError
from ..framing import FrameDecoder, encode_frame
from ..gossip.commands import Send
from ..identity.peerid import PeerId
from ._streamio import abort_stream, close_stream, from_libp2p_id, read_frame, to_libp2p_id
from .long_streams import LongStreams, coalesce_rpcs

__all__ = ["HostDriver", "coalesce_rpcs", "from_libp2p_id", "to_libp2p_id"]

log = logging.getLogger(__name__)

FIND_PEERS_MAX_CONNECTIONS = 32  # topic discovery dials nobody from this many connections

_POOL_SIZE = 4  # idle outbound streams kept per (peer, protocol)
_ADDR_TTL = 3600
_IDENTIFY_RETRIES = 3  # identify attempts after the first that failed (under load it times out)
_IDENTIFY_BACKOFF = 0.5  # seconds before the first retry; doubles with each


class _Slot:
    """Where the core's answer to one inbound request is left for the stream task."""

    __slots__ = ("event", "message", "answered")

    def __init__(self) -> None:
        self.event = trio.Event()
        self.message: Any = None
        self.answered = False


class _Notifee(INotifee):
    def __init__(self, driver: HostDriver) -> None:
        self._driver = driver

    async def opened_stream(self, network: Any, stream: INetStream) -> None:
        pass

    async def closed_stream(self, network: Any, stream: INetStream) -> None:
        pass

    async def connected(self, network: Any, conn: INetConn) -> None:
        # py-libp2p skips identify for a peer whose protocols it already has (a reconnect);
        # then no identify completes, so report what the peerstore knows now.
        peer = getattr(conn.muxed_conn, "peer_id", None)
        if peer is not None and self._driver.knows_protocols(peer):
            self._driver.peer_identified(peer)

    async def disconnected(self, network: Any, conn: INetConn) -> None:
        peer = getattr(conn.muxed_conn, "peer_id", None)
        if peer is not None and not network.get_connections(peer):
            self._driver.peer_disconnected(from_libp2p_id(peer))

    async def listen(self, network: Any, ma: multiaddr.Multiaddr) -> None:
        pass

    async def listen_close(self, network: Any, ma: multiaddr.Multiaddr) -> None:
        pass


class HostDriver:
    """Drives ``core`` on ``host``; ``on_event`` receives every ``Emit``-ted event."""

    def __init__(
        self,
        host: Any,
        core: NodeCore,
        on_event: Callable[[Any], None],
        *,
        dial_timeout: float = 5.0,
        stream_idle_timeout: float = 60.0,
    ) -> None:
        self.host = host
        self.core = core
        self._on_event = on_event
        self._dial_timeout = dial_timeout
        self._idle_timeout = stream_idle_timeout
        self._nursery: trio.Nursery | None = None
        self._wake = trio.Event()
        self._armed = math.inf  # the deadline the timer loop waits for
        self._tokens = itertools.count(1)
        self._slots: dict[int, _Slot] = {}
        self._pool: dict[tuple[PeerId, str], list[INetStream]] = {}
        self._dialing: dict[PeerId, trio.Event] = {}
        self.counters: Counter[str] = Counter()
        self._identified: dict[PeerId, trio.Event] = {}
        self.closed = False
        self.streams = LongStreams(self)

    # -- lifecycle ------------------------------------------------------------------------------

    def attach(self, nursery: trio.Nursery) -> None:
        """Register handlers and hooks; start the timer task in ``nursery``."""
        self._nursery = nursery
        for protocol in self.core.protocols:
            self.host.set_stream_handler(protocol, self._make_handler(protocol))
        for protocol in self.core.stream_protocols:
            self.host.set_stream_handler(protocol, self.streams.make_handler(protocol))
        self.host.get_network().register_notifee(_Notifee(self))
        self._hook_identify()
        nursery.start_soon(self._timer_loop)

    def _hook_identify(self) -> None:
        # py-libp2p runs identify on every new connection but offers no callback when it is
        # done; wrapping its (private, version-pinned) coroutine gives us one without a second
        # identify exchange per connection.
        original = self.host._identify_peer

        host = self.host

        async def identify_then_report(peer_id: ID, *, reason: str) -> None:
            # py-libp2p gives up quietly when identify fails (no stream within its timeouts,
            # common when many connections start at once on a loaded machine): the peer then
            # looks as if it served nothing, and gossip and the DHT never use the connection.
            # So a failed identify is retried a few times, with backoff, while connected.
            try:
                await original(peer_id, reason=reason)
                for attempt in range(_IDENTIFY_RETRIES):
                    if peer_id in host._identified_peers or self.closed:
                        break
                    if not host.get_network().get_connections(peer_id):
                        break
                    self.counters["identify_retries"] += 1
                    await trio.sleep(_IDENTIFY_BACKOFF * 2**attempt)
                    await original(peer_id, reason=f"{reason}-retry")
                else:
                    if peer_id not in host._identified_peers:
                        self.counters["identify_failed"] += 1
            finally:
                self.peer_identified(peer_id)

        self.host._identify_peer = identify_then_report

    def close(self) -> None:
        self.closed = True
        self._wake.set()
        for slot in self._slots.values():
            slot.event.set()

    # -- the pump -------------------------------------------------------------------------------

    def now(self) -> float:
        return trio.current_time()

    def pump(self) -> None:
        """Execute what the core asked for; never blocks."""
        commands = self.core.drain()
        nursery = self._nursery
        encoded: dict[int, bytes] = {}  # one forwarded RPC goes to many peers: encode it once
        for cmd in commands:
            if isinstance(cmd, Send):
                key = id(cmd.message)
                body = encoded.get(key)
                if body is None:
                    body = encoded[key] = self.core.encode(cmd.protocol, cmd.message)
                self.streams.send(cmd, body)
            elif isinstance(cmd, Request):
                if nursery is not None and not self.closed:
                    nursery.start_soon(self._do_request, cmd)
            elif isinstance(cmd, Respond):
                slot = self._slots.get(cmd.token)
                if slot is not None:
                    slot.message = cmd.message
                    slot.answered = True
                    slot.event.set()
            elif isinstance(cmd, Emit):
                try:
                    self._on_event(cmd.event)
                except Exception:  # an application callback must not kill the driver
                    log.exception("event handler failed for %r", cmd.event)
            elif isinstance(cmd, Disconnect):
                if nursery is not None:
                    nursery.start_soon(self._disconnect, cmd.peer, cmd.reason)
            elif isinstance(cmd, Dial) and nursery is not None:
                nursery.start_soon(self._dial_quietly, cmd.peer, cmd.addrs)
            elif isinstance(cmd, FindPeers) and nursery is not None and not self.closed:
                for peer, addrs in self.find_peers(cmd):
                    nursery.start_soon(self._dial_quietly, peer, addrs)
        # Wake the timer loop only if the core now wants it earlier than it waits for (a
        # wake-up per pump cost a task switch, an Event and a cancel scope for nothing).
        deadline = self.core.next_deadline()
        if deadline is not None and deadline < self._armed:
            self._wake.set()

    async def _timer_loop(self) -> None:
        while not self.closed:
            deadline = self.core.next_deadline()
            self._armed = deadline if deadline is not None else math.inf
            self._wake = trio.Event()
            with trio.move_on_at(self._armed):
                await self._wake.wait()
            self._armed = -math.inf  # awake: pumps need not wake it again
            if self.closed:
                return
            now = self.now()
            deadline = self.core.next_deadline()
            if deadline is not None and deadline <= now:
                self.core.on_timer(now)
                self.pump()

    # -- connections ----------------------------------------------------------------------------

    def peer_identified(self, peer_id: ID) -> None:
        conns = self.host.get_network().get_connections(peer_id)
        if self.closed or not conns:
            return
        store = self.host.get_peerstore()
        try:
            protocols = list(store.get_protocols(peer_id))
        except Exception:
            protocols = []
        muxed = getattr(conns[0], "muxed_conn", None)
        outbound = bool(getattr(muxed, "is_initiator_value", False))
        ip = None
        try:
            remote = muxed.get_remote_address() if muxed is not None else None
            ip = remote[0] if remote else None
        except Exception:
            pass
        peer = from_libp2p_id(peer_id)
        self.core.on_peer_identified(
            peer, self.peer_addrs(peer_id), protocols, self.now(), outbound=outbound, ip=ip
        )
        self.pump()
        self._identified.setdefault(peer, trio.Event()).set()

    async def wait_identified(self, peer: PeerId) -> None:
        """Until identify with ``peer`` has completed on the current connection."""
        await self._identified.setdefault(peer, trio.Event()).wait()

    def knows_protocols(self, peer_id: ID) -> bool:
        try:
            return bool(self.host.get_peerstore().get_protocols(peer_id))
        except Exception:
            return False

    def peer_disconnected(self, peer: PeerId) -> None:
        if self.closed:
            return
        for key in [k for k in self._pool if k[0] == peer]:
            del self._pool[key]
        self.streams.peer_disconnected(peer)
        self._identified.pop(peer, None)
        self.core.on_peer_disconnected(peer, self.now())
        self.pump()

    def peer_addrs(self, peer_id: ID) -> tuple[bytes, ...]:
        try:
            addrs = self.host.get_peerstore().addrs(peer_id)
        except Exception:
            return ()
        out = []
        for a in addrs:
            text = str(a)
            if "p2p-circuit" in text:
                continue
            if "/p2p/" in text:  # peerstore entries may carry the peer's own /p2p/ suffix
                a = multiaddr.Multiaddr(text[: text.index("/p2p/")])
            out.append(a.to_bytes())
        return tuple(dict.fromkeys(out))

    async def ensure_connected(self, peer: PeerId, addrs: tuple[bytes, ...]) -> None:
        """Dial ``peer`` unless connected; concurrent callers share one dial, and its outcome:
        if it failed, they fail too (DialError) rather than each dialling again."""
        pid = to_libp2p_id(peer)
        network = self.host.get_network()
        if network.get_connections(pid):
            return
        pending = self._dialing.get(peer)
        if pending is not None:
            await pending.wait()
            if network.get_connections(pid):
                return
            raise DialError(f"dial to {peer} failed (a concurrent dial of it did not connect)")
        done = self._dialing[peer] = trio.Event()
        try:
            mas = []
            for a in addrs:
                try:
                    mas.append(multiaddr.Multiaddr(a))
                except Exception:
                    continue
            if mas:
                self.host.get_peerstore().add_addrs(pid, mas, _ADDR_TTL)
            known = self.host.get_peerstore().addrs(pid) if not mas else mas
            if not known:
                raise DialError(f"no address known for {peer}")
            with trio.fail_after(self._dial_timeout):
                await self.host.connect(Libp2pPeerInfo(pid, list(known)))
        except trio.TooSlowError as exc:
            raise DialError(f"dial to {peer} timed out after {self._dial_timeout} s") from exc
        except DialError:
            raise
        except Exception as exc:
            raise DialError(f"dial to {peer} failed: {exc}") from exc
        finally:
            if self._dialing.get(peer) is done:
                del self._dialing[peer]
            done.set()

    def find_peers(self, cmd: FindPeers) -> list[tuple[PeerId, tuple[bytes, ...]]]:
        """Topic discovery, kept simple: up to ``cmd.count`` random peers of the Kademlia
        routing table that we are neither connected to nor dialing. The driver cannot tell who
        is subscribed to ``cmd.topic``; once connected, gossip's hello says so (and a peer that
        is not subscribed is simply not grafted). Each dial is bounded by the dial timeout.
        A node with ``FIND_PEERS_MAX_CONNECTIONS`` connections or more dials nobody: a topic
        with few subscribers in the whole network stays below ``d_lo`` for good, and its
        FindPeers (every 64 heartbeats at most) must not connect the node to its whole
        routing table over the hours."""
        self.counters["find_peers"] += 1
        network = self.host.get_network()
        if len(getattr(network, "connections", ())) >= FIND_PEERS_MAX_CONNECTIONS:
            self.counters["find_peers_skipped_full"] += 1
            return []
        known = [
            e for e in self.core.kad.table.entries()
            if e.peer_id not in self._dialing
            and not network.get_connections(to_libp2p_id(e.peer_id))
        ]
        picked = random.sample(known, min(max(0, cmd.count), len(known)))
        self.counters["find_peers_dials"] += len(picked)
        return [(e.peer_id, e.addrs) for e in picked]

    async def _dial_quietly(self, peer: PeerId, addrs: tuple[bytes, ...]) -> None:
        try:
            await self.ensure_connected(peer, addrs)
        except DialError as exc:
            log.debug("%s", exc)

    async def _disconnect(self, peer: PeerId, reason: str) -> None:
        log.info("disconnecting %s: %s", peer, reason)
        try:
            await self.host.disconnect(to_libp2p_id(peer))
        except Exception as exc:
            log.debug("disconnect %s: %s", peer, exc)

    # -- outbound requests ----------------------------------------------------------------------

    async def _do_request(self, cmd: Request) -> None:
        core, peer, proto, rid = self.core, cmd.peer, cmd.protocol, cmd.request_id
        try:
            data = core.encode(proto, cmd.message)
            frame = encode_frame(data, core.max_message_size(proto))
            reply = await self._exchange(cmd, frame)
        except DialError as exc:
            core.on_request_failed(peer, proto, rid, str(exc), self.now())
        except RemoteProtocolError as exc:
            core.on_bad_message(peer, proto, str(exc), self.now())
            core.on_request_failed(peer, proto, rid, str(exc), self.now())
        except Exception as exc:  # py-libp2p raises many types; all mean "this request failed"
            core.on_request_failed(peer, proto, rid, f"{type(exc).__name__}: {exc}", self.now())
        else:
            if cmd.expect_response and reply is None:
                reason = "stream closed without a reply"
                core.on_request_failed(peer, proto, rid, reason, self.now())
            else:
                core.on_response(peer, proto, rid, reply, self.now())
        self.pump()

    async def _exchange(self, cmd: Request, frame: bytes) -> bytes | None:
        """Write ``frame`` and read the reply; one retry if a pooled stream went stale."""
        await self.ensure_connected(cmd.peer, cmd.addrs)
        key = (cmd.peer, cmd.protocol)
        pool = self._pool.get(key)
        if cmd.expect_response and pool:
            stream = pool.pop()
            try:
                reply = await self._write_read(stream, frame, cmd)
                if reply is not None:
                    self._release(key, stream)
                    return reply
            except RemoteProtocolError:
                raise
            except Exception:
                pass
            await abort_stream(stream)
        stream = await self.host.new_stream(to_libp2p_id(cmd.peer), [cmd.protocol])
        try:
            reply = await self._write_read(stream, frame, cmd)
        except BaseException:
            await abort_stream(stream)
            raise
        if cmd.expect_response and reply is not None:
            self._release(key, stream)
        else:
            await close_stream(stream)
        return reply

    async def _write_read(self, stream: INetStream, frame: bytes, cmd: Request) -> bytes | None:
        await stream.write(frame)
        if not cmd.expect_response:
            return None
        decoder = FrameDecoder(self.core.max_message_size(cmd.protocol))
        # The core times the request out; this bound only frees the task afterwards.
        with trio.move_on_after(self._idle_timeout):
            return await read_frame(stream, decoder)
        return None

    def _release(self, key: tuple[PeerId, str], stream: INetStream) -> None:
        pool = self._pool.setdefault(key, [])
        if len(pool) < _POOL_SIZE and not self.closed:
            pool.append(stream)
        elif self._nursery is not None:
            self._nursery.start_soon(close_stream, stream)

    # -- inbound requests -----------------------------------------------------------------------

    def _make_handler(self, protocol: str) -> Callable[[INetStream], Any]:
        async def handler(stream: INetStream) -> None:
            await self._serve_stream(protocol, stream)

        return handler

    async def _serve_stream(self, protocol: str, stream: INetStream) -> None:
        peer = from_libp2p_id(stream.muxed_conn.peer_id)
        decoder = FrameDecoder(self.core.max_message_size(protocol))
        clean = False
        try:
            while not self.closed:
                frame = None
                with trio.move_on_after(self._idle_timeout):
                    frame = await read_frame(stream, decoder)
                if frame is None:  # clean end of stream, or idle too long
                    break
                if not await self._answer(peer, protocol, stream, frame):
                    break
            clean = True
        except RemoteProtocolError as exc:
            self.core.on_bad_message(peer, protocol, str(exc), self.now())
            self.pump()
        except Exception as exc:
            log.debug("inbound %s stream from %s ended: %s", protocol, peer.short(), exc)
        finally:
            if clean:
                await close_stream(stream)
            else:
                await abort_stream(stream)

    async def _answer(self, peer: PeerId, protocol: str, stream: INetStream, frame: bytes) -> bool:
        """Hand one request to the core and write its answer; False ends the stream."""
        token = next(self._tokens)
        slot = self._slots[token] = _Slot()
        try:
            self.core.on_request(peer, protocol, token, frame, self.now())
            self.pump()
            if not slot.answered:
                with trio.move_on_after(self._idle_timeout):
                    await slot.event.wait()
        finally:
            del self._slots[token]
        if slot.message is None:
            return False
        data = self.core.encode(protocol, slot.message)
        await stream.write(encode_frame(data, self.core.max_message_size(protocol)))
        return True
