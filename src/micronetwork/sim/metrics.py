"""Metrics of a simulation run: counters, per-lookup and per-message records, summaries.

Theory of operation. Counters (a ``Counter[str]``) are always on and cheap. Every query the
scenario asks for through ``Simulator.query`` becomes one :class:`LookupRecord` when it finishes
(or a failed one if it is still running when the scenario reads the results). Per-message records
(time, src, dst, type, size, delay) are off by default because a 100k-node run sends tens of
millions of messages; ``record_messages=True`` keeps them for small runs. :func:`summarize_lookups`
computes the figures the benchmarks report (success ratio, rounds mean/p95, latency percentiles);
:meth:`Metrics.export` writes ``lookups.csv``, ``messages.csv`` and ``summary.json``.
"""

from __future__ import annotations

import csv
import json
import math
from collections import Counter
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

__all__ = ["LookupRecord", "MessageRecord", "Metrics", "percentile", "summarize_lookups"]


@dataclass(frozen=True, slots=True)
class LookupRecord:
    node: int
    kind: str
    tag: str
    started: float
    duration: float
    rounds: int
    requests: int
    successes: int
    failures: int
    ok: bool
    stored: int = 0
    error: str = ""


@dataclass(frozen=True, slots=True)
class MessageRecord:
    time: float
    src: int
    dst: int
    type: str
    size: int
    delay: float
    dropped: bool = False


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (``q`` in [0, 100]) of ``values``; nan when empty."""
    if not values:
        return math.nan
    s = sorted(values)
    rank = max(1, math.ceil(q / 100.0 * len(s)))
    return float(s[rank - 1])


def summarize_lookups(records: list[LookupRecord]) -> dict[str, Any]:
    """Success ratio, rounds mean/p95, latency p50/p90/p99 (successful lookups only)."""
    n = len(records)
    ok = [r for r in records if r.ok]
    rounds = [float(r.rounds) for r in ok]
    lat = [r.duration for r in ok]
    return {
        "lookups": n,
        "success": len(ok) / n if n else math.nan,
        "rounds_mean": sum(rounds) / len(rounds) if rounds else math.nan,
        "rounds_p95": percentile(rounds, 95),
        "latency_p50": percentile(lat, 50),
        "latency_p90": percentile(lat, 90),
        "latency_p99": percentile(lat, 99),
        "latency_mean": sum(lat) / len(lat) if lat else math.nan,
        "requests_mean": sum(r.requests for r in ok) / len(ok) if ok else math.nan,
    }


class Metrics:
    """What one run measured (see the module docstring)."""

    def __init__(self, record_messages: bool = False) -> None:
        self.counters: Counter[str] = Counter()
        self.lookups: list[LookupRecord] = []
        self.messages: list[MessageRecord] = []
        self.record_messages = record_messages
        self.series: dict[str, list[tuple[float, float]]] = {}

    def sample(self, name: str, t: float, value: float) -> None:
        """Append a point to a time series (e.g. alive nodes over time)."""
        self.series.setdefault(name, []).append((t, value))

    def by_tag(self, tag: str) -> list[LookupRecord]:
        return [r for r in self.lookups if r.tag == tag]

    def summary(self, tag: str | None = None) -> dict[str, Any]:
        recs = self.lookups if tag is None else self.by_tag(tag)
        return summarize_lookups(recs)

    def export(self, out: Path, extra: dict[str, Any] | None = None) -> dict[str, Any]:
        """Write lookups.csv, messages.csv (if recorded) and summary.json under ``out``."""
        out.mkdir(parents=True, exist_ok=True)
        _write_csv(out / "lookups.csv", LookupRecord, self.lookups)
        if self.record_messages:
            _write_csv(out / "messages.csv", MessageRecord, self.messages)
        tags = sorted({r.tag for r in self.lookups})
        summary: dict[str, Any] = {
            "counters": dict(sorted(self.counters.items())),
            "lookups": {t: self.summary(t) for t in tags},
            "series": self.series,
        }
        if extra:
            summary.update(extra)
        (out / "summary.json").write_text(json.dumps(summary, indent=2, default=_jsonable))
        return summary

    def lookups_as_dicts(self) -> list[dict[str, Any]]:
        return [asdict(r) for r in self.lookups]


def _jsonable(x: Any) -> Any:
    if isinstance(x, float) and math.isnan(x):
        return None
    return str(x)


def _write_csv(path: Path, cls: type, rows: list[Any]) -> None:
    names = [f.name for f in fields(cls)]
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(names)
        for r in rows:
            w.writerow([getattr(r, n) for n in names])
