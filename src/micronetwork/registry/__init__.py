"""The service registry: signed, expiring registrations spread by gossip, found through the DHT.

:mod:`.record` is the signed record, :mod:`.core` the sans-IO registry of one node,
:mod:`.routes` the route table the client keeps per instance.
"""

from .config import PROTOCOL_ID, RegistryConfig
from .core import CATALOG_TOPIC, FetchFinished, RegistryCore, RegistryPorts, ServiceEvent
from .record import Registration, open_registration, service_key, service_topic

__all__ = [
    "CATALOG_TOPIC",
    "PROTOCOL_ID",
    "FetchFinished",
    "Registration",
    "RegistryConfig",
    "RegistryCore",
    "RegistryPorts",
    "ServiceEvent",
    "open_registration",
    "service_key",
    "service_topic",
]
