"""``micronetwork sim SCENARIO --nodes N --seed S``: run a simulated network and report.

Runs one of :data:`micronetwork.sim.scenarios.SCENARIOS` (``lookup``, ``ideal``, ``publish``,
``churn``, ``partition``, ``adversarial``, ``eclipse``; gossip: ``gossip``, ``gossip-sybil``,
``gossip-flash``, ``gossip-eclipse``, ``gossip-spam``) and writes ``summary.json``,
``lookups.csv`` (gossip: ``messages.csv``) and plots to ``--out`` (default
``./sim-results/<scenario>-n<N>-s<S>``).
``--nodes`` and ``--seeds`` accept comma lists: a sweep of seeds x sizes runs as one command,
the replications spread over ``--jobs`` processes, and ``sweep.json`` collects their figures.
Errors the user can fix (unknown scenario, impossible sizes, a bad topology file) print one
line and exit 2.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from ..errors import ConfigError

__all__ = ["add_parser", "run"]


def _ints(text: str) -> list[int]:
    try:
        return [int(x.replace("_", "")) for x in text.split(",") if x]
    except ValueError:
        msg = f"expected integers separated by commas: {text!r}"
        raise argparse.ArgumentTypeError(msg) from None


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    from ..sim.scenarios import SCENARIOS

    p = subparsers.add_parser(
        "sim",
        help="run a deterministic network simulation",
        description="Run the real protocol cores on a simulated network in virtual time.",
    )
    p.add_argument("scenario", help=f"one of: {', '.join(SCENARIOS)}")
    p.add_argument("--nodes", type=_ints, default=[1000], help="node count(s), comma list")
    p.add_argument("--seed", "--seeds", dest="seeds", type=_ints, default=[1],
                   help="seed(s), comma list")
    p.add_argument("--out", type=Path, default=None, help="results folder")
    p.add_argument("--jobs", type=int, default=2, help="processes for a sweep")
    p.add_argument("--lookups", type=int, default=500)
    p.add_argument("--supers", type=int, default=4)
    p.add_argument("--bootstrap-contacts", type=int, default=1,
                   help="super nodes a joining peer asks at first (the rest are fallbacks)")
    p.add_argument("--bucket-spread-bits", type=int, default=0,
                   help="a full k-bucket keeps k>>B peers in each of 2**B parts (0: off, "
                        "the default; 4 for shorter lookups, see docs/simulator.md)")
    p.add_argument("--compact-tables", action="store_true",
                   help="routing tables as arrays: the same run in about a quarter of the memory "
                        "(DHT scenarios at a million nodes)")
    p.add_argument("--latency", default="uniform:20:120",
                   help="constant:MS | uniform:LO:HI | lognormal:MEDIAN:SIGMA (ms)")
    p.add_argument("--topology", default=None,
                   help="graph file (GraphML, GML, node-link JSON, edge list) or "
                        "regular:N:D | ba:N:M | waxman:N")
    p.add_argument("--loss", type=float, default=0.0)
    p.add_argument("--verify-cost", type=float, default=0.010, help="CPU s per request")
    p.add_argument("--crypto", choices=("model", "execute"), default="model")
    p.add_argument("--disjoint", type=_ints, default=[1], help="disjoint paths d, comma list")
    p.add_argument("--attackers", "--fraction", dest="attackers", type=float, default=0.2,
                   help="fraction of nodes that attack")
    p.add_argument("--churn", type=float, default=0.10, help="fraction per hour")
    p.add_argument("--stale", type=float, default=0.20, help="fraction crashed before churn")
    p.add_argument("--duration", type=float, default=600.0, help="virtual s of churn")
    p.add_argument("--budget-bits", type=float, default=24.0, help="attacker hashes per id, log2")
    p.add_argument("--id-puzzle", type=_ints, default=[0], help="id puzzle bits, comma list")
    g = p.add_argument_group("gossip scenarios")
    g.add_argument("--degree", type=int, default=20, help="connections per node")
    g.add_argument("--messages", type=int, default=50, help="messages published")
    g.add_argument("--rate", type=float, default=1.0, help="messages per second")
    g.add_argument("--msg-size", type=int, default=2048, help="bytes per message")
    g.add_argument("--no-idontwant", action="store_true", help="never send IDONTWANT")
    g.add_argument("--gossip-dht", action="store_true",
                   help="connect gossip peers from Kademlia tables (builds the DHT first)")
    g.add_argument("--activation", type=float, default=10.0, help="P3 activation (s)")
    g.add_argument("--flash-at", type=float, default=120.0, help="gossip-flash: honest for (s)")
    g.add_argument("--window", type=float, default=4.0, help="delivered within (s)")
    p.add_argument("--no-plots", action="store_true")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    p.set_defaults(run=run)
    return p  # type: ignore[no-any-return]


def _topology(spec: str | None) -> Any:
    if spec is None:
        return None
    from ..sim import topology as topo

    name, _, rest = spec.partition(":")
    args = rest.split(":") if rest else []
    try:
        if name == "regular":
            return topo.random_regular(int(args[0]), int(args[1]) if len(args) > 1 else 8)
        if name == "ba":
            return topo.barabasi_albert(int(args[0]), int(args[1]) if len(args) > 1 else 3)
        if name == "waxman":
            return topo.waxman(int(args[0]))
    except (IndexError, ValueError) as exc:
        raise ConfigError(f"bad --topology {spec!r}: {exc}") from None
    except Exception as exc:  # networkx rejects impossible graphs (e.g. odd n*d)
        raise ConfigError(f"cannot build topology {spec!r}: {exc}") from None
    return topo.load_graph(spec)


def _params(args: argparse.Namespace, nodes: int, seed: int) -> Any:
    from ..sim.scenarios import RunParams

    return RunParams(
        nodes=nodes, seed=seed, supers=args.supers, bootstrap_contacts=args.bootstrap_contacts,
        spread_bits=args.bucket_spread_bits, compact_tables=args.compact_tables,
        lookups=args.lookups, latency=args.latency,
        loss=args.loss, verify_cost=args.verify_cost, crypto=args.crypto,
        disjoint=tuple(args.disjoint), churn=args.churn, stale=args.stale,
        duration=args.duration, attackers=args.attackers, budget_bits=args.budget_bits,
        id_puzzle=tuple(args.id_puzzle), topology=_topology(args.topology),
        degree=args.degree, messages=args.messages, rate=args.rate, msg_size=args.msg_size,
        idontwant=not args.no_idontwant, gossip_dht=args.gossip_dht, activation=args.activation,
        flash_at=args.flash_at, window=args.window,
    )


def _one(job: tuple[argparse.Namespace, int, int, Path, bool]) -> dict[str, Any]:
    from ..sim.plots import plot_run
    from ..sim.progress import ProgressReporter
    from ..sim.scenarios import run_scenario

    args, nodes, seed, out, show = job
    params = _params(args, nodes, seed)
    t0 = time.perf_counter()
    with ProgressReporter(f"{args.scenario} n={nodes} seed={seed}", enabled=show) as progress:
        sc, figures = run_scenario(args.scenario, params, progress)
    wall = time.perf_counter() - t0
    events = sc.sim.loop.events_run
    extra = {"scenario": args.scenario, "figures": figures, "wall_seconds": wall,
             "events_per_second": events / wall if wall else None}
    sc.export(out, extra)
    if not args.no_plots:
        plot_run(sc.sim.metrics.lookups, out, f"{args.scenario}, {nodes} nodes, seed {seed}")
    return {"nodes": nodes, "seed": seed, "out": str(out), "figures": figures,
            "wall_seconds": wall, "events": events}


def _print_gossip(tag: str, f: dict[str, Any]) -> None:
    line = (f"  {tag:>18}: delivered {f['delivery']:.5f} (within {f['window_s']:g} s "
            f"{f['delivery_within_window']:.5f})  latency p50 {f['latency_p50']:.3f} s "
            f"p99 {f['latency_p99']:.3f} s  copies {f['copies_mean']:.2f}")
    if "bound_p99" in f:
        line += f"  bound p99 {f['bound_p99']:.3f} s"
    print(line)


def _print_load(load: dict[str, Any]) -> None:
    """One line per phase: what the busiest super node served and how long requests queued."""
    for phase, f in load["phases"].items():
        print(f"  {'supers ' + phase:>18}: {f['requests_per_node']:.0f} requests each, "
              f"{f['rate_mean']:.1f}/s mean, peak {f['rate_peak']:.1f}/s "
              f"(load {f['load_peak']:.0%}), backlog max {f['backlog_max']:.2f} s, "
              f"queue wait max {f['wait_max']:.2f} s, timeouts {f['timeouts']}")


def run(args: argparse.Namespace) -> int:
    from ..sim.scenarios import SCENARIOS, ScenarioError

    if args.scenario not in SCENARIOS:
        print(f"micronetwork sim: error: unknown scenario {args.scenario!r}; "
              f"choose one of: {', '.join(SCENARIOS)}", file=sys.stderr)
        return 2
    try:
        at_once = 1 if args.jobs == 1 else min(args.jobs, len(args.nodes) * len(args.seeds))
        for n in args.nodes:
            p = _params(args, n, args.seeds[0])
            p.check()
            if not args.scenario.startswith("gossip"):
                p.check_memory(at_once)
        if args.jobs < 1:
            raise ScenarioError("--jobs must be at least 1")
    except (ScenarioError, ConfigError) as exc:
        print(f"micronetwork sim: error: {exc}", file=sys.stderr)
        return 2
    runs = [(n, s) for n in args.nodes for s in args.seeds]
    base = args.out or Path.cwd() / "sim-results"
    single = len(runs) == 1
    jobs = []
    for n, s in runs:
        out = base if (single and args.out) else base / f"{args.scenario}-n{n}-s{s}"
        jobs.append((args, n, s, out, not args.quiet and (single or args.jobs == 1)))
    if single or args.jobs == 1:
        results = [_one(j) for j in jobs]
    else:
        with get_context("spawn").Pool(min(args.jobs, len(jobs))) as pool:
            results = []
            for i, r in enumerate(pool.imap(_one, jobs), 1):
                results.append(r)
                if not args.quiet:
                    print(f"sweep: {i}/{len(jobs)} runs done", file=sys.stderr, flush=True)
    if not single:
        base.mkdir(parents=True, exist_ok=True)
        (base / "sweep.json").write_text(json.dumps(results, indent=2, default=str))
    for r in results:
        print(f"{args.scenario} nodes={r['nodes']} seed={r['seed']} "
              f"({r['wall_seconds']:.1f} s, {r['events']} events) -> {r['out']}")
        for tag, fig in r["figures"].items():
            if tag == "super_load":
                _print_load(fig)
            elif isinstance(fig, dict) and "success" in fig:
                print(f"  {tag:>18}: success {fig['success']:.4f}  rounds {fig['rounds_mean']:.2f}"
                      f" (p95 {fig['rounds_p95']:.0f})  latency p50 {fig['latency_p50']:.3f} s"
                      f"  p99 {fig['latency_p99']:.3f} s")
            elif isinstance(fig, dict) and "delivery" in fig:
                _print_gossip(tag, fig)
            elif not isinstance(fig, dict):
                print(f"  {tag:>18}: {fig}")
            elif isinstance(fig, dict):
                for sub, f in fig.items():
                    if isinstance(f, dict) and "delivery" in f:
                        _print_gossip(f"{tag} {sub}", f)
                    if isinstance(f, dict) and "success" in f:
                        print(f"  {tag + ' ' + sub:>18}: success {f['success']:.4f}  "
                              f"latency p50 {f['latency_p50']:.3f} s")
    return 0
