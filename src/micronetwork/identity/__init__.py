"""Identity layer 0: Ed25519 node keys, libp2p peer ids and signed envelopes."""

from .envelope import Envelope, open_envelope, seal
from .keys import KeyPair, load_or_create_key, verify_signature
from .peerid import PeerId

__all__ = [
    "Envelope",
    "KeyPair",
    "PeerId",
    "load_or_create_key",
    "open_envelope",
    "seal",
    "verify_signature",
]
