from __future__ import annotations

import os
import stat

import pytest
from libp2p.crypto.ed25519 import create_new_key_pair
from libp2p.peer.id import ID

from micronetwork import IdentityError, KeyPair, PeerId, SignatureError, load_or_create_key
from micronetwork.identity import open_envelope, seal


def test_peer_id_matches_libp2p() -> None:
    for i in range(5):
        key = KeyPair.from_seed(bytes([i]) * 32)
        theirs = ID.from_pubkey(create_new_key_pair(key.seed).public_key)
        assert key.peer_id.to_base58() == theirs.to_base58()
        assert bytes(key.peer_id) == theirs.to_bytes()
        assert str(key.peer_id).startswith("12D3KooW")


def test_peer_id_text_round_trip() -> None:
    pid = KeyPair.generate().peer_id
    assert PeerId.from_base58(str(pid)) == pid
    assert PeerId.parse(str(pid)) == pid
    assert pid.public_key() is not None
    with pytest.raises(ValueError):
        PeerId.from_base58("0OIl")  # not base58


def test_key_file_created_0600_and_reloaded(tmp_path) -> None:
    path = tmp_path / "sub" / "node.key"
    first = load_or_create_key(path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert load_or_create_key(path).peer_id == first.peer_id
    # The file is libp2p's PrivateKey protobuf: type Ed25519, 64 bytes of data.
    assert path.read_bytes()[:4] == b"\x08\x01\x12\x40"


@pytest.mark.parametrize(
    "content",
    [b"", b"garbage", b"\x08\x01\x12\x40" + b"\x00" * 10, b"\x08\x01\x12\x40" + os.urandom(64)],
)
def test_corrupt_key_file_is_a_clear_error(tmp_path, content: bytes) -> None:
    path = tmp_path / "node.key"
    path.write_bytes(content)
    with pytest.raises(IdentityError) as info:
        load_or_create_key(path)
    assert str(path) in str(info.value)
    assert path.read_bytes() == content  # never replaced by a new identity


def test_wrong_key_type_is_named(tmp_path) -> None:
    path = tmp_path / "rsa.key"
    path.write_bytes(b"\x08\x00\x12\x04abcd")  # type 0 = RSA
    with pytest.raises(IdentityError, match="RSA"):
        load_or_create_key(path)


def test_unreadable_key_file(tmp_path) -> None:
    with pytest.raises(IdentityError, match=str(tmp_path)):
        load_or_create_key(tmp_path)  # a directory


def test_envelope_round_trip() -> None:
    key = KeyPair.generate()
    data = seal(key, "micronetwork/test", b"t1", {"name": "greeter", "n": [1, 2]})
    env = open_envelope(data, "micronetwork/test", b"t1")
    assert env.signer == key.peer_id
    assert env.decode() == {"name": "greeter", "n": [1, 2]}


def test_envelope_rejects_any_changed_byte() -> None:
    key = KeyPair.generate()
    data = seal(key, "micronetwork/test", b"t1", {"v": "x" * 20})
    for i in range(len(data)):
        for flip in (0x01, 0x80):
            bad = bytearray(data)
            bad[i] ^= flip
            with pytest.raises(SignatureError):
                open_envelope(bytes(bad), "micronetwork/test", b"t1")


def test_envelope_domain_and_type_are_bound() -> None:
    key = KeyPair.generate()
    data = seal(key, "micronetwork/a", b"t1", 1)
    with pytest.raises(SignatureError):
        open_envelope(data, "micronetwork/b", b"t1")
    with pytest.raises(SignatureError):
        open_envelope(data, "micronetwork/a", b"t2")
    with pytest.raises(SignatureError):
        open_envelope(b"\xff" * 10, "micronetwork/a")
