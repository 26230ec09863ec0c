"""RPC calls over libp2p streams (trio): :class:`RpcTransport`.

Theory of operation. One call is one yamux stream on the one connection to the peer, so
connections are reused across calls and calls are multiplexed with flow control per call
(the yamux window is the backpressure; nothing here buffers without bound). The wire protocol
and its rules are in :mod:`.frames` and :mod:`.call`; the caller's half is
:class:`~.client_call.ClientCall`, the server's :class:`~.server_call.ServerCall`.

``attach(nursery)`` registers the stream handler; each inbound call runs as a task in that
nursery (cancelling the nursery cancels every handler, and their clients hear "cancelled").
With no ``handler`` the transport is client-only: the protocol is not registered, and a peer
that opens a call to us fails to negotiate it.
"""

from __future__ import annotations

import itertools
import math
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import trio
from libp2p.peer.id import ID

from ..errors import ConfigError, DeadlineExceeded, NetworkError
from ..identity.peerid import PeerId
from ._io import reset_quietly
from .call import Role, RpcCall
from .client_call import ClientCall
from .frames import DEFAULT_MAX_MESSAGE_SIZE, Kind, Open
from .server_call import ServerCall, serve_stream

__all__ = ["RPC_PROTOCOL", "RpcTransport"]

RPC_PROTOCOL = "/micronetwork/rpc/1.0.0"
_MIN_MESSAGE_SIZE = 1024


class RpcTransport:
    """Opens calls to peers and serves the calls peers open to us.

    ``max_message_size`` bounds one message (the CBOR body of a Data frame) both ways: we
    refuse to send a larger one (:class:`MessageTooLarge`, nothing written) and a peer that
    sends one gets Status / Cancel "message_too_large" and a reset stream. ``open_timeout``
    bounds how long an inbound stream may take to send its Open; ``read_ahead`` is how many
    requests are read ahead of a handler.
    """

    def __init__(
        self,
        host: Any,
        *,
        protocol: str = RPC_PROTOCOL,
        max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
        handler: Callable[[ServerCall], Awaitable[None]] | None = None,
        open_timeout: float = 10.0,
        read_ahead: int = 4,
    ) -> None:
        if max_message_size < _MIN_MESSAGE_SIZE:
            raise ConfigError(f"max_message_size must be at least {_MIN_MESSAGE_SIZE} bytes")
        if read_ahead < 0:
            raise ConfigError("read_ahead must not be negative")
        self.host = host
        self.protocol = protocol
        self.max_message_size = max_message_size
        self.handler = handler
        self.open_timeout = open_timeout
        self.read_ahead = read_ahead
        self.counters: Counter[str] = Counter()
        self._nursery: trio.Nursery | None = None
        self._ids = itertools.count(1)
        self._serving = 0

    def attach(self, nursery: trio.Nursery) -> None:
        """Serve inbound calls (if there is a handler) as tasks in ``nursery``."""
        self._nursery = nursery
        if self.handler is not None:
            self.host.set_stream_handler(self.protocol, self._on_stream)

    def stats(self) -> dict[str, int]:
        """Counters: calls_opened, calls_served, frames_/bytes_ sent and received, errors_sent
        and errors_received (non-ok Status), cancels_sent, calls_cancelled_by_client,
        deadline_exceeded, too_large_received, protocol_errors, streams_broken,
        open_failures; and in_flight (calls being served now)."""
        out = dict(self.counters)
        out["in_flight"] = self._serving
        return out

    async def open_call(
        self,
        peer: PeerId,
        service: str,
        endpoint: str,
        *,
        kind: Kind | str,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,
    ) -> ClientCall:
        """Open a call on a new stream to ``peer`` (dialled if not connected, from the
        peerstore's addresses). Use the result as ``async with``. Raises
        :class:`NetworkError` if no stream could be opened, :class:`DeadlineExceeded` if
        ``timeout`` passed first, :class:`LocalProtocolError` for a malformed Open (unknown
        kind, empty names, too many or too large headers)."""
        now = trio.current_time()
        deadline = None if timeout is None else now + timeout
        state = RpcCall(Role.CLIENT, max_message_size=self.max_message_size, deadline=deadline)
        frame = Open(
            next(self._ids), service, endpoint, kind,  # type: ignore[arg-type]
            state.remaining_ms(now), dict(headers or {}),
        )
        open_bytes = state.send(frame)  # checked before any I/O
        self.counters["frames_sent"] += 1
        stream = None
        with trio.move_on_at(math.inf if deadline is None else deadline):
            try:
                stream = await self.host.new_stream(ID(bytes(peer)), [self.protocol])
            except (trio.Cancelled, trio.TooSlowError):
                raise
            except Exception as exc:
                self.counters["open_failures"] += 1
                raise NetworkError(f"could not open an RPC stream to {peer}: {exc}") from exc
        if stream is None:
            self.counters["deadline_exceeded"] += 1
            raise DeadlineExceeded(f"{service}.{endpoint}: no stream to {peer} within {timeout} s")
        self.counters["calls_opened"] += 1
        return ClientCall(peer, stream, state, open_bytes, self.counters)

    async def _on_stream(self, stream: Any) -> None:
        nursery, handler = self._nursery, self.handler
        if nursery is None or handler is None:
            await reset_quietly(stream)
            return
        peer = PeerId(stream.muxed_conn.peer_id.to_bytes())
        done = trio.Event()

        async def run() -> None:
            self._serving += 1
            try:
                await serve_stream(
                    stream, peer, handler,
                    max_message_size=self.max_message_size, counters=self.counters,
                    open_timeout=self.open_timeout, read_ahead=self.read_ahead,
                )
            finally:
                self._serving -= 1
                done.set()

        try:
            nursery.start_soon(run)
        except RuntimeError:  # the nursery is closed: we are shutting down
            await reset_quietly(stream)
            return
        # py-libp2p counts the stream as open while its handler runs.
        await done.wait()
