"""Registry in the simulator: per-node state and traffic at scale, propagation, dead nodes.

Questions (issue 5): (1) does what a node holds and sends for the registry stay flat as the
network and the total number of services grow (1k / 10k / 100k nodes)? (2) at 10k nodes, how
long until 99 % (and 100 %) of the nodes watching a service see a new registration of it, and
until a crashed node's registrations are gone from every watcher (bound: ttl + one announce
interval, 30 s by default)? ``micronetwork.sim.registry`` runs the real registry and gossip
cores of every node in virtual time (U(20,120) ms links, real Ed25519 signatures, random
regular graph of degree 8, 3 super nodes, every node watching 3 random services).

Sections (``--sections``, default all three; each merges into the same JSON):

* ``scale``: N = 1k / 10k / 100k (``--sizes``), S = N services (``--services-per-node``),
  20 s warm-up (every service registers in the first 10 s), then bytes per node per second
  over a 30 s window (``--warmup``, ``--window``; sent and received: median, p99, max over the
  non-super nodes), registrations, topics and catalog names held;
* ``services``: N = 1k, S = 100 / 1,000 / 10,000 (``--services``): the same at fixed N;
* ``propagation``: N = 10k (``--prop-nodes``): a popular service watched by 10 % of the nodes
  and 100 ordinary services get a new instance; 60 s later (``--settle``) those new servers
  and 100 other serving nodes crash, right after the new ones announced (the worst case).

    python benchmarks/registry_scale.py --quick        # N=200/400; services at N=200; prop. N=500
    python benchmarks/registry_scale.py                # everything (hours on a shared machine)
    python benchmarks/registry_scale.py --sections scale --sizes 1000 10000
    python benchmarks/registry_scale.py --sections scale --sizes 100000 --max-wall 1800

``--max-wall`` stops a run that passes that many seconds and records what it measured
(build time, memory, virtual seconds reached) and the extrapolated wall time.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common  # noqa: E402

NAME = "registry_scale"
PLOT_TITLE = ("registry in the simulator (W={a.watched} watched per node, {a.supers} super "
              "nodes, degree {a.degree}, seed {a.seed})")


class OverBudget(Exception):
    """The run passed ``--max-wall``."""


def _rss() -> int | None:
    try:
        with open("/proc/self/statm", encoding="ascii") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


class Reporter:
    """Progress lines with the time left, every 15 s; remembers when the build ended, and stops
    the run (OverBudget) past ``max_wall`` seconds."""

    def __init__(self, label: str, max_wall: float | None, virtual: float) -> None:
        self.label, self.max_wall, self.virtual = label, max_wall, virtual
        self.t0 = time.monotonic()
        self.last = 0.0
        self.build_s: float | None = None
        self.build_rss: int | None = None
        self.frac = 0.0

    def __call__(self, frac: float, stage: str) -> None:
        now = time.monotonic()
        el = now - self.t0
        self.frac = frac
        if self.build_s is None and (not stage.startswith("build") or frac >= 0.1 - 1e-9):
            self.build_s, self.build_rss = el, _rss()
        if now - self.last >= 15 or frac >= 1.0:
            self.last = now
            eta = f"~{el / frac * (1 - frac):.0f} s" if frac > 0.02 else "?"
            rss = _rss()
            mem = f", {rss / 2**30:.2f} GiB" if rss else ""
            print(f"[{self.label}] {stage} {frac:4.0%}  {el:5.0f} s elapsed, {eta} left{mem}",
                  file=sys.stderr, flush=True)
        if self.max_wall is not None and el > self.max_wall:
            raise OverBudget

    def partial(self) -> dict[str, Any]:
        """What an aborted run measured, and the wall time it would have needed."""
        el = time.monotonic() - self.t0
        run_frac = (self.frac - 0.1) / 0.9 if self.frac > 0.1 else 0.0
        run_s = el - (self.build_s or el)
        total = (self.build_s or el) + run_s / run_frac if run_frac > 0 else None
        return {"completed": False, "stopped_after_wall_s": round(el, 1),
                "build_wall_s": round(self.build_s, 1) if self.build_s is not None else None,
                "rss_after_build_bytes": self.build_rss, "rss_at_stop_bytes": _rss(),
                "virtual_s_reached": round(run_frac * self.virtual, 1),
                "virtual_s_planned": self.virtual,
                "extrapolated_wall_s": round(total, 0) if total else None}


def _kib(stats: dict[str, Any], key: str) -> str:
    v = stats.get(key)
    return "-" if v is None else f"{v / 1024:.3f}"


def scale_section(sizes: list[int], per_node: float, args: argparse.Namespace,
                  label: str) -> dict[str, Any]:
    from micronetwork.sim.registry import run_registry_scale

    out: dict[str, Any] = {}
    for n, s in sizes_and_services(sizes, per_node, args):
        rep = Reporter(f"{label} N={n} S={s}", args.max_wall, args.warmup + args.window)
        t0 = time.perf_counter()
        try:
            r = run_registry_scale(n, s, watched=args.watched, supers=args.supers,
                                   degree=args.degree, warmup=args.warmup, window=args.window,
                                   seed=args.seed, catalog_size=args.catalog_size, progress=rep)
        except OverBudget:
            out[f"{n}/{s}"] = {"nodes": n, "services": s, **rep.partial()}
            print(f"[{label} N={n}] stopped: {out[f'{n}/{s}']}", file=sys.stderr, flush=True)
            continue
        row = r.as_dict()
        row.update(completed=True, wall_s=round(time.perf_counter() - t0, 1),
                   build_wall_s=round(rep.build_s or 0.0, 1), rss_after_build_bytes=rep.build_rss)
        out[f"{n}/{s}"] = row
    return out


def sizes_and_services(sizes: list[int], per_node: float,
                       args: argparse.Namespace) -> list[tuple[int, int]]:
    if per_node > 0:
        return [(n, max(1, round(n * per_node))) for n in sizes]
    return [(args.services_nodes, s) for s in args.services]


def propagation_section(args: argparse.Namespace) -> dict[str, Any]:
    from micronetwork.sim.registry import run_registry_propagation

    n = args.prop_nodes
    rep = Reporter(f"propagation N={n}", args.max_wall, 30 + args.settle + 35)
    t0 = time.perf_counter()
    try:
        r = run_registry_propagation(n, watched=args.watched, supers=args.supers,
                                     degree=args.degree, seed=args.seed, hot_share=args.hot_share,
                                     settle=args.settle, progress=rep)
    except OverBudget:
        return {"nodes": n, **rep.partial()}
    row = r.as_dict()
    row.update(completed=True, wall_s=round(time.perf_counter() - t0, 1))
    return row


def print_tables(figs: dict[str, Any]) -> None:
    for sec in ("scale", "services"):
        rows = [r for r in figs.get(sec, {}).values() if r.get("completed")]
        if not rows:
            continue
        _common.print_table(
            [{"nodes": r["nodes"], "services": r["services"],
              "KiB/s out p50/p99/max": f"{_kib(r['out_bps'], 'p50')} / {_kib(r['out_bps'], 'p99')}"
                                       f" / {_kib(r['out_bps'], 'max')}",
              "KiB/s in p50/p99/max": f"{_kib(r['in_bps'], 'p50')} / {_kib(r['in_bps'], 'p99')}"
                                      f" / {_kib(r['in_bps'], 'max')}",
              "held others mean/max": f"{r['held_remote_mean']:.2f} / {r['held_remote_max']}",
              "topics mean/max": f"{r['topics_mean']:.2f} / {r['topics_max']}",
              "catalog mean/max": f"{r['catalog_mean']:.2f} / {r['catalog_max']}",
              "coverage": f"{r['watch_coverage']:.4f}",
              "super catalog": f"{r['super_catalog_mean']:.0f}",
              "super KiB/s in": f"{r['super_in_bps'] / 1024:.1f}",
              "GiB": f"{(r['rss_bytes'] or 0) / 2**30:.2f}", "wall s": r["wall_s"]}
             for r in rows],
            title=f"registry per node ({sec})",
        )
        for r in figs[sec].values():
            if not r.get("completed"):
                print(f"  N={r['nodes']} S={r['services']}: not completed: {r}")
    p = figs.get("propagation")
    if p and p.get("completed"):
        def s(st: dict[str, Any], k: str) -> str:
            v = st.get(k)
            return "never" if v is None else f"{v:.2f}"

        _common.print_table(
            [{"what": what, "pairs": st["n"], "p50 s": s(st, "p50"), "p99 s": s(st, "p99"),
              "max (100 %) s": s(st, "max"), "never": st.get("never", 0)}
             for what, st in (("popular: watchers see the new instance", p["hot_seen"]),
                              ("ordinary: watchers see the new instance", p["new_seen"]),
                              ("dead instance gone at its holders", p["gone"]),
                              ("popular dead instance gone", p["hot_gone"]))],
            title=(f"propagation, N={p['nodes']}, {p['hot_watchers']} watch the popular "
                   f"service; bound for the dead: {p['bound_s']:.0f} s; within bound "
                   f"{p['gone_within_bound']:.4f}; live instances expired {p['expired_live']}"),
        )


def _log_ticks(ax: Any, figs: dict[str, Any]) -> None:
    xs = sorted({r["services"] for sec in ("scale", "services")
                 for r in figs.get(sec, {}).values() if r.get("completed")})
    ax.set_xscale("log")
    ax.minorticks_off()
    ax.set_xticks(xs)
    ax.set_xticklabels([f"{x:,}" for x in xs], rotation=30, fontsize=8)


def plot(path: Path, figs: dict[str, Any], title: str) -> Path | None:
    plt = _common._pyplot()
    if plt is None:
        return None
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.6))
    ax = axes[0]
    for sec, marker in (("scale", "o"), ("services", "s")):
        rows = sorted((r for r in figs.get(sec, {}).values() if r.get("completed")),
                      key=lambda r: r["services"])
        if not rows:
            continue
        xs = [r["services"] for r in rows]
        for key, st, color in (("sent p50", ("out_bps", "p50"), "tab:blue"),
                               ("sent p99", ("out_bps", "p99"), "tab:cyan"),
                               ("received p50", ("in_bps", "p50"), "tab:orange"),
                               ("received p99", ("in_bps", "p99"), "tab:red")):
            ys = [(r[st[0]].get(st[1]) or 0) / 1024 for r in rows]
            lbl = f"{key} (N=S)" if sec == "scale" else f"{key} (N={rows[0]['nodes']})"
            ax.plot(xs, ys, marker=marker, color=color, label=lbl,
                    linestyle="-" if sec == "scale" else ":")
    _log_ticks(ax, figs)
    ax.set_xlabel("services in the network (S)")
    ax.set_ylabel("registry KiB/s per node")
    ax.set_ylim(bottom=0)
    ax.set_title("traffic per (non-super) node")
    ax.legend(fontsize=7)
    ax = axes[1]
    for sec, marker in (("scale", "o"), ("services", "s")):
        rows = sorted((r for r in figs.get(sec, {}).values() if r.get("completed")),
                      key=lambda r: r["services"])
        if not rows:
            continue
        xs = [r["services"] for r in rows]
        style = "-" if sec == "scale" else ":"
        ax.plot(xs, [r["held_remote_mean"] for r in rows], marker=marker, linestyle=style,
                color="tab:green", label=f"others' registrations held, mean ({sec})")
        ax.plot(xs, [r["catalog_mean"] for r in rows], marker=marker, linestyle=style,
                color="tab:gray", label=f"catalog names (= topics), mean ({sec})")
        ax.plot(xs, [r["own_mean"] for r in rows], marker=marker, linestyle=style,
                color="tab:brown", label=f"services it serves, mean ({sec})")
    _log_ticks(ax, figs)
    ax.set_xlabel("services in the network (S)")
    ax.set_ylabel("per node")
    ax.set_ylim(bottom=0)
    ax.set_title("what a (non-super) node holds")
    ax.legend(fontsize=7)
    ax = axes[2]
    p = figs.get("propagation")
    if p and p.get("completed"):
        for key, lbl in (("hot_seen", f"{p['hot_watchers']} watchers of a popular service see "
                                      "a new instance"),
                         ("new_seen", "watchers of ordinary services see a new instance"),
                         ("gone", "dead instance deleted at a holder (from the crash)")):
            xs = p["samples"][key]
            finite = [x / 1000 for x in xs if x is not None]
            if finite:
                ys = [(i + 1) / len(xs) for i in range(len(finite))]
                ax.step(finite, ys, where="post", label=lbl)
        ax.axvline(p["bound_s"], color="k", linestyle="--", label="ttl + announce interval")
        ax.set_xscale("symlog", linthresh=1.0)
        ax.set_xlabel("seconds")
        ax.set_ylabel("share of (instance, watcher) pairs")
        ax.set_title(f"propagation and expiry, N={p['nodes']}")
        ax.legend(fontsize=7, loc="lower right")
    fig.suptitle(title)
    _common.save_figure(plt, fig, path)
    return path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="scale at N=200/400, services at N=200, propagation at N=500")
    parser.add_argument("--sections", default="scale,services,propagation")
    parser.add_argument("--sizes", type=int, nargs="+", help="scale: N (default 1k 10k 100k)")
    parser.add_argument("--services-per-node", type=float, default=1.0, help="scale: S = N * x")
    parser.add_argument("--services-nodes", type=int, help="services: N (default 1000)")
    parser.add_argument("--services", type=int, nargs="+", help="services: S values")
    parser.add_argument("--prop-nodes", type=int, help="propagation: N (default 10000)")
    parser.add_argument("--hot-share", type=float, default=0.1)
    parser.add_argument("--settle", type=float,
                        help="propagation: virtual s from the new instances to the crash (60; "
                             "quick 20)")
    parser.add_argument("--watched", type=int, default=3)
    parser.add_argument("--supers", type=int, default=3)
    parser.add_argument("--degree", type=int, default=8)
    parser.add_argument("--warmup", type=float, help="virtual seconds (20; quick 15)")
    parser.add_argument("--window", type=float, help="virtual seconds measured (30; quick 20)")
    parser.add_argument("--catalog-size", type=int, default=1024)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--max-wall", type=float, help="stop a run after this many seconds")
    parser.add_argument("--fresh", action="store_true", help="do not merge into the old JSON")
    parser.add_argument("--plot-only", action="store_true",
                        help="redraw the plot and tables from the JSON; run nothing")
    args = parser.parse_args()
    q = args.quick
    args.sizes = args.sizes or ([200, 400] if q else [1000, 10000, 100000])
    args.services_nodes = args.services_nodes or (200 if q else 1000)
    args.services = args.services or ([20, 200, 800] if q else [100, 1000, 10000])
    args.warmup = args.warmup if args.warmup is not None else (15.0 if q else 20.0)
    args.window = args.window if args.window is not None else (20.0 if q else 30.0)
    args.settle = args.settle if args.settle is not None else (20.0 if q else 60.0)
    args.prop_nodes = args.prop_nodes or (500 if q else 10000)
    sections = [s.strip() for s in args.sections.split(",") if s.strip()]

    name = NAME + ("_quick" if q else "")
    if args.plot_only:
        path = _common.RESULTS_DIR / f"{name}.json"
        figs_only = json.loads(path.read_text(encoding="utf-8"))["figures"]
        print_tables(figs_only)
        plot(path.with_suffix(".png"), figs_only, PLOT_TITLE.format(a=args))
        return 0
    started = _common.now_iso()
    cmd = _common.command_line()
    new: dict[str, Any] = {}
    for sec in sections:
        if sec == "scale":
            new["scale"] = scale_section(args.sizes, args.services_per_node, args, "scale")
        elif sec == "services":
            new["services"] = scale_section([], 0.0, args, "services")
        elif sec == "propagation":
            new["propagation"] = propagation_section(args)
        else:
            parser.error(f"unknown section {sec!r}")
    # Merge into what earlier runs wrote (read now, so that runs of different sections can go
    # on side by side): sizes of scale/services by "N/S", propagation replaced.
    path = _common.RESULTS_DIR / f"{name}.json"
    old: dict[str, Any] = {}
    if path.exists() and not args.fresh:
        try:
            old = json.loads(path.read_text(encoding="utf-8"))
        except ValueError:
            old = {}
    ofigs = old.get("figures", {})
    merged = "scale" in ofigs or "services" in ofigs or "propagation" in ofigs
    figs: dict[str, Any] = dict(ofigs) if merged else {}
    commands: dict[str, Any] = dict(old.get("commands", {})) if merged else {}
    params = {"sizes": args.sizes, "services_per_node": args.services_per_node,
              "services_nodes": args.services_nodes, "services": args.services,
              "prop_nodes": args.prop_nodes, "hot_share": args.hot_share,
              "prop_warmup_virtual_s": 30.0, "prop_settle_virtual_s": args.settle,
              "prop_new_instances": 100, "prop_crashes": 100,
              "watched": args.watched, "supers": args.supers, "degree": args.degree,
              "warmup_virtual_s": args.warmup, "window_virtual_s": args.window,
              "catalog_size": args.catalog_size, "seed": args.seed,
              "latency": "U(20,120) ms one way, fixed per link",
              "graph": f"random regular, degree {args.degree}, plus one link to a super node "
                       "and one to each server of every watched service",
              "registry": "ttl 20 s, announce 10 s, catalog 60 s (defaults)",
              "gossip": "library defaults (D=6, heartbeat 1 s, flood publish, scoring on)",
              "signatures": "executed (Ed25519); each gossip message verified once per message",
              "quick": q}
    for sec, val in new.items():
        if sec == "propagation":
            figs[sec] = val
        else:
            figs.setdefault(sec, {}).update(val)
        commands[sec] = {"command": cmd, "started": started, "finished": _common.now_iso(),
                         "params": params}
    print_tables(figs)
    path = _common.write_result(name, cmd, params, figs, started=started, commands=commands)
    png = plot(path.with_suffix(".png"), figs, PLOT_TITLE.format(a=args))
    print(f"wrote {path}" + (f" and {png}" if png else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
