"""Ed25519 node keys (identity layer 0), and their key file.

The file holds the libp2p ``PrivateKey`` protobuf (``{Type: Ed25519, Data: seed || public}``),
the format go-libp2p and the libp2p daemon read, so one key file can serve several
implementations. It is created with mode 0600 (atomically: written to a temporary file in the
same directory, then renamed). A missing file is created; a corrupt, truncated or non-Ed25519 file
raises :class:`~micronetwork.errors.IdentityError` naming the file: never a silent new identity.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from nacl.exceptions import BadSignatureError
from nacl.signing import SigningKey, VerifyKey

from ..errors import IdentityError, SignatureError
from .peerid import KEY_TYPE_ED25519, PeerId, decode_public_key, encode_public_key, key_type_name

__all__ = ["KeyPair", "load_or_create_key", "verify_signature"]


class KeyPair:
    """An Ed25519 key pair with its libp2p peer id."""

    __slots__ = ("_signing", "public_key", "encoded_public_key", "peer_id")

    def __init__(self, signing_key: SigningKey) -> None:
        self._signing = signing_key
        self.public_key: bytes = bytes(signing_key.verify_key)
        self.encoded_public_key: bytes = encode_public_key(self.public_key)
        self.peer_id: PeerId = PeerId.from_public_key(self.encoded_public_key)

    @classmethod
    def generate(cls) -> KeyPair:
        return cls(SigningKey.generate())

    @classmethod
    def from_seed(cls, seed: bytes) -> KeyPair:
        """A deterministic key from a 32-byte seed (tests, simulations)."""
        if len(seed) != 32:
            raise ValueError("an Ed25519 seed is 32 bytes")
        return cls(SigningKey(seed))

    @property
    def seed(self) -> bytes:
        return bytes(self._signing)

    def sign(self, data: bytes) -> bytes:
        return self._signing.sign(data).signature

    def to_protobuf(self) -> bytes:
        """libp2p ``PrivateKey`` protobuf: Data is seed (32) followed by public key (32)."""
        return encode_public_key(self.seed + self.public_key)

    @classmethod
    def from_protobuf(cls, data: bytes) -> KeyPair:
        key_type, raw = decode_public_key(data)
        if key_type != KEY_TYPE_ED25519:
            raise ValueError(f"holds a {key_type_name(key_type)} key; micronetwork needs Ed25519")
        if len(raw) not in (32, 64):
            raise ValueError(f"Ed25519 private key has {len(raw)} bytes, expected 64")
        pair = cls(SigningKey(raw[:32]))
        if len(raw) == 64 and raw[32:] != pair.public_key:
            raise ValueError("the public half does not match the private key (corrupt file)")
        return pair

    def to_libp2p(self) -> Any:
        """The same key as a py-libp2p ``KeyPair`` (for building a host)."""
        from libp2p.crypto.ed25519 import create_new_key_pair

        return create_new_key_pair(self.seed)

    def __repr__(self) -> str:
        return f"KeyPair(peer_id={self.peer_id.to_base58()!r})"


def verify_signature(encoded_public_key: bytes, data: bytes, signature: bytes) -> None:
    """Verify an Ed25519 signature by a protobuf-encoded public key; raise SignatureError."""
    try:
        key_type, raw = decode_public_key(encoded_public_key)
    except ValueError as exc:
        raise SignatureError(f"bad public key: {exc}") from exc
    if key_type != KEY_TYPE_ED25519 or len(raw) != 32:
        raise SignatureError(f"unsupported signer key ({key_type_name(key_type)})")
    try:
        VerifyKey(raw).verify(data, signature)
    except (BadSignatureError, ValueError) as exc:
        raise SignatureError("signature does not verify") from exc


def load_or_create_key(path: str | os.PathLike[str]) -> KeyPair:
    """Load the node key at ``path``; create it (mode 0600) if the file does not exist."""
    file = Path(path)
    try:
        data = file.read_bytes()
    except FileNotFoundError:
        return _create_key_file(file)
    except OSError as exc:
        raise IdentityError(f"cannot read key file {file}: {exc.strerror}") from exc
    try:
        return KeyPair.from_protobuf(data)
    except ValueError as exc:
        raise IdentityError(
            f"key file {file} is not a usable libp2p Ed25519 private key: {exc}. "
            "Move it away to create a new identity, or point the node at the right file."
        ) from exc


def _create_key_file(file: Path) -> KeyPair:
    pair = KeyPair.generate()
    try:
        file.parent.mkdir(parents=True, exist_ok=True)
        tmp = file.with_name(f".{file.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, pair.to_protobuf())
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, file)
    except OSError as exc:
        raise IdentityError(f"cannot create key file {file}: {exc.strerror}") from exc
    return pair
