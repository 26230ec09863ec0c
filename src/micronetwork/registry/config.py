"""Registry configuration (see :mod:`.core` for what each interval does)."""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import ConfigError

__all__ = ["PROTOCOL_ID", "RegistryConfig"]

PROTOCOL_ID = "/micronetwork/registry/1.0.0"


@dataclass(frozen=True, slots=True)
class RegistryConfig:
    """Timings and bounds of the registry; ``ttl`` + propagation bounds how long a dead
    node stays registered (20 s by default; go-micro's took 90 s)."""

    ttl: float = 20.0
    announce_interval: float = 10.0
    catalog_interval: float = 60.0
    catalog_size: int = 1024
    catalog_subscribe: bool = False  # super nodes: True
    max_looked_up: int = 256
    request_timeout: float = 10.0
    tombstone_time: float = 600.0
    max_tombstones: int = 4096
    max_message_size: int = 1 << 20
    protocol_id: str = PROTOCOL_ID

    def __post_init__(self) -> None:
        if not 0 < self.announce_interval < self.ttl:
            raise ConfigError("registry: need 0 < announce_interval < ttl")
        if self.catalog_size < 1 or self.max_looked_up < 1:
            raise ConfigError("registry: catalog_size and max_looked_up must be >= 1")
