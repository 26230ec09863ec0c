"""Broker in the simulator: delivery ratio and latency at 1k and 10k nodes with 10 % churn.

Question (issue 6): "in the simulator at 10k nodes, delivery ratio and latency with 10% churn".
The real BrokerCore of every node runs over the real gossip core in virtual time
(``micronetwork.sim.broker``): 10 publishers, 1 event/s in total for 60 s, every other regular
node subscribed with ``since=``, super nodes retaining as in the real defaults; during those
60 s, 10 % of the regular nodes crash, stay down 5-20 s and restart from the cursor their
application saved. Measured: events delivered exactly once to the application ÷ expected
(subscribers that stayed up, and those that were down: after catch-up), duplicates, latency
from publish to application (up, down, and from the rejoin), bytes per node.

    python benchmarks/broker_sim.py --quick            # 300 nodes, 30 s window (seconds)
    python benchmarks/broker_sim.py                    # 1,000 and 10,000 nodes
    python benchmarks/broker_sim.py --sizes 10000      # one size (merged into the JSON)

Writes ``benchmarks/results/broker_sim.json`` (``broker_sim_quick.json`` with ``--quick``; runs
of other sizes already in the file are kept) and ``broker_sim.png``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common  # noqa: E402
from micronetwork.sim.broker import BrokerSimConfig, run_broker_sim  # noqa: E402

NAME = "broker_sim"


def _progress(label: str) -> Any:
    t0 = time.monotonic()
    last = [0.0]

    def report(frac: float, stage: str) -> None:
        now = time.monotonic()
        if now - last[0] >= 20 or frac >= 1.0:
            last[0] = now
            el = now - t0
            eta = f"~{el / frac * (1 - frac):.0f}s" if frac > 0.01 else "?"
            print(f"[{label}] {stage} {frac:4.0%} of virtual time, {el:5.0f}s elapsed, {eta} "
                  "left", file=sys.stderr, flush=True)

    return report


def plot(figures: dict[str, Any], path: Path) -> Path | None:
    plt = _common._pyplot()
    if plt is None:
        return None
    sizes = sorted(figures, key=int)
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.4))
    ax = axes[0]
    ys = [i / 100 for i in range(1, 101)]
    for size in sizes:
        f = figures[size]
        for key, style, what in (("latency_up", "-", "up: publish → app"),
                                 ("after_rejoin", "--", "down: rejoin → app")):
            cdf = f[key].get("cdf", [])
            if cdf:
                ax.plot(cdf, ys, style, label=f"{int(size):,} nodes, {what}")
    ax.set_xlabel("latency (s, virtual)")
    ax.set_ylabel("fraction of deliveries ≤ x")
    ax.set_title("latency to the application")
    ax.legend(fontsize=7)
    ax = axes[1]
    labels, vals = [], []
    for size in sizes:
        f = figures[size]
        for key, name in (("delivery_ratio_up", "up"), ("delivery_ratio_down", "down")):
            labels.append(f"{name}\n{int(size):,}")
            vals.append(f[key])
    ax.bar(labels, vals, color=["tab:blue", "tab:orange"] * len(sizes))
    lo = min([v for v in vals if v == v] or [1.0])
    ax.set_ylim(min(0.99, lo - 0.001), 1.0005)
    ax.set_ylabel("delivered exactly once ÷ expected")
    ax.set_title("delivery ratio (10 % churn)")
    ax = axes[2]
    ax.bar([f"{int(s):,}" for s in sizes],
           [figures[s]["bytes_per_node_s"]["mean"] / 1024 for s in sizes], label="mean")
    ax.plot([f"{int(s):,}" for s in sizes],
            [figures[s]["bytes_per_node_s"]["p99"] / 1024 for s in sizes], "k^", label="p99")
    ax.set_ylabel("KiB/s per regular node (in + out)")
    ax.set_xlabel("nodes")
    ax.set_title("traffic per node")
    ax.legend(fontsize=7)
    return _common.save_figure(plt, fig, path)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="300 nodes, 30 s window")
    ap.add_argument("--sizes", default="1000,10000")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--window", type=float, default=60.0, help="publishing + churn (s)")
    ap.add_argument("--rate", type=float, default=1.0, help="events/s, all publishers")
    ap.add_argument("--churn", type=float, default=0.10,
                    help="crashes during the window, as a fraction of the regular nodes")
    ap.add_argument("--subscribers", type=float, default=1.0)
    ap.add_argument("--plot-only", action="store_true", help="redraw the plot from the JSON")
    args = ap.parse_args()
    if args.plot_only:
        path = _common.RESULTS_DIR / f"{NAME}{'_quick' if args.quick else ''}.json"
        print(plot(_common.load_json(path).get("figures", {}), path.with_suffix(".png")))
        return 0
    started = _common.now_iso()
    sizes = [300] if args.quick else [int(s) for s in args.sizes.split(",") if s]
    window = 30.0 if args.quick else args.window
    name = NAME + ("_quick" if args.quick else "")
    result = _common.RESULTS_DIR / f"{name}.json"
    figures: dict[str, Any] = {}
    params: dict[str, Any] = {}
    runs: dict[str, Any] = {}
    for n in sizes:
        cfg = BrokerSimConfig(nodes=n, seed=args.seed, window=window, rate=args.rate,
                              churn=args.churn, subscribers=args.subscribers)
        label = f"broker n={n}"
        t0 = time.perf_counter()
        _, figs = run_broker_sim(cfg, _progress(label))
        print(f"[{label}] done in {time.perf_counter() - t0:.0f} s "
              f"({figs['events_run']:,} events, peak RSS {figs['peak_rss_mib']:.0f} MiB)",
              file=sys.stderr, flush=True)
        figures[str(n)] = figs
        params[str(n)] = cfg.describe()
        runs[str(n)] = {"command": _common.command_line(), "started": started,
                        "finished": _common.now_iso(), "wall_s": figs["wall_s"]}
    model = {
        "topology": "random regular graph of degree 20 (networkx, seeded) + each regular node "
        "connected to its bootstrap super node (one of 4, which know each other)",
        "latency": "one-way U(20, 120) ms per link, fixed per link (from the seed)",
        "validation": "every new gossip message waits verify_cost (10 ms) in the receiver's CPU "
        "queue, then BrokerCore.validate answers; requests cost the server request_cost "
        "(1 ms); answers with events cost the requester 10 ms per event",
        "signatures": "real Ed25519 keys; events are signed and verified for real by the "
        "broker; the gossip layer's own StrictSign check is modelled (fields present)",
        "gossip": "GossipConfig defaults (D=6, D_lo=5, D_hi=12, heartbeat 1 s, flood publish, "
        "default scoring); events of 256 B payload (~0.5 kB signed: no IDONTWANT)",
        "retention": "super nodes: the real super defaults (retain '*', 100,000 events, "
        "256 MiB, 7 days); other nodes: BrokerConfig() (publisher log 1,000 events)",
        "churn": "churn x (regular nodes) crashes at uniform random times in the window, each "
        "of a random regular node that is up; down U(5, 20) s; neighbours notice after 1 s; "
        "restart with the same key, fresh state, the cursor the application saved, "
        "reconnects to its graph neighbours that are up and its bootstrap super, and "
        "subscribes with since=cursor. Supers and publishers do not churn",
        "classes": "a pair (event, subscriber) is 'up' if the subscriber was up from the "
        "publication until it had the event, else 'down' (it had to catch up after a "
        "restart); 'after_rejoin' = delivery - the last restart before it",
        "seed": args.seed,
        "quick": args.quick,
    }
    fresh = {} if args.quick else _common.load_json(result)
    figures = {**fresh.get("figures", {}), **figures}
    params = {**{k: v for k, v in fresh.get("params", {}).items() if k.isdigit()}, **params,
              "model": model}
    runs = {**fresh.get("runs", {}), **runs}
    path = _common.write_result(name, _common.command_line(), params, figures, started=started,
                                runs=runs)
    png = plot(figures, path.with_suffix(".png"))
    rows = []
    for size in sorted(figures, key=int):
        f = figures[size]
        rows.append({
            "nodes": int(size), "events": f["events"], "subs": f["subscribers"],
            "crashes": f["crashes"], "ratio": f["delivery_ratio"],
            "ratio_up": f["delivery_ratio_up"], "ratio_down": f["delivery_ratio_down"],
            "dups": f["duplicates"], "up_p50": f["latency_up"]["p50"],
            "up_p99": f["latency_up"]["p99"], "rejoin_p50": f["after_rejoin"]["p50"],
            "rejoin_p99": f["after_rejoin"]["p99"],
            "kB/s/node": f["bytes_per_node_s"]["mean"] / 1000, "wall_s": f["wall_s"],
        })
    _common.print_table(rows, "broker in the simulator, 10 % churn (virtual time)")
    print(f"wrote {path}" + (f" and {png}" if png else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
