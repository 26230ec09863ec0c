"""Peer ids as libp2p derives them.

A libp2p peer id is a multihash of the protobuf-encoded public key: the *identity* multihash
(code 0x00) when the encoding is at most 42 bytes (always for Ed25519), SHA-256 otherwise. Its
text form is base58btc. :class:`PeerId` subclasses ``bytes`` so that the cores can use it as a
dict key and compare it at C speed, while the public API still gets a typed value with a readable
``str()``.
"""

from __future__ import annotations

import hashlib

import base58

__all__ = ["PeerId", "encode_public_key", "decode_public_key", "KEY_TYPE_ED25519"]

KEY_TYPE_ED25519 = 1
_KEY_TYPE_NAMES = {0: "RSA", 1: "Ed25519", 2: "Secp256k1", 3: "ECDSA"}
_IDENTITY_MAX = 42


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def encode_public_key(raw: bytes, key_type: int = KEY_TYPE_ED25519) -> bytes:
    """libp2p ``PublicKey`` protobuf: ``{Type: key_type, Data: raw}`` (deterministic encoding)."""
    return b"\x08" + _varint(key_type) + b"\x12" + _varint(len(raw)) + raw


def decode_public_key(data: bytes) -> tuple[int, bytes]:
    """Parse a libp2p ``PublicKey``/``PrivateKey`` protobuf into ``(key_type, data)``.

    Raises ``ValueError`` on anything but the two-field encoding libp2p produces.
    """
    key_type: int | None = None
    payload: bytes | None = None
    i = 0
    while i < len(data):
        tag = data[i]
        i += 1
        if tag == 0x08:
            value, i = _read_varint(data, i)
            key_type = value
        elif tag == 0x12:
            length, i = _read_varint(data, i)
            if i + length > len(data):
                raise ValueError("truncated key data")
            payload = data[i : i + length]
            i += length
        else:
            raise ValueError(f"unexpected protobuf tag 0x{tag:02x} in key")
    if key_type is None or payload is None:
        raise ValueError("key protobuf lacks Type or Data")
    return key_type, payload


def _read_varint(data: bytes, i: int) -> tuple[int, int]:
    shift = 0
    value = 0
    while True:
        if i >= len(data) or shift > 63:
            raise ValueError("bad varint in key")
        b = data[i]
        i += 1
        value |= (b & 0x7F) << shift
        if not b & 0x80:
            return value, i
        shift += 7


def key_type_name(key_type: int) -> str:
    return _KEY_TYPE_NAMES.get(key_type, f"unknown type {key_type}")


class PeerId(bytes):
    """A libp2p peer id: the multihash bytes, with base58btc as its text form."""

    __slots__ = ()

    @classmethod
    def from_public_key(cls, encoded_public_key: bytes) -> PeerId:
        """Derive the id from a protobuf-encoded public key, exactly as libp2p does."""
        if len(encoded_public_key) <= _IDENTITY_MAX:
            return cls(b"\x00" + _varint(len(encoded_public_key)) + encoded_public_key)
        digest = hashlib.sha256(encoded_public_key).digest()
        return cls(b"\x12\x20" + digest)

    @classmethod
    def from_base58(cls, text: str) -> PeerId:
        try:
            raw = base58.b58decode(text)
        except ValueError as exc:
            raise ValueError(f"not a base58 peer id: {text!r}") from exc
        if len(raw) < 2:
            raise ValueError(f"not a peer id: {text!r}")
        return cls(raw)

    @classmethod
    def parse(cls, value: str | bytes) -> PeerId:
        """Accept a base58 string, raw multihash bytes or a PeerId."""
        if isinstance(value, PeerId):
            return value
        if isinstance(value, bytes):
            return cls(value)
        return cls.from_base58(value)

    def to_base58(self) -> str:
        return base58.b58encode(bytes(self)).decode("ascii")

    def public_key(self) -> bytes | None:
        """The protobuf-encoded public key inlined in an identity multihash, if any."""
        if len(self) > 2 and self[0] == 0x00:
            return bytes(self[2:])
        return None

    def short(self) -> str:
        """A short form for logs and tables: the last 8 characters of the base58 id."""
        return self.to_base58()[-8:]

    def __str__(self) -> str:
        return self.to_base58()

    def __repr__(self) -> str:
        return f"PeerId({self.to_base58()!r})"
