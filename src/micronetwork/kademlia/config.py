"""Kademlia settings (frozen)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ..errors import ConfigError

__all__ = ["DEFAULT_PROTOCOL", "IPFS_PROTOCOL", "KademliaConfig"]

DEFAULT_PROTOCOL = "/micronetwork/kad/1.0.0"
IPFS_PROTOCOL = "/ipfs/kad/1.0.0"

HOUR = 3600.0


@dataclass(frozen=True, slots=True)
class KademliaConfig:
    """Kademlia parameters; the defaults follow go-libp2p-kad-dht where it has one."""

    protocol_id: str = DEFAULT_PROTOCOL
    mode: Literal["server", "client"] = "server"
    k: int = 20  # bucket size and replication
    alpha: int = 3  # parallel requests per lookup (per path)
    bootstrap_alpha: int = 10  # a joining node meets its k closest this many at a time
    bootstrap_contacts: int = 1  # bootstrap peers a join asks at first (the rest: fallbacks)
    beta: int = 3  # a lookup ends when the beta closest peers have answered
    # Opt-in: a full bucket keeps k >> bits peers in each of 2**bits parts (shorter lookups, but
    # ids ground next to a key get a slot where lookups for it go: docs/decisions.md).
    bucket_spread_bits: int = 0
    disjoint_paths: int = 1  # d > 1: S/Kademlia disjoint lookups
    request_timeout: float = 10.0
    max_failures: int = 2  # failed requests in a row before a peer leaves the table
    refresh_interval: float = 600.0  # bucket refresh (go: 10 min)
    max_refresh_cpl: int = 15  # deeper buckets are not refreshed (preimage search cost)
    liveness_interval: float = 300.0  # entries not heard from this long get pinged
    # A newcomer to a full bucket: its least recently seen entry is pinged only if not heard
    # from for this long; otherwise the newcomer waits as the bucket's candidate and takes the
    # place if that entry fails (Kademlia paper 4.1). 0 (default): always ping at once; 60 s
    # measured fewer requests but slower lookups under churn (docs/decisions.md, "Liveness").
    evict_ping_after: float = 0.0
    maintenance_interval: float = 30.0  # how often refresh/republish/expiry are considered
    rebootstrap_interval: float = 10.0  # an empty table retries bootstrap this often
    record_ttl: float = 36 * HOUR
    provider_ttl: float = 48 * HOUR
    provider_republish: float = 22 * HOUR
    get_quorum: int = 1  # GET_VALUE: valid values to collect before finishing
    max_providers_returned: int = 20
    max_message_size: int = 1 << 20
    max_value_size: int = 64 * 1024
    max_records: int = 100_000
    max_providers_per_key: int = 100
    bad_message_limit: int = 10  # garbage messages from one peer before it is disconnected
    ban_duration: float = 600.0  # a disconnected garbage sender is ignored this long

    def __post_init__(self) -> None:
        if self.mode not in ("server", "client"):
            raise ConfigError(f"kademlia mode must be 'server' or 'client', not {self.mode!r}")
        if not self.protocol_id.startswith("/"):
            raise ConfigError(f"protocol id must start with '/': {self.protocol_id!r}")
        positive = (
            "k", "alpha", "bootstrap_alpha", "bootstrap_contacts", "beta", "disjoint_paths",
            "max_failures",
        )
        for name in (*positive, "get_quorum"):
            if getattr(self, name) < 1:
                raise ConfigError(f"kademlia {name} must be at least 1")
        if not 0 <= self.bucket_spread_bits <= 8:
            raise ConfigError("kademlia bucket_spread_bits must be between 0 and 8")
        if self.evict_ping_after < 0:
            raise ConfigError("kademlia evict_ping_after must not be negative")
        for name in ("request_timeout", "refresh_interval", "maintenance_interval"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"kademlia {name} must be positive")
