"""Our side of benchmarks/discovery.py: the same three measurements on micronetwork's Node.

Same shapes as ``_pylibp2p_baseline.py``: one sample (seconds) per repetition, fresh nodes for
every repetition, all closed before returning, everything under ``trio.fail_after``. What is
timed matches the baseline's timed section (host start and stop are not timed).
"""

from __future__ import annotations

import os
import statistics
import time
from contextlib import AsyncExitStack

import trio

from micronetwork import Node, NodeConfig, PeerAdded


def _key() -> bytes:
    return b"/mn/" + os.urandom(32)


async def ours_connect_time(reps: int = 1, timeout: float = 20.0) -> list[float]:
    """``await a.connect(b_addr)`` between two fresh nodes (TCP, Noise, yamux)."""
    samples = []
    for _ in range(reps):
        with trio.fail_after(timeout):
            async with Node.open() as a, Node.open() as b:
                t0 = time.perf_counter()
                await a.connect(b.addrs[0])
                samples.append(time.perf_counter() - t0)
    return samples


async def ours_find_node_rtt(
    reps: int = 1, queries: int = 20, timeout: float = 30.0
) -> list[float]:
    """One FIND_NODE round trip: ``a.find_closest(key)`` when b is a's only DHT peer, so the
    lookup is exactly one request to b and its answer (through the core, the driver, a pooled
    yamux stream and back). Median of ``queries`` per repetition, after one warm-up."""
    samples = []
    for _ in range(reps):
        with trio.fail_after(timeout + 10.0 * queries):
            async with Node.open() as b, Node.open(NodeConfig.peer(bootstrap=(b.addrs[0],))) as a:
                await a.find_closest(_key())
                times = []
                for _q in range(queries):
                    t0 = time.perf_counter()
                    await a.find_closest(_key())
                    times.append(time.perf_counter() - t0)
                samples.append(statistics.median(times))
    return samples


async def ours_time_to_learn_peers(
    reps: int = 1, n: int = 20, target: int = 20, timeout: float = 30.0
) -> list[float]:
    """A super node + ``n`` peers that each joined through it (untimed); a fresh running node
    is then timed from ``bootstrap(super_addr)`` until its routing table holds ``target``
    peers (counted from its own PeerAdded events, no polling)."""
    if n + 1 < target:
        raise ValueError(f"a network of {n} nodes + bootstrap cannot fill {target} entries")
    samples = []
    for _ in range(reps):
        with trio.fail_after(timeout + 60.0 + 1.0 * n):
            async with AsyncExitStack() as stack:
                sup = await stack.enter_async_context(Node.open(NodeConfig.super_node()))
                boot = sup.addrs[0]
                for _i in range(n):  # sequential: each context is entered and left here
                    await stack.enter_async_context(Node.open(NodeConfig.peer(bootstrap=(boot,))))
                fresh = await stack.enter_async_context(Node.open())
                reached = trio.Event()
                count = 0

                def on_event(ev: object, reached: trio.Event = reached) -> None:
                    nonlocal count
                    if isinstance(ev, PeerAdded):
                        count += 1
                        if count >= target:
                            reached.set()

                fresh.on_peer_event(on_event)
                with trio.fail_after(timeout):
                    t0 = time.perf_counter()
                    async with trio.open_nursery() as nursery:
                        nursery.start_soon(fresh.bootstrap, (boot,))
                        await reached.wait()
                        samples.append(time.perf_counter() - t0)
                        nursery.cancel_scope.cancel()
    return samples
