"""Figures of a gossip run: delivery, latency against the shortest-path bound, copies, traffic.

Theory of operation. :func:`delivery_figures` reads the :class:`~.gossip.MsgRecord` of the
messages a :class:`~.gossip_harness.GossipScenario` published and, over the (message, node)
pairs (honest nodes by default, the publisher excluded), reports the delivery ratio within
``window`` and at all, nearest-rank percentiles of latency and copies, and the shortest-path
bound over the same pairs (Dijkstra from the publisher over link latency + one validation per
hop, on the same connections; with ``honest_paths`` only through honest nodes).
:func:`per_message` is the delivery ratio of each message within a window; ``_counters`` sums
the run's traffic counters and those of every node's gossip core. Nothing here changes the
simulator: the figures only read its records.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from .gossip import INF, GossipSimNode, MsgRecord, shortest_path_bound
from .gossip_harness import Figures, GossipScenario

__all__ = ["delivery_figures", "per_message"]


def _quantiles(xs: list[float], qs: Sequence[float]) -> list[float]:
    if not xs:
        return [math.nan for _ in qs]
    xs.sort()
    return [xs[max(0, math.ceil(q / 100.0 * len(xs)) - 1)] for q in qs]


def delivery_figures(
    sc: GossipScenario,
    recs: Sequence[MsgRecord],
    *,
    nodes: Sequence[GossipSimNode] | None = None,
    window: float = 4.0,
    bound: bool = True,
    honest_paths: bool = False,
) -> Figures:
    """Delivery ratio (within ``window`` and at all), latency percentiles, copies per node,
    and the shortest-path bound over the same (message, node) pairs.

    ``honest_paths``: the bound may only relay through honest nodes (nodes that no honest path
    reaches are counted as ``unreachable``; delivery is also reported relative to the others).
    """
    sim = sc.sim
    targets = [n.idx for n in (nodes if nodes is not None else sc.honest())]
    per_hop = sim.crypto.verify_cost
    honest_set = {n.idx for n in sc.honest()}
    allowed = honest_set.__contains__ if honest_paths else None
    lat: list[float] = []
    bnd: list[float] = []
    copies: list[float] = []
    pairs = in_window = delivered = reachable = reach_ok = 0
    cache: dict[int, list[float]] = {}
    for rec in recs:
        b: list[float] | None = None
        if bound:
            b = cache.get(rec.publisher)
            if b is None:
                b = cache[rec.publisher] = shortest_path_bound(sim, rec.publisher, per_hop, allowed)
        first = rec.first
        t0 = rec.t0
        for i in targets:
            if i == rec.publisher:
                continue
            pairs += 1
            dt = first[i] - t0
            ok = dt <= window
            in_window += ok
            if dt < INF:
                delivered += 1
                lat.append(dt)
            copies.append(rec.copies[i])
            if b is not None and b[i] < INF:
                reachable += 1
                reach_ok += ok
                bnd.append(b[i])
    lp = _quantiles(lat, (50, 90, 99, 100))
    bp = _quantiles(bnd, (50, 90, 99, 100))
    cp = _quantiles(copies, (50, 90, 99, 100))
    figs: Figures = {
        "messages": len(recs),
        "pairs": pairs,
        "delivery_within_window": in_window / pairs if pairs else math.nan,
        "window_s": window,
        "delivery": delivered / pairs if pairs else math.nan,
        "latency_p50": lp[0], "latency_p90": lp[1], "latency_p99": lp[2], "latency_max": lp[3],
        "copies_mean": sum(copies) / len(copies) if copies else math.nan,
        "copies_p50": cp[0], "copies_p90": cp[1], "copies_p99": cp[2], "copies_max": cp[3],
    }
    if bound:
        figs.update({
            "bound_p50": bp[0], "bound_p90": bp[1], "bound_p99": bp[2], "bound_max": bp[3],
            "p99_over_bound_p99": lp[2] / bp[2] if bp[2] and bp[2] == bp[2] else math.nan,
            "reachable": reachable / pairs if pairs else math.nan,
            "delivery_within_window_of_reachable": reach_ok / reachable if reachable else math.nan,
        })
    return figs


def per_message(sc: GossipScenario, recs: Sequence[MsgRecord], window: float) -> list[float]:
    """Delivery ratio within ``window`` of each message (honest nodes, publisher excluded)."""
    honest = [n.idx for n in sc.honest()]
    out = []
    for rec in recs:
        ok = sum(1 for i in honest if i != rec.publisher and rec.first[i] - rec.t0 <= window)
        out.append(ok / max(1, len(honest) - 1))
    return out


def _counters(sc: GossipScenario) -> Figures:
    c = sc.sim.metrics.counters
    msgs = max(1, c["published"])
    totals: dict[str, int] = {}
    for n in sc.sim.nodes:
        for k in ("idontwant_suppressed", "duplicates", "delivered", "rpcs_graylisted",
                  "broken_promises", "iwant_sent"):
            totals[k] = totals.get(k, 0) + n.core.counters[k]
    return {
        "rpcs": c["rpcs"], "bytes": c["bytes"], "bytes_per_message_per_node":
        c["bytes"] / msgs / max(1, sc.n), "messages_sent": c["messages_sent"],
        "validations": c["validations"], **totals,
    }
