"""How fast does a node connect, ask one Kademlia question, and fill its routing table?

Ours (micronetwork) against the baseline (py-libp2p 0.8.1's own host and KadDHT with their
defaults), measured alternately in the same run on 127.0.0.1:

* ``connect_time``: ``connect()`` between two fresh hosts.
* ``find_node_rtt``: one FIND_NODE request/response over an open connection (per repetition
  the median of ``--queries`` queries).
* ``time_to_learn_peers``: a bootstrap + N nodes that each know only the bootstrap; a new
  node joins through the bootstrap; seconds until its routing table holds ``--target`` peers.

    python benchmarks/discovery.py --quick     # 3 repetitions, N=20: seconds
    python benchmarks/discovery.py             # 9 repetitions, N=50

Writes benchmarks/results/discovery.json and discovery.png.

Our side: three async functions looked up in ``benchmarks/_micronetwork_side.py`` (else
``micronetwork.bench``, else ``micronetwork``), with the same signatures and meaning as the
baseline's in ``_pylibp2p_baseline.py``: each returns one sample in seconds per repetition,
using fresh nodes for every repetition and closing them all:

    async def ours_connect_time(reps: int = 1) -> list[float]
    async def ours_find_node_rtt(reps: int = 1, queries: int = 20) -> list[float]
    async def ours_time_to_learn_peers(reps: int = 1, n: int = 20, target: int = 20) -> list[float]

If micronetwork or the hooks cannot be imported, the baseline runs alone and the JSON says so.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import traceback
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import trio

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _pylibp2p_baseline as baseline  # noqa: E402
from _common import (  # noqa: E402
    REPO_ROOT,
    RESULTS_DIR,
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

NAME = "discovery"
Sampler = Callable[..., Awaitable[list[float]]]
HOOKS = ("ours_connect_time", "ours_find_node_rtt", "ours_time_to_learn_peers")


# -- OUR SIDE: the hook ------------------------------------------------------------------------


HOOK_MODULES = ("_micronetwork_side", "micronetwork.bench", "micronetwork")


def load_ours() -> tuple[dict[str, Sampler] | None, str]:
    """Our three sampling functions, or None and the reason they are not available.

    Looked up in ``benchmarks/_micronetwork_side.py``, then ``micronetwork.bench``, then
    ``micronetwork`` itself; the first module that has a hook wins for that hook.
    """
    try:
        import micronetwork  # noqa: F401
        where = "installed"
    except ImportError:
        src = REPO_ROOT / "src"  # a checkout that was not pip-installed
        sys.path.insert(0, str(src))
        try:
            import micronetwork  # noqa: F401
            where = f"from {src}"
        except ImportError as exc:
            sys.path.remove(str(src))
            return None, f"micronetwork is not importable ({exc}): baseline only"
    found: dict[str, Sampler] = {}
    origin: dict[str, str] = {}
    problems: list[str] = []
    for module_name in HOOK_MODULES:
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            if module_name == "_micronetwork_side" and getattr(exc, "name", None) != module_name:
                problems.append(f"{module_name}: {exc}")  # exists but does not import
            continue
        for hook in HOOKS:
            if hook not in found and callable(getattr(module, hook, None)):
                found[hook] = getattr(module, hook)
                origin[hook] = module_name
    missing = [h for h in HOOKS if h not in found]
    if missing:
        why = f" ({'; '.join(problems)})" if problems else ""
        return None, (f"micronetwork imported ({where}) but {', '.join(missing)} not found in "
                      f"{', '.join(HOOK_MODULES)}{why}: baseline only")
    return found, (f"micronetwork imported ({where}); hooks from "
                   f"{', '.join(sorted(set(origin.values())))}")


# -- the run -----------------------------------------------------------------------------------


def metrics(args: argparse.Namespace) -> list[dict[str, Any]]:
    """What to measure: key, what, baseline sampler, our hook name, keyword arguments."""
    return [
        {"key": "connect_time", "title": "connect() between two fresh hosts",
         "baseline": baseline.connect_time, "ours": "ours_connect_time", "kwargs": {}},
        {"key": "find_node_rtt", "title": "one FIND_NODE round trip (open connection)",
         "baseline": baseline.find_node_rtt, "ours": "ours_find_node_rtt",
         "kwargs": {"queries": args.queries}},
        {"key": "time_to_learn_peers",
         "title": f"new node: routing table >= {args.target} peers (N={args.peers})",
         "baseline": baseline.time_to_learn_peers, "ours": "ours_time_to_learn_peers",
         "kwargs": {"n": args.peers, "target": args.target}},
    ]


async def sample(fn: Sampler, kwargs: dict[str, Any], label: str,
                 errors: list[str]) -> list[float]:
    """One repetition; a failure is recorded (and counted in the JSON), not fatal."""
    try:
        return list(await fn(reps=1, **kwargs))
    except Exception as exc:  # noqa: BLE001 -- a benchmark run reports failures and goes on
        msg = f"{label}: {type(exc).__name__}: {exc}"
        errors.append(msg)
        print(f"error in {msg}", file=sys.stderr)
        if not isinstance(exc, trio.TooSlowError):
            traceback.print_exc(file=sys.stderr)
        return []


async def run(args: argparse.Namespace) -> dict[str, Any]:
    ours, ours_note = load_ours()
    print(ours_note, file=sys.stderr)
    plan = metrics(args)
    samples: dict[str, dict[str, list[float]]] = {m["key"]: {"ours": [], "baseline": []}
                                                  for m in plan}
    errors: dict[str, list[str]] = {m["key"]: [] for m in plan}

    # Untimed warm-up, once per side and metric (imports, first-use caches).
    if args.warmup:
        for m in plan:
            if ours is not None:
                await sample(ours[m["ours"]], m["kwargs"], f"warm-up ours {m['key']}", [])
            await sample(m["baseline"], m["kwargs"], f"warm-up baseline {m['key']}", [])

    steps = [(m, rep) for rep in range(args.reps) for m in plan]  # even steps: fair ETA
    for m, rep in progress(steps, label=NAME):
        # Alternate: ours, theirs, ours, theirs, ... -- same process, same machine state.
        if ours is not None:
            samples[m["key"]]["ours"] += await sample(
                ours[m["ours"]], m["kwargs"], f"ours {m['key']} rep {rep}", errors[m["key"]])
        samples[m["key"]]["baseline"] += await sample(
            m["baseline"], m["kwargs"], f"baseline {m['key']} rep {rep}", errors[m["key"]])

    return {"plan": plan, "samples": samples, "errors": errors, "ours_available": ours is not None,
            "note": ours_note}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="3 repetitions, N=20 (seconds)")
    ap.add_argument("--reps", type=int, help="repetitions per side (default 9, quick 3)")
    ap.add_argument("--peers", type=int, help="N nodes behind the bootstrap (default 50, quick 20)")
    ap.add_argument("--target", type=int, default=20, help="routing-table size to reach")
    ap.add_argument("--queries", type=int, help="FIND_NODEs per repetition (default 50, quick 10)")
    ap.add_argument("--no-warmup", dest="warmup", action="store_false")
    args = ap.parse_args()
    args.reps = args.reps or (3 if args.quick else 9)
    args.peers = args.peers or (20 if args.quick else 50)
    args.queries = args.queries or (10 if args.quick else 50)

    started, load_at_start = now_iso(), loadavg()
    out = trio.run(run, args)

    figures: dict[str, Any] = {}
    base: dict[str, Any] = {}
    ratios: dict[str, Any] = {}
    rows = []
    for m in out["plan"]:
        k = m["key"]
        b = summarize(out["samples"][k]["baseline"])
        base[k] = {"unit": "s", **b}
        o = summarize(out["samples"][k]["ours"]) if out["ours_available"] else None
        if o is not None:
            figures[k] = {"unit": "s", **o}
            ratios[k] = ratio(o, b, better="lower")

        def ms(s: dict[str, Any] | None, f: str) -> float | None:
            return None if not s or s.get(f) is None else s[f] * 1e3

        rows.append({
            "metric": k,
            "ours ms": ms(o, "median"),
            "ours min..max": (f"{ms(o, 'min'):.4g}..{ms(o, 'max'):.4g}"
                              if o and o["n"] else "-"),
            "py-libp2p ms": ms(b, "median"),
            "py-libp2p min..max": (f"{ms(b, 'min'):.4g}..{ms(b, 'max'):.4g}" if b["n"] else "-"),
            "n": b["n"],
            "ours/py-libp2p": ratios.get(k, {}).get("value"),
        })

    params = {
        "quick": args.quick,
        "reps": args.reps,
        "warmup_reps_discarded": 1 if args.warmup else 0,
        "order": "per repetition, per metric: ours then baseline (alternating)",
        "peers_behind_bootstrap": args.peers,
        "target_table_size": args.target,
        "find_node_queries_per_rep": args.queries,
        "find_node_sample": "median of the rep's queries (one untimed warm-up query first)",
        "address": "127.0.0.1, TCP",
        "baseline_stack": ("py-libp2p new_host() defaults (TCP, default security and muxer, "
                           "default ConnectionConfig and resource manager); "
                           "KadDHT(host, DHTMode.SERVER) defaults"),
        "baseline_calls": {
            "connect_time": "BasicHost.connect(PeerInfo)",
            "find_node_rtt": "KadDHT.peer_routing._query_peer_for_closest(peer, key)",
            "time_to_learn_peers": ("host.connect(bootstrap) then KadDHT.refresh_routing_table(),"
                                    " polled get_routing_table_size() every 2 ms"),
        },
    }
    notes = [out["note"]]
    if not out["ours_available"]:
        notes.append("figures and ratio are empty: only the baseline was measured")
    path = write_result(
        NAME, command_line(), params, figures, baseline=base, ratio=ratios, started=started,
        notes=notes, errors={k: v for k, v in out["errors"].items() if v},
        loadavg_at_start=load_at_start,
    )

    print()
    print_table(rows, title=f"{NAME}: medians over {args.reps} repetitions "
                            "(lower is better; ratio < 1: ours faster)")
    for n in notes:
        print(f"note: {n}")
    panels = [{"title": m["title"], "ylabel": "ms", "log": True,
               "series": {
                   "ours": ({k: (v * 1e3 if isinstance(v, float) else v)
                             for k, v in figures[m["key"]].items() if k != "samples"}
                            if m["key"] in figures else {}),
                   "py-libp2p 0.8.1": {k: (v * 1e3 if isinstance(v, float) else v)
                                       for k, v in base[m["key"]].items() if k != "samples"},
               }} for m in out["plan"]]
    png = plot_bars(RESULTS_DIR / f"{NAME}.png", panels,
                    title="discovery: ours vs py-libp2p defaults, 127.0.0.1")
    print(f"wrote {path}" + (f" and {png}" if png else ""))
    return 1 if any(out["errors"].values()) else 0


if __name__ == "__main__":
    sys.exit(main())
