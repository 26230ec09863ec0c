"""Pieces shared by the pub/sub benchmarks that run ours and py-libp2p side by side.

* :class:`Deliveries`: counts what subscribers receive (first copies, duplicates, latency from
  a publish time carried in the payload, CPU and wall time of the last first delivery), for
  many publishers x many subscribers. The payload starts with :data:`HEADER` (publisher
  index, message index, ``time.perf_counter()`` at publish); both sides run in one process,
  so publish and receive times are on the same clock.
* :func:`neighbours`, :func:`wait_until`: the topology bookkeeping and the bounded polling
  that the harnesses use before timing (neither implementation has an event for "the mesh is
  formed").
"""

from __future__ import annotations

import struct
import time
from collections.abc import Callable, Sequence
from typing import Any

import trio

HEADER = struct.Struct(">HId")  # publisher index, message index, publish time (perf_counter)


def make_payload(pub: int, k: int, pad: bytes) -> bytes:
    """A payload of ``HEADER.size + len(pad)`` bytes stamped with the publish time now."""
    return HEADER.pack(pub, k, time.perf_counter()) + pad


def neighbours(n: int, edges: Sequence[tuple[int, int]]) -> list[set[int]]:
    nb: list[set[int]] = [set() for _ in range(n)]
    for i, j in edges:
        nb[i].add(j)
        nb[j].add(i)
    return nb


async def wait_until(check: Callable[[], bool], timeout: float, poll: float = 0.05) -> bool:
    """Poll ``check()`` every ``poll`` s until it holds (True) or ``timeout`` s passed (False)."""
    with trio.move_on_after(timeout):
        while not check():
            await trio.sleep(poll)
        return True
    return False


class Deliveries:
    """First deliveries of ``publishers x messages`` at each of ``subscribers``.

    ``callback(j)`` is subscriber ``j``'s ``on_data(payload)``; ``done`` is set once every
    subscriber has every message. Call :meth:`start` right before the first publish.
    """

    def __init__(self, publishers: int, subscribers: int, messages: int) -> None:
        self.publishers, self.subscribers, self.messages = publishers, subscribers, messages
        self.expected = publishers * subscribers * messages
        self.seen = [bytearray(publishers * messages) for _ in range(subscribers)]
        self.per_subscriber = [0] * subscribers
        self.latencies: list[float] = []
        self.count = 0
        self.duplicates = 0
        self.foreign = 0  # payloads that do not parse (should stay 0)
        self.t0 = self.cpu0 = self.last_t = self.last_cpu = self.activity = 0.0
        self.done = trio.Event()

    def start(self) -> None:
        self.cpu0, self.t0 = time.process_time(), time.perf_counter()
        self.last_cpu, self.last_t, self.activity = self.cpu0, self.t0, self.t0

    def callback(self, j: int) -> Callable[[bytes], None]:
        seen = self.seen[j]
        m = self.messages

        def on_data(data: bytes) -> None:
            t = time.perf_counter()
            try:
                p, k, ts = HEADER.unpack_from(data)
            except struct.error:
                self.foreign += 1
                return
            if p >= self.publishers or k >= m:
                self.foreign += 1
                return
            i = p * m + k
            if seen[i]:
                self.duplicates += 1
                return
            seen[i] = 1
            self.latencies.append(t - ts)
            self.count += 1
            self.per_subscriber[j] += 1
            self.last_t = self.activity = t
            self.last_cpu = time.process_time()
            if self.count >= self.expected:
                self.done.set()

        return on_data

    def result(self) -> dict[str, Any]:
        count, span = self.count, self.last_t - self.t0
        lat = sorted(self.latencies)

        def q(p: float) -> float | None:
            return lat[min(len(lat) - 1, int(p * len(lat)))] if lat else None

        complete = sum(1 for c in self.per_subscriber if c == self.publishers * self.messages)
        return {
            "expected": self.expected,
            "delivered": count,
            "delivered_ratio": count / self.expected if self.expected else None,
            "missing": self.expected - count,
            "duplicates_to_app": self.duplicates,
            "unparsable_to_app": self.foreign,
            "subscribers_complete": complete,
            "exactly_once": count == self.expected and self.duplicates == 0,
            "per_subscriber_min_max": [min(self.per_subscriber), max(self.per_subscriber)],
            "span_s": span,
            "deliveries_per_s": count / span if count and span > 0 else 0.0,
            "cpu_s": self.last_cpu - self.cpu0,
            "cpu_s_per_delivery": (self.last_cpu - self.cpu0) / count if count else None,
            "latency_p50_s": q(0.50),
            "latency_p99_s": q(0.99),
            "latency_max_s": lat[-1] if lat else None,
        }
