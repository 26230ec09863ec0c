"""The parameters of one broker simulation run, and what super nodes retain.

Theory of operation. :class:`BrokerSimConfig` is a frozen dataclass: network size and super
nodes, graph degree, the workload (publishers, rate, payload, subscribers), the timeline
(warm-up, publishing window, tail), churn (crashes as a fraction of the regular nodes, down
times, detection delay) and the cost model (validation, request serving, link latency). It
checks its values when made and :meth:`BrokerSimConfig.describe` gives them as JSON-ready data.
:data:`SUPER_RETENTION` is what a super node retains per topic by default. What each parameter
does in the run is in :mod:`.broker`'s docstring.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from ..broker import RetentionLimits

__all__ = ["SUPER_RETENTION", "BrokerSimConfig"]

SUPER_RETENTION = RetentionLimits(max_events=100_000, max_bytes=256 << 20,
                                  max_age=7 * 24 * 3600.0)
"""What a super node retains per topic by default (``NodeConfig.broker_config()``)."""


@dataclass(frozen=True, slots=True)
class BrokerSimConfig:
    """One run (see :mod:`.broker`'s docstring). Times are virtual seconds."""

    nodes: int = 1000
    seed: int = 1
    supers: int = 4
    degree: int = 20
    publishers: int = 10
    rate: float = 1.0  # events per second, all publishers together
    warmup: float = 10.0
    window: float = 60.0  # publishing and churn
    tail: float = 35.0  # after the window: rejoins, replays, gap timeouts finish
    subscribers: float = 1.0  # fraction of the regular nodes that subscribe
    churn: float = 0.10  # crashes during the window, as a fraction of the regular nodes
    down_min: float = 5.0
    down_max: float = 20.0
    detect: float = 1.0  # neighbours notice a crash after this long
    payload: int = 256
    verify_cost: float = 0.010
    request_cost: float = 0.001
    latency_low: float = 0.020
    latency_high: float = 0.120
    super_retention: RetentionLimits = field(default_factory=lambda: SUPER_RETENTION)
    topic: str = "orders"

    def __post_init__(self) -> None:
        if self.nodes < self.supers + self.publishers + 2 or self.supers < 1:
            raise ValueError("need at least one super node, the publishers and 2 more nodes")
        if not (0 <= self.churn <= 1 and 0 < self.subscribers <= 1 and self.rate > 0):
            raise ValueError("churn in [0, 1], subscribers in (0, 1], rate > 0")
        if not 0 < self.detect < self.down_min <= self.down_max:
            raise ValueError("need 0 < detect < down_min <= down_max")

    def describe(self) -> dict[str, Any]:
        d = asdict(self)
        d["super_retention"] = asdict(self.super_retention)
        d["events"] = self.events
        d["latency"] = f"one-way U({self.latency_low * 1000:g}, {self.latency_high * 1000:g}) ms"
        return d

    @property
    def events(self) -> int:
        return int(self.window * self.rate)
