"""Plots of simulation results (matplotlib, Agg backend: files only, no display).

Theory of operation. Each function takes plain data (lookup records or summary dicts) and writes
one PNG; matplotlib is imported lazily so the simulator runs without it (``plot_run`` then
returns an empty list and says why in the log).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from .metrics import LookupRecord

__all__ = ["plot_run", "plot_series"]

log = logging.getLogger(__name__)


def _plt() -> Any:
    try:
        import matplotlib
    except ImportError:
        log.warning("matplotlib is not installed: no plots")
        return None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_run(records: list[LookupRecord], out: Path, title: str = "") -> list[Path]:
    """Lookup latency CDF and rounds histogram per tag -> ``latency_cdf.png``, ``rounds.png``."""
    plt = _plt()
    if plt is None or not records:
        return []
    out.mkdir(parents=True, exist_ok=True)
    tags = sorted({r.tag for r in records})
    files = []
    fig, ax = plt.subplots(figsize=(6, 4))
    for tag in tags:
        lat = sorted(r.duration for r in records if r.tag == tag and r.ok)
        if lat:
            ax.plot(lat, [(i + 1) / len(lat) for i in range(len(lat))], label=tag)
    ax.set_xlabel("lookup latency (s, virtual)")
    ax.set_ylabel("fraction of successful lookups")
    ax.set_title(title or "lookup latency CDF")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    files.append(out / "latency_cdf.png")
    fig.savefig(files[-1], dpi=120)
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(6, 4))
    width = 0.8 / max(1, len(tags))
    for i, tag in enumerate(tags):
        rounds = [r.rounds for r in records if r.tag == tag and r.ok]
        if not rounds:
            continue
        top = max(rounds)
        xs = list(range(top + 1))
        ys = [rounds.count(x) / len(rounds) for x in xs]
        ax.bar([x + i * width for x in xs], ys, width=width, label=tag)
    ax.set_xlabel("rounds to termination")
    ax.set_ylabel("fraction of lookups")
    ax.set_title(title or "lookup rounds")
    ax.legend(fontsize=8)
    fig.tight_layout()
    files.append(out / "rounds.png")
    fig.savefig(files[-1], dpi=120)
    plt.close(fig)
    return files


def plot_series(
    series: dict[str, list[tuple[float, float]]], path: Path, ylabel: str
) -> Path | None:
    """Time series (virtual seconds on x) on one axis."""
    plt = _plt()
    if plt is None or not series:
        return None
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, pts in series.items():
        ax.plot([p[0] for p in pts], [p[1] for p in pts], label=name)
    ax.set_xlabel("virtual time (s)")
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_gossip(sim: Any, honest: list[int], out: Path, title: str = "") -> list[Path]:
    """Gossip run: delivery latency CDF per tag (with the shortest-path bound of the same
    (message, node) pairs) -> ``delivery_cdf.png``; copies per node and message ->
    ``copies.png``; the run's time series (if any) -> ``series.png``."""
    from .gossip import INF, shortest_path_bound

    plt = _plt()
    recs = [r for r in sim.published if not r.invalid]
    if plt is None or not recs:
        return []
    out.mkdir(parents=True, exist_ok=True)
    files = []
    tags = sorted({r.tag for r in recs})
    fig, ax = plt.subplots(figsize=(6, 4))
    bound: list[float] = []
    cache: dict[int, list[float]] = {}
    for tag in tags:
        lat: list[float] = []
        for r in recs:
            if r.tag != tag:
                continue
            lat.extend(r.first[i] - r.t0 for i in honest if i != r.publisher)
            if len(recs) <= 400:
                b = cache.get(r.publisher)
                if b is None:
                    b = cache[r.publisher] = shortest_path_bound(
                        sim, r.publisher, sim.crypto.verify_cost)
                bound.extend(b[i] for i in honest if i != r.publisher and b[i] < INF)
        n = len(lat)
        got = sorted(x for x in lat if x < INF)
        if got:
            ax.plot(got, [(i + 1) / n for i in range(len(got))], label=f"{tag} (simulated)")
    if bound:
        bound.sort()
        ax.plot(bound, [(i + 1) / len(bound) for i in range(len(bound))], "--",
                label="shortest-path bound")
    ax.set_xlabel("delivery latency (s, virtual)")
    ax.set_ylabel("fraction of (message, node) pairs")
    ax.set_title(title or "gossip delivery latency")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    files.append(out / "delivery_cdf.png")
    fig.savefig(files[-1], dpi=120)
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(6, 4))
    copies = [r.copies[i] for r in recs for i in honest if i != r.publisher]
    top = max(copies) if copies else 0
    xs = list(range(top + 1))
    counts = [0] * (top + 1)
    for c in copies:
        counts[c] += 1
    ax.bar(xs, [c / max(1, len(copies)) for c in counts])
    mean = sum(copies) / max(1, len(copies))
    ax.axvline(mean, color="tab:red", ls="--", label=f"mean {mean:.2f}")
    ax.set_xlabel("copies of a message received by a node")
    ax.set_ylabel("fraction of (message, node) pairs")
    ax.set_title(title or "copies per node")
    ax.legend(fontsize=8)
    fig.tight_layout()
    files.append(out / "copies.png")
    fig.savefig(files[-1], dpi=120)
    plt.close(fig)
    if sim.metrics.series:
        p = plot_series(sim.metrics.series, out / "series.png", "value")
        if p is not None:
            files.append(p)
    return files
