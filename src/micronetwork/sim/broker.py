"""The broker in the simulator: delivery ratio and latency of retained pub/sub under churn.

Issue 6 asks for "in the simulator at 10k nodes, delivery ratio and latency with 10% churn".
This runs the real :class:`~micronetwork.broker.BrokerCore` of every node on top of the real
gossip core in virtual time (:class:`~.gossip.GossipSimulator` supplies the event loop, the
links with latency and the gossipsub routers), wired as ``NodeCore`` wires it: gossip messages
and new subscribers of broker topics go to the broker, the broker publishes and subscribes
through gossip, and its ``replay``/``range`` requests travel as request/response messages.

Theory of operation.

* **Network.** N nodes with real Ed25519 keys (the broker signs and verifies events for real);
  a seeded random regular graph of degree 20 gives the gossip connections; ``supers`` super
  nodes know each other and every other node keeps a connection to one of them (its bootstrap
  node), which is also its first retention node (then the other supers), as on a real network.
  Super nodes run the real super-node broker defaults (``retain_topics="*"``, 100,000 events,
  256 MiB, 7 days per topic). One-way link latency U(20, 120) ms, fixed per link.
* **CPU.** Every new gossip message waits in the receiving node's CPU queue for
  ``verify_cost`` (10 ms) before the broker's validator answers (as :mod:`.gossip` models
  validation); a request costs the serving node ``request_cost`` (1 ms); an answer carrying
  events costs the requester ``verify_cost`` per event (it verifies each one).
* **Workload.** ``publishers`` nodes publish ``payload``-byte events on one topic, round robin,
  ``rate`` events per second in total, during a window that starts after a warm-up.
  Subscribers (a fraction of the other nodes, default all) subscribe during the warm-up with
  ``since=Cursor(now)`` and take every delivery at once (``consumed``).
* **Churn.** During the window ``churn`` x (number of regular nodes) crashes happen at uniform
  random times, each of a random regular node that is up; it stays down U(``down_min``,
  ``down_max``) seconds and restarts with its key (a new process: fresh gossip and broker
  state) and the cursor its application saved (everything delivered before the crash),
  reconnects to its graph neighbours that are up and its bootstrap super, and subscribes with
  ``since=cursor``. Neighbours notice a crash ``detect`` seconds later (the connection
  resets). Super nodes and publishers do not churn.
* **Measured** per (event, subscriber): deliveries to the application (exactly once is the
  goal, more is a duplicate), the time of the first, and how it came (live by gossip, or from
  retention: a replay after a restart or a gap fill). Pairs are split by whether the subscriber
  was up or down when the event was published; ``Missed`` counts come from the broker.

Figures: :meth:`BrokerSimulator.figures`. One call: :func:`run_broker_sim`.

Modules: :mod:`.broker_config` (:class:`BrokerSimConfig`, the run's parameters),
:mod:`.broker_driver` (the per-node wiring of gossip and broker cores, requests and answers,
what the application sees) and this one (:class:`BrokerSimulator`: the network, the workload,
the churn, the figures), which re-exports the other two.
"""

from __future__ import annotations

import math
import resource
import time
from array import array
from collections import Counter
from collections.abc import Callable
from typing import Any

from ..broker import Cursor
from ..identity.keys import KeyPair
from .broker_config import SUPER_RETENTION, BrokerSimConfig
from .broker_driver import INF, BrokerDriver
from .gossip import GossipSimNode
from .gossip_harness import regular_edges
from .loop import no_gc as _no_gc

__all__ = ["SUPER_RETENTION", "BrokerSimConfig", "BrokerSimulator", "run_broker_sim"]

Progress = Callable[[float, str], None]




class BrokerSimulator(BrokerDriver):
    """GossipSimulator whose nodes also run a BrokerCore; nodes crash and restart."""

    # == nodes =================================================================================

    def build(self) -> None:
        cfg, rng, n = self.cfg, self.rng, self.cfg.nodes
        self.keys = [KeyPair.from_seed(rng.randbytes(32)) for _ in range(n)]
        regular = list(range(cfg.supers, n))
        for s in range(cfg.supers):
            self.roles[s] = "super"
        self.publisher_ids = rng.sample(regular, cfg.publishers)
        for p in self.publisher_ids:
            self.roles[p] = "publisher"
        self.churnable = [w for w in regular if self.roles[w] == "peer"]
        subs = rng.sample(self.churnable, round(cfg.subscribers * len(self.churnable)))
        for w in subs:
            self.subscriber[w] = 1
        self.subscriber_ids = sorted(subs)
        for w in regular:
            self.bootstrap[w] = rng.randrange(cfg.supers)
        for w in range(n):
            self._spawn(w)
        edges = regular_edges(n, cfg.degree, cfg.seed)
        for u, v in edges:
            self.graph[u].append(v)
            self.graph[v].append(u)
        self.connect_edges(edges)
        nodes = self.current
        for a in range(cfg.supers):  # the backbone: super nodes know each other
            for b in range(a + 1, cfg.supers):
                if nodes[b].peer_id not in nodes[a].links:
                    self.connect(nodes[a], nodes[b])
        for w in regular:  # every node keeps its connection to its bootstrap node
            sup = nodes[self.bootstrap[w]]
            if sup.peer_id not in nodes[w].links:
                self.connect(nodes[w], sup)
        self._schedule()

    def _schedule(self) -> None:
        cfg, rng, loop = self.cfg, self.rng, self.loop
        for w in self.subscriber_ids:  # subscriptions spread over the first half of warm-up
            loop.call_at(rng.random() * cfg.warmup / 2, self._subscribe, w, None)
        for k in range(cfg.events):
            loop.call_at(cfg.warmup + k / cfg.rate, self._publish, k)
        crashes = round(cfg.churn * len(self.churnable))
        for t in sorted(rng.uniform(cfg.warmup, cfg.warmup + cfg.window)
                        for _ in range(crashes)):
            loop.call_at(t, self._crash)

    def _subscribe(self, who: int, since: Cursor | None) -> None:
        node = self.current[who]
        broker = self.brokers[node.idx]
        assert broker is not None
        cursor = since if since is not None else Cursor(self.now)
        self.sids[node.idx] = broker.subscribe(self.cfg.topic, self.now, since=cursor)
        self._pump(node, True)

    def _publish(self, k: int) -> None:
        pubs = self.publisher_ids
        node = self.current[pubs[k % len(pubs)]]
        broker = self.brokers[node.idx]
        assert broker is not None
        body = k.to_bytes(8, "big")
        ev = broker.publish(self.cfg.topic, body + bytes(max(0, self.cfg.payload - 8)), self.now)
        n = self.cfg.nodes
        self.ev_index[ev.id] = len(self.ev_t0)
        self.ev_t0.append(self.now)
        self.first.append(array("d", [INF]) * n)
        self.count.append(bytearray(n))
        self.recovered.append(bytearray(n))
        self._pump(node, True)

    def _crash(self) -> None:
        rng, up = self.rng, self.current
        for _ in range(1000):
            who = self.churnable[rng.randrange(len(self.churnable))]
            if up[who].alive:
                break
        else:
            return
        node = up[who]
        broker = self.brokers[node.idx]
        if broker is not None and self.sids[node.idx]:
            self.saved[who] = broker.cursor(self.sids[node.idx])
        node.alive = False
        node.timer_at = INF
        self.crashes += 1
        down = self.cfg.down_min + rng.random() * (self.cfg.down_max - self.cfg.down_min)
        self.downs.setdefault(who, []).append([self.now, self.now + down])
        self.loop.call_later(self.cfg.detect, self._detected, node)
        self.loop.call_later(down, self._rejoin, who)

    def _detected(self, dead: GossipSimNode) -> None:
        """The peers of a crashed node see its connections close."""
        for peer, _lat in list(dead.links.values()):
            self._link_down(peer, dead)

    def _link_down(self, peer: GossipSimNode, dead: GossipSimNode) -> None:
        link = peer.links.get(dead.peer_id)
        if not peer.alive or link is None or link[0] is not dead:
            return
        del peer.links[dead.peer_id]
        peer.neighbours.remove(dead.idx)
        peer.core.on_peer_disconnected(dead.peer_id, self.now)
        self._pump(peer)

    def _rejoin(self, who: int) -> None:
        old = self.current[who]
        node = self._spawn(who)
        self.rejoins += 1
        for peer_who in [*self.graph[who], self.bootstrap[who]]:
            peer = self.current[peer_who]
            if not peer.alive or peer.peer_id in node.links:
                continue
            self._link_down(peer, old)  # if it has not noticed the crash yet
            self.connect(node, peer)
        if self.subscriber[who]:
            self._subscribe(who, self.saved.get(who) or Cursor(self.now))

    # == running and figures ===================================================================

    def run(self, progress: Progress | None = None) -> None:
        cfg = self.cfg
        total = cfg.warmup + cfg.window + cfg.tail
        t0 = time.perf_counter()
        with _no_gc():
            t = 0.0
            while t < total:
                t = min(total, t + 1.0)
                self.loop.run_until(t)
                if progress is not None:
                    stage = ("warm-up" if t <= cfg.warmup else
                             "window" if t <= cfg.warmup + cfg.window else "tail")
                    progress(t / total, stage)
        self.wall_s = time.perf_counter() - t0

    def _rejoined(self, who: int, t0: float, t1: float) -> float | None:
        """If ``who`` was down at some time in ``[t0, t1)`` (down when an event was published,
        or crashed before it had it): when it last came back up before ``t1``."""
        last = None
        for down_at, up_at in self.downs.get(who, ()):
            if down_at < t1 and t0 < up_at <= t1:
                last = up_at
        return last

    def _pairs(self) -> dict[str, Any]:
        """Per (event, subscriber) pair, split by whether the subscriber stayed up from the
        publication to the delivery ("up") or was down in between ("down": it had to catch up
        after it restarted)."""
        exp = Counter[str]()
        once = Counter[str]()
        path = Counter[str]()
        dup = zero = 0
        lat: dict[str, list[float]] = {"up": [], "down": []}
        after_rejoin: list[float] = []
        for i, t0 in enumerate(self.ev_t0):
            first, count, recovered = self.first[i], self.count[i], self.recovered[i]
            for w in self.subscriber_ids:
                c = count[w]
                t1 = first[w]
                up_at = self._rejoined(w, t0, t1) if w in self.downs else None
                cls = "up" if up_at is None else "down"
                exp[cls] += 1
                if not c:
                    zero += 1
                    continue
                if c == 1:
                    once[cls] += 1
                dup += c - 1
                lat[cls].append(t1 - t0)
                path[f"{cls}_{'retention' if recovered[w] else 'gossip'}"] += 1
                if up_at is not None:
                    after_rejoin.append(t1 - up_at)
        total = exp["up"] + exp["down"]
        return {
            "pairs": total,
            "delivery_ratio": (once["up"] + once["down"]) / total if total else math.nan,
            "delivery_ratio_up": once["up"] / exp["up"] if exp["up"] else math.nan,
            "delivery_ratio_down": once["down"] / exp["down"] if exp["down"] else math.nan,
            "pairs_up": exp["up"],
            "pairs_down": exp["down"],
            "undelivered": zero,
            "duplicates": dup,
            "latency_up": _lat(lat["up"]),
            "latency_down": _lat(lat["down"]),
            "after_rejoin": _lat(after_rejoin),
            "paths": dict(sorted(path.items())),
        }

    def figures(self) -> dict[str, Any]:
        """The run's figures: :meth:`_pairs`, what churned subscribers were told, traffic,
        counters and the cost of the run."""
        cfg = self.cfg
        churned = [w for w in self.subscriber_ids if w in self.downs]
        # Every event is delivered or counted in a Missed (more than the events: over-counted).
        n_ev = len(self.ev_t0)
        accounted = [sum(c[w] > 0 for c in self.count) + self.missed[w] for w in churned]
        regular = [w for w in range(cfg.nodes) if self.roles[w] != "super"]
        dur = cfg.warmup + cfg.window + cfg.tail
        per_node = sorted((self.bytes_out[w] + self.bytes_in[w]) / dur for w in regular)
        sup = [(self.bytes_out[s] + self.bytes_in[s]) / dur for s in range(cfg.supers)]
        counters = Counter[str]()
        for b in self.brokers:
            if b is not None:
                counters.update(b.counters)
        return {
            "events": n_ev,
            "subscribers": len(self.subscriber_ids),
            "crashes": self.crashes,
            "rejoins": self.rejoins,
            "churned_subscribers": len(churned),
            **self._pairs(),
            "missed_reported": dict(self.missed_by_reason),
            "churned_unaccounted": sum(max(0, n_ev - a) for a in accounted),
            "missed_overcount": sum(max(0, a - n_ev) for a in accounted),
            "rejoin_to_caught_up": _lat(self.catchup_s),
            "bytes_per_node_s": {
                "mean": sum(per_node) / len(per_node),
                "p50": _q(per_node, 50), "p99": _q(per_node, 99), "max": per_node[-1],
            },
            "bytes_per_node_per_event": sum(per_node) / len(per_node) * dur / max(1, n_ev),
            "super_bytes_per_s_mean": sum(sup) / len(sup),
            "broker_counters": {k: counters[k] for k in sorted(counters)},
            "gossip_counters": dict(sorted(self.metrics.counters.items())),
            "app": dict(sorted(self.app.items())),
            "events_run": self.loop.events_run,
            "wall_s": self.wall_s,
            "events_per_s": self.loop.events_run / self.wall_s if self.wall_s else None,
            "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        }


def _q(xs: list[float], q: float) -> float:
    if not xs:
        return math.nan
    return xs[max(0, math.ceil(q / 100.0 * len(xs)) - 1)]


def _lat(xs: list[float]) -> dict[str, Any]:
    """Percentiles, and the CDF at every percent (``cdf[i]`` = the i-th percentile)."""
    xs.sort()
    return {"n": len(xs), "p50": _q(xs, 50), "p90": _q(xs, 90), "p99": _q(xs, 99),
            "max": xs[-1] if xs else math.nan,
            "cdf": [round(_q(xs, i), 5) for i in range(1, 101)] if xs else []}


def run_broker_sim(config: BrokerSimConfig, progress: Progress | None = None
                   ) -> tuple[BrokerSimulator, dict[str, Any]]:
    """Build, run and measure one configuration (see the module docstring)."""
    t0 = time.perf_counter()
    sim = BrokerSimulator(config)
    with _no_gc():
        sim.build()
    build_s = time.perf_counter() - t0
    sim.run(progress)
    figs = sim.figures()
    figs["build_s"] = build_s
    return sim, figs
