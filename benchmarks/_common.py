"""Helpers shared by every benchmark script in this directory.

Conventions (see README.md): one script per question, ``--quick`` for a seconds-long run,
results in ``benchmarks/results/<name>.json`` (+ ``<name>.png``), ours and the baseline
measured alternately in the same run, medians with spread, never a lone absolute time.
"""

from __future__ import annotations

import datetime as _dt
import importlib
import importlib.metadata
import json
import math
import os
import platform
import shlex
import statistics
import sys
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, Literal, TypeVar

T = TypeVar("T")

BENCH_DIR = Path(__file__).resolve().parent
RESULTS_DIR = BENCH_DIR / "results"
REPO_ROOT = BENCH_DIR.parent

KEY_PACKAGES = ("libp2p", "trio", "cbor2", "PyNaCl", "multiaddr", "networkx", "micronetwork")


# -- where and with what ----------------------------------------------------------------------


def _package_version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        pass
    # Not installed as a distribution (e.g. micronetwork run from src/): ask the module.
    module = {"PyNaCl": "nacl"}.get(dist, dist)
    try:
        mod = importlib.import_module(module)
    except Exception:
        return None
    v = getattr(mod, "__version__", None)
    return str(v) if v is not None else "importable (version unknown)"


def _total_memory_bytes() -> int | None:
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def machine_info() -> dict[str, Any]:
    """Cores, memory, platform, Python and the versions of the packages that matter."""
    mem = _total_memory_bytes()
    return {
        "cores": os.cpu_count(),
        "memory_bytes": mem,
        "memory_gib": round(mem / 2**30, 2) if mem else None,
        "platform": platform.platform(),
        "machine": platform.machine(),
        "python": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "packages": {name: _package_version(name) for name in KEY_PACKAGES},
        # Other work on the machine skews timings; alternating ours/baseline shares the skew.
        "loadavg_1_5_15": loadavg(),
    }


def loadavg() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def command_line() -> str:
    """The exact command line this process was started with."""
    return " ".join(shlex.quote(a) for a in [Path(sys.executable).name, *sys.argv])


def now_iso() -> str:
    return _dt.datetime.now(_dt.UTC).astimezone().isoformat(timespec="seconds")


# -- statistics ---------------------------------------------------------------------------------


def _quantile(sorted_xs: Sequence[float], q: float) -> float:
    """Linear-interpolation quantile (numpy's default) of already sorted data."""
    if len(sorted_xs) == 1:
        return sorted_xs[0]
    pos = q * (len(sorted_xs) - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, len(sorted_xs) - 1)
    return sorted_xs[lo] + (sorted_xs[hi] - sorted_xs[lo]) * (pos - lo)


def summarize(samples: Sequence[float]) -> dict[str, Any]:
    """median, p10, p90, min, max, n (and the samples themselves) of a list of numbers."""
    xs = sorted(float(x) for x in samples)
    if not xs:
        return {"n": 0, "median": None, "p10": None, "p90": None, "min": None, "max": None,
                "samples": []}
    return {
        "n": len(xs),
        "median": statistics.median(xs),
        "p10": _quantile(xs, 0.10),
        "p90": _quantile(xs, 0.90),
        "min": xs[0],
        "max": xs[-1],
        "samples": [float(x) for x in samples],
    }


Better = Literal["lower", "higher"]


def ratio(ours: dict[str, Any] | float | None, base: dict[str, Any] | float | None,
          better: Better = "lower") -> dict[str, Any]:
    """ours ÷ baseline (of the medians when given summaries), with the direction of better."""
    o = ours.get("median") if isinstance(ours, dict) else ours
    b = base.get("median") if isinstance(base, dict) else base
    value = (o / b) if (o is not None and b not in (None, 0)) else None
    meaning = ("ours / baseline; < 1 means ours is better (lower)" if better == "lower"
               else "ours / baseline; > 1 means ours is better (higher)")
    return {"value": value, "better": better, "meaning": meaning}


# -- results ------------------------------------------------------------------------------------


def write_result(name: str, command: str, params: dict[str, Any], figures: dict[str, Any],
                 baseline: dict[str, Any] | None = None, ratio: dict[str, Any] | None = None,
                 started: str | None = None, **extra: Any) -> Path:
    """Write ``benchmarks/results/<name>.json`` and return its path."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    doc: dict[str, Any] = {
        "benchmark": name,
        "command": command,
        "started": started or now_iso(),
        "finished": now_iso(),
        "machine": machine_info(),
        "params": params,
        "figures": figures,
        "baseline": baseline or {},
        "ratio": ratio or {},
        **extra,
    }
    path = RESULTS_DIR / f"{name}.json"
    path.write_text(json.dumps(doc, indent=2, sort_keys=False) + "\n", encoding="utf-8")
    return path


# -- terminal output ----------------------------------------------------------------------------


def _fmt_eta(seconds: float) -> str:
    seconds = max(0, int(seconds))
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


def stage_progress(label: str) -> Any:
    """A simulation's progress callback ``(fraction, stage)`` that prints to stderr every 15 s
    (and at each stage's end), with the time elapsed and an estimate of the stage's time left."""
    t0 = time.monotonic()
    last = [0.0]
    stage_t0: dict[str, float] = {}

    def report(frac: float, stage: str) -> None:
        now = time.monotonic()
        start = stage_t0.setdefault(stage, now)
        if now - last[0] >= 15 or frac >= 1.0:
            last[0] = now
            el = now - start
            eta = f"~{el / frac * (1 - frac):.0f}s" if frac > 0.01 else "?"
            print(
                f"[{label}] {stage} {frac:4.0%}  {now - t0:5.0f}s elapsed, {eta} left (stage)",
                file=sys.stderr,
                flush=True,
            )

    return report


def progress(items: Iterable[T] | int, label: str = "", total: int | None = None) -> Iterator[T]:
    """Iterate with a progress bar and an estimate of time left (on stderr).

    ``progress(10)`` iterates over ``range(10)``. Uses rich when installed, plain lines else.
    """
    seq: Iterable[Any] = range(items) if isinstance(items, int) else items
    if total is None:
        total = items if isinstance(items, int) else (
            len(seq) if hasattr(seq, "__len__") else None)  # type: ignore[arg-type]
    try:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )
    except ImportError:
        Progress = None  # type: ignore[assignment,misc]  # noqa: N806
    if Progress is not None and sys.stderr.isatty():
        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                      TimeElapsedColumn(), TextColumn("left"), TimeRemainingColumn(),
                      console=Console(stderr=True), transient=False) as bar:
            task = bar.add_task(label, total=total)
            for item in seq:
                yield item
                bar.advance(task)
        return
    t0 = time.monotonic()
    for i, item in enumerate(seq, 1):
        yield item
        el = time.monotonic() - t0
        left = f", ~{_fmt_eta(el / i * (total - i))} left" if total else ""
        print(f"[{label}] {i}/{total if total else '?'} done, {_fmt_eta(el)} elapsed{left}",
              file=sys.stderr, flush=True)


def _cell(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return "" if v is None else str(v)


def print_table(rows: Sequence[dict[str, Any]], title: str | None = None) -> None:
    """Print a list of dicts (same keys) as an aligned table on stdout."""
    if not rows:
        return
    cols = list(rows[0].keys())
    cells = [[_cell(r.get(c)) for c in cols] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(cols)]
    if title:
        print(title)
    print("  ".join(c.ljust(w) for c, w in zip(cols, widths, strict=True)))
    print("  ".join("-" * w for w in widths))
    for row in cells:
        print("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)))


# -- plots --------------------------------------------------------------------------------------


def _pyplot() -> Any | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib not installed: no plot written", file=sys.stderr)
        return None
    return plt


def save_figure(plt: Any, fig: Any, path: Path, layout: bool = True) -> Path:
    """Lay out ``fig`` (unless the caller did), write it to ``path`` (folders made), close
    it."""
    if layout:
        fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def load_json(path: Path) -> dict[str, Any]:
    """A results file as a dict; {} if it is missing or not JSON."""
    if path.is_file():
        try:
            return dict(json.loads(path.read_text()))
        except ValueError:
            pass
    return {}


def plot_bars(path: Path, panels: Sequence[dict[str, Any]], title: str = "") -> Path | None:
    """One panel per metric; each panel a bar per series at the median, whiskers min..max.

    ``panels``: ``[{"title": str, "ylabel": str, "log": bool (allow a log axis),
    "series": {label: summary-from-summarize()}}]``; empty summaries are skipped.
    """
    plt = _pyplot()
    if plt is None:
        return None
    fig, axes = plt.subplots(1, len(panels), figsize=(4.6 * len(panels), 4.4), squeeze=False)
    colors = ["tab:blue", "tab:orange", "tab:green", "tab:red"]
    for ax, panel in zip(axes[0], panels, strict=True):
        labels, meds, lo, hi, cols = [], [], [], [], []
        for i, (label, s) in enumerate(panel["series"].items()):
            if not s or s.get("median") is None:
                continue
            labels.append(f"{label}\n{s['median']:.4g} (n={s['n']})")
            meds.append(s["median"])
            lo.append(s["median"] - s["min"])
            hi.append(s["max"] - s["median"])
            cols.append(colors[i % len(colors)])
        ax.bar(range(len(meds)), meds, yerr=[lo, hi], capsize=6, color=cols)
        ax.set_xticks(range(len(meds)), labels)
        ax.set_title(panel.get("title", ""), fontsize=10)
        ax.set_ylabel(panel.get("ylabel", ""))
        # Log scale only when the medians differ by > 20x (then bars start below the minimum).
        if panel.get("log", True) and meds and max(meds) > 20 * min(meds) > 0:
            ax.set_yscale("log")
            ax.set_ylim(bottom=min(m - d for m, d in zip(meds, lo, strict=True)) / 3)
    if title:
        fig.suptitle(title, fontsize=11)
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    fig.text(0.5, 0.01, "bar = median, whiskers = min..max", ha="center", fontsize=8)
    save_figure(plt, fig, path, layout=False)
    return path


def plot_cdf(path: Path, series: dict[str, Sequence[float]], xlabel: str, title: str = "",
             log: bool = False) -> Path | None:
    """Empirical CDF of each series' samples on one axis."""
    plt = _pyplot()
    if plt is None:
        return None
    fig, ax = plt.subplots(figsize=(6, 4))
    for label, xs in series.items():
        ys = sorted(xs)
        if not ys:
            continue
        ax.step(ys, [(i + 1) / len(ys) for i in range(len(ys))], where="post",
                label=f"{label} (n={len(ys)})")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("fraction ≤ x")
    if log:
        ax.set_xscale("log")
    ax.set_title(title)
    ax.legend()
    save_figure(plt, fig, path)
    return path
