"""The event heap on a virtual clock.

Theory of operation. An event is a tuple ``(time, seq, kind, a, b, c)`` on a binary heap
(``heapq``). ``seq`` is a counter that breaks ties, so events at the same time run in the order
they were scheduled: together with a seeded RNG this makes every run a pure function of its seed.
``kind`` indexes a table of handlers registered once (``register``); running an event is one
``heappop``, one list index and one call with the three payload slots, with no per-event closure
or bound-method allocation, and the loop counts events in C (``itertools.count`` / ``range``).
That keeps it at ~0.8x the events per second of a bare ``heapq`` loop that only pops and pushes
(~1.0 M against ~1.2 M here; ``benchmarks/sim_events.py``).

Hot paths may push without the method call: ``heappush(loop.heap, (when, next(loop.counter),
kind, a, b, c))`` is exactly what :meth:`push` does (the simulator does this per message).

``call_at``/``call_later`` schedule an arbitrary callable (kind 0) for the rarer, scripted
events (faults, churn, measurements); the hot path of the simulator uses its own kinds.
Time never goes backwards: an event scheduled in the past runs at the current time.
"""

from __future__ import annotations

import gc
import heapq
import itertools
import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["EventLoop", "Handler", "no_gc"]

Handler = Callable[[Any, Any, Any], None]


class _Stop(Exception):
    """Raised by the end-of-run sentinel and by :meth:`EventLoop.stop` to leave the loop."""


def _call(fn: Any, args: Any, _unused: Any) -> None:
    fn(*args)


class _End(_Stop):
    """The end-of-run sentinel was reached."""


def _sentinel(a: Any, b: Any, c: Any) -> None:
    raise _End


class EventLoop:
    """A virtual clock and its event heap. ``now`` is the time of the event being run."""

    __slots__ = ("now", "_heap", "_count", "_handlers", "events_run", "heap", "counter")

    CALL = 0
    _SENTINEL = 1

    def __init__(self, start: float = 0.0) -> None:
        self.now = start
        self._heap: list[tuple[float, Any, int, Any, Any, Any]] = []
        self._count = itertools.count(1)
        self.heap = self._heap  # public aliases for inline pushes on hot paths
        self.counter = self._count
        self._handlers: list[Handler] = [_call, _sentinel]
        self.events_run = 0

    def register(self, handler: Handler) -> int:
        """Add an event kind; returns its number for :meth:`push`."""
        self._handlers.append(handler)
        return len(self._handlers) - 1

    def push(self, when: float, kind: int, a: Any = None, b: Any = None, c: Any = None) -> None:
        """Schedule event ``kind`` with payload ``(a, b, c)`` at ``when`` (>= ``now``)."""
        heapq.heappush(self._heap, (when, next(self._count), kind, a, b, c))

    def call_at(self, when: float, fn: Callable[..., None], *args: Any) -> None:
        """Run ``fn(*args)`` at ``when`` (or now, if ``when`` has passed)."""
        self.push(when if when > self.now else self.now, 0, fn, args)

    def call_later(self, delay: float, fn: Callable[..., None], *args: Any) -> None:
        self.push(self.now + max(0.0, delay), 0, fn, args)

    def __len__(self) -> int:
        return sum(1 for e in self._heap if e[2] != self._SENTINEL)

    def peek(self) -> float | None:
        """Time of the next event, or None when the heap is empty."""
        return self._heap[0][0] if self._heap else None

    def stop(self) -> None:
        """Called from a handler: the running :meth:`run_until` returns after this event."""
        raise _Stop

    def run_until(self, end: float, max_events: int | None = None) -> int:
        """Run events with time <= ``end``; the clock then reads ``end``. Returns events run.

        A sentinel event at ``(end, +inf)`` sorts after every event at ``end``, so the hot loop
        needs no time comparison: popping the sentinel (or an empty heap, when ``end`` is
        infinite) ends it.
        """
        if max_events is not None and max_events < 0:
            raise ValueError(f"max_events must be >= 0, not {max_events}")
        heap = self._heap
        handlers = self._handlers
        pop = heapq.heappop
        finite = end != math.inf
        sentinel = (end, math.inf, self._SENTINEL, None, None, None)
        if finite:
            heapq.heappush(heap, sentinel)
        # n is the number of the event being run (those before it ran): counting in C with
        # ``count``/``range`` instead of ``n += 1`` per event is ~1.2x the events per second.
        n = 0
        consumed = not finite
        try:
            if max_events is None:
                for n in itertools.count():  # noqa: B007 (read after the loop)
                    t, _, kind, a, b, c = pop(heap)
                    self.now = t
                    handlers[kind](a, b, c)
            else:
                for n in range(max_events):  # noqa: B007
                    t, _, kind, a, b, c = pop(heap)
                    self.now = t
                    handlers[kind](a, b, c)
                n = max_events
        except _End:
            consumed = True
        except _Stop:
            n += 1  # stop() was called by a handler, which ran
        except IndexError:
            if heap:  # raised by a handler, not by an empty heap
                raise
        if not consumed:
            self._remove(sentinel)
        self.events_run += n
        return n

    def _remove(self, sentinel: tuple[float, Any, int, Any, Any, Any]) -> None:
        heap = self._heap
        for i, e in enumerate(heap):
            if e is sentinel:
                heap[i] = heap[-1]
                heap.pop()
                if i < len(heap):
                    heapq.heapify(heap)
                return

    def run(self, max_events: int | None = None) -> int:
        """Run until the heap is empty (or ``max_events``)."""
        return self.run_until(math.inf, max_events)


@contextmanager
def no_gc() -> Iterator[None]:
    """The cyclic GC off while a simulation runs: a 10k-node run holds millions of objects,
    full collections cost ~30 % of the run, and the event path makes no reference cycles
    (plain reference counting frees it)."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()
