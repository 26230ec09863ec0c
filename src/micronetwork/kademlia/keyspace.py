"""The Kademlia keyspace: 256-bit keys, XOR distance, common prefix length.

As in libp2p, the key of a peer or a record is the SHA-256 of its bytes (the peer id's
multihash bytes, or the record key), read as a big-endian 256-bit integer, so distances are plain
``int`` XORs, which CPython computes at C speed.
"""

from __future__ import annotations

import hashlib
import random

__all__ = [
    "KEY_BITS",
    "PreimagePool",
    "clear_pins",
    "common_prefix_len",
    "distance",
    "kad_key",
    "peer_key",
    "pin_peer_key",
    "random_key_with_cpl",
    "use_preimage_pool",
]

KEY_BITS = 256
_sha256 = hashlib.sha256


def kad_key(data: bytes) -> int:
    """The keyspace position of ``data`` (a peer id or a record key)."""
    return int.from_bytes(_sha256(data).digest(), "big")


_CACHE: dict[bytes, int] = {}
_CACHE_MAX = 1 << 21
_PINNED: dict[bytes, int] = {}


def peer_key(peer: bytes) -> int:
    """:func:`kad_key` memoised: peers recur in every response, and a hash costs more than a
    dict lookup. A pure cache (same input, same output), cleared when it grows past 2M ids."""
    key = _CACHE.get(peer)
    if key is None:
        if len(_CACHE) >= _CACHE_MAX:
            _CACHE.clear()
            _CACHE.update(_PINNED)
        key = _CACHE[peer] = int.from_bytes(_sha256(peer).digest(), "big")
    return key


def pin_peer_key(peer: bytes, key: int | None) -> None:
    """Simulation only: make :func:`peer_key` answer ``key`` for ``peer`` (None unpins).

    Models an attacker who ground key pairs until one hashed next to a target; the simulator
    charges the grinding as CPU cost instead of hashing (see ``micronetwork.sim.crypto``). A real
    node never calls this.
    """
    if key is None:
        _PINNED.pop(peer, None)
        _CACHE.pop(peer, None)
    else:
        _PINNED[peer] = key
        _CACHE[peer] = key


def clear_pins() -> None:
    """Simulation only: forget every pinned key (a new simulation starts)."""
    for peer in _PINNED:
        _CACHE.pop(peer, None)
    _PINNED.clear()


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


class PreimagePool:
    """Random preimages with their keys, sorted by key, built once from a seed.

    Those whose key shares exactly ``cpl`` bits with ``local`` form one contiguous run of the
    sorted keys (prefix of ``local``, then the flipped bit), found by two bisections; a pool of
    ``2**b`` entries serves ``cpl`` up to about ``b - 3`` without hashing. Used by the simulator,
    where 100k nodes refreshing their buckets would otherwise spend most of the run hashing.
    """

    def __init__(self, size_bits: int = 18, seed: int = 0) -> None:
        rng = random.Random(seed)
        pre = [rng.getrandbits(256).to_bytes(32, "big") for _ in range(1 << size_bits)]
        pairs = sorted((kad_key(p), p) for p in pre)
        self.keys = [k for k, _ in pairs]
        self.preimages = [p for _, p in pairs]

    def pick(self, local: int, cpl: int, rng: random.Random) -> bytes | None:
        from bisect import bisect_left

        bit = KEY_BITS - 1 - cpl
        lo_key = ((local >> bit) ^ 1) << bit
        lo = bisect_left(self.keys, lo_key)
        hi = bisect_left(self.keys, lo_key + (1 << bit))
        if hi <= lo:
            return None
        return self.preimages[lo + rng.randrange(hi - lo)]


_POOL: PreimagePool | None = None


def use_preimage_pool(pool: PreimagePool | None) -> None:
    """Let :func:`preimage_for_cpl` draw from ``pool`` first (None: always search)."""
    global _POOL
    _POOL = pool


def preimage_for_cpl(
    local: int, cpl: int, rng: random.Random, max_tries: int = 1 << 18
) -> bytes | None:
    """Random bytes whose key shares exactly ``cpl`` bits with ``local`` (for bucket refresh).

    FIND_NODE carries a key preimage, not a key, so a refresh of a bucket needs a preimage that
    hashes into it; expected cost is 2**(cpl+1) hashes, so deep buckets are skipped (None).
    With a :class:`PreimagePool` installed, a pooled preimage is used when one fits.
    """
    if _POOL is not None:
        found = _POOL.pick(local, cpl, rng)
        if found is not None:
            return found
    for _ in range(max_tries):
        candidate = rng.getrandbits(256).to_bytes(32, "big")
        if common_prefix_len(local, kad_key(candidate)) == cpl:
            return candidate
    return None
