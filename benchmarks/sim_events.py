"""Event loop speed: our EventLoop vs a bare heapq loop, and a Kademlia scenario's events/s.

Question (issue 3): does the simulator's core loop reach 1,000,000 events/s on one core (a bare
heapq loop: about 1.3M on the issue author's machine), and how many events/s does a Kademlia
scenario (the real core doing the work behind each event) reach?

Two workloads, each run alternately for both loops (bare, ours, bare, ours, ...). "hold": a
heap of ``pending`` events, each of which schedules one successor at a pseudo-random later time. The
bare loop is ``heappop`` + ``heappush`` of ``(time, seq)`` inline; ours runs a registered
handler per event through :class:`micronetwork.sim.EventLoop` (the handler pushes the
successor with ``loop.push``), i.e. everything the simulator's own dispatch costs.

    python benchmarks/sim_events.py --quick
    python benchmarks/sim_events.py
"""

from __future__ import annotations

import argparse
import heapq
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common  # noqa: E402
from micronetwork.sim import EventLoop  # noqa: E402
from micronetwork.sim.scenarios import RunParams  # noqa: E402

NAME = "sim_events"
_STEP = [((i * 7919) % 1000) / 1000.0 + 0.001 for i in range(4096)]  # fixed delays, no RNG cost


def bare(n_events: int, pending: int) -> float:
    heap = [(_STEP[i % 4096], i) for i in range(pending)]
    heapq.heapify(heap)
    pop, push = heapq.heappop, heapq.heappush
    seq = pending
    steps = _STEP
    t0 = time.perf_counter()
    for _ in range(n_events):
        t, _ = pop(heap)
        seq += 1
        push(heap, (t + steps[seq & 4095], seq))
    return n_events / (time.perf_counter() - t0)


def ours(n_events: int, pending: int) -> float:
    loop = EventLoop()
    steps = _STEP
    push = loop.push
    heap, counter, hpush = loop.heap, loop.counter, heapq.heappush

    def handler(a: Any, b: Any, c: Any) -> None:
        # what the simulator's handlers do: an inline push of the successor event
        s = next(counter)
        hpush(heap, (loop.now + steps[s & 4095], s, kind, a, None, None))

    kind = loop.register(handler)
    for i in range(pending):
        push(_STEP[i % 4096], kind, i, None, None)
    t0 = time.perf_counter()
    loop.run(max_events=n_events)
    return n_events / (time.perf_counter() - t0)


def bare_drain(n_events: int) -> float:
    heap = [(_STEP[i % 4096] * i, i) for i in range(n_events)]
    heapq.heapify(heap)
    pop = heapq.heappop
    t0 = time.perf_counter()
    while heap:
        t, _ = pop(heap)
    return n_events / (time.perf_counter() - t0)


def ours_drain(n_events: int) -> float:
    loop = EventLoop()

    def handler(a: Any, b: Any, c: Any) -> None:
        pass

    kind = loop.register(handler)
    for i in range(n_events):
        loop.push(_STEP[i % 4096] * i, kind)
    t0 = time.perf_counter()
    loop.run()
    return n_events / (time.perf_counter() - t0)


def kademlia(nodes: int, lookups: int) -> dict[str, Any]:
    p = RunParams(nodes=nodes, seed=1, lookups=lookups)
    sc = p.scenario(None)
    t0 = time.perf_counter()
    sc.build()
    sc.refresh_all()
    t1 = time.perf_counter()
    e1 = sc.sim.loop.events_run
    sc.lookups(lookups)
    t2 = time.perf_counter()
    e2 = sc.sim.loop.events_run
    return {
        "nodes": nodes,
        "build_events": e1,
        "build_events_per_s": e1 / (t1 - t0),
        "lookup_events": e2 - e1,
        "lookup_events_per_s": (e2 - e1) / (t2 - t1),
        "requests_per_s_build": sc.sim.metrics.counters["requests"] / (t2 - t0),
        "events_per_request": e2 / max(1, sc.sim.metrics.counters["requests"]),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--reps", type=int, default=7)
    args = ap.parse_args()
    started = _common.now_iso()
    n_events = 200_000 if args.quick else 2_000_000
    reps = 3 if args.quick else args.reps
    pending = 10_000
    b_runs, o_runs, bd_runs, od_runs = [], [], [], []
    for _ in _common.progress(reps, "bare vs ours"):
        b_runs.append(bare(n_events, pending))
        o_runs.append(ours(n_events, pending))
        bd_runs.append(bare_drain(n_events // 2))
        od_runs.append(ours_drain(n_events // 2))
    b, o = _common.summarize(b_runs), _common.summarize(o_runs)
    bd, od = _common.summarize(bd_runs), _common.summarize(od_runs)
    kad = kademlia(200 if args.quick else 2000, 100 if args.quick else 500)
    figures = {
        "event_loop_events_per_s": o,
        "dispatch_only_events_per_s": od,
        "kademlia_scenario": kad,
        "goal_event_loop": 1_000_000,
        "goal_kademlia": 500_000,
    }
    params = {
        "events_per_rep": n_events,
        "reps": reps,
        "pending_events": pending,
        "kademlia": "lookup scenario: build + refresh + lookups, U(20,120) ms, 10 ms CPU",
    }
    path = _common.write_result(
        NAME + ("_quick" if args.quick else ""),
        _common.command_line(),
        params,
        figures,
        baseline={"bare_heapq_events_per_s": b, "bare_heapq_drain_events_per_s": bd},
        ratio=_common.ratio(o, b, better="higher"),
        started=started,
    )
    _common.print_table(
        [
            {"loop": "bare heapq", "median ev/s": b["median"], "p10": b["p10"], "p90": b["p90"]},
            {"loop": "EventLoop", "median ev/s": o["median"], "p10": o["p10"], "p90": o["p90"]},
            {
                "loop": "bare heapq, pop only",
                "median ev/s": bd["median"],
                "p10": bd["p10"],
                "p90": bd["p90"],
            },
            {
                "loop": "EventLoop, no-op handler",
                "median ev/s": od["median"],
                "p10": od["p10"],
                "p90": od["p90"],
            },
        ],
        "event loop, events per second (one core)",
    )
    _common.print_table([{k: v for k, v in kad.items()}], "Kademlia scenario")
    print(f"ratio ours/bare: {o['median'] / b['median']:.3f}; wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
