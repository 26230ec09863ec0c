"""The gossipsub wire codec: every RPC part, against py-libp2p's protobuf and signature check."""

from __future__ import annotations

import pytest
from libp2p.pubsub.pb import rpc_pb2 as pb
from libp2p.pubsub.validators import signature_validator

from micronetwork.errors import RemoteProtocolError, SignatureError
from micronetwork.framing import FrameDecoder, encode_frame
from micronetwork.gossip import (
    RPC,
    Control,
    Graft,
    IDontWant,
    IHave,
    IWant,
    PeerExchange,
    Prune,
    PubMessage,
    SubOpts,
    decode_rpc,
    encode_rpc,
    sign_message,
    verify_message,
)
from micronetwork.gossip.wire import message_to_pb
from micronetwork.identity import KeyPair

KEY = KeyPair.from_seed(b"\x07" * 32)

FULL = RPC(
    subscriptions=(SubOpts(True, "a"), SubOpts(False, "b")),
    publish=(
        sign_message(KEY, "a", b"payload", b"\x00" * 7 + b"\x01"),
        PubMessage("b", b"", b"\x00\x01x", b"\x02", b"sig", b"key"),
    ),
    control=Control(
        ihave=(IHave("a", (b"m1", b"m2")), IHave("b", ())),
        iwant=(IWant((b"m3",)),),
        graft=(Graft("a"),),
        prune=(
            Prune("a", (PeerExchange(b"\x00\x01p", b"record"), PeerExchange(b"\x00\x01q")), 60),
            Prune("b"),
        ),
        idontwant=(IDontWant((b"m4", b"m5")),),
    ),
)


def test_every_rpc_part_round_trips() -> None:
    assert decode_rpc(encode_rpc(FULL)) == FULL
    assert decode_rpc(encode_rpc(RPC())) == RPC()
    framed = encode_frame(encode_rpc(FULL), 1 << 20)
    dec = FrameDecoder(1 << 20)
    dec.feed(framed)
    frame = dec.next_frame()
    assert frame is not None and decode_rpc(frame) == FULL


def test_matches_py_libp2p_protobuf_both_ways() -> None:
    theirs = pb.RPC()
    theirs.ParseFromString(encode_rpc(FULL))
    assert [(s.subscribe, s.topicid) for s in theirs.subscriptions] == [(True, "a"), (False, "b")]
    assert theirs.publish[0].data == b"payload" and list(theirs.publish[0].topicIDs) == ["a"]
    assert theirs.publish[1].key == b"key"
    c = theirs.control
    assert [list(i.messageIDs) for i in c.ihave] == [[b"m1", b"m2"], []]
    assert list(c.iwant[0].messageIDs) == [b"m3"] and c.graft[0].topicID == "a"
    assert c.prune[0].backoff == 60 and c.prune[0].peers[0].signedPeerRecord == b"record"
    assert list(c.idontwant[0].messageIDs) == [b"m4", b"m5"]
    # and what py-libp2p builds, we read
    built = pb.RPC(
        subscriptions=[pb.RPC.SubOpts(subscribe=True, topicid="x")],
        control=pb.ControlMessage(
            graft=[pb.ControlGraft(topicID="x")],
            prune=[
                pb.ControlPrune(topicID="y", backoff=10, peers=[pb.PeerInfo(peerID=b"\x00\x01z")])
            ],
            idontwant=[pb.ControlIDontWant(messageIDs=[b"i"])],
        ),
    )
    got = decode_rpc(built.SerializeToString())
    assert got.subscriptions == (SubOpts(True, "x"),)
    assert got.control is not None
    assert got.control.prune == (Prune("y", (PeerExchange(b"\x00\x01z"),), 10),)
    assert got.control.idontwant == (IDontWant((b"i",)),)


def test_our_signatures_verify_in_py_libp2p() -> None:
    msg = sign_message(KEY, "topic", b"data", b"\x00" * 7 + b"\x05")
    assert msg.key == b""  # Ed25519: the key is inlined in the id
    theirs = pb.Message()
    message_to_pb(msg, theirs)
    assert signature_validator(theirs)
    verify_message(msg)


@pytest.mark.parametrize(
    "field,value",
    [("data", b"tampered"), ("seqno", b"\x00" * 8), ("topic", "other"), ("signature", b"x" * 64)],
)
def test_tampering_any_field_breaks_the_signature(field: str, value: object) -> None:
    from dataclasses import replace

    msg = sign_message(KEY, "topic", b"data", b"\x00" * 7 + b"\x05")
    with pytest.raises(SignatureError):
        verify_message(replace(msg, **{field: value}))


def test_unsigned_or_wrong_key_is_rejected() -> None:
    msg = sign_message(KEY, "topic", b"data", b"\x00" * 7 + b"\x05")
    from dataclasses import replace

    with pytest.raises(SignatureError):
        verify_message(replace(msg, signature=b""))
    with pytest.raises(SignatureError):
        verify_message(replace(msg, key=KeyPair.from_seed(b"\x08" * 32).encoded_public_key))
    with pytest.raises(SignatureError):
        verify_message(replace(msg, from_peer=b"\x12\x20" + b"\x01" * 32))  # sha256 id, no key


@pytest.mark.parametrize(
    "data",
    [b"\xff\xff\xff", b"\x0a\x05\x08", bytes(range(256)), b"\x12\x00"],
)
def test_garbage_raises_remote_protocol_error(data: bytes) -> None:
    with pytest.raises(RemoteProtocolError):
        decode_rpc(data)


def test_multi_topic_messages_and_oversized_rpcs_are_rejected() -> None:
    m = pb.RPC()
    m.publish.add(topicIDs=["a", "b"], data=b"x")
    with pytest.raises(RemoteProtocolError):
        decode_rpc(m.SerializeToString())
    with pytest.raises(RemoteProtocolError):
        decode_rpc(encode_rpc(FULL), max_size=10)
