"""Registration records: what a serving node says about one service it serves.

A record is a CBOR map inside a signed envelope (:mod:`micronetwork.identity.envelope`,
domain ``micronetwork-registry``, payload type ``/micronetwork/registry/1``)::

    {"v": 1, "service": <Service.describe()>, "peer": <peer id bytes>,
     "addrs": [<binary multiaddr>, ...], "seq": int, "ttl": float, "withdrawn": bool}

Only the node in ``peer`` may sign it: :func:`open_registration` rejects a record whose signer
is anyone else, so a node cannot register services on another node's behalf. ``seq`` grows
with every announcement of the node (it starts from the node's wall-clock milliseconds, so a
restarted node's records supersede the old ones); receivers drop records whose ``seq`` is not
newer than what they hold, which stops replays. ``withdrawn`` records (a graceful stop) delete
the instance at once. Sizes are bounded before anything is decoded.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import SignatureError, ValidationError
from ..identity.envelope import open_envelope, seal
from ..identity.keys import KeyPair
from ..identity.peerid import PeerId

__all__ = [
    "MAX_RECORD_SIZE",
    "Registration",
    "open_registration",
    "service_key",
    "service_topic",
    "valid_service_name",
]

DOMAIN = "micronetwork-registry"
PAYLOAD_TYPE = b"/micronetwork/registry/1"
TOPIC_PREFIX = "/micronetwork/registry/1/"
MAX_RECORD_SIZE = 256 * 1024
MAX_ADDRS = 16
MAX_TTL = 3600.0
_NAME = re.compile(r"[a-z0-9][a-z0-9.-]{0,62}\Z")


def valid_service_name(name: str) -> bool:
    return isinstance(name, str) and _NAME.match(name) is not None


def service_topic(name: str) -> str:
    """The gossip topic on which ``name``'s registrations are announced."""
    return TOPIC_PREFIX + name


def service_key(name: str) -> bytes:
    """The DHT provider key of ``name``: a sha256 multihash (what other libp2p DHTs expect)."""
    import hashlib

    return b"\x12\x20" + hashlib.sha256(f"/micronetwork/service/{name}".encode()).digest()


@dataclass(frozen=True, slots=True)
class Registration:
    """One service instance, as its node announced it (already verified when you see one)."""

    service: Mapping[str, Any]  # Service.describe(): name, version, metadata, endpoints
    peer: PeerId
    addrs: tuple[bytes, ...]
    seq: int
    ttl: float
    withdrawn: bool = False

    @property
    def name(self) -> str:
        name: str = self.service["name"]
        return name

    @property
    def version(self) -> str:
        version: str = self.service.get("version", "0.0.0")
        return version

    def to_wire(self) -> dict[str, Any]:
        return {
            "v": 1,
            "service": dict(self.service),
            "peer": bytes(self.peer),
            "addrs": list(self.addrs),
            "seq": self.seq,
            "ttl": float(self.ttl),
            "withdrawn": self.withdrawn,
        }

    def seal(self, key: KeyPair) -> bytes:
        """The signed envelope; ``key`` must be the key of ``peer``."""
        if key.peer_id != self.peer:
            raise ValidationError("a registration is signed by the node it names")
        data = seal(key, DOMAIN, PAYLOAD_TYPE, self.to_wire())
        if len(data) > MAX_RECORD_SIZE:
            raise ValidationError(
                f"registration of {self.name!r} is {len(data)} bytes, over {MAX_RECORD_SIZE}"
            )
        return data


def open_registration(data: bytes) -> Registration:
    """Verify and decode a signed registration; ValidationError / SignatureError if bad."""
    if not isinstance(data, bytes | bytearray) or len(data) > MAX_RECORD_SIZE:
        raise ValidationError("registration missing or over the size limit")
    env = open_envelope(bytes(data), DOMAIN, PAYLOAD_TYPE)
    try:
        raw = env.decode()
    except Exception as exc:
        raise ValidationError(f"registration payload is not CBOR: {exc}") from exc
    reg = _from_wire(raw)
    if reg.peer != env.signer:
        raise SignatureError("registration signed by a node other than the one it names")
    return reg


def _from_wire(raw: Any) -> Registration:
    if not isinstance(raw, dict) or raw.get("v") != 1:
        raise ValidationError("not a version-1 registration")
    service = raw.get("service")
    if not isinstance(service, dict) or not valid_service_name(service.get("name", "")):
        raise ValidationError("registration without a valid service name")
    if not isinstance(service.get("version", ""), str):
        raise ValidationError("service version must be text")
    endpoints = service.get("endpoints", [])
    if not isinstance(endpoints, list) or not all(
        isinstance(e, dict) and isinstance(e.get("name"), str) for e in endpoints
    ):
        raise ValidationError("endpoints must be a list of maps with a name")
    metadata = service.get("metadata", {})
    if not isinstance(metadata, dict):
        raise ValidationError("metadata must be a map")
    peer_raw, addrs = raw.get("peer"), raw.get("addrs")
    if not isinstance(peer_raw, bytes):
        raise ValidationError("registration without a peer id")
    try:
        peer = PeerId(peer_raw)
    except Exception as exc:
        raise ValidationError(f"bad peer id: {exc}") from exc
    if (
        not isinstance(addrs, list)
        or len(addrs) > MAX_ADDRS
        or not all(isinstance(a, bytes) and len(a) <= 256 for a in addrs)
    ):
        raise ValidationError("addrs must be a short list of binary multiaddrs")
    seq, ttl, withdrawn = raw.get("seq"), raw.get("ttl"), raw.get("withdrawn", False)
    if not isinstance(seq, int) or isinstance(seq, bool) or seq < 0:
        raise ValidationError("seq must be a non-negative integer")
    if not isinstance(ttl, int | float) or isinstance(ttl, bool) or not 0 <= ttl <= MAX_TTL:
        raise ValidationError(f"ttl must be within 0..{MAX_TTL} s")
    if not isinstance(withdrawn, bool):
        raise ValidationError("withdrawn must be a boolean")
    return Registration(service, peer, tuple(addrs), seq, float(ttl), withdrawn)
