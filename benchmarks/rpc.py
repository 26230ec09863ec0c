"""RPC (issue 5): unary calls per second, latency p50/p99 and CPU per call, for 100-byte and
64 KiB payloads: ours against a raw trio TCP echo with the same framing, py-libp2p 0.8 (three
ways) and grpcio (asyncio).

Every side is an echo (the server returns the request body) with client and server in one
process on 127.0.0.1 (see ``_rpc_sides.py`` and ``_rpc_grpc.py`` for each one's exact calls):

* ours: two micronetwork Nodes, ``A.client.call("bench", "echo", body)`` to B's
  ``@endpoint async def echo(body: bytes) -> bytes``;
* ours-transport: our ``RpcTransport`` alone (``open_call`` + ``unary``), no service layer;
* ours-transport-pyyamux: the same over py-libp2p's yamux (``build_host(muxer="py-libp2p")``)
  instead of ours (``host/muxer.py``): what the muxer alone changes;
* raw-trio: trio TCP, varint-length-prefixed CBOR ``{id, body}`` frames, calls multiplexed
  by id on one connection (the floor of this framing in Python);
* libp2p-stream-per-call / libp2p-one-stream: py-libp2p default hosts (TCP, Noise, yamux),
  the same frames on a new stream per call / on one long-lived stream multiplexed by id;
* libp2p-request-response: py-libp2p's ``libp2p.request_response`` module (stream per call);
* grpcio-aio: a ``grpc.aio`` unary echo, generic handler, one channel, in a subprocess.

Per repetition each side in turn (ours, ours-transport(-pyyamux), raw-trio, libp2p x3, grpcio-aio,
then the next repetition: alternating, so all see the same machine load) is set up fresh
(untimed), then per payload size: ``--warmup`` untimed calls; ``--calls`` calls with
``--concurrency`` (16) in flight from one client: calls/s = calls / wall time, latency
p50/p99 of those calls (under that load), CPU per call = process CPU time
(``time.process_time()``: client and server together, they share the process) / calls; then
``--seq-calls`` calls one at a time: unloaded latency p50/p99. Figures are medians over the
repetitions with min..max.

    python benchmarks/rpc.py --quick   # 2 repetitions, 150 small / 20 large calls: < 1 minute
    python benchmarks/rpc.py           # 5 repetitions, 3,000 small / 300 large calls

Writes benchmarks/results/rpc.json (rpc_quick.json with --quick) and rpc.png beside it.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import subprocess
import sys
import time
import traceback
from pathlib import Path
from typing import Any

import trio

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (  # noqa: E402
    RESULTS_DIR,
    _pyplot,
    _quantile,
    command_line,
    loadavg,
    now_iso,
    print_table,
    progress,
    ratio,
    summarize,
    write_result,
)
from _rpc_sides import SIDES  # noqa: E402

NAME = "rpc"
GRPC = "grpcio-aio"
OURS = ("ours", "ours-transport")
ALL_SIDES = (*SIDES, GRPC)
BASELINES = tuple(s for s in ALL_SIDES if s not in OURS)
LIBP2P = tuple(s for s in ALL_SIDES if s.startswith("libp2p"))
GRPC_SCRIPT = Path(__file__).resolve().parent / "_rpc_grpc.py"
# metric: (unit, better)
METRICS: dict[str, tuple[str, str]] = {
    "calls_per_s": ("1/s", "higher"),
    "p50_ms": ("ms", "lower"),
    "p99_ms": ("ms", "lower"),
    "cpu_ms_per_call": ("ms", "lower"),
    "seq_p50_ms": ("ms", "lower"),
    "seq_p99_ms": ("ms", "lower"),
}


# -- measuring (trio sides) ----------------------------------------------------------------------


async def load(call: Any, body: bytes, n: int, concurrency: int) -> dict[str, float]:
    """``n`` calls with ``concurrency`` in flight: calls/s, latency p50/p99, CPU per call."""
    lat: list[float] = []
    it = iter(range(n))

    async def worker() -> None:
        for _ in it:
            t0 = time.perf_counter()
            out = await call(body)
            lat.append(time.perf_counter() - t0)
            if len(out) != len(body):
                raise RuntimeError(f"echo answered {len(out)} bytes for {len(body)}")

    c0, t0 = time.process_time(), time.perf_counter()
    async with trio.open_nursery() as nursery:
        for _ in range(concurrency):
            nursery.start_soon(worker)
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
    lat.sort()
    return {"calls": n, "seconds": elapsed, "calls_per_s": n / elapsed,
            "p50_ms": _quantile(lat, 0.5) * 1e3, "p99_ms": _quantile(lat, 0.99) * 1e3,
            "cpu_ms_per_call": cpu / n * 1e3}


async def sequential(call: Any, body: bytes, n: int) -> dict[str, float]:
    lat = []
    for _ in range(n):
        t0 = time.perf_counter()
        await call(body)
        lat.append(time.perf_counter() - t0)
    lat.sort()
    return {"seq_p50_ms": _quantile(lat, 0.5) * 1e3, "seq_p99_ms": _quantile(lat, 0.99) * 1e3}


def plan(args: argparse.Namespace) -> list[tuple[int, int, int]]:
    """(size, calls, sequential calls) per payload size."""
    return [(100, args.calls_small, args.seq_small), (65536, args.calls_large, args.seq_large)]


async def run_trio_side(name: str, args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {"results": {}}
    t0 = time.perf_counter()
    async with SIDES[name]() as side:
        out["setup_s"] = time.perf_counter() - t0
        for size, calls, seq in plan(args):
            body = os.urandom(size)
            if await side.call(body) != body:
                raise RuntimeError(f"{name}: the echo is not the request")
            for _ in range(args.warmup):
                await side.call(body)
            res = await load(side.call, body, calls, args.concurrency)
            res.update(await sequential(side.call, body, seq))
            out["results"][str(size)] = res
        if side.stats is not None:
            out["counters"] = side.stats()
        t1 = time.perf_counter()
    out["teardown_s"] = time.perf_counter() - t1
    return out


async def run_grpc(args: argparse.Namespace) -> dict[str, Any]:
    p = plan(args)
    cmd = [sys.executable, str(GRPC_SCRIPT),
           "--sizes", ",".join(str(s) for s, _, _ in p),
           "--calls", ",".join(str(c) for _, c, _ in p),
           "--seq-calls", ",".join(str(q) for _, _, q in p),
           "--concurrency", str(args.concurrency), "--warmup", str(args.warmup),
           "--timeout", str(args.step_timeout)]
    t0 = time.perf_counter()
    proc = await trio.run_process(cmd, capture_stdout=True, capture_stderr=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"grpc subprocess exited {proc.returncode}: "
                           f"{proc.stderr.decode(errors='replace')[-2000:]}")
    out: dict[str, Any] = json.loads(proc.stdout)
    out["process_s"] = time.perf_counter() - t0
    return out


async def run(args: argparse.Namespace) -> dict[str, Any]:
    runs: dict[str, list[dict[str, Any]]] = {s: [] for s in args.sides}
    errors: list[str] = []
    steps = [(rep, s) for rep in range(args.reps) for s in args.sides]
    for rep, side in progress(steps, label=NAME):
        try:
            with trio.fail_after(args.step_timeout):
                res = await (run_grpc(args) if side == GRPC else run_trio_side(side, args))
        except Exception as exc:  # noqa: BLE001 -- report it and go on with the next
            msg = f"rep {rep} {side}: {type(exc).__name__}: {exc}"
            errors.append(msg)
            print(f"error in {msg}", file=sys.stderr)
            if not isinstance(exc, trio.TooSlowError):
                traceback.print_exc(file=sys.stderr)
            continue
        res["rep"] = rep
        res["loadavg"] = loadavg()
        runs[side].append(res)
        print(f"  rep {rep} {side:24s} " + "  ".join(
            f"{size} B: {r['calls_per_s']:7.0f}/s p50 {r['p50_ms']:6.1f} p99 {r['p99_ms']:6.1f} "
            f"cpu {r['cpu_ms_per_call']:.3f} ms seq p50 {r['seq_p50_ms']:.2f} ms"
            for size, r in res["results"].items()), file=sys.stderr, flush=True)
    return {"runs": runs, "errors": errors}


# -- reporting ------------------------------------------------------------------------------------


def summaries(runs: dict[str, list[dict[str, Any]]],
              sizes: list[int]) -> dict[str, dict[str, dict[str, Any]]]:
    """side -> size -> metric -> summary over the repetitions."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for side, side_runs in runs.items():
        out[side] = {}
        for size in sizes:
            rs = [r["results"][str(size)] for r in side_runs if str(size) in r["results"]]
            out[side][str(size)] = {m: {"unit": u, **summarize([r[m] for r in rs])}
                                    for m, (u, _b) in METRICS.items()}
    return out


def med(summ: dict[str, Any], side: str, size: int, metric: str) -> float | None:
    try:
        v = summ[side][str(size)][metric]["median"]
    except KeyError:
        return None
    return v if isinstance(v, float) else None


def plot(path: Path, summ: dict[str, Any], sides: list[str], sizes: list[int],
         title: str) -> Path | None:
    plt = _pyplot()
    if plt is None:
        return None
    panels = [("calls_per_s", "calls/s, 16 in flight (higher better)", "calls/s"),
              ("p50_ms", "latency p50 | p99, 16 in flight (lower better)", "ms"),
              ("cpu_ms_per_call", "CPU per call, client+server (lower better)", "ms")]
    colors = {"ours": "tab:blue", "ours-transport": "tab:cyan", "raw-trio": "tab:gray",
              "ours-transport-pyyamux": "tab:purple",
              "grpcio-aio": "tab:green"}
    fig, axes = plt.subplots(len(sizes), len(panels), figsize=(15, 3.3 * len(sizes)),
                             squeeze=False)
    for row, size in enumerate(sizes):
        for col, (metric, ptitle, unit) in enumerate(panels):
            ax = axes[row][col]
            shown = [s for s in sides if med(summ, s, size, metric) is not None]
            ys = list(range(len(shown)))[::-1]
            for y, s in zip(ys, shown, strict=True):
                c = colors.get(s, "tab:orange")
                keys = [metric] + (["p99_ms"] if metric == "p50_ms" else [])
                for k, key in enumerate(keys):
                    x = summ[s][str(size)][key]
                    h = 0.38 if len(keys) > 1 else 0.7
                    off = (0.2 - 0.4 * k) if len(keys) > 1 else 0.0
                    ax.barh(y + off, x["median"], height=h, color=c,
                            alpha=1.0 if k == 0 else 0.45,
                            xerr=[[x["median"] - x["min"]], [x["max"] - x["median"]]],
                            capsize=3)
                    ax.text(x["max"], y + off, f" {x['median']:.3g}", va="center",
                            fontsize=7)
            ax.set_yticks(ys, shown, fontsize=8)
            ax.set_xscale("log")
            ax.set_xlabel(unit, fontsize=8)
            ax.set_title(f"{size} B: {ptitle}", fontsize=9)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout(rect=(0, 0.03, 1, 0.97))
    fig.text(0.5, 0.005, "bar = median over repetitions, whiskers = min..max; latency: dark = "
             "p50, light = p99", ha="center", fontsize=8)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def _src_state() -> dict[str, Any]:
    """The commit and any uncommitted changes under src/micronetwork/rpc and service (the
    figures of ours depend on that code, which is being worked on)."""
    root = Path(__file__).resolve().parent.parent

    def git(*a: str) -> str | None:
        try:
            r = subprocess.run(["git", *a], cwd=root, capture_output=True, text=True,
                               timeout=10, check=False)
        except (OSError, subprocess.SubprocessError):
            return None
        return r.stdout.strip() if r.returncode == 0 else None

    return {"commit": git("rev-parse", "HEAD"),
            "uncommitted_in_src_rpc": git("status", "--porcelain", "--", "src/micronetwork/rpc",
                                          "src/micronetwork/service")}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true",
                    help="2 repetitions, 150 small / 20 large calls, 20 / 5 sequential")
    ap.add_argument("--reps", type=int, help="repetitions (default 5; quick 2)")
    ap.add_argument("--calls-small", type=int, help="100 B calls per rep (3000; quick 150)")
    ap.add_argument("--calls-large", type=int, help="64 KiB calls per rep (300; quick 20)")
    ap.add_argument("--seq-small", type=int, help="sequential 100 B calls (200; quick 20)")
    ap.add_argument("--seq-large", type=int, help="sequential 64 KiB calls (50; quick 5)")
    ap.add_argument("--concurrency", type=int, default=16, help="calls in flight")
    ap.add_argument("--warmup", type=int, help="untimed calls per size (50; quick 10)")
    ap.add_argument("--step-timeout", type=float,
                    help="bound on one side's repetition, s (default 300; quick 60)")
    ap.add_argument("--sides", default=",".join(ALL_SIDES),
                    help=f"comma-separated subset of {','.join(ALL_SIDES)}")
    args = ap.parse_args()
    q = args.quick
    args.reps = args.reps or (2 if q else 5)
    args.calls_small = args.calls_small or (150 if q else 3000)
    args.calls_large = args.calls_large or (20 if q else 300)
    args.seq_small = args.seq_small if args.seq_small is not None else (20 if q else 200)
    args.seq_large = args.seq_large if args.seq_large is not None else (5 if q else 50)
    args.warmup = args.warmup if args.warmup is not None else (10 if q else 50)
    args.step_timeout = args.step_timeout or (60.0 if q else 300.0)
    args.sides = [s for s in args.sides.split(",") if s]
    unknown = set(args.sides) - set(ALL_SIDES)
    if unknown:
        ap.error(f"unknown sides {sorted(unknown)}; choose from {list(ALL_SIDES)}")
    sizes = [s for s, _, _ in plan(args)]

    # Import our code now, so the code measured is the code of the state recorded here (the
    # sides import it lazily; src/ may change while a long run goes on).
    import micronetwork.rpc  # noqa: F401
    import micronetwork.service  # noqa: F401

    src_at_start = _src_state()
    started, load_at_start = now_iso(), loadavg()
    out = trio.run(run, args)
    name = NAME + ("_quick" if q else "")
    summ = summaries(out["runs"], sizes)

    figures = {s: {"summary": summ[s], "runs": out["runs"][s]} for s in args.sides if s in OURS}
    base = {s: {"summary": summ[s], "runs": out["runs"][s]}
            for s in args.sides if s not in OURS}
    ratios: dict[str, Any] = {}
    for o in (s for s in args.sides if s in OURS):
        for b in (s for s in args.sides if s not in OURS):
            ratios[f"{o} / {b}"] = {
                str(size): {m: ratio(summ[o][str(size)][m], summ[b][str(size)][m], better)
                            for m, (_u, better) in METRICS.items()}
                for size in sizes}
    goal: dict[str, Any] = {"statement": "ours >= 0.5 x raw-trio calls/s (same framing), and "
                            "ahead of every py-libp2p variant and grpcio-aio"}
    for size in sizes:
        ours = med(summ, "ours", size, "calls_per_s")
        raw = med(summ, "raw-trio", size, "calls_per_s")
        others = {b: med(summ, b, size, "calls_per_s") for b in BASELINES
                  if b != "raw-trio" and not b.startswith("ours")}  # -pyyamux is an A/B
        goal[str(size)] = {
            "ours_calls_per_s": ours,
            "half_raw_trio": raw / 2 if raw else None,
            "at_least_half_raw_trio": (ours >= raw / 2) if ours and raw else None,
            **{f"ahead_of_{b}": (ours > v) if ours and v else None for b, v in others.items()},
        }

    params = {
        "quick": q, "reps": args.reps, "concurrency": args.concurrency, "warmup": args.warmup,
        "sizes_bytes": sizes,
        "calls_per_rep": {"100": args.calls_small, "65536": args.calls_large},
        "sequential_calls_per_rep": {"100": args.seq_small, "65536": args.seq_large},
        "step_timeout_s": args.step_timeout,
        "order": "per repetition: " + ", ".join(args.sides) + " (alternating)",
        "address": "127.0.0.1, TCP; client and server in one process per side",
        "sides": {
            "ours": "two micronetwork Nodes (A super node calls, B peer bootstrapped via A "
                    "serves bench.echo: @endpoint async def echo(body: bytes) -> bytes); "
                    "A.client.call('bench', 'echo', body); py-libp2p host underneath "
                    "(TCP, Noise, yamux); the RPC streams as the transport of the measured "
                    "commit uses them (RPC 1.0.0: a stream per call; 1.1.0: unary calls on "
                    "pooled long-lived streams)",
            "ours-transport-pyyamux": "ours-transport with py-libp2p's yamux "
                                      "(build_host(muxer='py-libp2p')): the muxer's share",
            "ours-transport": "our RpcTransport alone between two build_host() hosts: "
                              "open_call(kind='unary') + call.unary(body); handler "
                              "send(await receive()); finish()",
            "raw-trio": "trio TCP, varint-length CBOR {id, body} frames, calls multiplexed by "
                        "id on one connection (a reader task hands answers to callers), "
                        "server task per request",
            "libp2p-stream-per-call": "py-libp2p 0.8.1 new_host() x2 (TCP, Noise, yamux); "
                                      "new_stream per call (multistream-select), one "
                                      "varint+CBOR frame each way, close",
            "libp2p-one-stream": "the same hosts, one long-lived stream, calls multiplexed "
                                 "by id (as raw-trio)",
            "libp2p-request-response": "libp2p.request_response.RequestResponse (py-libp2p "
                                       "0.8.1; stream per request, varint-length message), "
                                       "CBOR codec {body}, timeout 30 s, other config default",
            "grpcio-aio": "grpc.aio server + one insecure channel (HTTP/2, plaintext) in a "
                          "subprocess; generic unary_unary handler, CBOR {body} serializers",
        },
        "metrics": {
            "calls_per_s": "calls / wall time of the loaded phase",
            "p50_ms/p99_ms": "latency of each call in the loaded phase (16 in flight)",
            "cpu_ms_per_call": "process CPU time (client + server: same process; grpcio: "
                               "its subprocess incl. C-core threads) over the loaded phase "
                               "/ calls",
            "seq_p50_ms/seq_p99_ms": "latency of calls made one at a time",
        },
    }
    notes = [
        "ratios are ours / baseline of the medians; calls_per_s: > 1 means ours is better; "
        "latency and CPU: < 1 means ours is better",
        "CPU covers client and server together (one process per side); for ours it also "
        "covers both Nodes' background work (DHT, registry, gossip)",
        "py-libp2p 0.8.1 has a request/response module (libp2p.request_response); it is "
        "measured as libp2p-request-response",
        "shared 2-core machine: compare sides within this run, not absolute figures across "
        "runs",
    ]
    versions = {d: _version(d) for d in ("grpcio", "libp2p", "trio", "cbor2")}
    path = write_result(name, command_line(), params, figures, baseline=base, ratio=ratios,
                        started=started, loadavg_at_start=load_at_start, goal=goal,
                        versions=versions, src_state_measured=src_at_start,
                        src_state_at_end=_src_state(),
                        notes=notes, errors=out["errors"])

    for size in sizes:
        rows = []
        ours_cps = med(summ, "ours", size, "calls_per_s")
        for s in args.sides:
            m = summ[s][str(size)]
            cps = m["calls_per_s"]
            if cps["median"] is None:
                continue
            rows.append({
                "side": s, "n": cps["n"],
                "calls/s": cps["median"], "min..max": f"{cps['min']:.0f}..{cps['max']:.0f}",
                "p50 ms": m["p50_ms"]["median"], "p99 ms": m["p99_ms"]["median"],
                "CPU ms/call": m["cpu_ms_per_call"]["median"],
                "seq p50 ms": m["seq_p50_ms"]["median"],
                "ours/side calls/s": (ours_cps / cps["median"]) if ours_cps else None,
            })
        print()
        print_table(rows, title=f"{name}: {size} B payloads, {args.concurrency} in flight, "
                                f"medians of {args.reps} repetitions")
    for size in sizes:
        g = goal[str(size)]
        print(f"goal at {size} B: >= half raw-trio: {g['at_least_half_raw_trio']}; "
              + ", ".join(f"{k}: {v}" for k, v in g.items() if k.startswith("ahead_of_")))
    for e in out["errors"]:
        print(f"error: {e}")
    png = plot(RESULTS_DIR / f"{name}.png", summ, args.sides, sizes,
               f"unary echo on 127.0.0.1, one client, {args.concurrency} calls in flight, "
               f"{args.reps} repetitions ({'quick' if q else 'full'})")
    print(f"wrote {path}" + (f" and {png}" if png else ""))
    return 1 if out["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
