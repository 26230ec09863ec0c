"""The broker: pub/sub topics with signed events, queue groups and bounded retention.

:mod:`.event` is the signed event, :mod:`.log` a topic's bounded retention log, :mod:`.store`
its crash-safe file format, :mod:`.subscription` one subscription's ordering/gap/credit state,
:mod:`.groups` queue-group membership, :mod:`.wire` the replay protocol's messages and
:mod:`.core` the sans-IO broker of one node. See ``docs/broker.md``.
"""

from .config import PROTOCOL_ID, TOPIC_PREFIX, BrokerConfig, RetentionLimits, gossip_topic
from .core import BrokerCore, BrokerPorts, StoreFactory
from .event import Event, InvalidEvent, event_id, open_event, seal_event, valid_topic
from .events import (
    CaughtUp,
    Cursor,
    Delivery,
    FromOffset,
    FromTime,
    Lagging,
    Missed,
    Since,
    Stored,
)
from .log import LogEntry, ReadResult, RetentionLog
from .store import SegmentStore, StoredRecord

__all__ = [
    "PROTOCOL_ID",
    "TOPIC_PREFIX",
    "BrokerConfig",
    "BrokerCore",
    "BrokerPorts",
    "CaughtUp",
    "Cursor",
    "Delivery",
    "Event",
    "FromOffset",
    "FromTime",
    "InvalidEvent",
    "Lagging",
    "LogEntry",
    "Missed",
    "ReadResult",
    "RetentionLimits",
    "RetentionLog",
    "SegmentStore",
    "Since",
    "StoreFactory",
    "Stored",
    "StoredRecord",
    "event_id",
    "gossip_topic",
    "open_event",
    "seal_event",
    "valid_topic",
]
