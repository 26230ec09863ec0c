"""DHT lookups in the simulator: rounds, success, latency, churn, attackers, publication.

Question (issue 3): with routing tables the protocol built (bootstrap through a few super
nodes, then a refresh round), how many rounds does a lookup take at 1k / 10k / 100k nodes
compared with ideal tables filled from a global view (measured here, same simulator, same
seed), how often does it succeed, how long does it take, and how does it hold up under churn,
stale entries, colluding attackers (random ids; d = 1, 4, 8 disjoint paths) and attackers who
grind ids next to a target (with and without an id puzzle)? How long does publishing a
provider record to the 20 closest take?

    python benchmarks/dht_lookups.py --quick                 # seconds
    python benchmarks/dht_lookups.py --sizes 1000,10000      # minutes
    python benchmarks/dht_lookups.py --sizes 100000 --sections rounds --lookups 1000

Sections merge into ``benchmarks/results/dht_lookups.json`` (a later run of one section or
size replaces only that entry), plot ``dht_lookups.png``. ``--parts`` picks the parts of the
rounds section to measure (ideal; join: lookups right after the join, before the refresh
round; protocol; publish; churn); the others keep the last run's values. The JSON is written
after each part, so a run of hours that is stopped keeps what it measured (the 100k
protocol-built run: ``--sizes 100000 --sections rounds --parts join,protocol,publish``,
~2.5 h of one core).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common  # noqa: E402
from micronetwork.sim.scenarios import RunParams, adversarial, eclipse  # noqa: E402

NAME = "dht_lookups"
RESULT = _common.RESULTS_DIR / f"{NAME}.json"
SPREAD = 0  # KademliaConfig.bucket_spread_bits (--bucket-spread-bits)
EVICT = 0.0  # KademliaConfig.evict_ping_after (--evict-ping-after)
JOIN_RATE = 50.0  # peers joining per virtual second while the network is built (--join-rate)
SUPERS = 4  # super nodes the peers bootstrap through (--supers)
ISSUE_IDEAL = {"1000": (2.03, 3), "10000": (2.63, 3), "100000": (3.08, 4)}


_progress = _common.stage_progress


ROUND_PARTS = ("ideal", "join", "protocol", "publish", "churn")


def rounds_section(
    n: int,
    seed: int,
    lookups: int,
    churn_lookups: int,
    parts: tuple[str, ...] = ROUND_PARTS,
    old: dict[str, Any] | None = None,
    checkpoint: Callable[[dict[str, Any]], None] = lambda out: None,
) -> dict[str, Any]:
    """The rounds entry for ``n`` nodes: the ``parts`` asked for are measured, the others
    kept from ``old`` (an earlier run's entry); ``checkpoint`` gets the entry after each part,
    so a run of hours that is stopped keeps what it measured."""
    p = RunParams(nodes=n, seed=seed, lookups=lookups, spread_bits=SPREAD,
                  evict_ping_after=EVICT, join_rate=JOIN_RATE, supers=SUPERS)
    out: dict[str, Any] = dict(old or {})
    out["join_rate"] = JOIN_RATE
    out["supers"] = SUPERS
    if {"publish", "churn"} & set(parts):
        parts = (*parts, "protocol")  # they run on the protocol-built network, measured again
    out["parts_measured"] = [x for x in ROUND_PARTS if x in parts]
    if "ideal" in parts:
        t0 = time.perf_counter()
        sc = p.scenario(_progress(f"ideal n={n}"))
        sc.build(ideal=True)
        sc.lookups(lookups, tag="ideal")
        out["ideal"] = sc.summary("ideal")
        out["ideal_wall_s"] = time.perf_counter() - t0
        del sc
        checkpoint(out)
    if not {"join", "protocol", "publish", "churn"} & set(parts):
        return out
    t0 = time.perf_counter()
    sc = p.scenario(_progress(f"protocol n={n}"))
    sc.build()
    t_build = time.perf_counter() - t0
    requests = sc.sim.metrics.counters
    if "join" in parts:
        # The tables right after the join (each node's own-id lookup and its refresh of every
        # bucket), before the network-wide refresh round: lookups measured here too.
        joined = requests["requests"]
        sc.lookups(lookups, tag="join_only")
        out["join_only"] = sc.summary("join_only")
        out["join_only_requests_join"] = joined
        out["join_only_requests_lookups"] = requests["requests"] - joined
        out["join_only_wall_s"] = time.perf_counter() - t0
        out["join_only_events"] = sc.sim.loop.events_run
        out["join_only_bootstrap"] = sc.summary("bootstrap")
        out["join_only_super_load"] = sc.super_load()
        checkpoint(out)
        if not {"protocol", "publish", "churn"} & set(parts):
            return out
    sc.refresh_all()
    out["build_wall_s"] = time.perf_counter() - t0
    out["build_events"] = sc.sim.loop.events_run
    out["build_events_per_s"] = sc.sim.loop.events_run / out["build_wall_s"]
    out["join_wall_s"] = t_build
    # every request, pings included (and the join-only lookups' if that part ran)
    out["requests_build"] = requests["requests"]
    sc.lookups(lookups, tag="lookup")
    out["requests_lookups"] = requests["requests"] - out["requests_build"]
    out["protocol"] = sc.summary("lookup")
    out["bootstrap"] = sc.summary("bootstrap")
    out["super_load"] = sc.super_load()  # join, refresh and lookup phases
    out["latency_samples"] = sorted(r.duration for r in sc.sim.metrics.by_tag("lookup") if r.ok)
    out["wall_s"] = time.perf_counter() - t0
    out["events"] = sc.sim.loop.events_run
    checkpoint(out)
    if "publish" in parts:
        sc.publish(max(20, lookups // 5), tag="publish")
        out["publish"] = sc.summary("publish")
        out["wall_s"] = time.perf_counter() - t0
        out["events"] = sc.sim.loop.events_run
        checkpoint(out)
    if "churn" in parts:
        # 20% of peers crash at once (stale entries), then 10%/h join/leave/crash
        sc.make_stale(0.20)
        ch = sc.churn(0.10)
        ch.start()
        duration = 600.0
        sc.lookups(churn_lookups, tag="churn", spacing=duration / churn_lookups)
        ch.stop()
        out["churn"] = sc.summary("churn")
        out["churn"].update(
            {
                "stale_fraction": 0.20,
                "rate_per_hour": 0.10,
                "virtual_s": duration,
                "departures": ch.departures,
                "joins": ch.joins,
            }
        )
        out["wall_s"] = time.perf_counter() - t0
        out["events"] = sc.sim.loop.events_run
        checkpoint(out)
    return out


def ideal_section(n: int, seed: int, lookups: int) -> dict[str, Any]:
    """Only the ideal-table baseline (for sizes where building by protocol takes too long)."""
    p = RunParams(nodes=n, seed=seed, lookups=lookups, spread_bits=SPREAD,
                  evict_ping_after=EVICT)
    t0 = time.perf_counter()
    sc = p.scenario(_progress(f"ideal n={n}"))
    sc.build(ideal=True)
    build_s = time.perf_counter() - t0
    sc.lookups(lookups, tag="ideal")
    import psutil

    return {
        "ideal": sc.summary("ideal"),
        "ideal_wall_s": time.perf_counter() - t0,
        "ideal_build_s": build_s,
        "rss_bytes": psutil.Process().memory_info().rss,
        "table_entries": sum(len(nd.core.table) for nd in sc.sim.nodes),
        "latency_samples": sorted(r.duration for r in sc.sim.metrics.by_tag("ideal") if r.ok),
        "protocol": None,
    }


def adversarial_section(n: int, seed: int, lookups: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for frac in (0.10, 0.20, 0.30):
        p = RunParams(
            nodes=n, seed=seed, lookups=lookups, attackers=frac, disjoint=(1, 4, 8),
            spread_bits=SPREAD,
            evict_ping_after=EVICT,
        )
        _, figs = adversarial(p, _progress(f"adversarial n={n} f={frac}"))
        out[f"{int(frac * 100)}%"] = figs
    return out


def eclipse_section(n: int, seed: int, lookups: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for d in (1, 8):
        p = RunParams(
            nodes=n,
            seed=seed,
            lookups=lookups,
            attackers=0.10,
            disjoint=(d,),
            budget_bits=24.0,
            id_puzzle=(0, 8, 16, 20),
            targets=2,
            spread_bits=SPREAD,
            evict_ping_after=EVICT,
        )
        _, figs = eclipse(p, _progress(f"eclipse n={n} d={d}"))
        out[f"d={d}"] = figs
    return out


def plot(figures: dict[str, Any], path: Path) -> Path | None:
    plt = _common._pyplot()
    if plt is None:
        return None
    fig, axes = plt.subplots(1, 4, figsize=(19, 4.2))
    rounds = figures.get("rounds", {})
    sizes = sorted(rounds, key=int)
    ax = axes[0]
    for key, label, off in (
        ("ideal", "ideal tables (ours)", -0.15),
        ("join_only", "right after the join", 0.0),
        ("protocol", "protocol-built (join + refresh round)", 0.15),
    ):
        have = [i for i, s in enumerate(sizes) if rounds[s].get(key)]
        xs = [i + off for i in have]
        ms = [rounds[sizes[i]][key]["rounds_mean"] for i in have]
        ps = [rounds[sizes[i]][key]["rounds_p95"] for i in have]
        ax.errorbar(
            xs,
            ms,
            yerr=[[0] * len(ms), [p - m for p, m in zip(ps, ms, strict=True)]],
            fmt="o",
            capsize=4,
            label=label,
        )
    iss = [ISSUE_IDEAL.get(s, (None,))[0] for s in sizes]
    ax.plot(range(len(sizes)), iss, "k_", markersize=18, label="issue's ideal baseline")
    ax.set_xticks(range(len(sizes)), [f"{int(s):,}" for s in sizes])
    ax.set_xlabel("nodes")
    ax.set_ylabel("rounds (mean, whisker to p95)")
    ax.set_title("lookup rounds")
    ax.legend(fontsize=7)
    ax = axes[1]
    for s in sizes:
        lat = rounds[s].get("latency_samples", [])
        if lat:
            ax.step(
                lat,
                [(i + 1) / len(lat) for i in range(len(lat))],
                where="post",
                # the protocol-built tables' lookups; ideal tables' where no protocol run is
                label=f"{int(s):,} nodes"
                + ("" if rounds[s].get("protocol") else " (ideal tables)"),
            )
    ax.set_xlabel("lookup latency (s, virtual)")
    ax.set_ylabel("fraction ≤ x")
    ax.set_title("latency, U(20,120) ms links, 10 ms CPU/request")
    ax.legend(fontsize=7)
    ax = axes[2]
    for size, adv in sorted(figures.get("adversarial", {}).items(), key=lambda kv: int(kv[0])):
        for d in ("d=1", "d=4", "d=8"):
            fr = sorted(adv, key=lambda f: int(f[:-1]))
            ys = [adv[f][d]["success"] for f in fr if d in adv[f]]
            ax.plot(
                [int(f[:-1]) for f in fr][: len(ys)], ys, "o-", label=f"{int(size):,} nodes {d}"
            )
    ax.axhline(0.995, color="grey", ls=":", lw=1)
    ax.set_xlabel("colluding nodes (%)")
    ax.set_ylabel("lookup success")
    ax.set_title("colluders at random ids")
    ax.legend(fontsize=7)
    ax = axes[3]
    for size, ecl in sorted(figures.get("eclipse", {}).items(), key=lambda kv: int(kv[0])):
        for d, runs in ecl.items():
            pts = sorted(
                (v["id_puzzle_bits"], v["get_providers"]["success"]) for v in runs.values()
            )
            ax.plot(
                [p[0] for p in pts], [p[1] for p in pts], "o-", label=f"{int(size):,} nodes {d}"
            )
    ax.set_xlabel("id puzzle (bits); attacker budget 2^24 hashes per id")
    ax.set_ylabel("get_providers success")
    ax.set_title("10% attackers grinding ids next to 2 keys")
    ax.legend(fontsize=7)
    return _common.save_figure(plt, fig, path)


def _baseline(figures: dict[str, Any]) -> dict[str, Any]:
    return {
        s: {"ideal_ours": r.get("ideal"), "issue_ideal_mean_p95": ISSUE_IDEAL.get(s)}
        for s, r in figures.get("rounds", {}).items()
    }


def _ratio(figures: dict[str, Any]) -> dict[str, Any]:
    return {
        s: {
            "rounds_mean_protocol_minus_ideal": r["protocol"]["rounds_mean"]
            - r["ideal"]["rounds_mean"],
            "better": "lower; goal: within 0.1",
        }
        for s, r in figures.get("rounds", {}).items()
        if r.get("protocol") and r.get("ideal")
    }


def _params(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "latency": "one-way U(20, 120) ms per link (fixed per link, from the seed)",
        "cpu": "10 ms per inbound request (modelled crypto/validation), responder side",
        "kademlia": {"k": 20, "alpha": 3, "beta": 3, "request_timeout_s": 10},
        "tables": "protocol: supers super nodes; peers join at join_rate_per_s, each bootstraps "
        "as the real node does (own-id lookup starting from one super picked at random, the others "
        "fallbacks, then through the peers it names; then a refresh of every bucket); then "
        "every node refreshes all buckets once. bucket_spread_bits: see the key of that "
        "name (0: the plain least-recently-seen rule). ideal: each bucket k random members "
        "of its subtree.",
        "bucket_spread_bits": SPREAD,
        "evict_ping_after_s": EVICT,
        "join_rate_per_s": JOIN_RATE,
        "supers": SUPERS,
        "lookup": "find_closest(id of a random live honest node) from a random live honest "
        "node; success = target among the returned k",
        "dead_peer_delay_s": 5.0,
        "churn": "20% of peers crash at once, then 10%/h departures (half crash, half "
        "graceful) matched by joins, lookups spread over 600 virtual s",
        "adversarial": "colluders join like honest nodes and answer every lookup with the 20 "
        "colluders closest to the key; lookups by honest nodes with d paths",
        "eclipse": "10% attackers, spread over 2 target keys, each id ground with 2^24 hashes "
        "(best-of-tries cpl sampled exactly); an id puzzle of c bits divides the "
        "tries by 2^c; an honest provider publishes each key, then honest nodes "
        "get_providers with d paths",
        "publication": "provide() of a random key; time until the provider record reached "
        "the k closest (ADD_PROVIDER delivered)",
        "seed": args.seed,
        "quick": args.quick,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--sizes", default="1000,10000")
    ap.add_argument("--adv-sizes", default="1000")
    ap.add_argument("--sections", default="rounds,adversarial,eclipse")
    ap.add_argument("--lookups", type=int, default=1000)
    ap.add_argument("--parts", default=",".join(ROUND_PARTS),
                    help="parts of the rounds section to measure (the others keep the values "
                    "of the last run): " + ", ".join(ROUND_PARTS))
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--bucket-spread-bits", type=int, default=0,
                    help="KademliaConfig.bucket_spread_bits; B > 0 writes "
                    "dht_lookups_spreadB.json")
    ap.add_argument("--join-rate", type=float, default=50.0,
                    help="peers joining per virtual second during the build; R != 50 writes "
                    "dht_lookups_joinR.json (at 100k, 50/s makes a 2,000 s join in which nodes "
                    "already run their 10-minute refreshes: ~3.5 h of CPU)")
    ap.add_argument("--supers", type=int, default=4,
                    help="super nodes to bootstrap through; S != 4 writes dht_lookups_supersS.json "
                    "(4 supers at 10 ms per request take ~70-90 joins/s)")
    ap.add_argument("--evict-ping-after", type=float, default=0.0,
                    help="KademliaConfig.evict_ping_after; S > 0 writes "
                    "dht_lookups_evictS.json (0: ping the oldest entry for every newcomer)")
    args = ap.parse_args()
    global SPREAD, EVICT, JOIN_RATE, SUPERS, RESULT
    SPREAD = args.bucket_spread_bits
    EVICT = args.evict_ping_after
    JOIN_RATE = args.join_rate
    if JOIN_RATE <= 0:
        ap.error("--join-rate must be positive")
    suffix = (f"_spread{SPREAD}" if SPREAD else "") + (f"_evict{EVICT:g}" if EVICT else "")
    SUPERS = args.supers
    suffix += f"_join{JOIN_RATE:g}" if JOIN_RATE != 50.0 else ""
    suffix += f"_supers{SUPERS}" if SUPERS != 4 else ""
    RESULT = _common.RESULTS_DIR / f"{NAME}{suffix}.json"
    started = _common.now_iso()
    if args.quick:
        sizes, adv_sizes, lookups, churn_lookups = [300], [300], 100, 50
    else:
        sizes = [int(x) for x in args.sizes.split(",") if x]
        adv_sizes = [int(x) for x in args.adv_sizes.split(",") if x]
        lookups, churn_lookups = args.lookups, max(100, args.lookups // 2)
    sections = set(args.sections.split(","))
    doc = {} if args.quick else _common.load_json(RESULT)
    figures: dict[str, Any] = doc.get("figures", {})
    runs: dict[str, Any] = doc.get("runs", {})
    name = NAME + ("_quick" if args.quick else "") + suffix
    parts = tuple(x for x in args.parts.split(",") if x)
    unknown = set(parts) - set(ROUND_PARTS)
    if unknown:
        ap.error(f"--parts: unknown {', '.join(sorted(unknown))} (choose from "
                 f"{', '.join(ROUND_PARTS)})")

    def save() -> Path:
        return _common.write_result(
            name, _common.command_line(), _params(args), figures,
            baseline=_baseline(figures), ratio=_ratio(figures), started=started, runs=runs,
        )

    rounds = figures.setdefault("rounds", {})
    for n in sizes if "rounds" in sections else []:
        t0 = time.perf_counter()

        def checkpoint(out: dict[str, Any], n: int = n) -> None:
            rounds[str(n)] = out
            save()

        rounds[str(n)] = rounds_section(
            n, args.seed, lookups, churn_lookups, parts=parts, old=rounds.get(str(n)),
            checkpoint=checkpoint,
        )
        runs[f"rounds n={n}"] = {
            "wall_s": time.perf_counter() - t0,
            "command": _common.command_line(),
        }
    for n in sizes if "ideal" in sections else []:
        t0 = time.perf_counter()
        figures.setdefault("rounds", {})[str(n)] = ideal_section(n, args.seed, lookups)
        runs[f"ideal n={n}"] = {
            "wall_s": time.perf_counter() - t0,
            "command": _common.command_line(),
        }
    for n in adv_sizes if "adversarial" in sections else []:
        t0 = time.perf_counter()
        figures.setdefault("adversarial", {})[str(n)] = adversarial_section(
            n, args.seed, lookups // 2
        )
        runs[f"adversarial n={n}"] = {
            "wall_s": time.perf_counter() - t0,
            "command": _common.command_line(),
        }
    for n in adv_sizes if "eclipse" in sections else []:
        t0 = time.perf_counter()
        figures.setdefault("eclipse", {})[str(n)] = eclipse_section(n, args.seed, lookups // 2)
        runs[f"eclipse n={n}"] = {
            "wall_s": time.perf_counter() - t0,
            "command": _common.command_line(),
        }
    path = save()
    png = plot(figures, path.with_suffix(".png"))
    rows = []
    for s, r in sorted(figures.get("rounds", {}).items(), key=lambda kv: int(kv[0])):
        for key in ("ideal", "join_only", "protocol", "churn", "publish"):
            f = r.get(key)
            if not f:
                continue
            rows.append(
                {
                    "nodes": s,
                    "what": key,
                    "success": f["success"],
                    "rounds_mean": f["rounds_mean"],
                    "rounds_p95": f["rounds_p95"],
                    "lat_p50": f["latency_p50"],
                    "lat_p90": f["latency_p90"],
                    "lat_p99": f["latency_p99"],
                }
            )
    _common.print_table(rows, "DHT lookups (virtual time)")
    lrows = []
    for s, r in sorted(figures.get("rounds", {}).items(), key=lambda kv: int(kv[0])):
        for phase, f in (r.get("super_load") or {}).get("phases", {}).items():
            lrows.append(
                {
                    "nodes": s,
                    "phase": phase,
                    "req_per_super": f["requests_per_node"],
                    "rate_mean": f["rate_mean"],
                    "rate_peak": f["rate_peak"],
                    "backlog_max_s": f["backlog_max"],
                    "wait_max_s": f["wait_max"],
                    "timeouts": f["timeouts"],
                }
            )
    _common.print_table(lrows, "super nodes' load (4 supers, 10 ms CPU per request)")
    arows = []
    for s, adv in figures.get("adversarial", {}).items():
        for f, figs in adv.items():
            arows.append(
                {
                    "nodes": s,
                    "colluders": f,
                    **{d: figs[d]["success"] for d in ("d=1", "d=4", "d=8") if d in figs},
                }
            )
    _common.print_table(arows, "colluding attackers: lookup success")
    erows = []
    for s, ecl in figures.get("eclipse", {}).items():
        for d, runs_ in ecl.items():
            for v in runs_.values():
                erows.append(
                    {
                        "nodes": s,
                        "paths": d,
                        "puzzle_bits": v["id_puzzle_bits"],
                        "success": v["get_providers"]["success"],
                        "attacker_cpl": v["closest_attacker_cpl_mean"],
                        "honest_cpl": v["closest_honest_cpl_mean"],
                    }
                )
    _common.print_table(erows, "attackers choosing ids next to the key: get_providers success")
    print(f"wrote {path}" + (f" and {png}" if png else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
