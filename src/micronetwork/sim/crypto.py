"""Crypto in the simulator: executed for fidelity, or modelled as CPU time for scale.

Theory of operation. Two things cost CPU in a DHT node: making an identity (a key pair, plus
an id puzzle if the network demands one) and checking what arrives (the Noise handshake's
signatures on a new connection, record signatures). :class:`CryptoModel` decides, per run:

* ``mode="model"`` (default, large runs): peer ids are identity multihashes of random 32-byte
  "public keys" (well-formed ids, no curve arithmetic) and every inbound request costs
  ``verify_cost`` seconds of the receiving node's virtual CPU.
* ``mode="execute"`` (small runs): ids come from real Ed25519 key pairs and every request is
  really signed by the sender and verified by the receiver. Virtual time is still charged the
  *modelled* cost, never the measured one, so a run stays reproducible from its seed.

Id placement. A node's Kademlia key is ``sha256(peer id)``, so an attacker who wants a key next
to a target must grind key pairs: ``2**m`` tries buy about ``m`` leading bits in common with
the target. An id puzzle of ``c`` bits (S/Kademlia's static puzzle: ``sha256(peer id)`` must
start with ``c`` zero bits... or any check of that cost) multiplies the price of every try by
``2**c``. :func:`ground_key` draws the key an attacker with a budget of ``2**budget_bits`` hashes
ends up with: the best of ``2**(budget_bits - c)`` tries, sampled from its exact distribution
instead of hashed, so a 100k-node run need not do the attacker's work.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from ..identity.peerid import PeerId
from ..kademlia.keyspace import random_key_with_cpl

__all__ = ["CryptoModel", "ground_cpl", "ground_key", "model_peer_id"]

_ED25519_PREFIX = b"\x00\x24\x08\x01\x12\x20"  # identity multihash of a protobuf Ed25519 key


def model_peer_id(rng: random.Random) -> PeerId:
    """A well-formed Ed25519 peer id whose key bytes are random (no key pair behind it)."""
    return PeerId(_ED25519_PREFIX + rng.randbytes(32))


@dataclass(frozen=True, slots=True)
class CryptoModel:
    mode: str = "model"  # "model" or "execute"
    verify_cost: float = 0.010  # virtual CPU seconds per inbound request (validation)
    hash_cost: float = 1e-6  # virtual CPU seconds per hash (id puzzles, grinding)
    id_puzzle: int = 0  # bits of work every node id must carry (0: none)

    def __post_init__(self) -> None:
        if self.mode not in ("model", "execute"):
            raise ValueError("crypto mode must be 'model' or 'execute'")
        if not 0 <= self.id_puzzle <= 40:
            raise ValueError("id_puzzle must be 0..40 bits")

    @property
    def join_cost(self) -> float:
        """Expected virtual CPU seconds an honest node spends solving the id puzzle."""
        return (2**self.id_puzzle) * self.hash_cost if self.id_puzzle else 0.0

    def describe(self) -> dict[str, object]:
        return {
            "mode": self.mode,
            "verify_cost": self.verify_cost,
            "id_puzzle_bits": self.id_puzzle,
            "join_cost_s": self.join_cost,
        }


def ground_cpl(rng: random.Random, tries: float) -> int:
    """Common prefix length with a target of the best of ``tries`` uniform random keys.

    One try reaches at least ``m`` bits with probability ``2**-m``; the best of ``T`` stays
    at or below ``m`` with probability ``(1 - 2**-(m+1))**T``. Invert that CDF with one draw.
    """
    u = rng.random()
    for m in range(256):
        if u <= (1.0 - 2.0 ** -(m + 1)) ** tries:
            return m
    return 255


def ground_key(target: int, rng: random.Random, budget_bits: float, puzzle_bits: int) -> int:
    """The key an attacker reaches next to ``target`` with ``2**budget_bits`` hashes."""
    tries = 2.0 ** max(0.0, budget_bits - puzzle_bits)
    return random_key_with_cpl(target, ground_cpl(rng, tries), rng)
