"""What does the HTTP gateway cost on top of a direct call?

One process on 127.0.0.1: a super node A runs the gateway, a peer node B serves ``bench.echo``
(a unary endpoint taking and returning a small dataclass). Measured alternately in the same
run, per repetition:

* ours ("gateway"): ``POST http://127.0.0.1:<port>/bench/echo`` with a JSON body, through A's
  gateway (JSON -> CBOR by the registry's schema, RPC to B, CBOR -> JSON), from an httpx
  client with keep-alive in the same process;
* baseline ("direct"): ``await A.client.call("bench", "echo", body)``, the Python client of
  the same node A, the same RPC to B.

Figures: latency of sequential calls (p50 and p99 of ``--calls`` calls per repetition) and
throughput (calls/s with ``--concurrency`` callers for ``--seconds``). The ratio
gateway ÷ direct is the gateway's overhead (its latency; the HTTP client's work is included,
since it runs in the same process, on the same two cores).

    python benchmarks/gateway.py --quick     # 3 repetitions, 100 calls, 1 s of load
    python benchmarks/gateway.py             # 7 repetitions, 300 calls, 3 s of load

Writes benchmarks/results/gateway.json (gateway_quick.json) and the .png beside it.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import trio

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (  # noqa: E402
    RESULTS_DIR,
    _quantile,
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

NAME = "gateway"


@dataclass
class Item:
    name: str
    qty: int = 1


def make_service() -> Any:
    from micronetwork.service import Service

    bench = Service("bench", version="1.0.0")

    @bench.endpoint
    async def echo(item: Item) -> Item:
        return Item(item.name, item.qty + 1)

    return bench


BODY = {"name": "widget", "qty": 3}


async def sequential(call: Any, n: int) -> tuple[float, float]:
    """p50 and p99 (ms) of n calls one after the other."""
    times = []
    for _ in range(n):
        t0 = trio.current_time()
        await call()
        times.append((trio.current_time() - t0) * 1e3)
    times.sort()
    return _quantile(times, 0.5), _quantile(times, 0.99)


async def throughput(call: Any, concurrency: int, seconds: float) -> float:
    """Completed calls per second with ``concurrency`` callers."""
    done = 0
    deadline = trio.current_time() + seconds

    async def worker() -> None:
        nonlocal done
        while trio.current_time() < deadline:
            await call()
            done += 1

    t0 = trio.current_time()
    async with trio.open_nursery() as nursery:
        for _ in range(concurrency):
            nursery.start_soon(worker)
    return done / (trio.current_time() - t0)


async def run(args: argparse.Namespace) -> dict[str, Any]:
    import httpx

    from micronetwork import Node, NodeConfig
    from micronetwork.gateway import open_gateway

    samples: dict[str, dict[str, list[float]]] = {
        k: {"gateway": [], "direct": []} for k in ("p50_ms", "p99_ms", "calls_per_s")}
    async with Node.open(NodeConfig.super_node()) as a, \
            Node.open(NodeConfig.peer(bootstrap=(a.addrs[0],))) as b:
        await b.serve(make_service())
        async with open_gateway(a, port=0, max_timeout=60.0) as gw, \
                httpx.AsyncClient(base_url=gw.url, timeout=30.0,
                                  limits=httpx.Limits(max_connections=64)) as http:

            async def via_gateway() -> None:
                r = await http.post("/bench/echo", json=BODY)
                if r.status_code != 200 or r.json()["qty"] != 4:
                    raise RuntimeError(f"gateway answered {r.status_code}: {r.text}")

            async def direct() -> None:
                answer = await a.client.call("bench", "echo", BODY)
                if answer["qty"] != 4:
                    raise RuntimeError(f"direct call answered {answer}")

            sides = {"gateway": via_gateway, "direct": direct}
            for fn in sides.values():  # warm-up: lookups, connections, caches
                for _ in range(20):
                    await fn()
            for _rep in progress(args.reps, label=NAME):
                for side, fn in sides.items():  # alternate: gateway, direct, gateway, ...
                    p50, p99 = await sequential(fn, args.calls)
                    samples["p50_ms"][side].append(p50)
                    samples["p99_ms"][side].append(p99)
                    samples["calls_per_s"][side].append(
                        await throughput(fn, args.concurrency, args.seconds))
            counters = dict(gw.app.counters)
    return {"samples": samples, "gateway_counters": counters}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="3 repetitions, 100 calls, 1 s load")
    ap.add_argument("--reps", type=int)
    ap.add_argument("--calls", type=int, help="sequential calls per repetition")
    ap.add_argument("--seconds", type=float, help="seconds of concurrent load per repetition")
    ap.add_argument("--concurrency", type=int, default=16)
    args = ap.parse_args()
    args.reps = args.reps or (3 if args.quick else 7)
    args.calls = args.calls or (100 if args.quick else 300)
    args.seconds = args.seconds or (1.0 if args.quick else 3.0)

    started, load_at_start = now_iso(), loadavg()
    out = trio.run(run, args)
    s = out["samples"]
    figures = {k: {"unit": u, **summarize(s[k]["gateway"])}
               for k, u in (("p50_ms", "ms"), ("p99_ms", "ms"), ("calls_per_s", "1/s"))}
    base = {k: {"unit": u, **summarize(s[k]["direct"])}
            for k, u in (("p50_ms", "ms"), ("p99_ms", "ms"), ("calls_per_s", "1/s"))}
    ratios = {"p50_ms": ratio(figures["p50_ms"], base["p50_ms"], "lower"),
              "p99_ms": ratio(figures["p99_ms"], base["p99_ms"], "lower"),
              "calls_per_s": ratio(figures["calls_per_s"], base["calls_per_s"], "higher")}
    name = f"{NAME}_quick" if args.quick else NAME
    params = {
        "quick": args.quick, "reps": args.reps, "sequential_calls_per_rep": args.calls,
        "load_seconds_per_rep": args.seconds, "concurrency": args.concurrency,
        "order": "per repetition: gateway then direct (sequential, then load)",
        "topology": "super node A (gateway, caller) -> peer node B (serves bench.echo), "
                    "one process, 127.0.0.1, TCP",
        "body": BODY, "http_client": "httpx.AsyncClient, keep-alive, same process",
        "warmup_calls_discarded": 20,
    }
    path = write_result(name, command_line(), params, figures, baseline=base, ratio=ratios,
                        started=started, loadavg_at_start=load_at_start,
                        gateway_counters=out["gateway_counters"],
                        notes=["ours = through the HTTP gateway; baseline = node.client.call "
                               "on the same node; ratio = gateway / direct"])
    rows = [{"metric": k, "gateway": figures[k]["median"], "direct": base[k]["median"],
             "gateway/direct": ratios[k]["value"]} for k in figures]
    print_table(rows, title=f"{name}: medians over {args.reps} repetitions")
    panels = [
        {"title": "unary call latency p50", "ylabel": "ms", "log": False,
         "series": {"gateway (HTTP)": figures["p50_ms"], "direct (client.call)": base["p50_ms"]}},
        {"title": "unary call latency p99", "ylabel": "ms", "log": False,
         "series": {"gateway (HTTP)": figures["p99_ms"], "direct (client.call)": base["p99_ms"]}},
        {"title": f"throughput, {args.concurrency} callers", "ylabel": "calls/s", "log": False,
         "series": {"gateway (HTTP)": figures["calls_per_s"],
                    "direct (client.call)": base["calls_per_s"]}},
    ]
    png = plot_bars(RESULTS_DIR / f"{name}.png", panels,
                    title="HTTP gateway vs the Python client, same node, 127.0.0.1")
    print(f"wrote {path}" + (f" and {png}" if png else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
