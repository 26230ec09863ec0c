"""Broker configuration: retention limits and the timings of subscriptions and groups."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from ..errors import ConfigError

__all__ = ["PROTOCOL_ID", "TOPIC_PREFIX", "BrokerConfig", "RetentionLimits", "gossip_topic"]

PROTOCOL_ID = "/micronetwork/broker/1.0.0"
TOPIC_PREFIX = "/micronetwork/broker/1/"


def gossip_topic(topic: str) -> str:
    """The gossip topic that carries ``topic``'s events and group memberships."""
    return TOPIC_PREFIX + topic


@dataclass(frozen=True, slots=True)
class RetentionLimits:
    """Bounds of one topic's retention log; the oldest events go first when one is passed.

    ``max_age`` is measured on the retaining node's wall clock from when it stored the event.
    ``ledger_size`` bounds the memory of evicted events (offset, publisher, seq, time) that
    makes the "missed" count exact; past it the count is an upper bound (``exact=False``).
    """

    max_events: int = 10_000
    max_bytes: int = 64 << 20
    max_age: float = 24 * 3600.0
    ledger_size: int = 4096

    def __post_init__(self) -> None:
        if self.max_events < 1 or self.max_bytes < 1 or self.max_age <= 0:
            raise ConfigError("retention: max_events, max_bytes and max_age must be positive")
        if self.ledger_size < 0:
            raise ConfigError("retention: ledger_size must be >= 0")


@dataclass(frozen=True, slots=True)
class BrokerConfig:
    """What a node retains and how its subscriptions behave.

    * ``retain_topics``: ``"*"`` (every topic this node hears of: super nodes) or a set of
      topic names; ``retention`` bounds each of those logs.
    * ``publisher_retention``: the log a publisher keeps of its own topics (so a subscriber
      can fill a gap from the publisher itself); ``None`` disables it.
    * ``subscriber_buffer``: deliveries a subscription may have un-consumed (see
      ``BrokerCore.consumed``) before it is declared lagging.
    * ``replay_buffer``: live events held per subscription while its replay runs.
    * ``reorder_grace``: how long an out-of-order event waits for the missing ones to arrive
      by gossip before they are fetched from retention; ``gap_timeout``: how long a gap may
      stay open before its events are reported missed.
    * ``clock_skew``: allowance for the difference of wall clocks when replaying by time.
    """

    retain_topics: Literal["*"] | frozenset[str] = frozenset()
    retention: RetentionLimits = field(default_factory=RetentionLimits)
    publisher_retention: RetentionLimits | None = field(
        default_factory=lambda: RetentionLimits(max_events=1000, max_bytes=8 << 20, max_age=3600.0)
    )
    subscriber_buffer: int = 1024
    replay_buffer: int = 4096
    max_held: int = 1024
    reorder_grace: float = 0.5
    gap_timeout: float = 10.0
    request_timeout: float = 5.0
    page_bytes: int = 512 * 1024
    page_events: int = 512
    clock_skew: float = 2.0
    group_announce_interval: float = 5.0
    group_ttl: float = 15.0
    max_publishers: int = 4096
    max_subscriptions: int = 1024
    max_message_size: int = 2 << 20
    protocol_id: str = PROTOCOL_ID

    def __post_init__(self) -> None:
        if self.retain_topics != "*" and not isinstance(self.retain_topics, frozenset):
            raise ConfigError("broker: retain_topics is '*' or a frozenset of topic names")
        if self.subscriber_buffer < 1 or self.replay_buffer < 1 or self.max_held < 1:
            raise ConfigError("broker: buffers must hold at least one event")
        if not 0 < self.group_announce_interval < self.group_ttl:
            raise ConfigError("broker: need 0 < group_announce_interval < group_ttl")
        if self.page_bytes < 1 or self.page_events < 1:
            raise ConfigError("broker: page_bytes and page_events must be positive")
        if self.max_message_size < (1 << 20) + 64 * 1024:
            raise ConfigError("broker: max_message_size must fit one largest event")

    def retains(self, topic: str) -> bool:
        return self.retain_topics == "*" or topic in self.retain_topics
