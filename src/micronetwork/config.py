"""Node configuration: frozen dataclasses and role defaults (super / peer).

``NodeConfig.super_node()`` and ``NodeConfig.peer()`` give the two roles' defaults; every field
can be overridden. Validation happens at construction and raises
:class:`~micronetwork.errors.ConfigError` with the offending value named.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from typing import Any, Literal

import multiaddr

from .broker.config import BrokerConfig, RetentionLimits
from .errors import ConfigError
from .gossip.config import GossipConfig
from .kademlia.config import DEFAULT_PROTOCOL, IPFS_PROTOCOL, KademliaConfig
from .registry.config import RegistryConfig

__all__ = [
    "DEFAULT_PROTOCOL",
    "BrokerConfig",
    "GossipConfig",
    "IPFS_PROTOCOL",
    "KademliaConfig",
    "NodeConfig",
    "RegistryConfig",
    "Role",
]

Role = Literal["super", "peer"]
LOOPBACK = "/ip4/127.0.0.1/tcp/0"


def _check_multiaddr(text: str, what: str, need_peer_id: bool = False) -> None:
    try:
        ma = multiaddr.Multiaddr(text)
    except Exception as exc:
        raise ConfigError(f"{what} {text!r} is not a valid multiaddr: {exc}") from exc
    if need_peer_id:
        try:
            ma.value_for_protocol("p2p")
        except Exception as exc:
            raise ConfigError(
                f"{what} {text!r} has no /p2p/<peer id> part; a bootstrap address must name "
                "the peer (copy it from the super node's output)"
            ) from exc


@dataclass(frozen=True, slots=True)
class NodeConfig:
    """Everything a :class:`~micronetwork.Node` needs; the defaults make a loopback peer."""

    role: Role = "peer"
    listen: tuple[str, ...] = (LOOPBACK,)
    bootstrap: tuple[str, ...] = ()
    key_file: str | os.PathLike[str] | None = None  # None: a fresh key for this run only
    key_seed: bytes | None = None  # 32 bytes: a deterministic key (tests); beats key_file
    kademlia: KademliaConfig = field(default_factory=KademliaConfig)
    gossip: GossipConfig = field(default_factory=GossipConfig)
    registry: RegistryConfig | None = None  # None: the role's defaults (registry_config())
    broker: BrokerConfig | None = None  # None: the role's defaults (broker_config())
    data_dir: str | os.PathLike[str] | None = None  # broker logs persist here; None: memory
    dial_timeout: float = 5.0
    stream_idle_timeout: float = 60.0
    seed: int | None = None  # seeds the cores' RNG; None: from os.urandom

    def __post_init__(self) -> None:
        if self.role not in ("super", "peer"):
            raise ConfigError(f"role must be 'super' or 'peer', not {self.role!r}")
        if isinstance(self.listen, str) or isinstance(self.bootstrap, str):
            raise ConfigError("listen and bootstrap take a sequence of multiaddrs, not one string")
        object.__setattr__(self, "listen", tuple(self.listen))
        object.__setattr__(self, "bootstrap", tuple(self.bootstrap))
        if not self.listen:
            raise ConfigError("a node needs at least one listen address")
        for a in self.listen:
            _check_multiaddr(a, "listen address")
        for a in self.bootstrap:
            _check_multiaddr(a, "bootstrap address", need_peer_id=True)
        if self.key_seed is not None and len(self.key_seed) != 32:
            raise ConfigError("key_seed must be 32 bytes")
        if self.dial_timeout <= 0:
            raise ConfigError("dial_timeout must be positive")

    @classmethod
    def super_node(cls, **overrides: Any) -> NodeConfig:
        """Backbone defaults: DHT server, bootstrap for others, a larger record store."""
        kad = overrides.pop("kademlia", None) or KademliaConfig(
            mode="server", max_records=1_000_000
        )
        return cls(role="super", kademlia=kad, **overrides)

    @classmethod
    def peer(cls, **overrides: Any) -> NodeConfig:
        """Peer defaults: DHT server (reachable on loopback); pass a client-mode KademliaConfig
        for a node that others cannot dial."""
        return cls(role="peer", **overrides)

    def registry_config(self) -> RegistryConfig:
        """The registry settings in force: ``registry`` if given, else the role's defaults
        (super nodes keep a large catalog and hear every catalog announcement)."""
        if self.registry is not None:
            return self.registry
        if self.role == "super":
            return RegistryConfig(catalog_subscribe=True, catalog_size=16384)
        return RegistryConfig()

    def broker_config(self) -> BrokerConfig:
        """The broker settings in force: ``broker`` if given, else the role's defaults (super
        nodes retain every topic they hear of, up to 100,000 events / 256 MiB / 7 days each)."""
        if self.broker is not None:
            return self.broker
        if self.role == "super":
            limits = RetentionLimits(max_events=100_000, max_bytes=256 << 20,
                                     max_age=7 * 24 * 3600.0)
            return BrokerConfig(retain_topics="*", retention=limits)
        return BrokerConfig()

    def replace(self, **changes: Any) -> NodeConfig:
        return dataclasses.replace(self, **changes)
