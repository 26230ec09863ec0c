from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from micronetwork.errors import LocalProtocolError, RemoteProtocolError
from micronetwork.framing import FrameDecoder, encode_frame, encode_varint
from micronetwork.identity import KeyPair
from micronetwork.kademlia import (
    KadMessage,
    MessageType,
    PeerInfo,
    Record,
    decode_message,
    encode_message,
)

PEER = KeyPair.from_seed(b"\x01" * 32).peer_id


@given(st.binary(max_size=300), st.binary(max_size=300))
def test_messages_round_trip_with_any_key_bytes(key: bytes, value: bytes) -> None:
    msg = KadMessage(
        MessageType.PUT_VALUE,
        key=key,
        record=Record(key, value),
        closer_peers=(PeerInfo(PEER, (b"\x04\x7f\x00\x00\x01\x06\x0f\xa1",)),),
    )
    assert decode_message(encode_message(msg)) == msg


def test_interoperates_with_libp2p_protobuf() -> None:
    from libp2p.kad_dht.pb import kademlia_pb2 as pb

    m = pb.Message(type=pb.Message.FIND_NODE, key=b"/pk/\x00\x24\x08\x01")
    m.closerPeers.add(id=bytes(PEER), addrs=[b"\x04\x7f\x00\x00\x01"])
    ours = decode_message(m.SerializeToString())
    assert ours.type is MessageType.FIND_NODE and ours.key == b"/pk/\x00\x24\x08\x01"
    assert ours.closer_peers[0].peer_id == PEER
    back = pb.Message()
    back.ParseFromString(encode_message(ours))
    assert back == m


GARBAGE = [b"\xff\xff\xff", b"\x08\x63", b"\x0a\x05ab", b"\x08\x04\x42\x02\x0a\x00"]


@pytest.mark.parametrize("data", GARBAGE)
def test_garbage_is_a_remote_protocol_error(data: bytes) -> None:
    with pytest.raises(RemoteProtocolError):
        decode_message(data)


@given(st.lists(st.binary(max_size=200), max_size=8), st.integers(1, 50))
def test_frames_split_anywhere(payloads: list[bytes], chunk: int) -> None:
    stream = b"".join(encode_frame(p, 1000) for p in payloads)
    dec = FrameDecoder(1000)
    out = []
    for i in range(0, len(stream), chunk):
        dec.feed(stream[i : i + chunk])
        while (f := dec.next_frame()) is not None:
            out.append(f)
    assert out == payloads and dec.buffered == 0


def test_oversized_frame_rejected_before_buffering() -> None:
    dec = FrameDecoder(1024)
    dec.feed(encode_varint(10_000_000))
    with pytest.raises(RemoteProtocolError, match="limit"):
        dec.next_frame()
    dec = FrameDecoder(1024)
    dec.feed(b"\xff" * 11)
    with pytest.raises(RemoteProtocolError):
        dec.next_frame()
    with pytest.raises(LocalProtocolError):
        encode_frame(b"x" * 2000, 1024)
