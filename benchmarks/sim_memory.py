"""Memory of a simulated Kademlia network: RSS at 10k, 100k and 1,000,000 nodes.

Question (issue 3): do 100,000 nodes running the Kademlia core fit in 8 GiB, and does a
DHT-only run of 1,000,000 nodes fit in 16 GiB?

Each (tables, size) runs in a fresh child process: it imports everything, builds the preimage
pool (the baseline RSS), creates N nodes with full routing tables (the ideal-table fill, which
holds as many entries as protocol-built tables of the same size and takes minutes instead of
hours to build), runs lookups to show the network works, and reports RSS (psutil), the number
of table entries and the lookups' figures. Two table kinds, side by side at the sizes both can
hold: ``plain`` (``RoutingTable``: an object per entry) and ``compact``
(``sim.compact_table``: node numbers in arrays, the same run event for event). ``plain`` is
skipped above ``--plain-max`` nodes (1M plain tables need ~46 GiB). For each kind the parent
fits ``rss = base + nodes * per_node + entries * per_entry`` on its two largest sizes.

    python benchmarks/sim_memory.py --quick                       # 2k and 5k nodes
    python benchmarks/sim_memory.py                               # 10k and 100k nodes
    python benchmarks/sim_memory.py --sizes 10000,100000,1000000  # + compact at 1M (~25 min)
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common  # noqa: E402

NAME = "sim_memory"
GIB = 1 << 30
KINDS = ("plain", "compact")


def child(n: int, kind: str, lookups: int) -> dict[str, Any]:
    import gc

    import psutil

    from micronetwork.sim.scenarios import RunParams

    proc = psutil.Process()
    sc = RunParams(nodes=n, seed=1, lookups=lookups, compact_tables=kind == "compact").scenario(
        _common.stage_progress(f"{kind} n={n}"))
    gc.collect()
    base = proc.memory_info().rss
    t0 = time.perf_counter()
    sc.build(ideal=True)
    build_s = time.perf_counter() - t0
    gc.collect()
    built = proc.memory_info().rss
    entries = sum(len(node.core.table) for node in sc.sim.nodes)
    t1 = time.perf_counter()
    sc.lookups(lookups, tag="check")
    lookups_s = time.perf_counter() - t1
    after = proc.memory_info().rss
    summary = sc.summary("check")
    return {
        "tables": kind,
        "nodes": n,
        "rss_base": base,
        "rss_built": built,
        "rss_after_lookups": after,
        "table_entries": entries,
        "entries_per_node": entries / n,
        "bytes_per_node": (built - base) / n,
        "bytes_per_entry": (built - base) / entries,
        "build_s": build_s,
        "lookups_s": lookups_s,
        "lookup_success": summary["success"],
        "lookups": summary,
    }


def run_child(n: int, kind: str, lookups: int) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, __file__, "--child", str(n), "--kind", kind, "--lookups", str(lookups)],
        stdout=subprocess.PIPE, text=True, check=True,  # progress: the child's stderr
    )
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def fit(runs: list[dict[str, Any]], k: int = 20) -> dict[str, Any]:
    """Per-entry and per-node bytes from the two largest runs of one kind, and predictions."""
    a, b = runs[-2], runs[-1]
    d_entries = b["table_entries"] - a["table_entries"]
    d_rss = (b["rss_built"] - b["rss_base"]) - (a["rss_built"] - a["rss_base"])
    # Solve rss = nodes * per_node + entries * per_entry on the two runs.
    det = a["nodes"] * b["table_entries"] - b["nodes"] * a["table_entries"]
    ra, rb = a["rss_built"] - a["rss_base"], b["rss_built"] - b["rss_base"]
    per_node = (ra * b["table_entries"] - rb * a["table_entries"]) / det if det else 0.0
    per_entry = (a["nodes"] * rb - b["nodes"] * ra) / det if det else d_rss / max(1, d_entries)
    c0 = b["entries_per_node"] - k * math.log2(b["nodes"])  # entries per node ~ c0 + k log2 N

    def predict(n: int) -> float:
        return (b["rss_base"] + n * max(0.0, per_node)
                + n * (c0 + k * math.log2(n)) * per_entry) / GIB

    return {
        "fitted_bytes_per_entry": per_entry,
        "fitted_bytes_per_node": per_node,
        "entries_per_node_model": f"{c0:.1f} + {k}*log2(N)",
        "predicted_rss_gib": {str(n): predict(n) for n in (100_000, 1_000_000)},
        "fitted_on": [a["nodes"], b["nodes"]],
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--sizes", default="10000,100000")
    ap.add_argument("--tables", default="plain,compact", help="plain, compact or both")
    ap.add_argument("--plain-max", type=int, default=100_000,
                    help="largest size run with plain tables (1M needs ~46 GiB)")
    ap.add_argument("--lookups", type=int, default=200)
    ap.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--kind", default="plain", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child is not None:
        print(json.dumps(child(args.child, args.kind, args.lookups)))
        return 0
    started = _common.now_iso()
    sizes = [2000, 5000] if args.quick else [int(x) for x in args.sizes.split(",")]
    kinds = [t for t in args.tables.split(",") if t]
    if not kinds or any(t not in KINDS for t in kinds):
        ap.error(f"--tables takes {' and/or '.join(KINDS)}")
    jobs = [(n, t) for n in sizes for t in kinds if t == "compact" or n <= args.plain_max]
    results = []
    for n, kind in _common.progress(jobs, "runs"):
        t0 = time.perf_counter()
        r = run_child(n, kind, args.lookups)
        r["wall_s"] = time.perf_counter() - t0
        results.append(r)
        print(f"  {kind} {n:,} nodes: RSS {r['rss_built'] / GIB:.2f} GiB, "
              f"{r['bytes_per_entry']:.1f} B/entry, build {r['build_s']:.0f} s, "
              f"lookups ok {r['lookup_success']:.3f}", flush=True)
    by_kind = {t: [r for r in results if r["tables"] == t] for t in kinds}
    figures: dict[str, Any] = {
        "runs": results,
        "fits": {t: fit(rs) for t, rs in by_kind.items() if len(rs) >= 2},
        "goal": {"100k_kademlia_gib": 8, "1M_dht_only_gib": 16},
    }
    ratio: dict[str, Any] = {}
    if len(kinds) == 2:
        for n in sizes:
            pair = [r for r in results if r["nodes"] == n]
            if len(pair) == 2:
                plain, compact = sorted(pair, key=lambda r: r["tables"] != "plain")
                ratio[str(n)] = {
                    "value": (compact["rss_built"] - compact["rss_base"])
                    / (plain["rss_built"] - plain["rss_base"]),
                    "meaning": "compact / plain RSS of the tables and nodes; < 1: compact smaller",
                    "better": "lower",
                }
    params = {
        "sizes": sizes,
        "tables": kinds,
        "plain_max": args.plain_max,
        "fill": "ideal (same entry count as protocol-built)",
        "k": 20,
        "lookups": args.lookups,
        "measure": "psutil RSS in a fresh child process per (tables, size)",
    }
    path = _common.write_result(
        NAME + ("_quick" if args.quick else ""),
        _common.command_line(),
        params,
        figures,
        ratio=ratio,
        started=started,
    )
    _common.print_table(
        [
            {
                "tables": r["tables"],
                "nodes": r["nodes"],
                "RSS GiB": r["rss_built"] / GIB,
                "entries/node": r["entries_per_node"],
                "B/entry": r["bytes_per_entry"],
                "build s": r["build_s"],
                "lookups ok": r["lookup_success"],
                "rounds": r["lookups"]["rounds_mean"],
                "p99 s": r["lookups"]["latency_p99"],
            }
            for r in results
        ],
        "memory of simulated Kademlia networks",
    )
    for t, f in figures["fits"].items():
        for n, g in f["predicted_rss_gib"].items():
            print(f"{t}: predicted RSS at {int(n):,} nodes: {g:.2f} GiB")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
