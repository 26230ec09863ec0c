"""Network models: one-way link latency, loss, bandwidth, partitions.

Theory of operation. Nodes are numbered ``0..n-1``. A latency model maps a pair of node numbers
to a one-way delay in seconds. Per-link models (:class:`Uniform`, :class:`LogNormal`) give every
link its own *stable* delay without storing ``n**2`` numbers: the delay is a function of a
64-bit mix of ``(min(a, b), max(a, b), seed)``, so the same link always has the same latency,
both directions agree, and a run stays reproducible from its seed. ``jitter`` adds a per-message
uniform extra delay drawn from the run's RNG.

:class:`NetworkModel` bundles the latency model with message loss (a message is dropped with
probability ``loss``; libp2p runs over TCP/QUIC, so for the DHT this models a request that never
gets an answer), optional per-node uplink bandwidth (a message occupies the sender's uplink for
``size / bandwidth`` seconds, so big answers queue), and partitions: while a partition is active
every node has a group number and messages between groups are dropped.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from statistics import NormalDist
from typing import Protocol

__all__ = [
    "Constant",
    "LatencyModel",
    "LogNormal",
    "NetworkModel",
    "Uniform",
    "link_unit",
]

_MASK = (1 << 64) - 1
_INV = 1.0 / (1 << 53)


def link_unit(a: int, b: int, seed: int) -> float:
    """A uniform number in [0, 1) fixed for the undirected link ``a``-``b`` (splitmix64)."""
    if a > b:
        a, b = b, a
    x = (a * 0x9E3779B97F4A7C15 + b * 0xBF58476D1CE4E5B9 + seed * 0x94D049BB133111EB) & _MASK
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK
    x ^= x >> 31
    return (x >> 11) * _INV


class LatencyModel(Protocol):
    def latency(self, a: int, b: int) -> float:
        """One-way delay in seconds from node ``a`` to node ``b``."""

    def describe(self) -> dict[str, object]:
        """Parameters, for the results file."""


@dataclass(frozen=True, slots=True)
class Constant:
    seconds: float = 0.05

    def latency(self, a: int, b: int) -> float:
        return self.seconds

    def describe(self) -> dict[str, object]:
        return {"model": "constant", "seconds": self.seconds}


@dataclass(frozen=True, slots=True)
class Uniform:
    """Each link's delay is fixed and uniform in [low, high] seconds."""

    low: float = 0.020
    high: float = 0.120
    seed: int = 0

    def latency(self, a: int, b: int) -> float:
        return self.low + (self.high - self.low) * link_unit(a, b, self.seed)

    def describe(self) -> dict[str, object]:
        return {"model": "uniform", "low": self.low, "high": self.high}


@dataclass(frozen=True, slots=True)
class LogNormal:
    """Each link's delay is fixed and log-normal: median ``median`` s, shape ``sigma``."""

    median: float = 0.05
    sigma: float = 0.5
    seed: int = 0
    cap: float = 5.0

    def latency(self, a: int, b: int) -> float:
        u = link_unit(a, b, self.seed)
        z = NormalDist().inv_cdf(min(max(u, 1e-12), 1 - 1e-12))
        return min(self.cap, self.median * math.exp(self.sigma * z))

    def describe(self) -> dict[str, object]:
        return {"model": "lognormal", "median": self.median, "sigma": self.sigma}


@dataclass(slots=True)
class NetworkModel:
    """Latency + loss + bandwidth + partitions (see the module docstring)."""

    latency: LatencyModel = field(default_factory=Uniform)
    loss: float = 0.0
    jitter: float = 0.0  # extra per-message delay, uniform in [0, jitter]
    bandwidth: float | None = None  # bytes/s of every node's uplink; None: unlimited
    dead_peer_delay: float = 5.0  # a request to a departed peer fails after this (dial timeout)
    groups: dict[int, int] | None = None  # active partition: node -> group; None: no partition

    def __post_init__(self) -> None:
        if not 0.0 <= self.loss < 1.0:
            raise ValueError("loss must be in [0, 1)")
        if self.bandwidth is not None and self.bandwidth <= 0:
            raise ValueError("bandwidth must be positive")

    def split(self, groups: dict[int, int]) -> None:
        """Partition the network: nodes in different groups cannot reach each other."""
        self.groups = groups

    def heal(self) -> None:
        self.groups = None

    def blocked(self, a: int, b: int) -> bool:
        g = self.groups
        return g is not None and g.get(a, -1) != g.get(b, -1)

    def dropped(self, rng: random.Random) -> bool:
        return self.loss > 0.0 and rng.random() < self.loss

    def delay(self, a: int, b: int, rng: random.Random) -> float:
        d = self.latency.latency(a, b)
        if self.jitter:
            d += rng.random() * self.jitter
        return d

    def describe(self) -> dict[str, object]:
        return {
            "latency": self.latency.describe(),
            "loss": self.loss,
            "jitter": self.jitter,
            "bandwidth": self.bandwidth,
            "dead_peer_delay": self.dead_peer_delay,
        }
