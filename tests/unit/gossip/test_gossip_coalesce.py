"""The host driver's frame coalescing: RPCs queued to one peer go out as one frame that every
gossipsub decoder reads alike, including js-libp2p's, which keeps only the last ``control``
field of a frame instead of merging them (found by tests/interop/test_js_gossip.py)."""

from __future__ import annotations

from micronetwork.gossip import (
    RPC,
    Control,
    Graft,
    IDontWant,
    IHave,
    IWant,
    Prune,
    SubOpts,
    decode_rpc,
    encode_rpc,
    sign_message,
)
from micronetwork.gossip.commands import Send
from micronetwork.gossip.messages import merge_controls
from micronetwork.host.driver import coalesce_rpcs
from micronetwork.identity import KeyPair

KEY = KeyPair.from_seed(b"\x05" * 32)
PEER = KeyPair.from_seed(b"\x06" * 32).peer_id
MSG = sign_message(KEY, "a", b"payload", b"\x00" * 7 + b"\x01")


def _items(*rpcs: RPC) -> list[tuple[Send, bytes]]:
    return [(Send(PEER, "/meshsub/1.2.0", r), encode_rpc(r)) for r in rpcs]


def _top_level(data: bytes) -> list[tuple[int, bytes]]:
    """An RPC's top-level fields in order: (field number, the field's bytes with its key).
    An RPC has only length-delimited fields."""
    out, pos = [], 0
    while pos < len(data):
        start, key = pos, data[pos]
        assert key & 7 == 2
        pos += 1
        length = shift = 0
        while True:
            b = data[pos]
            pos += 1
            length |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                break
        pos += length
        out.append((key >> 3, data[start:pos]))
    return out


def _top_level_fields(data: bytes) -> list[int]:
    return [number for number, _ in _top_level(data)]


def _last_control_wins(data: bytes) -> RPC:
    """Decode like protons (js-libp2p-gossipsub): repeated fields append, but a singular
    embedded message field seen twice is replaced, not merged."""
    rpc = decode_rpc(data)  # python protobuf: the merge
    controls = [decode_rpc(raw).control for number, raw in _top_level(data) if number == 3]
    return RPC(rpc.subscriptions, rpc.publish, controls[-1] if controls else None)


def test_a_burst_of_control_rpcs_keeps_every_entry_for_a_last_wins_decoder() -> None:
    rpcs = (
        RPC(subscriptions=(SubOpts(True, "a"),)),
        RPC(control=Control(graft=(Graft("a"),))),
        RPC(subscriptions=(SubOpts(True, "b"),)),
        RPC(control=Control(graft=(Graft("b"),))),
        RPC(publish=(MSG,), control=Control(iwant=(IWant((b"m1",)),))),
        RPC(control=Control(ihave=(IHave("a", (b"m2",)),), idontwant=(IDontWant((b"m3",)),))),
        RPC(control=Control(prune=(Prune("c", backoff=60),))),
    )
    frame = coalesce_rpcs(_items(*rpcs), encode_rpc)
    assert _top_level_fields(frame).count(3) == 1
    merged = merge_controls(r.control for r in rpcs if r.control)
    assert merged == Control(
        ihave=(IHave("a", (b"m2",)),),
        iwant=(IWant((b"m1",)),),
        graft=(Graft("a"), Graft("b")),
        prune=(Prune("c", backoff=60),),
        idontwant=(IDontWant((b"m3",)),),
    )
    for decoded in (decode_rpc(frame), _last_control_wins(frame)):
        assert decoded.subscriptions == (SubOpts(True, "a"), SubOpts(True, "b"))
        assert decoded.publish == (MSG,)
        assert decoded.control == merged


def test_the_old_concatenation_lost_controls_for_such_a_decoder() -> None:
    # What the driver wrote before: the bodies joined. Python's protobuf merges the two
    # controls, a last-wins decoder sees only the second GRAFT.
    rpcs = (RPC(control=Control(graft=(Graft("a"),))), RPC(control=Control(graft=(Graft("b"),))))
    joined = b"".join(body for _, body in _items(*rpcs))
    assert decode_rpc(joined).control == Control(graft=(Graft("a"), Graft("b")))
    assert _last_control_wins(joined).control == Control(graft=(Graft("b"),))
    fixed = coalesce_rpcs(_items(*rpcs), encode_rpc)
    assert _last_control_wins(fixed).control == Control(graft=(Graft("a"), Graft("b")))


def test_without_a_second_control_the_encodings_are_joined_as_they_are() -> None:
    items = _items(
        RPC(subscriptions=(SubOpts(True, "a"),)),
        RPC(publish=(MSG,), control=Control(graft=(Graft("a"),))),
        RPC(publish=(MSG,)),
    )
    assert coalesce_rpcs(items, encode_rpc) == b"".join(body for _, body in items)
    assert coalesce_rpcs(items[:1], encode_rpc) == items[0][1]
