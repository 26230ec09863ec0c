"""The results of the registry experiments, and the statistics they are made of.

Theory of operation. :class:`RegistryScaleResult` (what a node holds and sends,
:func:`~.registry.run_registry_scale`) and :class:`PropagationResult` (how fast a new
registration and a death spread, :func:`~.registry.run_registry_propagation`) are plain
dataclasses; ``as_dict`` gives them as JSON-ready data. A distribution is a :data:`Stats`
(``_spread``): its size, how many values are ``inf`` (a node that never saw it: "never"), the
mean of the finite values and nearest-rank p50, p99 and max, with ``None`` for "not by the end"
(JSON has no infinity). ``_ms`` lists the samples in ms, ``_share`` the share that is finite,
``_rss`` the resident set size (from ``/proc``).
"""

from __future__ import annotations

import math
import os
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from .registry_driver import INF

__all__ = ["PropagationResult", "RegistryScaleResult", "Stats"]

Stats = dict[str, float | None]  # n, never, mean, p50, p99, max (see _spread)


def _rss() -> int | None:
    try:
        with open("/proc/self/statm", encoding="ascii") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


def _quantile(xs: Sequence[float], q: float) -> float:
    """Nearest-rank quantile of sorted data (``inf`` entries count: a node that never saw it)."""
    if not xs:
        return math.nan
    return xs[min(len(xs) - 1, max(0, math.ceil(q * len(xs)) - 1))]


def _spread(xs: Sequence[float]) -> Stats:
    """n, mean (of the finite values), p50, p99, max, and how many are ``inf`` (never)."""
    s = sorted(xs)
    if not s:
        return {"n": 0}
    finite = [x for x in s if x < INF]

    def num(x: float) -> float | None:
        return x if x < INF else None  # JSON has no infinity: None is "not by the end"

    return {"n": len(s), "never": len(s) - len(finite),
            "mean": statistics.fmean(finite) if finite else None,
            "p50": num(_quantile(s, 0.5)), "p99": num(_quantile(s, 0.99)), "max": num(s[-1])}


@dataclass
class RegistryScaleResult:
    nodes: int
    services: int
    watched_per_node: int
    supers: int
    warmup: float
    window: float
    held_mean: float  # registrations a (non-super) node holds, its own included
    held_max: int
    held_remote_mean: float  # of those, instances of other nodes (what it watches)
    held_remote_max: int
    own_mean: float  # services it serves itself
    topics_mean: float  # gossip topics a (non-super) node joined
    topics_max: int
    catalog_mean: float  # names in a non-super node's catalog
    catalog_max: int
    # bytes per second per (non-super) node over the window: mean, p50, p99, max
    out_bps: Stats
    in_bps: Stats
    out_bps_half: Stats  # over the first half of the window only
    super_catalog_mean: float  # names in a super node's catalog
    super_in_bps: float
    super_out_bps: float
    watch_coverage: float  # watched (service, instance) pairs known at the end / all
    created_events: int
    expired_live: int  # live instances some watcher let expire (should be 0)
    events: int = 0
    rss_bytes: int | None = None

    @property
    def kib_out_per_node_s(self) -> float:
        return (self.out_bps["mean"] or 0.0) / 1024

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class PropagationResult:
    nodes: int
    services: int
    supers: int
    ttl: float
    announce_interval: float
    bound_s: float  # ttl + announce_interval: how long a dead node may stay registered
    hot_watchers: int  # nodes watching the popular service
    new_instances: int  # ordinary services that got a new instance (besides the popular one)
    # seconds from register() until a watcher's "created" event (inf: not seen by the end)
    hot_seen: Stats
    hot_seen_share: float
    new_seen: Stats  # (ordinary new instance, watcher) pairs
    new_seen_share: float
    crashed: int  # serving nodes crashed (the popular service's new instance among them)
    # seconds from the crash until a holder deleted the instance (inf: not by the end)
    gone: Stats
    gone_share: float  # (dead instance, holder) pairs deleted by the end
    gone_within_bound: float  # of those pairs, the share deleted within bound_s
    hot_gone: Stats  # the popular service's dead instance, over its holders
    deleted_reasons: dict[str, int]
    expired_live: int  # live instances some watcher let expire
    observed_after_crash_s: float
    # every value behind hot_seen, new_seen and gone, sorted, in ms (None: not by the end)
    samples: dict[str, list[float | None]] = field(default_factory=dict)
    events: int = 0
    rss_bytes: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _ms(xs: Sequence[float]) -> list[float | None]:
    return [round(x * 1000, 1) if x < INF else None for x in sorted(xs)]


def _share(xs: Sequence[float]) -> float:
    return sum(1 for x in xs if x < INF) / len(xs) if xs else 1.0
