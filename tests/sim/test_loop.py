"""The event heap: order, ties, the clock, stop."""

from __future__ import annotations

import pytest

from micronetwork.sim import EventLoop


def test_events_run_in_time_order_and_ties_in_scheduling_order() -> None:
    loop = EventLoop()
    out: list[str] = []
    loop.call_at(2.0, out.append, "c")
    loop.call_at(1.0, out.append, "a")
    loop.call_at(2.0, out.append, "d")
    loop.call_at(1.0, out.append, "b")
    assert loop.run() == 4
    assert out == ["a", "b", "c", "d"]
    assert loop.now == 2.0


def test_run_until_stops_at_end_and_sets_the_clock() -> None:
    loop = EventLoop()
    out: list[int] = []
    for t in (1, 2, 3, 4):
        loop.call_at(float(t), out.append, t)
    assert loop.run_until(2.5) == 2
    assert loop.now == 2.5 and out == [1, 2]
    assert len(loop) == 2
    loop.run_until(10.0)
    assert out == [1, 2, 3, 4] and loop.now == 10.0


def test_stop_and_max_events_and_registered_kinds() -> None:
    loop = EventLoop()
    seen: list[tuple[object, object, object]] = []
    kind = loop.register(lambda a, b, c: seen.append((a, b, c)))
    loop.push(1.0, kind, 1, 2, 3)
    loop.call_at(2.0, loop.stop)
    loop.push(3.0, kind, 4, 5, 6)
    assert loop.run() == 2  # the stop event ran
    assert seen == [(1, 2, 3)] and loop.now == 2.0
    assert loop.run(max_events=1) == 1
    assert seen[-1] == (4, 5, 6)


def test_past_events_run_now() -> None:
    loop = EventLoop()
    loop.run_until(5.0)
    times: list[float] = []
    loop.call_at(1.0, lambda: times.append(loop.now))
    loop.run()
    assert times == [5.0]


def test_event_counts_at_every_way_out_of_the_loop() -> None:
    loop = EventLoop()
    out: list[int] = []
    for t in range(1, 7):
        loop.call_at(float(t), out.append, t)
    assert loop.run(max_events=0) == 0 and out == []
    assert loop.run(max_events=2) == 2 and out == [1, 2]  # the limit
    assert loop.run_until(3.5, max_events=5) == 1 and loop.now == 3.5  # the end first
    assert loop.run_until(10.0, max_events=1) == 1 and out == [1, 2, 3, 4]  # the limit first
    assert len(loop) == 2  # the unused end sentinel is gone
    assert loop.run(max_events=10) == 2 and out == [1, 2, 3, 4, 5, 6]  # the heap ran empty
    assert loop.run() == 0
    assert loop.events_run == 6


def test_a_negative_event_limit_is_refused() -> None:
    with pytest.raises(ValueError, match="max_events"):
        EventLoop().run(max_events=-1)
