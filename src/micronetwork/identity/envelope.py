"""Signed envelopes for micronetwork's own records.

An envelope binds a CBOR payload to its signer, its payload type and a *domain*, as libp2p's
signed envelopes do (RFC 0002), but encoded in CBOR::

    [1, public_key_protobuf, payload_type, payload_cbor_bytes, signature]

The signature covers ``len|domain || len|payload_type || len|payload`` (unsigned varint length
prefixes), so a record signed for one purpose (domain) cannot be replayed as another, and a change
of any byte of any field fails :func:`open_envelope`. The domain is not sent: the receiver states
the domain it expects.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import cbor2

from ..errors import SignatureError
from .keys import KeyPair, verify_signature
from .peerid import PeerId, _varint

__all__ = ["Envelope", "seal", "open_envelope"]

_VERSION = 1
MAX_ENVELOPE_SIZE = 1 << 20


@dataclass(frozen=True, slots=True)
class Envelope:
    """A verified envelope: who signed what, of which type."""

    signer: PeerId
    public_key: bytes
    payload_type: bytes
    payload: bytes

    def decode(self) -> Any:
        """The payload decoded from CBOR."""
        return cbor2.loads(self.payload)


def _signed_bytes(domain: str, payload_type: bytes, payload: bytes) -> bytes:
    d = domain.encode("utf-8")
    parts = (d, payload_type, payload)
    return b"".join(_varint(len(p)) + p for p in parts)


def seal(key: KeyPair, domain: str, payload_type: bytes, value: Any) -> bytes:
    """Encode ``value`` as CBOR, sign it for ``domain`` and return the envelope bytes."""
    if not domain:
        raise ValueError("an envelope needs a non-empty domain")
    payload = cbor2.dumps(value, canonical=True)
    signature = key.sign(_signed_bytes(domain, payload_type, payload))
    return cbor2.dumps([_VERSION, key.encoded_public_key, payload_type, payload, signature])


def open_envelope(data: bytes, domain: str, payload_type: bytes | None = None) -> Envelope:
    """Check an envelope for ``domain`` (and ``payload_type`` if given); raise SignatureError."""
    if len(data) > MAX_ENVELOPE_SIZE:
        raise SignatureError(f"envelope of {len(data)} bytes exceeds {MAX_ENVELOPE_SIZE}")
    try:
        decoded = cbor2.loads(data)
    except Exception as exc:  # cbor2 raises several types on garbage
        raise SignatureError(f"envelope is not CBOR: {exc}") from exc
    if (
        not isinstance(decoded, list)
        or len(decoded) != 5
        or decoded[0] != _VERSION
        or not all(isinstance(x, bytes) for x in decoded[1:])
    ):
        raise SignatureError("not a version-1 envelope")
    _, public_key, ptype, payload, signature = decoded
    if payload_type is not None and ptype != payload_type:
        raise SignatureError(f"payload type {ptype!r} where {payload_type!r} was expected")
    # Re-encoding must give the same bytes: rejects non-canonical framing tricks.
    if cbor2.dumps(decoded) != data:
        raise SignatureError("envelope is not canonically encoded")
    verify_signature(public_key, _signed_bytes(domain, ptype, payload), signature)
    return Envelope(PeerId.from_public_key(public_key), public_key, ptype, payload)
