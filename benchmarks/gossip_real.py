"""Gossipsub on a real (loopback) network: delivery, throughput, CPU and latency per delivery.

Issue 4, "Real-network figures": N nodes on 127.0.0.1 in ONE process, one publisher (node 0,
not subscribed), the N-1 others subscribed to one topic, signatures on; the publisher publishes
``--messages`` messages of ``--size`` bytes as fast as the implementation accepts them (each
``publish`` awaited). Ours (micronetwork) against py-libp2p 0.8.1's Pubsub + GossipSub, in
one or more py-libp2p configurations (see ``_pylibp2p_gossip.VARIANTS``), alternating per
repetition: ours, then each baseline variant, then ours again...

Topology (same graph for both, seeded): every node i >= 1 dials the publisher and ``--extra``
(5) random others (undirected edges, deduplicated; the lower index dials). Before timing,
the harness waits until every subscriber's mesh holds min(D_lo, its subscribed neighbours)
peers and the publisher knows all its neighbours' subscriptions (polled every 50 ms: neither
implementation has an event for mesh changes; bounded by ``MESH_TIMEOUT``; a run that starts
without a full mesh says so in its ``mesh_ready`` field).

Per run: ``delivered`` / ``expected`` ((N-1) x messages, first copies only, duplicates
counted apart) and the drop counters each side exposes; ``deliveries_per_s`` = deliveries /
(last delivery - first publish); ``cpu_s_per_delivery`` = process CPU (``time.process_time``,
all nodes share the process) from the first publish to the last delivery, / deliveries;
latency of each delivery = receive time - publish time written in the payload (both
``time.perf_counter`` in this process), p50 and p99. A run ends when every expected delivery
has arrived, or -- only once the side's own counters show dropped messages -- ``--idle`` s
after the publisher finished with no new delivery (dropped messages never arrive; neither side
retransmits that late at a 1 s heartbeat: IWANT answers come within ~3 heartbeats), or at
``--timeout``; what arrived until then is reported. (py-libp2p stalls for more than 5 s
mid-run, with or without drops, then resumes: hence a 20 s default and no idle end without
drops.)

    python benchmarks/gossip_real.py --quick   # N=10, 200 messages, 1 rep: about a minute
    python benchmarks/gossip_real.py           # N=10 and 30, 1,000 messages, 3 reps

Writes benchmarks/results/gossip_real.json (gossip_real_quick.json with --quick) and a PNG.
"""

from __future__ import annotations

import argparse
import random
import statistics
import struct
import sys
import time
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import trio

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _pylibp2p_gossip as theirs  # noqa: E402
from _common import (  # noqa: E402
    REPO_ROOT,
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

NAME = "gossip_real"
TOPIC = "bench/gossip"
HEADER = struct.Struct(">Id")  # message index, publish time (perf_counter)
MESH_TIMEOUT = 30.0
MESH_POLL = 0.05


def load_ours() -> tuple[Any | None, str]:
    """``_micronetwork_gossip`` if micronetwork imports and has the gossip API, else None."""
    try:
        import micronetwork  # noqa: F401
        where = "installed"
    except ImportError:
        src = REPO_ROOT / "src"
        sys.path.insert(0, str(src))
        try:
            import micronetwork  # noqa: F401
            where = f"from {src}"
        except ImportError as exc:
            sys.path.remove(str(src))
            return None, f"micronetwork is not importable ({exc}): baseline only"
    try:
        import _micronetwork_gossip as ours
    except ImportError as exc:
        return None, f"micronetwork imported ({where}) but _micronetwork_gossip fails: {exc}"
    ok, why = ours.available()
    if not ok:
        return None, f"micronetwork imported ({where}); {why}: baseline only"
    return ours, f"micronetwork imported ({where}); {why}"


def topology(n: int, extra: int, seed: int) -> list[tuple[int, int]]:
    """Every node >= 1 linked to node 0 and to ``extra`` random others; (dialer, listener)."""
    rng = random.Random(seed)
    edges: set[tuple[int, int]] = set()
    for i in range(1, n):
        edges.add((0, i))
        others = [j for j in range(1, n) if j != i]
        for j in rng.sample(others, min(extra, len(others))):
            edges.add((min(i, j), max(i, j)))
    return sorted(edges)


def _neighbours(n: int, edges: Sequence[tuple[int, int]]) -> list[set[int]]:
    nb: list[set[int]] = [set() for _ in range(n)]
    for i, j in edges:
        nb[i].add(j)
        nb[j].add(i)
    return nb


async def wait_mesh(net: Any, n: int, edges: Sequence[tuple[int, int]], d_lo: int) -> dict:
    """Poll until meshes are formed (see module doc); returns what was reached."""
    nb = _neighbours(n, edges)
    want_mesh = [0] + [min(d_lo, len(nb[i] - {0})) for i in range(1, n)]
    want_topic0 = len(nb[0])
    t0 = time.perf_counter()
    ready = False
    with trio.move_on_after(MESH_TIMEOUT):
        while True:
            mesh, tp = net.mesh_sizes(), net.topic_peer_counts()
            if tp[0] >= want_topic0 and all(m >= w for m, w in zip(mesh, want_mesh, strict=True)):
                ready = True
                break
            await trio.sleep(MESH_POLL)
    mesh = net.mesh_sizes()
    return {"mesh_ready": ready, "mesh_wait_s": round(time.perf_counter() - t0, 3),
            "mesh_sizes_min_median_max": [min(mesh[1:]), statistics.median(mesh[1:]),
                                          max(mesh[1:])],
            "publisher_topic_peers": net.topic_peer_counts()[0]}


def _drops(counters: dict[str, int]) -> int:
    return sum(v for k, v in counters.items()
               if "drop" in k or "full" in k or "rejected" in k)


async def measure(net: Any, n: int, messages: int, size: int, timeout: float,
                  idle: float) -> dict[str, Any]:
    """Publish ``messages`` from node 0, collect deliveries at 1..n-1 (see module doc)."""
    expected = (n - 1) * messages
    got = [bytearray(messages) for _ in range(n)]
    latencies: list[float] = []
    st = {"count": 0, "dups": 0, "last_t": 0.0, "last_cpu": 0.0, "activity": 0.0}
    done = trio.Event()
    pad = bytes(size - HEADER.size)

    def make_cb(i: int) -> Any:
        seen = got[i]

        def on_data(data: bytes) -> None:
            t = time.perf_counter()
            k, ts = HEADER.unpack_from(data)
            if seen[k]:
                st["dups"] += 1
                return
            seen[k] = 1
            latencies.append(t - ts)
            st["count"] += 1
            st["last_t"] = st["activity"] = t
            st["last_cpu"] = time.process_time()
            if st["count"] >= expected:
                done.set()

        return on_data

    pub = {"end": None, "published": 0}
    async with trio.open_nursery() as nursery:
        for i in range(1, n):
            nursery.start_soon(net.receive_loop, i, make_cb(i))
        await trio.lowlevel.checkpoint()  # let the receive loops start
        drops0 = _drops(net.counters())
        cpu0, t0 = time.process_time(), time.perf_counter()
        st["last_cpu"], st["last_t"], st["activity"] = cpu0, t0, t0
        end_reason = "timeout"
        with trio.move_on_after(timeout):
            for k in range(messages):
                await net.publish(HEADER.pack(k, time.perf_counter()) + pad)
                pub["published"] += 1
            pub["end"] = time.perf_counter()
            st["activity"] = max(st["activity"], pub["end"])
            while not done.is_set():
                left = idle - (time.perf_counter() - st["activity"])
                if left <= 0:
                    if _drops(net.counters()) > drops0:
                        end_reason = f"dropped, then idle {idle:g} s after publishing"
                        break
                    left = idle  # nothing dropped: what is missing may still come
                    st["activity"] = time.perf_counter()
                with trio.move_on_after(left):
                    await done.wait()
            if done.is_set():
                end_reason = "all delivered"
        nursery.cancel_scope.cancel()
    count = st["count"]
    span = st["last_t"] - t0
    lat = sorted(latencies)

    def q(p: float) -> float | None:
        return lat[min(len(lat) - 1, int(p * len(lat)))] if lat else None

    return {
        "expected": expected,
        "delivered": count,
        "delivered_ratio": count / expected,
        "missing": expected - count,
        "duplicates_to_app": st["dups"],
        "published": pub["published"],
        "publish_s": (pub["end"] - t0) if pub["end"] else None,
        "span_s": span,
        "deliveries_per_s": count / span if count and span > 0 else 0.0,
        "cpu_s": st["last_cpu"] - cpu0,
        "cpu_s_per_delivery": (st["last_cpu"] - cpu0) / count if count else None,
        "latency_p50_s": q(0.50),
        "latency_p99_s": q(0.99),
        "latency_max_s": lat[-1] if lat else None,
        "end": end_reason,
    }


async def one_run(side: str, module: Any, n: int, edges: list[tuple[int, int]],
                  args: argparse.Namespace, rep: int, variant: str | None) -> dict[str, Any]:
    kwargs: dict[str, Any] = {}
    if variant is not None:
        kwargs = {"variant": variant, "protocol": args.baseline_protocol}
    else:
        kwargs = {"seed": args.seed + rep}
    d_lo = 5
    with trio.fail_after(args.timeout + MESH_TIMEOUT + 240.0 + 2.0 * n):
        async with module.open_network(n, edges, TOPIC, **kwargs) as net:
            mesh = await wait_mesh(net, n, edges, d_lo)
            before = net.counters()
            res = await measure(net, n, args.messages, args.size, args.timeout, args.idle)
            after = net.counters()
            res["counters"] = {k: v - before.get(k, 0) for k, v in after.items()
                               if v - before.get(k, 0)}
            res.update(mesh)
            res["config"] = net.config
    return res


SUMMARY_KEYS = ("delivered_ratio", "missing", "deliveries_per_s", "cpu_s_per_delivery",
                "latency_p50_s", "latency_p99_s", "span_s", "publish_s")


async def run(args: argparse.Namespace) -> dict[str, Any]:
    ours, note = load_ours()
    print(note, file=sys.stderr)
    sides: list[tuple[str, Any, str | None]] = []
    if ours is not None:
        sides.append(("ours", ours, None))
    sides += [(f"py-libp2p {v}", theirs, v) for v in args.variants]
    runs: dict[str, dict[str, list[dict[str, Any]]]] = {
        str(n): {s[0]: [] for s in sides} for n in args.n}
    errors: list[str] = []
    steps = [(n, rep, s) for n in args.n for rep in range(args.reps) for s in sides]
    for n, rep, (label, module, variant) in progress(steps, label=NAME):
        edges = topology(n, args.extra, args.seed + rep)
        try:
            res = await one_run(label, module, n, edges, args, rep, variant)
            res["rep"] = rep
            runs[str(n)][label].append(res)
            print(f"  N={n} rep {rep} {label}: {res['delivered']}/{res['expected']} "
                  f"{res['deliveries_per_s']:.0f}/s cpu/deliv "
                  f"{(res['cpu_s_per_delivery'] or 0) * 1e3:.3f} ms p50 "
                  f"{(res['latency_p50_s'] or 0) * 1e3:.1f} ms ({res['end']}; "
                  f"mesh ready {res['mesh_ready']}) {res['counters']}", file=sys.stderr)
        except Exception as exc:  # noqa: BLE001 -- report and go on
            msg = f"N={n} rep {rep} {label}: {type(exc).__name__}: {exc}"
            errors.append(msg)
            print(f"error in {msg}", file=sys.stderr)
            if not isinstance(exc, trio.TooSlowError):
                traceback.print_exc(file=sys.stderr)
    return {"runs": runs, "errors": errors, "note": note, "ours": ours is not None,
            "sides": [s[0] for s in sides]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="N=10, 200 messages, 1 rep")
    ap.add_argument("--n", type=int, nargs="+", help="network sizes (default 10 30; quick 10)")
    ap.add_argument("--messages", type=int, help="messages published (default 1000; quick 200)")
    ap.add_argument("--size", type=int, default=200, help="message size in bytes")
    ap.add_argument("--reps", type=int, help="repetitions per side (default 3; quick 1)")
    ap.add_argument("--extra", type=int, default=5, help="random links per node beyond node 0")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--timeout", type=float, help="per-run bound, s (default 120; quick 30)")
    # 20 s: py-libp2p (queue32, raised) was seen to deliver nothing for > 5 s mid-run
    # and then resume; a 5 s cutoff under-counted what its lossy configuration delivers.
    ap.add_argument("--idle", type=float,
                    help="after drops were counted, end a run this long after publishing "
                         "with no new delivery (default 20; quick 10)")
    ap.add_argument("--variants", nargs="*", choices=sorted(theirs.VARIANTS),
                    default=["defaults", "queue32", "raised"], help="py-libp2p configurations")
    ap.add_argument("--baseline-protocol", default="/meshsub/1.1.0",
                    choices=["/meshsub/1.1.0", "/meshsub/1.2.0"])
    args = ap.parse_args()
    args.n = args.n or ([10] if args.quick else [10, 30])
    args.messages = args.messages or (200 if args.quick else 1000)
    args.reps = args.reps or (1 if args.quick else 3)
    args.timeout = args.timeout or (30.0 if args.quick else 120.0)
    args.idle = args.idle or (10.0 if args.quick else 20.0)
    if args.size < HEADER.size:
        ap.error(f"--size must be >= {HEADER.size}")

    started, load_at_start = now_iso(), loadavg()
    out = trio.run(run, args)
    name = NAME + ("_quick" if args.quick else "")

    figures: dict[str, Any] = {}
    base: dict[str, Any] = {}
    ratios: dict[str, Any] = {}
    rows = []
    for n_key, by_side in out["runs"].items():
        for label, runs in by_side.items():
            summ = {k: summarize([r[k] for r in runs if r.get(k) is not None])
                    for k in SUMMARY_KEYS}
            entry = {"summary": summ, "runs": runs}
            if label == "ours":
                figures[f"N={n_key}"] = entry
            else:
                base.setdefault(f"N={n_key}", {})[label] = entry
            s = {k: v["median"] for k, v in summ.items()}

            def f(x: float | None, scale: float = 1.0) -> float | None:
                return None if x is None else x * scale

            rows.append({
                "N": n_key, "side": label, "reps": len(runs),
                "delivered %": f(s["delivered_ratio"], 100),
                "missing": s["missing"],
                "deliv/s": s["deliveries_per_s"],
                "CPU ms/deliv": f(s["cpu_s_per_delivery"], 1e3),
                "p50 ms": f(s["latency_p50_s"], 1e3),
                "p99 ms": f(s["latency_p99_s"], 1e3),
                "drops seen": ",".join(f"{k}={v}" for k, v in sorted(
                    {k: v for r in runs for k, v in r["counters"].items()
                     if "drop" in k or "full" in k or "rejected" in k}.items())) or "-",
            })
        if "ours" in by_side and by_side["ours"]:
            o = figures[f"N={n_key}"]["summary"]
            for label in by_side:
                if label == "ours":
                    continue
                b = base[f"N={n_key}"][label]["summary"]
                ratios.setdefault(f"N={n_key}", {})[label] = {
                    "deliveries_per_s": ratio(o["deliveries_per_s"], b["deliveries_per_s"],
                                              better="higher"),
                    "cpu_s_per_delivery": ratio(o["cpu_s_per_delivery"],
                                                b["cpu_s_per_delivery"], better="lower"),
                    "latency_p50_s": ratio(o["latency_p50_s"], b["latency_p50_s"],
                                           better="lower"),
                    "latency_p99_s": ratio(o["latency_p99_s"], b["latency_p99_s"],
                                           better="lower"),
                }

    params = {
        "quick": args.quick, "n": args.n, "messages": args.messages, "size_bytes": args.size,
        "reps": args.reps, "seed": args.seed, "timeout_s": args.timeout, "idle_s": args.idle,
        "topic": TOPIC, "publisher": "node 0, not subscribed; each publish awaited, no pacing",
        "subscribers": "nodes 1..N-1",
        "topology": (f"every node i>=1 linked to node 0 and to {args.extra} random others "
                     "(seed + rep), undirected, deduplicated, lower index dials; same graph "
                     "for every side in a repetition"),
        "mesh_wait": (f"poll every {MESH_POLL} s until each subscriber's mesh >= min(D_lo=5, "
                      "subscribed neighbours) and the publisher knows all neighbours' "
                      f"subscriptions; bounded by {MESH_TIMEOUT} s; untimed"),
        "order": "per N, per repetition: " + ", then ".join(out["sides"]) + " (alternating)",
        "address": "127.0.0.1, TCP, one process",
        "metrics": {
            "delivered_ratio": "first deliveries / ((N-1) x messages)",
            "deliveries_per_s": "deliveries / (last delivery - first publish)",
            "cpu_s_per_delivery": ("time.process_time() from first publish to last delivery "
                                   "(whole process: all nodes) / deliveries"),
            "latency": "receive perf_counter - publish perf_counter carried in the payload",
            "run_end": ("all expected delivered, or (only when the side counted drops) --idle "
                        "s without a new delivery after the last publish, or --timeout"),
        },
        "baseline_protocol": args.baseline_protocol,
        "baseline_variants": {v: theirs.VARIANTS[v] for v in args.variants},
        "baseline_constant_knobs": {
            "GossipSub": theirs.DEGREES, "Pubsub": "defaults (strict_signing=True)",
            "host": "libp2p.new_host() defaults (TCP, Noise, yamux)",
        },
    }
    notes = [out["note"],
             "like-for-like ratios are those against 'py-libp2p raised' (nothing dropped); "
             "'defaults' and 'queue32' lose most messages, so their rates and latencies "
             "describe the few that got through"]
    if not out["ours"]:
        notes.append("figures and ratio are empty: only the baseline was measured")
    path = write_result(name, command_line(), params, figures, baseline=base, ratio=ratios,
                        started=started, notes=notes, errors=out["errors"],
                        loadavg_at_start=load_at_start)
    print()
    print_table(rows, title=f"{name}: medians over repetitions")
    for nt in notes:
        print(f"note: {nt}")
    for e in out["errors"]:
        print(f"error: {e}")

    panels = []
    for key, title, unit, scale in (
            ("deliveries_per_s", "deliveries per second (higher better)", "1/s", 1.0),
            ("cpu_s_per_delivery", "CPU per delivery (lower better)", "ms", 1e3),
            ("latency_p50_s", "latency p50 (lower better)", "ms", 1e3),
            ("latency_p99_s", "latency p99 (lower better)", "ms", 1e3)):
        series = {}
        for n_key, by_side in out["runs"].items():
            for label in by_side:
                e = (figures.get(f"N={n_key}") if label == "ours"
                     else base.get(f"N={n_key}", {}).get(label))
                if not e:
                    continue
                s = e["summary"][key]
                series[f"{label.replace('py-libp2p ', 'py ')}\nN={n_key}"] = {
                    k: (v * scale if isinstance(v, float) else v)
                    for k, v in s.items() if k != "samples"}
        panels.append({"title": title, "ylabel": unit, "log": True, "series": series})
    png = plot_bars(RESULTS_DIR / f"{name}.png", panels,
                    title=f"gossip on 127.0.0.1: {args.messages} x {args.size} B, one publisher")
    print(f"wrote {path}" + (f" and {png}" if png else ""))
    return 1 if out["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
