"""Small, independent helpers for the interop harness: identities, peer ids, multihashes, CIDs.

Written from the libp2p specs (peer-ids, multihash, CID), not from micronetwork, so the harness
checks our library instead of agreeing with it by construction.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import base58
import multiaddr
from nacl.signing import SigningKey

KEY_TYPE_ED25519 = 1  # libp2p crypto.proto KeyType
IDENTITY = 0x00  # multihash code
SHA2_256 = 0x12  # multihash code
RAW = 0x55  # multicodec of the CIDs the harness makes


def varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _key_protobuf(key_type: int, data: bytes) -> bytes:
    # message PublicKey / PrivateKey { required KeyType Type = 1; required bytes Data = 2; }
    return b"\x08" + varint(key_type) + b"\x12" + varint(len(data)) + data


def multihash(code: int, digest: bytes) -> bytes:
    return varint(code) + varint(len(digest)) + digest


def sha256_multihash(data: bytes) -> bytes:
    """The DHT key both js and go use for the provider records of ``data`` (a raw-codec CID)."""
    return multihash(SHA2_256, hashlib.sha256(data).digest())


def cid_v1_bytes(mh: bytes, codec: int = RAW) -> bytes:
    """Binary CIDv1 of a multihash: what p2pd's PROVIDE / FIND_PROVIDERS take."""
    return varint(1) + varint(codec) + mh


def cid_v1_string(mh: bytes, codec: int = RAW) -> str:
    """Base32 (multibase 'b') string form, as js prints CIDv1s."""
    import base64

    return "b" + base64.b32encode(cid_v1_bytes(mh, codec)).decode().lower().rstrip("=")


def peer_id_from_public_key(public_key_protobuf: bytes) -> bytes:
    """Peer id bytes: identity multihash of the protobuf public key when it is <= 42 bytes."""
    if len(public_key_protobuf) <= 42:
        return multihash(IDENTITY, public_key_protobuf)
    return multihash(SHA2_256, hashlib.sha256(public_key_protobuf).digest())


def peer_id_to_str(peer_id: bytes) -> str:
    return base58.b58encode(peer_id).decode()


def peer_id_from_str(peer_id: str) -> bytes:
    return base58.b58decode(peer_id)


def maddr_bytes(addr: str | bytes) -> bytes:
    return addr if isinstance(addr, bytes) else multiaddr.Multiaddr(addr).to_bytes()


def maddr_str(addr: str | bytes) -> str:
    return addr if isinstance(addr, str) else str(multiaddr.Multiaddr(addr))


def strip_p2p(addr: str) -> str:
    return addr.split("/p2p/")[0]


@dataclass(frozen=True)
class Ed25519Identity:
    """A fixed libp2p identity from a 32-byte seed, usable by both peers of the harness.

    ``private_key`` is the libp2p ``PrivateKey`` protobuf (Data = seed || public key, 64 bytes):
    the file format of ``p2pd -id`` and what ``peer.mjs`` takes as ``private_key`` (hex).
    """

    seed: bytes

    @property
    def public_key_raw(self) -> bytes:
        return bytes(SigningKey(self.seed).verify_key)

    @property
    def public_key(self) -> bytes:
        """The libp2p ``PublicKey`` protobuf (the value of a ``/pk/`` record)."""
        return _key_protobuf(KEY_TYPE_ED25519, self.public_key_raw)

    @property
    def private_key(self) -> bytes:
        return _key_protobuf(KEY_TYPE_ED25519, self.seed + self.public_key_raw)

    @property
    def peer_id_bytes(self) -> bytes:
        return peer_id_from_public_key(self.public_key)

    @property
    def peer_id(self) -> str:
        return peer_id_to_str(self.peer_id_bytes)

    @property
    def pk_key(self) -> bytes:
        """The DHT key of this identity's public key record: ``/pk/`` + peer id bytes."""
        return b"/pk/" + self.peer_id_bytes
