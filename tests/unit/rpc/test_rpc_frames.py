"""RPC frames: round trips, the wire layout, and strict decoding."""

from __future__ import annotations

import datetime
from typing import Any

import cbor2
import pytest

from micronetwork.errors import LocalProtocolError, MessageTooLarge, RemoteProtocolError
from micronetwork.framing import encode_varint
from micronetwork.rpc import (
    PROTOCOL_VERSION,
    Cancel,
    Data,
    End,
    Frame,
    FrameReader,
    Open,
    Status,
    decode_frame,
    encode_frame,
)
from micronetwork.rpc.frames import FRAME_OVERHEAD, MAX_DEPTH, MAX_HEADERS, deadline_ms

FRAMES: list[Frame] = [
    Open(1, "greeter", "hello", "unary"),
    Open(2**64 - 1, "s", "e", "bidi", 1500, {"trace": "abc", "k": ""}),
    Data(None),
    Data({"a": [1, -2, 3.5, b"\x00", "t", True, None], b"k": {}}),
    End(),
    Status(),
    Status("not_found", "no such thing", {"id": 7}),
    Cancel("deadline_exceeded"),
    Cancel(""),
]


def payload(frame_bytes: bytes) -> bytes:
    reader = FrameReader()
    reader.feed(frame_bytes)
    out = reader.next_payload()
    assert out is not None and reader.buffered == 0
    return out


@pytest.mark.parametrize("frame", FRAMES, ids=lambda f: type(f).__name__)
def test_round_trip(frame: Any) -> None:
    data = encode_frame(frame)
    reader = FrameReader()
    reader.feed(data[:1])
    assert reader.next_frame() is None or len(data) == 1
    reader.feed(data[1:])
    assert reader.next_frame() == frame
    assert reader.next_frame() is None


def test_wire_layout() -> None:
    assert payload(encode_frame(End(), call_id=7)) == cbor2.dumps([2, 7])
    assert payload(encode_frame(Data(5), call_id=300)) == cbor2.dumps([1, 300, 5])
    assert payload(encode_frame(Data(b"x"), call_id=2**40)) == cbor2.dumps([1, 2**40, b"x"])
    assert payload(encode_frame(Status(), call_id=1)) == cbor2.dumps([3, 1, "ok", "", None])
    assert payload(encode_frame(Cancel("x"), call_id=2)) == cbor2.dumps([4, 2, "x"])
    assert payload(encode_frame(Open(9, "s", "e", "unary", 10, {"a": "b"}))) == cbor2.dumps(
        [0, 9, PROTOCOL_VERSION, "s", "e", "unary", 10, {"a": "b"}]
    )
    assert payload(encode_frame(End())) == cbor2.dumps([2, 0])  # no id given: call 0
    with pytest.raises(LocalProtocolError):
        encode_frame(Open(9, "s", "e", "unary"), call_id=8)  # an Open carries its own id


def test_several_frames_in_one_chunk() -> None:
    reader = FrameReader()
    reader.feed(b"".join(encode_frame(f) for f in FRAMES))
    got = []
    while (f := reader.next_frame()) is not None:
        got.append(f)
    assert got == FRAMES


def test_body_size_limit_is_exact_on_both_sides() -> None:
    limit = 2000
    body = b"x" * (limit - 3)  # bytes of 1997: a 3-byte CBOR header, 2000 bytes in all
    assert len(cbor2.dumps(body)) == limit
    data = encode_frame(Data(body), limit)
    assert decode_frame(payload(data), limit) == Data(body)
    with pytest.raises(MessageTooLarge):
        encode_frame(Data(body + b"y"), limit)
    over = encode_frame(Data(body + b"y"), limit + 10)
    with pytest.raises(MessageTooLarge):
        decode_frame(payload(over), limit)


def test_oversized_prefix_is_refused_before_buffering() -> None:
    reader = FrameReader(1024)
    reader.feed(encode_varint(1024 + FRAME_OVERHEAD + 1))  # no payload at all yet
    with pytest.raises(MessageTooLarge):
        reader.next_frame()
    reader = FrameReader()
    reader.feed(b"\xff" * 10)
    with pytest.raises(RemoteProtocolError):
        reader.next_frame()


@pytest.mark.parametrize(
    "item",
    [
        [9],  # unknown type
        ["1", 5],  # type not an int
        [],  # empty
        {"t": 1},  # not an array
        7,
        [1],  # Data without a body
        [2, None],  # End with a field
        [3, "ok", ""],  # Status short
        [4, 5],  # reason not text
        [3, "", "m", None],  # empty code
        [3, "x", 5, None],  # message not text
        [0, 2, 1, "s", "e", "unary", None, {}],  # version 2
        [0, 1, -1, "s", "e", "unary", None, {}],  # negative call id
        [0, 1, 2**64, "s", "e", "unary", None, {}],  # call id too big
        [0, 1, 1, "", "e", "unary", None, {}],  # empty service
        [0, 1, 1, "s", 3, "unary", None, {}],  # endpoint not text
        [0, 1, 1, "s", "e", "stream", None, {}],  # unknown kind
        [0, 1, 1, "s", "e", "unary", -5, {}],  # negative deadline
        [0, 1, 1, "s", "e", "unary", 1.5, {}],  # deadline not an int
        [0, 1, 1, "s", "e", "unary", True, {}],  # deadline a bool
        [0, 1, 1, "s", "e", "unary", None, []],  # headers not a map
        [0, 1, 1, "s", "e", "unary", None, {"a": 1}],  # header value not text
        [0, 1, 1, "s", "e", "unary", None, {"": "x"}],  # empty header name
        [0, 1, 1, "s", "e", "unary", None, {f"h{i}": "" for i in range(MAX_HEADERS + 1)}],
        [0, 1, 1, "s", "e", "unary", None, {"big": "x" * 20000}],
        [0, 1, 1, "s" * 300, "e", "unary", None, {}],  # name too long
        [1, datetime.datetime(2020, 1, 1, tzinfo=datetime.UTC)],  # a tag in the body
        [1, {1, 2}],  # a set
    ],
)
def test_strict_decoding(item: Any) -> None:
    with pytest.raises(RemoteProtocolError):
        decode_frame(cbor2.dumps(item))


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"\xff",
        cbor2.dumps([2]) + b"\x00",  # trailing bytes
        b"\x9f\x02\xff",  # indefinite-length array
        b"\x82\x01\xa2\x61a\x01\x61a\x02",  # duplicate map key
        b"\x82\x01\xa1\x01\x02",  # integer map key
        b"\x82\x01" + b"\x81" * (MAX_DEPTH + 5) + b"\x00",  # too deep
    ],
)
def test_garbage_is_a_remote_protocol_error(raw: bytes) -> None:
    with pytest.raises(RemoteProtocolError):
        decode_frame(raw)


def test_encoding_checks_what_it_sends() -> None:
    bad: list[Frame] = [
        Data(datetime.date(2020, 1, 1)),
        Data({1: "int key"}),
        Data(object()),
        Open(1, "s", "e", "nope"),  # type: ignore[arg-type]
        Open(1, "", "e", "unary"),
        Open(1, "s", "e", "unary", -1),
        Open(1, "s", "e", "unary", headers={f"h{i}": "" for i in range(MAX_HEADERS + 1)}),
        Status(""),
        Status("x", "m", {2: 3}),
    ]
    for frame in bad:
        with pytest.raises(LocalProtocolError):
            encode_frame(frame)
    nested: Any = 0
    for _ in range(MAX_DEPTH + 1):
        nested = [nested]
    with pytest.raises(LocalProtocolError):
        encode_frame(Data(nested))
    assert decode_frame(payload(encode_frame(Data((1, 2))))) == Data([1, 2])  # tuple -> array


def test_deadline_ms_rounds_up_and_never_goes_negative() -> None:
    assert deadline_ms(None) is None
    assert deadline_ms(float("inf")) is None
    assert deadline_ms(1.0) == 1000
    assert deadline_ms(0.0001) == 1
    assert deadline_ms(-3) == 0
