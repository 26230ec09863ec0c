"""Gossipsub in the simulator: delivery, latency vs the shortest-path bound, copies, attacks.

Question (issue 4): on 10,000 nodes (random regular graph of degree 20, one-way latency
U(20, 120) ms per link, 10 ms of validation CPU per message and node), does every honest node
get every message, how close is the p99 delivery time to the p99 of the shortest-path bound on
the same connections (Dijkstra from the publisher, link latency + one validation per hop), how
many copies does a node receive (with / without IDONTWANT, 10 and 50 ms validation), and, with
peer scoring on, what do silent Sybils (20 / 50 / 80 % of the nodes), an eclipse attempt on one
node, a covert flash attack and a spammer of invalid messages do to delivery?

    python benchmarks/gossip_sim.py --quick                     # under a minute, 400 nodes
    python benchmarks/gossip_sim.py                             # 10,000 nodes (see --help)
    python benchmarks/gossip_sim.py --nodes 10000 --attack-nodes 2000 --sections sybil,flash

Sections (``--sections``): honest, sybil, flash, eclipse, spam. Each merges into
``benchmarks/results/gossip_sim.json`` (a later run of one section and size replaces only that
entry; ``--quick`` writes ``gossip_sim_quick.json``) and the plot ``gossip_sim.png``.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common  # noqa: E402
from micronetwork.sim.gossip import INF, shortest_path_bound  # noqa: E402
from micronetwork.sim.gossip_scenarios import GOSSIP_SCENARIOS, GossipScenario  # noqa: E402
from micronetwork.sim.scenarios import RunParams  # noqa: E402

NAME = "gossip_sim"
BASELINE = {
    "latency_p50_s": 0.283,
    "latency_p99_s": 0.356,
    "copies_without_idontwant": [6.3, 6.9],
    "source": "the issue's baseline model (10,000 nodes, U(20,120) ms, 10 ms validation, "
    "degree 20)",
}
TARGETS = {
    "delivery": ">= 0.9999",
    "p99_over_bound_p99": "<= 1.2",
    "copies_idontwant_50ms": "<= 5",
    "sybil_20": ">= 0.9999 within 4 s",
    "sybil_50": ">= 0.999 within 4 s",
    "sybil_80": ">= 0.99 within 4 s",
    "flash_recovery_s": "<= P3 activation + 3 heartbeats",
    "spam": "graylisted; its traffic stops reaching the mesh",
}


def _progress(label: str) -> Any:
    t0 = time.monotonic()
    last = [0.0]

    def report(frac: float, stage: str) -> None:
        now = time.monotonic()
        if now - last[0] >= 15 or frac >= 1.0:
            last[0] = now
            el = now - t0
            eta = f"~{el / frac * (1 - frac):.0f}s" if frac > 0.01 else "?"
            print(f"[{label}] {stage} {frac:4.0%}  {el:5.0f}s elapsed, {eta} left (stage)",
                  file=sys.stderr, flush=True)

    return report


def _run(name: str, p: RunParams, label: str) -> tuple[GossipScenario, dict[str, Any]]:
    t0 = time.perf_counter()
    sc, figs = GOSSIP_SCENARIOS[name](p, _progress(label))
    wall = time.perf_counter() - t0
    figs["wall_s"] = wall
    figs["events"] = sc.sim.loop.events_run
    figs["events_per_s"] = sc.sim.loop.events_run / wall if wall else None
    figs["virtual_s"] = sc.now
    print(f"[{label}] done in {wall:.0f} s ({figs['events']:,} events)", file=sys.stderr,
          flush=True)
    return sc, figs


def _samples(sc: GossipScenario) -> dict[str, list[float]]:
    """Delivery latencies and bounds of a sample of (message, node) pairs, for the plot."""
    honest = [n.idx for n in sc.honest()]
    lat: list[float] = []
    bnd: list[float] = []
    step = max(1, len(honest) // 500)
    for rec in sc.sim.published[:10]:
        b = shortest_path_bound(sc.sim, rec.publisher, sc.sim.crypto.verify_cost)
        for i in honest[::step]:
            if i != rec.publisher and rec.first[i] < INF:
                lat.append(round(rec.first[i] - rec.t0, 5))
                bnd.append(round(b[i], 5))
    return {"latency": sorted(lat), "bound": sorted(bnd)}


def honest_section(n: int, seed: int, messages: int, quick: bool) -> dict[str, Any]:
    out: dict[str, Any] = {}
    base = RunParams(nodes=n, seed=seed, messages=messages, rate=2.0, verify_cost=0.010)
    variants = [
        ("10ms idontwant", base),
        ("10ms no-idontwant", replace(base, idontwant=False)),
        ("50ms idontwant", replace(base, verify_cost=0.050)),
        ("50ms no-idontwant", replace(base, verify_cost=0.050, idontwant=False)),
    ]
    for label, p in variants[::2] if quick else variants:
        sc, figs = _run("gossip", p, f"honest {label} n={n}")
        if label == "10ms idontwant":
            out["samples"] = _samples(sc)
        out[label] = figs
        del sc
    return out


def sybil_section(n: int, seed: int, messages: int, fractions: list[float],
                  activation: float) -> dict[str, Any]:
    out = {}
    for f in fractions:
        p = RunParams(nodes=n, seed=seed, attackers=f, messages=messages, rate=1.0,
                      activation=activation)
        _, figs = _run("gossip-sybil", p, f"sybil {f:.0%} n={n}")
        out[f"{round(f * 100)}%"] = figs
    return out


def flash_section(n: int, seed: int, fraction: float, flash_at: float,
                  activation: float) -> dict[str, Any]:
    p = RunParams(nodes=n, seed=seed, attackers=fraction, rate=1.0, flash_at=flash_at,
                  activation=activation)
    sc, figs = _run("gossip-flash", p, f"flash {fraction:.0%} n={n}")
    figs["delivery_series"] = sc.sim.metrics.series.get("delivery within window", [])
    return figs


def eclipse_section(n: int, seed: int, messages: int) -> dict[str, Any]:
    p = RunParams(nodes=n, seed=seed, messages=messages, rate=1.0)
    sc, figs = _run("gossip-eclipse", p, f"eclipse n={n}")
    figs["target_mesh_share_series"] = sc.sim.metrics.series.get("target mesh share", [])
    return figs


def spam_section(n: int, seed: int) -> dict[str, Any]:
    p = RunParams(nodes=n, seed=seed, rate=1.0)
    sc, figs = _run("gossip-spam", p, f"spam n={n}")
    figs["validations_series"] = sc.sim.metrics.series.get("nodes validating each spam message",
                                                           [])
    return figs


def plot(figures: dict[str, Any], path: Path) -> Path | None:
    plt = _common._pyplot()
    if plt is None:
        return None
    fig, axes = plt.subplots(1, 4, figsize=(20, 4.4))
    ax = axes[0]
    for size, h in sorted(figures.get("honest", {}).items(), key=lambda kv: int(kv[0])):
        s = h.get("samples", {})
        for key, style in (("latency", "-"), ("bound", "--")):
            xs = s.get(key, [])
            if xs:
                ax.plot(xs, [(i + 1) / len(xs) for i in range(len(xs))], style,
                        label=f"{int(size):,} nodes: {'gossip' if key == 'latency' else 'bound'}")
    ax.set_xlabel("delivery latency (s, virtual)")
    ax.set_ylabel("fraction ≤ x")
    ax.set_title("delivery vs shortest-path bound (10 ms validation)")
    ax.legend(fontsize=7)
    ax = axes[1]
    for size, h in sorted(figures.get("honest", {}).items(), key=lambda kv: int(kv[0])):
        labels = [k for k in h if isinstance(h[k], dict) and "gossip" in h[k]]
        ys = [h[k]["gossip"]["copies_mean"] for k in labels]
        ax.bar([f"{k}\n{int(size):,}" for k in labels], ys)
    ax.axhline(5, color="grey", ls=":", lw=1)
    ax.set_ylabel("copies received per node and message (mean)")
    ax.set_title("copies per node")
    ax.tick_params(axis="x", labelsize=6)
    ax = axes[2]
    for size, sy in sorted(figures.get("sybil", {}).items(), key=lambda kv: int(kv[0])):
        fr = sorted(sy, key=lambda f: int(f[:-1]))
        for phase in ("before_scoring", "after_scoring"):
            ys = [sy[f][phase]["delivery_within_window"] for f in fr]
            ax.plot([int(f[:-1]) for f in fr], ys, "o-", label=f"{int(size):,} nodes {phase}")
    ax.set_xlabel("silent Sybils (% of nodes)")
    ax.set_ylabel("delivered within 4 s")
    ax.set_title("silent Sybils, scoring on")
    ax.legend(fontsize=7)
    ax = axes[3]
    for size, fl in sorted(figures.get("flash", {}).items(), key=lambda kv: int(kv[0])):
        pts = fl.get("delivery_series", [])
        if pts:
            ax.plot([p[0] - fl["flash_at"] for p in pts], [p[1] for p in pts], ".-",
                    label=f"{int(size):,} nodes, {fl['fraction']:.0%} flash Sybils")
    ax.axvline(0, color="grey", ls=":", lw=1)
    ax.set_xlabel("publish time - flash time (s)")
    ax.set_ylabel("delivered within 4 s")
    ax.set_title("covert flash attack")
    ax.legend(fontsize=7)
    return _common.save_figure(plt, fig, path)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="400 nodes, short runs")
    ap.add_argument("--nodes", type=int, default=10000, help="honest section size")
    ap.add_argument("--attack-nodes", type=int, default=None,
                    help="size of the attack sections (default: --nodes)")
    ap.add_argument("--sections", default="honest,sybil,flash,eclipse,spam")
    ap.add_argument("--messages", type=int, default=20, help="messages per measurement")
    ap.add_argument("--fractions", default="0.2,0.5,0.8", help="silent Sybil fractions")
    ap.add_argument("--flash-fraction", type=float, default=0.5)
    ap.add_argument("--flash-at", type=float, default=120.0)
    ap.add_argument("--activation", type=float, default=10.0, help="P3 activation (s)")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    started = _common.now_iso()
    if args.quick:  # smaller, shorter, fewer variants; P3 activation 5 s instead of 10 s
        n = an = 500
        messages, flash_at, activation = 5, 15.0, 5.0
        if args.sections == ap.get_default("sections"):
            args.sections = "honest,sybil,flash"
    else:
        n = args.nodes
        an = args.attack_nodes or n
        messages, flash_at, activation = args.messages, args.flash_at, args.activation
    fractions = [float(x) for x in args.fractions.split(",") if x]
    sections = set(args.sections.split(","))
    name = NAME + ("_quick" if args.quick else "")
    result = _common.RESULTS_DIR / f"{name}.json"
    figures: dict[str, Any] = {}
    runs: dict[str, Any] = {}

    def record(section: str, size: int, fn: Any, *a: Any) -> None:
        t0 = time.perf_counter()
        figures.setdefault(section, {})[str(size)] = fn(*a)
        runs[f"{section} n={size}"] = {"wall_s": time.perf_counter() - t0,
                                       "command": _common.command_line(),
                                       "finished": _common.now_iso()}

    if "honest" in sections:
        record("honest", n, honest_section, n, args.seed, messages, args.quick)
    if "sybil" in sections:
        record("sybil", an, sybil_section, an, args.seed, messages, fractions, activation)
    if "flash" in sections:
        record("flash", an, flash_section, an, args.seed, args.flash_fraction, flash_at,
               activation)
    if "eclipse" in sections:
        record("eclipse", an, eclipse_section, an, args.seed, messages)
    if "spam" in sections:
        record("spam", an, spam_section, an, args.seed)
    params = {
        "topology": "random regular graph, degree 20 (networkx, seeded); connections start as "
        "the graph's edges (no DHT), the dialing side of each drawn at random; then the cores' "
        "PX dials and topic discovery (FindPeers) add connections (DialModel: lookup of 3 round "
        "trips to random nodes, 2-round-trip handshake, no cap; silent Sybils' own dials "
        "withheld)",
        "latency": "one-way U(20, 120) ms per link (fixed per link, from the seed)",
        "validation": "asynchronous: each new message waits in the node's CPU queue for "
        "verify_cost (10 ms, or 50 ms where named), then ACCEPT (REJECT for the spammer's)",
        "signatures": "modelled (well-formed ids, 64-byte stand-in signatures, field checks)",
        "gossip": "GossipConfig defaults: D=6, D_lo=5, D_hi=12, D_lazy=6, heartbeat 1 s, "
        "flood publish, IDONTWANT above 1024 B; messages of 2048 B",
        "honest": "4 variants (10/50 ms validation x with/without IDONTWANT), 5 s warm-up, "
        "then `messages` messages at 2/s from random nodes, default score parameters",
        "attacks": "scoring with P3 (mesh delivery deficit) on: threshold 0.5, weight -10, "
        "decay 0.9/s, window 2 s, activation 10 s; P3b weight -10; P4 -10; steady "
        "stream of 1 msg/s from random honest nodes; delivery counted within 4 s over honest "
        "nodes; 'reachable' = an all-honest path from the publisher exists over the "
        "connections at the end of the run ('reachable_initial': over the graph as built)",
        "sybil": "silent Sybils (subscribe, graft, answer nothing, forward nothing, no "
        "gossip) at random indices; 'before_scoring' = messages published in the first "
        "activation + 3 s after warm-up, 'after_scoring' = the rest",
        "flash": "flash Sybils behave (forward, gossip) for flash_at s, then go silent; "
        "recovery = from when on every message reaches >= 99.9 % within 4 s",
        "eclipse": "80 silent Sybils connect to one target (inbound); the target dialed 4 "
        "honest peers (outbound, so D_out keeps them grafted)",
        "spam": "one node publishes 150 invalid messages (5/s) beside the honest stream",
        "activation_s": activation,
        "seed": args.seed,
        "quick": args.quick,
    }
    # Another process may have written other sections meanwhile: merge into what is there now.
    fresh = {} if args.quick else _common.load_json(result)
    merged: dict[str, Any] = fresh.get("figures", {})
    for section, sizes in figures.items():
        into = merged.setdefault(section, {})
        for size, value in sizes.items():
            if section == "sybil" and isinstance(into.get(size), dict):
                into[size].update(value)  # one fraction at a time is fine
            else:
                into[size] = value
    figures = merged
    runs = {**fresh.get("runs", {}), **runs}
    path = _common.write_result(name, _common.command_line(), params, figures,
                                baseline=BASELINE, ratio={"targets": TARGETS}, started=started,
                                runs=runs)
    png = plot(figures, path.with_suffix(".png"))
    rows = []
    for size, h in figures.get("honest", {}).items():
        for label, v in h.items():
            if not isinstance(v, dict) or "gossip" not in v:
                continue
            g = v["gossip"]
            rows.append({"nodes": size, "variant": label, "delivery": g["delivery"],
                         "lat_p50": g["latency_p50"], "lat_p99": g["latency_p99"],
                         "bound_p99": g["bound_p99"], "p99/bound": g["p99_over_bound_p99"],
                         "copies": g["copies_mean"], "wall_s": v["wall_s"]})
    _common.print_table(rows, "honest network (virtual time)")
    srows = []
    for size, sy in figures.get("sybil", {}).items():
        for f, v in sy.items():
            srows.append({"nodes": size, "sybils": f,
                          "before": v["before_scoring"]["delivery_within_window"],
                          "after": v["after_scoring"]["delivery_within_window"],
                          "after_of_reachable":
                          v["after_scoring"]["delivery_within_window_of_reachable"],
                          "reachable": v["after_scoring"].get("reachable"),
                          "reachable_initial": v["after_scoring"].get("reachable_initial"),
                          "share_start": v["sybil_mesh_share_start"],
                          "share_end": v["sybil_mesh_share_end"],
                          "find_peers": v.get("dials", {}).get("find_peers")})
    _common.print_table(srows, "silent Sybils: delivered within 4 s")
    for size, fl in figures.get("flash", {}).items():
        print(f"flash n={size}: min delivery after flash {fl['min_delivery_after_flash']:.5f}, "
              f"recovery {fl['recovery_s']} s (target {fl['recovery_target_s']} s)")
    for size, ec in figures.get("eclipse", {}).items():
        print(f"eclipse n={size}: target within 4 s before/after scoring "
              f"{ec['target_before_scoring']['delivery_within_window']:.4f} / "
              f"{ec['target_after_scoring']['delivery_within_window']:.4f}; Sybil share of its "
              f"mesh at the end {ec['target_mesh_sybil_share_end']:.2f}")
    for size, sp in figures.get("spam", {}).items():
        print(f"spam n={size}: all {sp['spammer_neighbours']} neighbours graylist after "
              f"{sp['all_neighbours_graylist_after_s']} s; spam validations "
              f"{sp['spam_validations_total']} of {sp['spam_messages'] * sp['spammer_neighbours']}"
              f" possible; delivered anywhere {sp['spam_delivered_anywhere']}")
    print(f"wrote {path}" + (f" and {png}" if png else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
