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
