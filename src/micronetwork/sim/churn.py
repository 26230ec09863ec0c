"""Churn: nodes join, leave gracefully and crash at chosen rates.

Theory of operation. Departures form a Poisson process whose rate is ``rate_per_hour`` times
the current number of eligible nodes per hour (10%/h on 10,000 nodes: one departure every
3.6 s on average). Each departure is a crash with probability ``crash_share``, else a graceful
leave. With ``replace=True`` every departure is matched by a join (a fresh node with a new id,
bootstrapping through the scenario's bootstrap nodes) at an independent exponential delay, so
the population stays about constant. Protected nodes (super nodes, the measuring nodes) never
leave. Every draw comes from the simulator's RNG, so churn is reproducible from the seed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .network import Simulator
    from .node import SimNode

__all__ = ["Churn"]


class Churn:
    def __init__(
        self,
        sim: Simulator,
        rate_per_hour: float,
        *,
        crash_share: float = 0.5,
        replace: bool = True,
        bootstrap: Sequence[SimNode] = (),
        protect_roles: tuple[str, ...] = ("super",),
        on_join: Callable[[SimNode], None] | None = None,
    ) -> None:
        if rate_per_hour < 0 or not 0.0 <= crash_share <= 1.0:
            raise ValueError("churn rate must be >= 0 and crash_share in [0, 1]")
        self.sim = sim
        self.rate = rate_per_hour / 3600.0
        self.crash_share = crash_share
        self.replace = replace
        self.bootstrap = list(bootstrap)
        self.protect_roles = protect_roles
        self.on_join = on_join
        self.running = False
        self.departures = 0
        self.joins = 0

    def start(self) -> None:
        if self.rate > 0 and not self.running:
            self.running = True
            self._schedule_departure()

    def stop(self) -> None:
        self.running = False

    def _schedule_departure(self) -> None:
        n = len(self.sim.alive)
        if n == 0:
            return
        self.sim.loop.call_later(self.sim.rng.expovariate(self.rate * n), self._depart)

    def _depart(self) -> None:
        if not self.running:
            return
        sim = self.sim
        try:
            node = sim.random_alive(self.protect_roles + ("attacker",))
        except RuntimeError:
            return
        if sim.rng.random() < self.crash_share:
            sim.crash(node)
        else:
            sim.leave(node)
        self.departures += 1
        if self.replace:
            sim.loop.call_later(sim.rng.expovariate(self.rate * max(1, len(sim.alive))), self._join)
        self._schedule_departure()

    def _join(self) -> None:
        if not self.running:
            return
        sim = self.sim
        node = sim.add_node(bootstrap=self.bootstrap)
        sim.start_bootstrap(node, tag="churn-join")
        self.joins += 1
        if self.on_join is not None:
            self.on_join(node)
