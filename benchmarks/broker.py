"""Broker (issue 6): events per second end to end, many publishers x many subscribers, and the
speed of a replay from retention.

Part 1, "fan-in/fan-out" (ours vs py-libp2p's pubsub in the same run, alternating per
repetition). Ours: one super node (node 0; it retains the topic) + ``--publishers`` publisher
Nodes + ``--subscribers`` subscriber Nodes, all in ONE process on 127.0.0.1, connected as
``gossip_real.topology`` draws it (every node linked to node 0 and to ``--extra`` random others,
seeded per repetition, the same graph for both sides), dialled with ``node.connect`` (not by a
``bootstrap`` DHT join: 20 concurrent joins left most connections without gossip, see
docs/benchmarks.md). Each subscriber runs ``node.broker.subscribe(topic)`` (live only); each
publisher publishes ``--events`` events of ``--size`` bytes with
``node.broker.publish(topic, payload)``, all publishers at once, each publish awaited, no
pacing. py-libp2p 0.8.1: the same shape with ``Pubsub`` + ``GossipSub`` (the ``raised``
configuration of ``_pylibp2p_gossip.py``: heartbeat 1 s, spam limit off, per-peer outbound
queue and subscription channel raised to 1,000,000 so nothing is dropped by a full queue), a
hub node in the super node's place (subscribed to the topic, so it is in the mesh and relays as
our retaining super node does; its deliveries are not counted), and the same connection graph.
Signatures on in both (ours: each event is a
signed envelope and each gossip message is signed too; py-libp2p: strict signing).

Before timing, both wait (polling, bounded) until every publisher knows every subscribed
neighbour's subscription and every subscriber's mesh holds min(D_lo=5, its subscribed
neighbours). Per run: deliveries counted at the application, first copies only
(``_pubsub_common.Deliveries``): completeness (every subscriber got every event exactly once),
deliveries/s = deliveries / (last delivery - first publish), CPU per delivery =
``time.process_time()`` over that span (the whole process: all nodes) / deliveries, latency
p50/p99 = receive ``perf_counter`` - publish ``perf_counter`` written in the payload. The idle
CPU of each network (2 s before publishing) is reported too. A run ends when everything has
arrived; or, only after a drop was counted (py-libp2p's queues; our gossip/broker drop
counters, ``Missed``, ``Lagging``), ``--idle`` s after publishing with no new delivery; or at
``--timeout``.

Part 2, "replay from retention" (ours only: py-libp2p's pubsub keeps no history). A super node,
one publisher Node that publishes ``--retained`` events of ``--size`` bytes with
``retained=True`` (untimed fill, 32 at a time, then the publisher closes), then per
repetition a fresh subscriber Node (bootstrapped through the super node) runs
``subscribe(topic, since=0)``; timed from the ``subscribe`` call until ``sub.caught_up`` is set
and all events arrived: events/s, payload MB/s and signed-envelope MB/s.

    python benchmarks/broker.py --quick   # 10 x 10, 5 events per publisher, 1 rep: ~2 minutes
    python benchmarks/broker.py           # 10 x 10, 20 events each, 3 reps; replay of 10,000

(20 events per publisher, not 200: py-libp2p delivers ~30-50 events/s here, and the full run
has to stay within ~10 minutes on a shared 2-core machine.)

Writes benchmarks/results/broker.json (broker_quick.json with --quick) and a PNG beside it.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import traceback
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import trio

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _pylibp2p_gossip as theirs  # noqa: E402
from _common import (  # noqa: E402
    RESULTS_DIR,
    command_line,
    loadavg,
    now_iso,
    plot_bars,
    print_table,
    progress,
    ratio,
    summarize,
    write_result,
)
from _pubsub_common import HEADER, Deliveries, make_payload, neighbours, wait_until  # noqa: E402
from gossip_real import topology  # noqa: E402
from micronetwork import Node, NodeConfig  # noqa: E402
from micronetwork.broker import Event, Lagging, Missed, gossip_topic  # noqa: E402

NAME = "broker"
TOPIC = "bench.broker"  # broker topics: [a-z0-9][a-z0-9._-]*
REPLAY_TOPIC = "bench.replay"
READY_TIMEOUT = 20.0
IDLE_CPU_WINDOW = 2.0
D_LO = 5
FILL_CONCURRENCY = 32
# Handshakes of every node share one process: 16 at once (as gossip_real) took > 10 s here.
CONNECT_CONCURRENCY = 8
CONNECT_TIMEOUT = 60.0


# -- our network -----------------------------------------------------------------------------------


async def _run_node(config: NodeConfig, stop: trio.Event, topic: str | None,
                    task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
    """Open a Node (and a live subscription to ``topic`` if given) in a task of its own, so
    many can start at once; runs until ``stop`` is set."""
    async with Node.open(config) as node:
        if topic is None:
            task_status.started((node, None))
            await stop.wait()
            return
        async with node.broker.subscribe(topic) as sub:
            task_status.started((node, sub))
            await stop.wait()


@dataclass
class OurNet:
    """Node 0 the super node, 1..P publishers, P+1..P+S subscribers."""

    nodes: list[Any]
    subs: list[Any]  # per node: its Subscription or None
    publishers: int
    topic: str
    items: dict[str, int] = field(default_factory=lambda: {"missed": 0, "lagging": 0})
    config: dict[str, Any] = field(default_factory=dict)

    async def publish_from(self, p: int, data: bytes) -> None:
        await self.nodes[1 + p].broker.publish(self.topic, data)

    async def receive_loop(self, j: int, on_data: Any) -> None:
        async for item in self.subs[1 + self.publishers + j]:
            if isinstance(item, Event):
                on_data(item.payload)
            elif isinstance(item, Missed):
                self.items["missed"] += item.count
            elif isinstance(item, Lagging):
                self.items["lagging"] += 1

    async def drain_hub(self) -> None:
        return  # the super node retains; it has no application subscription

    def edges(self) -> list[tuple[int, int]]:
        index = {n.peer_id: i for i, n in enumerate(self.nodes)}
        out = set()
        for i, n in enumerate(self.nodes):
            for p in n.peers():
                j = index.get(p)
                if j is not None and j != i:
                    out.add((min(i, j), max(i, j)))
        return sorted(out)

    def mesh_sizes(self) -> list[int]:
        g = gossip_topic(self.topic)
        return [len(n.mesh_peers(g)) for n in self.nodes]

    def topic_peer_sets(self) -> list[set[int]]:
        g = gossip_topic(self.topic)
        index = {n.peer_id: i for i, n in enumerate(self.nodes)}
        return [{index[p] for p in n.topic_peers(g) if p in index} for n in self.nodes]

    def counters(self) -> dict[str, int]:
        total: dict[str, int] = {}
        for n in self.nodes:
            for k, v in n.stats().items():
                if k.startswith(("gossip_", "broker_")):
                    total[k] = total.get(k, 0) + v
        total["broker_facade_dropped"] = sum(n.broker.dropped for n in self.nodes)
        total["app_missed"] = self.items["missed"]
        total["app_lagging"] = self.items["lagging"]
        return total

    def drops(self) -> int:
        c = self.counters()
        return sum(v for k, v in c.items()
                   if "drop" in k or k in ("app_missed", "app_lagging"))


@asynccontextmanager
async def open_ours(publishers: int, subscribers: int, edges: Sequence[tuple[int, int]],
                    topic: str, seed: int) -> AsyncIterator[OurNet]:
    """Node 0 a super node, then publishers, then subscribers (each with a live
    ``broker.subscribe(topic)``), connected along ``edges`` with ``node.connect``."""
    stop = trio.Event()
    n = 1 + publishers + subscribers
    async with trio.open_nursery() as nursery:
        try:
            nodes: list[Any] = [None] * n
            subs: list[Any] = [None] * n
            for i in range(n):  # each in a task of its own; opening without bootstrap is fast
                cfg = (NodeConfig.super_node(seed=seed * 1000) if i == 0
                       else NodeConfig.peer(seed=seed * 1000 + i))
                nodes[i], subs[i] = await nursery.start(
                    _run_node, cfg, stop, topic if i > publishers else None)
            limiter = trio.CapacityLimiter(CONNECT_CONCURRENCY)

            async def dial(i: int, j: int) -> None:
                async with limiter:
                    await nodes[i].connect(nodes[j].addrs[0], timeout=CONNECT_TIMEOUT)

            t0 = time.perf_counter()
            async with trio.open_nursery() as dials:
                for i, j in edges:
                    dials.start_soon(dial, i, j)
            yield OurNet(nodes, subs, publishers, topic, config={
                "super": "node 0: NodeConfig.super_node() (retains every topic it hears of)",
                "others": "NodeConfig.peer() defaults, no bootstrap; edges dialled with "
                          "node.connect",
                "subscription": "node.broker.subscribe(topic), live (since=None)",
                "publish": "node.broker.publish(topic, payload), awaited",
                "connect_s": round(time.perf_counter() - t0, 2)})
        finally:
            stop.set()


# -- py-libp2p's network ---------------------------------------------------------------------------


@dataclass
class TheirNet:
    net: Any
    publishers: int
    topic: str

    @property
    def config(self) -> dict[str, Any]:
        return {**self.net.config, "hub": "node 0, subscribed (relays; not counted)"}

    async def publish_from(self, p: int, data: bytes) -> None:
        await self.net.nodes[1 + p].pubsub.publish(self.topic, data)

    async def receive_loop(self, j: int, on_data: Any) -> None:
        await self.net.receive_loop(1 + self.publishers + j, on_data)

    async def drain_hub(self) -> None:
        async for _ in self.net.nodes[0].sub:
            pass

    def mesh_sizes(self) -> list[int]:
        return list(self.net.mesh_sizes())

    def topic_peer_sets(self) -> list[set[int]]:
        index = {n.host.get_id(): i for i, n in enumerate(self.net.nodes)}
        return [{index[p] for p in n.pubsub.peer_topics.get(self.topic, ()) if p in index}
                for n in self.net.nodes]

    def counters(self) -> dict[str, int]:
        return dict(self.net.counters())

    def drops(self) -> int:
        return sum(self.counters().values())


@asynccontextmanager
async def open_theirs(publishers: int, subscribers: int, edges: Sequence[tuple[int, int]],
                      topic: str, variant: str, protocol: str) -> AsyncIterator[TheirNet]:
    n = 1 + publishers + subscribers
    subscribed = [0, *range(1 + publishers, n)]
    async with theirs.open_network(n, edges, topic, variant=variant, protocol=protocol,
                                   subscribed=subscribed) as net:
        yield TheirNet(net, publishers, topic)


# -- measuring -------------------------------------------------------------------------------------


async def wait_ready(net: Any, n: int, publishers: int,
                     edges: Sequence[tuple[int, int]]) -> dict[str, Any]:
    """Publishers know every subscribed neighbour; subscribers' meshes >= min(D_lo, ...)."""
    nb = neighbours(n, edges)
    subscribed = {0, *range(1 + publishers, n)}
    want_mesh = [min(D_LO, len(nb[i] & subscribed)) if i in subscribed and i else 0
                 for i in range(n)]

    def ready() -> bool:
        mesh, tp = net.mesh_sizes(), net.topic_peer_sets()
        return (all(m >= w for m, w in zip(mesh, want_mesh, strict=True))
                and all(nb[i] & subscribed <= tp[i] for i in range(1, 1 + publishers)))

    t0 = time.perf_counter()
    ok = await wait_until(ready, READY_TIMEOUT)
    mesh = net.mesh_sizes()
    subs = mesh[1 + publishers:]
    return {"mesh_ready": ok, "mesh_wait_s": round(time.perf_counter() - t0, 3),
            "subscriber_mesh_min_median_max": [min(subs), statistics.median(subs), max(subs)]}


async def measure(net: Any, publishers: int, subscribers: int, events: int, size: int,
                  timeout: float, idle: float) -> dict[str, Any]:
    d = Deliveries(publishers, subscribers, events)
    pad = bytes(size - HEADER.size)
    pub_end: list[float] = []
    end_reason = "timeout"
    async with trio.open_nursery() as nursery:
        for j in range(subscribers):
            nursery.start_soon(net.receive_loop, j, d.callback(j))
        nursery.start_soon(net.drain_hub)
        c0 = time.process_time()
        await trio.sleep(IDLE_CPU_WINDOW)
        idle_cpu = (time.process_time() - c0) / IDLE_CPU_WINDOW
        drops0 = net.drops()
        d.start()
        with trio.move_on_after(timeout):

            async def publisher(p: int) -> None:
                for k in range(events):
                    await net.publish_from(p, make_payload(p, k, pad))
                pub_end.append(time.perf_counter())

            async with trio.open_nursery() as pubs:
                for p in range(publishers):
                    pubs.start_soon(publisher, p)
            d.activity = max(d.activity, time.perf_counter())
            while not d.done.is_set():
                left = idle - (time.perf_counter() - d.activity)
                if left <= 0:
                    if net.drops() > drops0:
                        end_reason = f"dropped, then idle {idle:g} s after publishing"
                        break
                    left = idle
                    d.activity = time.perf_counter()
                with trio.move_on_after(left):
                    await d.done.wait()
            if d.done.is_set():
                end_reason = "all delivered"
        nursery.cancel_scope.cancel()
    res = d.result()
    res.update({
        "publish_s": (max(pub_end) - d.t0) if len(pub_end) == publishers else None,
        "publishers_finished": len(pub_end),
        "idle_cpu_cores": idle_cpu,
        "end": end_reason,
    })
    return res


async def one_run(side: str, args: argparse.Namespace, rep: int,
                  edges: list[tuple[int, int]]) -> dict[str, Any]:
    """One network, one measurement."""
    p, s = args.publishers, args.subscribers
    n = 1 + p + s
    with trio.fail_after(args.timeout + READY_TIMEOUT + 120.0 + 5.0 * n):
        if side == "ours":
            cm = open_ours(p, s, edges, TOPIC, args.seed + rep)
        else:
            cm = open_theirs(p, s, edges, TOPIC, args.variant, args.baseline_protocol)
        async with cm as net:
            ready = await wait_ready(net, n, p, edges)
            before = net.counters()
            res = await measure(net, p, s, args.events, args.size, args.timeout, args.idle)
            after = net.counters()
            res["counters"] = {k: v - before.get(k, 0) for k, v in after.items()
                               if v - before.get(k, 0)}
            res.update(ready)
            res["edges"] = len(edges)
            res["config"] = net.config
            if side == "ours":
                res["edges_at_end"] = len(net.edges())
    return res


# -- replay ----------------------------------------------------------------------------------------


async def replay_runs(args: argparse.Namespace) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Fill a super node with ``args.retained`` events, then time fresh ``since=0`` replays."""
    stop = trio.Event()
    runs: list[dict[str, Any]] = []
    info: dict[str, Any] = {}
    pad = bytes(args.size)
    with trio.fail_after(args.fill_timeout + args.replay_reps * (args.timeout + 60.0) + 60.0):
        async with trio.open_nursery() as nursery:
            sup, _ = await nursery.start(_run_node, NodeConfig.super_node(seed=7), stop, None)
            boot = (sup.addrs[0],)
            pub_stop = trio.Event()
            pub, _ = await nursery.start(_run_node, NodeConfig.peer(bootstrap=boot, seed=8),
                                         pub_stop, None)
            t0 = time.perf_counter()
            envelope_bytes = [0]
            limiter = trio.CapacityLimiter(FILL_CONCURRENCY)

            async def put(k: int) -> None:
                async with limiter:
                    ev = await pub.broker.publish(
                        REPLAY_TOPIC, k.to_bytes(4, "big") + pad[4:], retained=True,
                        timeout=args.fill_timeout)
                    envelope_bytes[0] += len(ev.signed)

            with trio.fail_after(args.fill_timeout):
                await pub.broker.publish(REPLAY_TOPIC, b"\xff" * 4 + pad[4:], retained=True)
                async with trio.open_nursery() as fill:
                    for k in range(1, args.retained):
                        fill.start_soon(put, k)
            info["fill_s"] = round(time.perf_counter() - t0, 2)
            info["envelope_bytes_mean"] = envelope_bytes[0] / max(1, args.retained - 1)
            pub_stop.set()  # the publisher leaves: the replay is served by retention alone
            await trio.sleep(1.0)
            for rep in progress(args.replay_reps, label=f"{NAME} replay"):
                sub_stop = trio.Event()
                node, _ = await nursery.start(
                    _run_node, NodeConfig.peer(bootstrap=boot, seed=100 + rep), sub_stop, None)
                got = 0
                payload_bytes = env_bytes = 0
                other: dict[str, int] = {"missed": 0, "lagging": 0}
                keys = bytearray(args.retained)
                dups = 0
                with trio.move_on_after(args.timeout) as scope:
                    c0, t0 = time.process_time(), time.perf_counter()
                    async with node.broker.subscribe(REPLAY_TOPIC, since=0) as sub:
                        async for item in sub:
                            if isinstance(item, Event):
                                k = int.from_bytes(item.payload[:4], "big")
                                k = 0 if k == 0xFFFFFFFF else k
                                if keys[k]:
                                    dups += 1
                                keys[k] = 1
                                got += 1
                                payload_bytes += len(item.payload)
                                env_bytes += len(item.signed)
                                if got >= args.retained:
                                    break
                            elif isinstance(item, Missed):
                                other["missed"] += item.count
                            elif isinstance(item, Lagging):
                                other["lagging"] += 1
                        t_events = time.perf_counter() - t0
                        with trio.move_on_after(10.0):
                            await sub.caught_up.wait()
                        t_caught = time.perf_counter() - t0
                        cpu = time.process_time() - c0
                        caught = sub.caught_up.is_set()
                        replayed = sub.replayed
                stats = node.stats()
                sub_stop.set()
                await trio.sleep(1.0)  # let it close before the next one opens
                if scope.cancelled_caught:
                    runs.append({"rep": rep, "end": "timeout", "events": got,
                                 "expected": args.retained, **other})
                    continue
                runs.append({
                    "rep": rep, "end": "caught up" if caught else "all events, no caught_up",
                    "events": got, "expected": args.retained, "distinct": sum(keys),
                    "duplicates": dups, **other, "caught_up": caught, "replayed": replayed,
                    "all_events_s": t_events, "caught_up_s": t_caught,
                    "events_per_s": got / t_caught,
                    "payload_mb_per_s": payload_bytes / t_caught / 1e6,
                    "envelope_mb_per_s": env_bytes / t_caught / 1e6,
                    "cpu_s_per_event": cpu / got if got else None,
                    "counters": {k: v for k, v in stats.items()
                                 if k.startswith("broker_") and v},
                })
                print(f"  replay rep {rep}: {got}/{args.retained} in {t_caught:.2f} s "
                      f"({got / t_caught:.0f} events/s, caught_up={caught})", file=sys.stderr)
            stop.set()
    return runs, info


# -- main ------------------------------------------------------------------------------------------


async def run(args: argparse.Namespace) -> dict[str, Any]:
    sides = ["ours", f"py-libp2p {args.variant}"]
    runs: dict[str, list[dict[str, Any]]] = {s: [] for s in sides}
    errors: list[str] = []
    steps = [(rep, s) for rep in range(args.reps) for s in sides]
    n = 1 + args.publishers + args.subscribers
    for rep, side in progress(steps, label=f"{NAME} fan-out"):
        edges = topology(n, args.extra, args.seed + rep)
        try:
            res = await one_run("ours" if side == "ours" else "theirs", args, rep, edges)
            res["rep"] = rep
            runs[side].append(res)
            print(f"  rep {rep} {side}: {res['delivered']}/{res['expected']} "
                  f"{res['deliveries_per_s']:.0f}/s cpu/deliv "
                  f"{(res['cpu_s_per_delivery'] or 0) * 1e3:.3f} ms p50 "
                  f"{(res['latency_p50_s'] or 0) * 1e3:.0f} ms ({res['end']}; "
                  f"edges {res['edges']}; ready {res['mesh_ready']}) {res['counters']}",
                  file=sys.stderr)
        except Exception as exc:  # noqa: BLE001 -- report and go on
            msg = f"rep {rep} {side}: {type(exc).__name__}: {exc}"
            errors.append(msg)
            print(f"error in {msg}", file=sys.stderr)
            if not isinstance(exc, trio.TooSlowError):
                traceback.print_exc(file=sys.stderr)
    replay: list[dict[str, Any]] = []
    fill: dict[str, Any] = {}
    if args.replay_reps:
        try:
            replay, fill = await replay_runs(args)
        except Exception as exc:  # noqa: BLE001
            errors.append(f"replay: {type(exc).__name__}: {exc}")
            traceback.print_exc(file=sys.stderr)
    return {"runs": runs, "sides": sides, "errors": errors, "replay": replay, "fill": fill}


SUMMARY_KEYS = ("delivered_ratio", "missing", "duplicates_to_app", "deliveries_per_s",
                "cpu_s_per_delivery", "latency_p50_s", "latency_p99_s", "span_s", "publish_s",
                "idle_cpu_cores")
REPLAY_KEYS = ("events_per_s", "payload_mb_per_s", "envelope_mb_per_s", "caught_up_s",
               "cpu_s_per_event")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true",
                    help="5 events per publisher, 1 rep, replay of 1,000")
    ap.add_argument("--publishers", type=int, default=10)
    ap.add_argument("--subscribers", type=int, default=10)
    ap.add_argument("--events", type=int, help="events per publisher (default 20; quick 5)")
    ap.add_argument("--size", type=int, default=200, help="payload bytes")
    ap.add_argument("--reps", type=int, help="repetitions per side (default 3; quick 1)")
    ap.add_argument("--retained", type=int, help="events in retention (default 10000; quick 1000)")
    ap.add_argument("--replay-reps", type=int, help="replays (default 5; quick 1)")
    ap.add_argument("--extra", type=int, default=5, help="random links per node beyond node 0")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--timeout", type=float, help="per-run bound, s (default 60)")
    ap.add_argument("--idle", type=float, default=20.0,
                    help="after drops were counted, end a run this long after publishing "
                         "with no new delivery")
    ap.add_argument("--fill-timeout", type=float, default=300.0)
    ap.add_argument("--variant", choices=sorted(theirs.VARIANTS), default="raised",
                    help="py-libp2p configuration (see _pylibp2p_gossip.VARIANTS)")
    ap.add_argument("--baseline-protocol", default="/meshsub/1.1.0",
                    choices=["/meshsub/1.1.0", "/meshsub/1.2.0"])
    args = ap.parse_args()
    args.events = args.events or (5 if args.quick else 20)
    args.reps = args.reps or (1 if args.quick else 3)
    args.retained = args.retained or (1000 if args.quick else 10_000)
    args.replay_reps = (args.replay_reps if args.replay_reps is not None
                        else (1 if args.quick else 5))
    args.timeout = args.timeout or 60.0
    if args.size < HEADER.size:
        ap.error(f"--size must be >= {HEADER.size}")

    started, load_at_start = now_iso(), loadavg()
    out = trio.run(run, args)
    name = NAME + ("_quick" if args.quick else "")

    figures: dict[str, Any] = {}
    base: dict[str, Any] = {}
    rows = []
    summaries: dict[str, dict[str, Any]] = {}
    for side, side_runs in out["runs"].items():
        summ = {k: summarize([r[k] for r in side_runs if r.get(k) is not None])
                for k in SUMMARY_KEYS}
        summaries[side] = summ
        entry = {"summary": summ, "runs": side_runs}
        if side == "ours":
            figures["fanout"] = entry
        else:
            base["fanout"] = {side: entry}
        s = {k: v["median"] for k, v in summ.items()}

        def f(x: float | None, scale: float = 1.0) -> float | None:
            return None if x is None else x * scale

        rows.append({
            "side": side, "reps": len(side_runs),
            "delivered %": f(s["delivered_ratio"], 100),
            "exactly once": f"{sum(r['exactly_once'] for r in side_runs)}/{len(side_runs)}",
            "deliv/s": s["deliveries_per_s"],
            "CPU ms/deliv": f(s["cpu_s_per_delivery"], 1e3),
            "p50 ms": f(s["latency_p50_s"], 1e3),
            "p99 ms": f(s["latency_p99_s"], 1e3),
            "idle CPU": s["idle_cpu_cores"],
        })
    ratios: dict[str, Any] = {}
    o, b = summaries.get("ours"), summaries.get(out["sides"][1])
    if o and b:
        ratios["fanout"] = {
            "deliveries_per_s": ratio(o["deliveries_per_s"], b["deliveries_per_s"], "higher"),
            "cpu_s_per_delivery": ratio(o["cpu_s_per_delivery"], b["cpu_s_per_delivery"]),
            "latency_p50_s": ratio(o["latency_p50_s"], b["latency_p50_s"]),
            "latency_p99_s": ratio(o["latency_p99_s"], b["latency_p99_s"]),
        }
    rsumm = {k: summarize([r[k] for r in out["replay"] if r.get(k) is not None])
             for k in REPLAY_KEYS}
    figures["replay"] = {"summary": rsumm, "runs": out["replay"], "fill": out["fill"]}

    params = {
        "quick": args.quick, "publishers": args.publishers, "subscribers": args.subscribers,
        "events_per_publisher": args.events, "size_bytes": args.size, "reps": args.reps,
        "expected_deliveries": args.publishers * args.subscribers * args.events,
        "seed": args.seed, "timeout_s": args.timeout, "idle_s": args.idle,
        "topic": TOPIC, "address": "127.0.0.1, TCP, one process",
        "ours": ("node 0 NodeConfig.super_node() (retains the topic), publishers and "
                 "subscribers NodeConfig.peer() defaults; edges dialled with node.connect"),
        "topology": (f"gossip_real.topology: every node linked to node 0 and to {args.extra} "
                     "random others (seed + rep); the same graph for both sides"),
        "baseline": (f"py-libp2p 0.8.1 Pubsub + GossipSub, variant {args.variant!r}: "
                     f"{theirs.VARIANTS[args.variant]}, degrees {theirs.DEGREES}, protocol "
                     f"{args.baseline_protocol}; a subscribed hub node in place of the super "
                     "node; the same connection graph"),
        "order": "per repetition: ours, then py-libp2p (alternating)",
        "ready": (f"poll until publishers know every subscribed neighbour and each subscriber's "
                  f"mesh >= min(D_lo=5, subscribed neighbours); bounded by {READY_TIMEOUT} s"),
        "metrics": {
            "deliveries_per_s": "first deliveries / (last delivery - first publish)",
            "cpu_s_per_delivery": "process_time over that span (all nodes) / deliveries",
            "latency": "receive perf_counter - publish perf_counter carried in the payload",
            "exactly_once": "every subscriber got every event, no duplicate at the app",
            "idle_cpu_cores": f"process CPU over {IDLE_CPU_WINDOW} s before publishing / s",
        },
        "replay": {
            "retained_events": args.retained, "size_bytes": args.size,
            "reps": args.replay_reps, "topic": REPLAY_TOPIC,
            "fill": (f"one publisher Node, publish(retained=True) x N, {FILL_CONCURRENCY} at a "
                     "time (untimed), then the publisher closes"),
            "timed": ("fresh Node (bootstrapped, untimed), subscribe(since=0) until all N "
                      "events arrived and sub.caught_up is set"),
            "subscriber_buffer": "BrokerConfig default (1024 credits)",
        },
    }
    notes = [
        f"the py-libp2p side uses the '{args.variant}' configuration of _pylibp2p_gossip.py "
        "(queues raised to 1,000,000, heartbeat 1 s, spam limit off); with its defaults it "
        "drops most messages (see gossip_real)",
        "CPU is the whole process (every node of the side); our nodes also run the DHT, the "
        "registry and the network view in the background (idle_cpu_cores)",
        "replay has no baseline: py-libp2p's pubsub keeps no history",
    ]
    path = write_result(name, command_line(), params, figures, baseline=base, ratio=ratios,
                        started=started, notes=notes, errors=out["errors"],
                        loadavg_at_start=load_at_start)
    print()
    print_table(rows, title=f"{name}: {args.publishers} publishers x {args.subscribers} "
                            f"subscribers, {args.events} x {args.size} B each; medians")
    if ratios:
        r = ratios["fanout"]
        print("ratio ours / py-libp2p: " + ", ".join(
            f"{k} {v['value']:.3g}" for k, v in r.items() if v["value"] is not None))
    rm = {k: v["median"] for k, v in rsumm.items()}
    if rm["events_per_s"] is not None:
        print(f"replay of {args.retained} x {args.size} B from retention: "
              f"{rm['events_per_s']:.0f} events/s, {rm['payload_mb_per_s']:.3f} MB/s payload, "
              f"{rm['envelope_mb_per_s']:.3f} MB/s envelopes "
              f"(median of {rsumm['events_per_s']['n']})")
    for e in out["errors"]:
        print(f"error: {e}")

    def scaled(s: dict[str, Any], k: float) -> dict[str, Any]:
        return {key: (v * k if isinstance(v, float) else v)
                for key, v in s.items() if key != "samples"}

    panels = []
    for key, title, unit, k in (
            ("deliveries_per_s", "deliveries per second (higher better)", "1/s", 1.0),
            ("cpu_s_per_delivery", "CPU per delivery (lower better)", "ms", 1e3),
            ("latency_p50_s", "latency p50 (lower better)", "ms", 1e3),
            ("latency_p99_s", "latency p99 (lower better)", "ms", 1e3)):
        series = {side.replace("py-libp2p ", "py-libp2p\n"): scaled(summ[key], k)
                  for side, summ in summaries.items() if summ[key]["n"]}
        panels.append({"title": title, "ylabel": unit, "log": True, "series": series})
    if rsumm["events_per_s"]["n"]:
        panels.append({"title": f"replay of {args.retained} from retention", "ylabel": "1/s",
                       "log": False, "series": {"ours events/s": scaled(
                           rsumm["events_per_s"], 1.0)}})
    png = plot_bars(RESULTS_DIR / f"{name}.png", panels,
                    title=(f"broker on 127.0.0.1: {args.publishers} publishers x "
                           f"{args.subscribers} subscribers, {args.events} x {args.size} B each"))
    print(f"wrote {path}" + (f" and {png}" if png else ""))
    return 1 if out["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
