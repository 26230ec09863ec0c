"""The baseline: py-libp2p's own stack (0.8.1) with its defaults, on 127.0.0.1.

Every host is ``libp2p.new_host()`` with no arguments but the listen address (TCP, its default
security/muxer, default ``ConnectionConfig``, default resource manager); every DHT is
``libp2p.kad_dht.KadDHT(host, DHTMode.SERVER)`` with its defaults (random walk off).
Each function returns one sample (seconds) per repetition, builds fresh hosts for every
repetition and stops them all before returning; everything is bounded by ``trio.fail_after``.

Measured behaviour of py-libp2p 0.8.1 that these figures rest on (read in its source):

* ``BasicHost.connect`` -> ``Swarm.dial_peer`` dials the addresses happy-eyeballs style: after
  starting a dial it waits ``_HAPPY_EYEBALLS_DELAY`` (250 ms) for that dial to *fail*; a
  success only cuts the wait short once ``max_connections_per_peer`` (default 3) connections
  exist. So with one address every connect costs ~250 ms + the handshake.
* ``KadDHT`` learns a peer only (a) when that peer opens a Kademlia stream to it
  (``_do_handle_stream`` -> ``add_peer(skip_server_mode_check=True)``) or (b) from the
  ``closerPeers`` of its own FIND_NODE answers (``PeerRouting._query_peer_for_closest``).
  A plain ``host.connect`` adds nothing to the routing table; there is no bootstrap call.
  ``RoutingTable.add_peer`` refuses a peer whose identify protocol list is known and lacks
  ``/ipfs/kad/1.0.0`` (peers learnt from answers have no identify data yet, so they pass).
* ``KadDHT.handle_stream`` *resets* an inbound stream when 12 handlers are already busy
  (``_inbound_limiter``). In a trial, 20 nodes joining one bootstrap at once left it
  knowing only 12 of them, so the networks below are joined with at most
  ``JOIN_CONCURRENCY`` at once.
* ``KadDHT.run`` refreshes its table once at start (empty then) and then only every
  ``ROUTING_TABLE_REFRESH_INTERVAL``; a new node must call ``refresh_routing_table()``.
"""

from __future__ import annotations

import logging
import os
import time
from contextlib import AsyncExitStack
from typing import Any

import multiaddr
import trio

LISTEN = "/ip4/127.0.0.1/tcp/0"
JOIN_CONCURRENCY = 6  # < KadDHT's inbound limit of 12 streams (see module docstring)
POLL_INTERVAL = 0.002  # routing-table size poll while waiting for the target
CLOSE_TIMEOUT = 60.0  # bound on tearing down one repetition's hosts


def quiet_logging() -> None:
    """py-libp2p logs expected events (peer closed a stream, reset streams) as warnings.

    ``import libp2p`` runs its ``setup_logging()``, which sets the ``libp2p`` logger to
    WARNING with no handler and no propagation (so warnings reach logging's last-resort
    stderr handler): quiet it *after* importing libp2p, and give it a NullHandler.
    """
    import libp2p  # noqa: F401  (its import configures logging; do that first)

    lg = logging.getLogger("libp2p")
    lg.setLevel(logging.CRITICAL + 1)
    lg.propagate = False
    if not any(isinstance(h, logging.NullHandler) for h in lg.handlers):
        lg.addHandler(logging.NullHandler())
    logging.getLogger("multiaddr").setLevel(logging.CRITICAL)


quiet_logging()


class _Hosts:
    """Fresh py-libp2p hosts (and DHTs) for one repetition, all stopped on exit.

    Teardown, learnt the hard way:

    * Leaving ``host.run()`` only stops the swarm's service manager; it does not call
      ``Swarm.close()``, so every TCP listener (a trio *system* task with its own nursery)
      and its listening socket outlive the host: ~3 leaked tasks per host, accumulating over
      repetitions in one process. So ``host.close()`` is called explicitly.
    * ``host.close()`` closes its connections one after another, and each close sleeps
      2 x 100 ms (``SwarmConn._cleanup`` and ``Yamux.close``): a bootstrap with 50
      connections takes >10 s. So all hosts are closed concurrently (shielded from the
      caller's ``fail_after``, so a timed-out repetition still releases its sockets, and
      bounded by ``CLOSE_TIMEOUT``), then the contexts unwind.
    """

    def __init__(self) -> None:
        # One stack for host.run() and KadDHT contexts alike: they open trio nurseries, which
        # must unwind in exact LIFO order (two interleaved stacks corrupt trio's scope stack).
        self._stack = AsyncExitStack()
        self._hosts: list[Any] = []

    async def __aenter__(self) -> _Hosts:
        return self

    async def __aexit__(self, *exc: object) -> None:
        # Shielded (a timed-out repetition still releases its sockets) and bounded.
        with trio.CancelScope(shield=True), trio.move_on_after(CLOSE_TIMEOUT):
            async with trio.open_nursery() as nursery:
                for host in self._hosts:
                    nursery.start_soon(host.close)
        # Not inside a new cancel scope: the contexts' nurseries were opened in the
        # caller's scope and must be exited there.
        await self._stack.aclose()

    async def host(self) -> Any:
        """A py-libp2p default host (``new_host()``) listening on 127.0.0.1."""
        from libp2p import new_host

        host = new_host()
        await self._stack.enter_async_context(
            host.run(listen_addrs=[multiaddr.Multiaddr(LISTEN)]))
        self._hosts.append(host)
        return host

    async def dht(self) -> tuple[Any, Any]:
        """A default host with a server-mode ``KadDHT`` (defaults) running on it."""
        from libp2p.kad_dht import DHTMode, KadDHT
        from libp2p.tools.anyio_service import background_trio_service

        host = await self.host()
        dht = KadDHT(host, DHTMode.SERVER)
        await self._stack.enter_async_context(background_trio_service(dht))
        return host, dht


def _info(host: Any) -> Any:
    from libp2p.peer.peerinfo import PeerInfo

    return PeerInfo(host.get_id(), host.get_addrs())


def _random_key() -> bytes:
    # FIND_NODE keys are peer ids (multihashes); a random sha2-256 multihash is a valid one.
    return bytes([0x12, 0x20]) + os.urandom(32)


# -- a. connection set-up -----------------------------------------------------------------------


async def connect_time(reps: int = 1, timeout: float = 20.0) -> list[float]:
    """Seconds for ``host.connect(peer_info)`` between two fresh default hosts.

    Timed: ``await a.connect(PeerInfo(b.id, b.addrs))`` only (TCP + multistream + Noise
    + yamux negotiation + swarm bookkeeping, including the 250 ms happy-eyeballs wait);
    host start and stop are not timed.
    """
    samples: list[float] = []
    for _ in range(reps):
        with trio.fail_after(timeout):
            async with _Hosts() as hosts:
                a = await hosts.host()
                b = await hosts.host()
                info = _info(b)
                t0 = time.perf_counter()
                await a.connect(info)
                samples.append(time.perf_counter() - t0)
    return samples


# -- b. one FIND_NODE round trip ----------------------------------------------------------------


async def find_node_rtt(reps: int = 1, queries: int = 20, timeout: float = 30.0) -> list[float]:
    """Seconds for one Kademlia FIND_NODE request/response to a connected server-mode peer.

    Two fresh hosts with server-mode KadDHTs, A connected to B (untimed). The call timed is
    ``A.peer_routing._query_peer_for_closest(B, key)``: the single-peer query inside
    py-libp2p's iterative lookup (``find_closest_peers_network`` runs it against up to ALPHA
    peers per round). It opens a new stream on the existing connection (multistream-select
    of ``/ipfs/kad/1.0.0``), sends FIND_NODE with A's signed peer record, reads and verifies
    the answer, and closes the stream -- a request/response as py-libp2p does it. There is
    no public single-peer call; the public lookup would add per-round overhead and queries
    to other peers. One untimed warm-up query precedes the timed ones (B's table then holds
    A, so answers carry at most one peer, and they exclude A itself).

    Returns one sample per repetition: the median of ``queries`` timed queries.
    """
    import statistics

    samples: list[float] = []
    for _ in range(reps):
        with trio.fail_after(timeout + 10.0 * queries):
            async with _Hosts() as hosts:
                a, dht_a = await hosts.dht()
                b, _dht_b = await hosts.dht()
                await a.connect(_info(b))
                b_id = b.get_id()
                with trio.fail_after(10.0):
                    await dht_a.peer_routing._query_peer_for_closest(b_id, _random_key())
                times: list[float] = []
                for _q in range(queries):
                    key = _random_key()
                    with trio.fail_after(10.0):
                        t0 = time.perf_counter()
                        await dht_a.peer_routing._query_peer_for_closest(b_id, key)
                        times.append(time.perf_counter() - t0)
                samples.append(statistics.median(times))
    return samples


# -- c. how long a new node takes to fill its routing table ------------------------------------


async def _build_network(hosts: _Hosts, n: int) -> tuple[Any, Any, list[Any]]:
    """One bootstrap + ``n`` server-mode nodes, each connected only to the bootstrap.

    Each node announces itself with one FIND_NODE (its own id) to the bootstrap, so the
    bootstrap's table holds all ``n`` (a bare connect would not add them: see module doc).
    Each node then knows only the bootstrap. Joins run at most ``JOIN_CONCURRENCY`` at a time
    to stay under the bootstrap's 12-stream inbound limit; stragglers announce again.
    """
    boot, boot_dht = await hosts.dht()
    boot_info = _info(boot)
    nodes = [await hosts.dht() for _ in range(n)]
    limiter = trio.CapacityLimiter(JOIN_CONCURRENCY)

    async def join(host: Any, dht: Any) -> None:
        async with limiter:
            await host.connect(boot_info)
            await dht.peer_routing._query_peer_for_closest(boot.get_id(),
                                                           host.get_id().to_bytes())

    async def announce(host: Any, dht: Any) -> None:
        async with limiter:
            await dht.peer_routing._query_peer_for_closest(boot.get_id(),
                                                           host.get_id().to_bytes())

    async with trio.open_nursery() as nursery:
        for host, dht in nodes:
            nursery.start_soon(join, host, dht)
    for _ in range(5):
        missing = [(h, d) for h, d in nodes if not boot_dht.routing_table.peer_in_table(h.get_id())]
        if not missing:
            break
        async with trio.open_nursery() as nursery:
            for host, dht in missing:
                nursery.start_soon(announce, host, dht)
    return boot, boot_dht, nodes


async def time_to_learn_peers(reps: int = 1, n: int = 20, target: int = 20,
                              timeout: float = 30.0) -> list[float]:
    """Seconds until a new node's routing table holds ``target`` peers.

    Network: see ``_build_network`` (untimed). A fresh server-mode node (host and DHT
    already running) is then timed from ``host.connect(bootstrap)`` until
    ``dht.get_routing_table_size() >= target``, polled every 2 ms, while it runs
    ``await dht.refresh_routing_table()`` -- py-libp2p's only public way to populate a table
    (a lookup of its own id through its connected peers, then one random-key lookup per
    non-empty bucket; each new peer contacted costs a 250 ms dial). The refresh is cancelled
    once the target is reached. ``target`` counts every peer in the table, the bootstrap too.
    """
    if n + 1 < target:
        raise ValueError(f"a network of {n} nodes + bootstrap cannot fill {target} entries")
    samples: list[float] = []
    for _ in range(reps):
        with trio.fail_after(timeout + 60.0 + 1.0 * n):
            async with _Hosts() as hosts:
                boot, boot_dht, _nodes = await _build_network(hosts, n)
                if boot_dht.get_routing_table_size() < min(n, target):
                    raise RuntimeError(
                        f"bootstrap learnt only {boot_dht.get_routing_table_size()} of {n} peers")
                host, dht = await hosts.dht()
                boot_info = _info(boot)

                async def join(host: Any, dht: Any, boot_info: Any) -> None:
                    await host.connect(boot_info)
                    await dht.refresh_routing_table()

                async with trio.open_nursery() as nursery:
                    with trio.fail_after(timeout):
                        t0 = time.perf_counter()
                        nursery.start_soon(join, host, dht, boot_info)
                        while dht.get_routing_table_size() < target:
                            await trio.sleep(POLL_INTERVAL)
                        samples.append(time.perf_counter() - t0)
                    nursery.cancel_scope.cancel()
    return samples


if __name__ == "__main__":  # smoke test: python benchmarks/_pylibp2p_baseline.py
    async def _main() -> None:
        print("connect_time", await connect_time(2))
        print("find_node_rtt", await find_node_rtt(2, queries=5))
        print("time_to_learn_peers", await time_to_learn_peers(1, n=20))

    trio.run(_main)
