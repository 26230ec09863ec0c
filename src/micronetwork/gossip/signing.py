"""Message signing and strict verification (libp2p pubsub StrictSign), and message ids.

A message is signed over ``"libp2p-pubsub:" + protobuf(Message without signature and key)``
with the author's key. ``from`` is the author's peer id; ``key`` carries the public key only
when it cannot be read out of the id (Ed25519 ids inline it, so we never send it). Verification
rejects a message with no ``from``, no ``seqno``, no signature, a ``key`` that does not hash to
``from``, or a signature that does not verify.
"""

from __future__ import annotations

from ..errors import SignatureError
from ..identity.keys import KeyPair, verify_signature
from ..identity.peerid import PeerId
from .messages import PubMessage
from .wire import signing_bytes

__all__ = ["default_msg_id", "sign_message", "verify_message"]


def default_msg_id(msg: PubMessage) -> bytes:
    """go-libp2p's default: the author's id bytes followed by the seqno bytes."""
    return msg.from_peer + msg.seqno


def sign_message(key: KeyPair, topic: str, data: bytes, seqno: bytes) -> PubMessage:
    unsigned = PubMessage(topic, data, bytes(key.peer_id), seqno)
    signature = key.sign(signing_bytes(unsigned))
    inline = key.peer_id.public_key() is not None
    return PubMessage(
        topic, data, bytes(key.peer_id), seqno, signature, b"" if inline else key.encoded_public_key
    )


def verify_message(msg: PubMessage) -> None:
    """Raise :class:`SignatureError` unless ``msg`` is correctly signed by its author."""
    if not msg.from_peer or not msg.seqno or not msg.signature:
        raise SignatureError("unsigned message (StrictSign needs from, seqno and signature)")
    author = PeerId(msg.from_peer)
    key = msg.key
    if key:
        if PeerId.from_public_key(key) != author:
            raise SignatureError("message key does not match its author")
    else:
        inlined = author.public_key()
        if inlined is None:
            raise SignatureError("author key neither inlined in the id nor attached")
        key = inlined
    verify_signature(key, signing_bytes(msg), msg.signature)
