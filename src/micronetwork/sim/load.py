"""How hard the super nodes work: requests served, CPU, queue delay and timeouts, per phase.

Theory of operation. Every inbound request costs its receiver modelled CPU, and a node's CPU is
a FIFO queue (:mod:`.network`), so a node asked more than ``1 / verify_cost`` times a second
answers later and later until its requesters time out. The simulator counts, per node, the
requests it served, its CPU seconds and the longest wait a request spent queued since the last
look (``SimNode.served``, ``busy``, ``wait_max``). A :class:`LoadMonitor` looks at the watched
nodes (the super nodes: every join starts there) every ``interval`` virtual seconds: requests
served since the last look (a rate), the backlog (queued CPU seconds) and the longest wait. The
scenario names the phase it is in (``join``, ``refresh``, a lookup tag); :meth:`figures` gives,
per phase and over the whole run, per watched node: requests (mean, max), the mean and peak
request rate, the offered load (arrival rate times CPU per request: above 1 the queue grows
without bound), the largest backlog and the longest queue wait;
and the requests that timed out anywhere in the network (a sign of overload elsewhere too).
The peaks go to the run's time series as well (``super_requests_per_s``, ``super_backlog_s``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .network import Simulator
    from .node import SimNode

__all__ = ["LoadMonitor", "PhaseLoad"]


@dataclass(slots=True)
class PhaseLoad:
    """What the watched nodes served during one phase (rates per node, per second)."""

    seconds: float = 0.0  # virtual time spent in the phase
    requests: int = 0  # by all watched nodes together
    requests_max: int = 0  # by the busiest watched node
    rate_peak: float = 0.0  # requests/s of the busiest node over one interval
    backlog_max: float = 0.0  # queued CPU seconds, at a look
    wait_max: float = 0.0  # longest time a request waited for the CPU
    timeouts: int = 0  # requests that timed out, network-wide

    def figures(self, watched: int, verify_cost: float) -> dict[str, Any]:
        span = max(self.seconds, 1e-9)
        mean = self.requests / watched if watched else 0.0
        out = asdict(self)
        out.update(
            requests_per_node=mean,
            rate_mean=mean / span,
            load_mean=mean / span * verify_cost,
            load_peak=self.rate_peak * verify_cost,
        )
        return out


class LoadMonitor:
    """Watches ``nodes`` every ``interval`` virtual seconds (see the module docstring)."""

    def __init__(self, sim: Simulator, nodes: list[SimNode], interval: float = 5.0) -> None:
        self.sim = sim
        self.nodes = nodes
        self.interval = interval
        self.phases: dict[str, PhaseLoad] = {}
        self.current: PhaseLoad | None = None
        self._served: dict[int, int] = {}
        self._by_node: dict[int, int] = {}  # requests per node in the current phase
        self._timeouts = 0
        self._last = 0.0
        self._tick_served: dict[int, int] = {}  # served at the last tick: request rates
        self._tick_at = 0.0
        self._running = False

    def start(self, phase: str) -> None:
        """Begin watching, in ``phase``; later looks follow every ``interval``."""
        self._last = self.sim.now
        self._served = {n.idx: n.served for n in self.nodes}
        self._tick_served = dict(self._served)
        self._tick_at = self._last
        for n in self.nodes:
            n.wait_max = 0.0
        self._timeouts = self._count_timeouts()
        self.phase(phase)
        if not self._running:
            self._running = True
            self.sim.loop.call_at(self.sim.now + self.interval, self._tick)

    def phase(self, name: str) -> None:
        """From now on, what the nodes serve counts for ``name`` (a phase can recur)."""
        if self.current is not None:
            self.look()
        ph = self.phases.get(name)
        if ph is None:
            ph = self.phases[name] = PhaseLoad()
        self._by_node = {}
        self.current = ph

    def _tick(self) -> None:
        """The regular look; also the request rate over the interval since the last tick."""
        self.look()
        sim = self.sim
        now = sim.now
        dt = now - self._tick_at
        peak = 0.0
        for n in self.nodes:
            peak = max(peak, (n.served - self._tick_served.get(n.idx, 0)) / dt)
            self._tick_served[n.idx] = n.served
        self._tick_at = now
        if self.current is not None:
            self.current.rate_peak = max(self.current.rate_peak, peak)
        sim.metrics.sample("super_requests_per_s", now, peak)
        sim.loop.call_at(now + self.interval, self._tick)

    def look(self) -> None:
        """Account what happened since the last look to the current phase."""
        ph = self.current
        if ph is None:
            return
        sim = self.sim
        now = sim.now
        dt = now - self._last
        peak_backlog = 0.0
        for n in self.nodes:
            served = n.served - self._served.get(n.idx, 0)
            self._served[n.idx] = n.served
            ph.requests += served
            mine = self._by_node[n.idx] = self._by_node.get(n.idx, 0) + served
            ph.requests_max = max(ph.requests_max, mine)
            backlog = n.cpu_free - now if n.alive else 0.0
            peak_backlog = max(peak_backlog, backlog)
            ph.wait_max = max(ph.wait_max, n.wait_max)
            n.wait_max = 0.0
        timeouts = self._count_timeouts()
        ph.timeouts += timeouts - self._timeouts
        self._timeouts = timeouts
        ph.backlog_max = max(ph.backlog_max, peak_backlog)
        sim.metrics.sample("super_backlog_s", now, peak_backlog)
        ph.seconds += dt
        self._last = now

    def _count_timeouts(self) -> int:
        return sum(n.core.counters["timeouts"] for n in self.sim.nodes)

    def figures(self) -> dict[str, Any]:
        """Per phase and in total (see the module docstring); rates are per watched node."""
        self.look()
        cost = self.sim.crypto.verify_cost
        watched = len(self.nodes)
        phases = {name: ph.figures(watched, cost) for name, ph in self.phases.items()}
        total = PhaseLoad()
        for ph in self.phases.values():
            total.seconds += ph.seconds
            total.requests += ph.requests
            total.rate_peak = max(total.rate_peak, ph.rate_peak)
            total.backlog_max = max(total.backlog_max, ph.backlog_max)
            total.wait_max = max(total.wait_max, ph.wait_max)
            total.timeouts += ph.timeouts
        all_ = total.figures(watched, cost)
        all_["requests_max"] = max((n.served for n in self.nodes), default=0)
        return {
            "watched": watched,
            "interval_s": self.interval,
            "capacity_per_s": 1.0 / cost if cost else None,
            "all": all_,
            "phases": phases,
        }
