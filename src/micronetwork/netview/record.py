"""Netview records: what a node says about itself and its direct peers.

A record is a CBOR map inside a signed envelope (:mod:`micronetwork.identity.envelope`, domain
``micronetwork-netview``, payload type ``/micronetwork/netview/1``)::

    {"v": 1, "peer": <peer id bytes>, "role": "super" | "peer",
     "addrs": [<binary multiaddr>, ...],                 # at most MAX_ADDRS
     "peers": [[<peer id bytes>, <rtt ms or null>], ...], # direct peers, at most MAX_PEERS
     "services": [<service name>, ...],                  # served here, at most MAX_SERVICES
     "seq": int, "ttl": float}

Time-free: no timestamps, only ``seq`` (grows with every announcement; starts from the node's
wall-clock milliseconds so a restarted node's records supersede the old ones) and ``ttl`` (the
receiver's clock decides when the record expires). Only the node in ``peer`` may sign it. Sizes
and counts are bounded before and after decoding.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from ..errors import SignatureError, ValidationError
from ..identity.envelope import open_envelope, seal
from ..identity.keys import KeyPair
from ..identity.peerid import PeerId
from ..registry.record import valid_service_name

__all__ = ["MAX_PEERS", "MAX_RECORD_SIZE", "NetviewRecord", "open_record"]

DOMAIN = "micronetwork-netview"
PAYLOAD_TYPE = b"/micronetwork/netview/1"
MAX_RECORD_SIZE = 32 * 1024
MAX_PEERS = 64
MAX_ADDRS = 16
MAX_SERVICES = 64
MAX_TTL = 3600.0
Role = Literal["super", "peer"]


@dataclass(frozen=True, slots=True)
class NetviewRecord:
    """One node's announcement (already verified when you get one from :func:`open_record`)."""

    peer: PeerId
    role: Role
    addrs: tuple[bytes, ...]
    peers: tuple[tuple[PeerId, float | None], ...]  # (direct peer, measured RTT in ms)
    services: tuple[str, ...]
    seq: int
    ttl: float

    def to_wire(self) -> dict[str, Any]:
        return {
            "v": 1,
            "peer": bytes(self.peer),
            "role": self.role,
            "addrs": list(self.addrs),
            "peers": [[bytes(p), rtt] for p, rtt in self.peers],
            "services": list(self.services),
            "seq": self.seq,
            "ttl": float(self.ttl),
        }

    def seal(self, key: KeyPair) -> bytes:
        """The signed envelope; ``key`` must be the key of ``peer``."""
        if key.peer_id != self.peer:
            raise ValidationError("a netview record is signed by the node it names")
        data = seal(key, DOMAIN, PAYLOAD_TYPE, self.to_wire())
        if len(data) > MAX_RECORD_SIZE:
            raise ValidationError(f"netview record is {len(data)} bytes, over {MAX_RECORD_SIZE}")
        return data


def open_record(data: bytes) -> NetviewRecord:
    """Verify and decode a signed record; ValidationError / SignatureError if bad."""
    if not isinstance(data, bytes | bytearray) or len(data) > MAX_RECORD_SIZE:
        raise ValidationError("netview record missing or over the size limit")
    env = open_envelope(bytes(data), DOMAIN, PAYLOAD_TYPE)
    try:
        raw = env.decode()
    except Exception as exc:
        raise ValidationError(f"netview payload is not CBOR: {exc}") from exc
    rec = _from_wire(raw)
    if rec.peer != env.signer:
        raise SignatureError("netview record signed by a node other than the one it names")
    return rec


def _peer_id(raw: object, what: str) -> PeerId:
    if not isinstance(raw, bytes) or len(raw) > 128:
        raise ValidationError(f"{what} is not a peer id")
    try:
        return PeerId(raw)
    except Exception as exc:
        raise ValidationError(f"bad {what}: {exc}") from exc


def _rtt(raw: object) -> float | None:
    if raw is None:
        return None
    if not isinstance(raw, int | float) or isinstance(raw, bool) or not 0 <= raw < 1e6:
        raise ValidationError("an rtt is null or a number of ms in 0..1e6")
    return float(raw)


def _from_wire(raw: Any) -> NetviewRecord:
    if not isinstance(raw, dict) or raw.get("v") != 1:
        raise ValidationError("not a version-1 netview record")
    peer = _peer_id(raw.get("peer"), "peer")
    role = raw.get("role")
    if role not in ("super", "peer"):
        raise ValidationError("role must be 'super' or 'peer'")
    addrs = raw.get("addrs")
    if (
        not isinstance(addrs, list)
        or len(addrs) > MAX_ADDRS
        or not all(isinstance(a, bytes) and len(a) <= 256 for a in addrs)
    ):
        raise ValidationError("addrs must be a short list of binary multiaddrs")
    peers_raw = raw.get("peers")
    if not isinstance(peers_raw, list) or len(peers_raw) > MAX_PEERS:
        raise ValidationError(f"peers must be a list of at most {MAX_PEERS}")
    peers = []
    for item in peers_raw:
        if not isinstance(item, list) or len(item) != 2:
            raise ValidationError("each peer is [peer id, rtt ms or null]")
        peers.append((_peer_id(item[0], "direct peer"), _rtt(item[1])))
    services = raw.get("services")
    if (
        not isinstance(services, list)
        or len(services) > MAX_SERVICES
        or not all(valid_service_name(s) for s in services)
    ):
        raise ValidationError(f"services must be at most {MAX_SERVICES} service names")
    seq, ttl = raw.get("seq"), raw.get("ttl")
    if not isinstance(seq, int) or isinstance(seq, bool) or seq < 0:
        raise ValidationError("seq must be a non-negative integer")
    if not isinstance(ttl, int | float) or isinstance(ttl, bool) or not 0 <= ttl <= MAX_TTL:
        raise ValidationError(f"ttl must be within 0..{MAX_TTL} s")
    return NetviewRecord(
        peer, role, tuple(addrs), tuple(peers), tuple(services), seq, float(ttl)
    )
