"""Registry scale in the simulator: per-node state and traffic as the number of services grows.

Question (issue 5): does what a node holds and sends for the registry stay flat as the total
number of services in the network grows? ``micronetwork.sim.registry`` runs the real registry
and gossip cores of N nodes in virtual time (U(20,120) ms links, real Ed25519 signatures); S
services are served by random nodes, every node watches W of them. For each S the run reports,
per (non-super) node, the registrations held, the gossip topics joined and the bytes sent and
received per second, and for super nodes the catalog size (bounded by ``catalog_size``).

    python benchmarks/registry_scale.py --quick        # N=200, S = 50 / 200 / 800
    python benchmarks/registry_scale.py                # N=1000, S = 100 / 1000 / 4000
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common  # noqa: E402

NAME = "registry_scale"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="N=200, S = 50 / 200 / 800")
    parser.add_argument("--nodes", type=int)
    parser.add_argument("--services", type=int, nargs="+")
    parser.add_argument("--watched", type=int, default=3)
    parser.add_argument("--duration", type=float, default=65.0, help="virtual seconds")
    parser.add_argument("--catalog-size", type=int, default=1024)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    nodes = args.nodes or (200 if args.quick else 1000)
    services = args.services or ([50, 200, 800] if args.quick else [100, 1000, 4000])

    from micronetwork.sim.registry import run_registry_scale

    started = _common.now_iso()
    rows: list[dict[str, Any]] = []
    for s in _common.progress(services, label=f"registry scale, N={nodes}"):
        t0 = time.perf_counter()
        r = run_registry_scale(nodes, s, watched=args.watched, duration=args.duration,
                               seed=args.seed, catalog_size=args.catalog_size)
        row = r.as_dict()
        row["wall_s"] = round(time.perf_counter() - t0, 1)
        rows.append(row)
    _common.print_table(
        [{"services": r["services"], "held mean/max": f"{r['held_mean']:.2f} / {r['held_max']}",
          "of others": f"{r['held_remote_mean']:.2f}",
          "topics mean/max": f"{r['topics_mean']:.2f} / {r['topics_max']}",
          "KiB/s out": f"{r['kib_out_per_node_s']:.3f}",
          "KiB/s in": f"{r['kib_in_per_node_s']:.3f}",
          "watched known": f"{r['watch_coverage']:.3f}",
          "super catalog": f"{r['super_catalog_mean']:.0f}",
          "super KiB/s in": f"{r['super_kib_in_s']:.2f}", "wall s": r["wall_s"]} for r in rows],
        title=f"registry: N={nodes}, W={args.watched}, {args.duration:.0f} s virtual",
    )
    first, last = rows[0]["held_remote_mean"], rows[-1]["held_remote_mean"]
    figures = {"runs": rows, "held_of_others_growth_first_to_last": last / first if first else None,
               "services_growth_first_to_last": services[-1] / services[0]}
    params = {"nodes": nodes, "services": services, "watched": args.watched,
              "duration_virtual_s": args.duration, "catalog_size": args.catalog_size,
              "seed": args.seed, "latency": "U(20,120) ms", "signatures": "executed (Ed25519)",
              "quick": args.quick}
    name = NAME + ("_quick" if args.quick else "")
    path = _common.write_result(name, _common.command_line(), params, figures, started=started)
    panels = [
        {"title": "registrations held per node", "ylabel": "records",
         "series": {f"S={r['services']}": _common.summarize([r["held_mean"]]) for r in rows}},
        {"title": "registry traffic per node", "ylabel": "KiB/s sent",
         "series": {f"S={r['services']}": _common.summarize([r["kib_out_per_node_s"]])
                    for r in rows}},
        {"title": "super node catalog", "ylabel": "names",
         "series": {f"S={r['services']}": _common.summarize([r["super_catalog_mean"]])
                    for r in rows}},
    ]
    png = _common.plot_bars(path.with_suffix(".png"), panels,
                            title=f"registry scale (N={nodes}, W={args.watched})")
    print(f"wrote {path}" + (f" and {png}" if png else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
