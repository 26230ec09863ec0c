"""Memory of a simulated Kademlia network: RSS at 10k and 100k nodes, extrapolated to 1M.

Question (issue 3): do 100,000 nodes running the Kademlia core fit in 8 GiB, and does a
DHT-only run of 1,000,000 nodes fit in 16 GiB?

Each size runs in a fresh child process: it imports everything, builds the preimage pool (the
baseline RSS), creates N nodes with full routing tables (the ideal-table fill, which holds as
many entries as protocol-built tables of the same size and takes minutes instead of hours to
build), runs 100 lookups to show the network works, and reports RSS (psutil) and the number of
table entries. The parent fits ``rss = base + nodes * per_node + entries * per_entry`` on the
measured sizes (with per-node entry counts growing as ``k * log2(N)``) and extrapolates.

    python benchmarks/sim_memory.py --quick          # 2k and 5k nodes
    python benchmarks/sim_memory.py                  # 10k and 100k nodes
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


def child(n: int) -> dict[str, Any]:
    import gc

    import psutil

    from micronetwork.sim.scenarios import RunParams

    proc = psutil.Process()
    sc = RunParams(nodes=n, seed=1, lookups=100).scenario(None)
    gc.collect()
    base = proc.memory_info().rss
    t0 = time.perf_counter()
    sc.build(ideal=True)
    build_s = time.perf_counter() - t0
    gc.collect()
    built = proc.memory_info().rss
    entries = sum(len(node.core.table) for node in sc.sim.nodes)
    sc.lookups(100, tag="check")
    after = proc.memory_info().rss
    return {
        "nodes": n,
        "rss_base": base,
        "rss_built": built,
        "rss_after_lookups": after,
        "table_entries": entries,
        "entries_per_node": entries / n,
        "bytes_per_node": (built - base) / n,
        "build_s": build_s,
        "lookup_success": sc.summary("check")["success"],
    }


def run_child(n: int) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, __file__, "--child", str(n)], capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--sizes", default="10000,100000")
    ap.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child is not None:
        print(json.dumps(child(args.child)))
        return 0
    started = _common.now_iso()
    sizes = [2000, 5000] if args.quick else [int(x) for x in args.sizes.split(",")]
    results = []
    for n in _common.progress(sizes, "sizes"):
        t0 = time.perf_counter()
        r = run_child(n)
        r["wall_s"] = time.perf_counter() - t0
        results.append(r)
    # Fit bytes per entry and per node from the two largest sizes.
    a, b = results[-2], results[-1]
    d_entries = b["table_entries"] - a["table_entries"]
    d_nodes = b["nodes"] - a["nodes"]
    d_rss = (b["rss_built"] - b["rss_base"]) - (a["rss_built"] - a["rss_base"])
    # entries per node ~ c0 + k*log2(N): fit c0 on the largest run
    k = 20
    c0 = b["entries_per_node"] - k * math.log2(b["nodes"])
    per_node_total = d_rss / d_nodes  # bytes per added node, tables included (at these sizes)
    per_entry_guess = 150.0
    per_node_fixed = max(
        0.0, (b["rss_built"] - b["rss_base"]) / b["nodes"] - per_entry_guess * b["entries_per_node"]
    )

    def predict(n: int) -> float:
        entries = n * (c0 + k * math.log2(n))
        return b["rss_base"] + n * per_node_fixed + entries * per_entry_guess

    figures = {
        "runs": results,
        "marginal_bytes_per_node": per_node_total,
        "model": {
            "entries_per_node": f"{c0:.1f} + {k}*log2(N)",
            "bytes_per_entry_assumed": per_entry_guess,
            "bytes_per_node_fixed": per_node_fixed,
        },
        "predicted_rss_gib": {str(n): predict(n) / GIB for n in (100_000, 1_000_000)},
        "goal": {"100k_kademlia_gib": 8, "1M_dht_only_gib": 16},
    }
    if d_entries:
        figures["fitted_bytes_per_entry"] = (d_rss - per_node_fixed * d_nodes) / d_entries
    params = {
        "sizes": sizes,
        "tables": "ideal fill (same entry count as protocol-built)",
        "k": k,
        "measure": "psutil RSS in a fresh child process per size",
    }
    path = _common.write_result(
        NAME + ("_quick" if args.quick else ""),
        _common.command_line(),
        params,
        figures,
        started=started,
    )
    _common.print_table(
        [
            {
                "nodes": r["nodes"],
                "RSS GiB": r["rss_built"] / GIB,
                "entries/node": r["entries_per_node"],
                "KiB/node": r["bytes_per_node"] / 1024,
                "build s": r["build_s"],
                "lookups ok": r["lookup_success"],
            }
            for r in results
        ],
        "memory of simulated Kademlia networks",
    )
    for n, g in figures["predicted_rss_gib"].items():
        print(f"predicted RSS at {int(n):,} nodes: {g:.2f} GiB")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
