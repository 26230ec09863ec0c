"""The Kademlia keyspace: 256-bit keys, XOR distance, common prefix length.

As in libp2p, the key of a peer or a record is the SHA-256 of its bytes (the peer id's
multihash bytes, or the record key), read as a big-endian 256-bit integer, so distances are plain
``int`` XORs, which CPython computes at C speed.
"""

from __future__ import annotations

import hashlib
import random

__all__ = ["KEY_BITS", "kad_key", "peer_key", "distance", "common_prefix_len", "random_key_with_cpl"]

KEY_BITS = 256
_sha256 = hashlib.sha256


def kad_key(data: bytes) -> int:
    """The keyspace position of ``data`` (a peer id or a record key)."""
    return int.from_bytes(_sha256(data).digest(), "big")


_CACHE: dict[bytes, int] = {}
_CACHE_MAX = 1 << 21


def peer_key(peer: bytes) -> int:
    """:func:`kad_key` memoised: peers recur in every response, and a hash costs more than a
    dict lookup. A pure cache (same input, same output), cleared when it grows past 2M ids."""
    key = _CACHE.get(peer)
    if key is None:
        if len(_CACHE) >= _CACHE_MAX:
            _CACHE.clear()
        key = _CACHE[peer] = int.from_bytes(_sha256(peer).digest(), "big")
    return key


def distance(a: int, b: int) -> int:
    return a ^ b


def common_prefix_len(a: int, b: int) -> int:
    """Number of leading bits ``a`` and ``b`` share (256 when equal)."""
    return KEY_BITS - (a ^ b).bit_length()


def random_key_with_cpl(local: int, cpl: int, rng: random.Random) -> int:
    """A random key that shares exactly ``cpl`` leading bits with ``local``."""
    if not 0 <= cpl < KEY_BITS:
        raise ValueError("cpl out of range")
    bit = KEY_BITS - 1 - cpl  # the first bit that differs
    low = rng.getrandbits(bit) if bit else 0
    prefix = (local >> (bit + 1)) << (bit + 1)
    flipped = (~local) & (1 << bit)
    return prefix | flipped | low


def preimage_for_cpl(
    local: int, cpl: int, rng: random.Random, max_tries: int = 1 << 18
) -> bytes | None:
    """Random bytes whose key shares exactly ``cpl`` bits with ``local`` (for bucket refresh).

    FIND_NODE carries a key preimage, not a key, so a refresh of a bucket needs a preimage that
    hashes into it; expected cost is 2**(cpl+1) hashes, so deep buckets are skipped (None).
    """
    for _ in range(max_tries):
        candidate = rng.getrandbits(256).to_bytes(32, "big")
        if common_prefix_len(local, kad_key(candidate)) == cpl:
            return candidate
    return None
