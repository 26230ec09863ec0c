"""Hypothesis: RPC frame decoding and the call state machine never fail with anything but our
own errors, whatever bytes a peer sends; plain data round-trips."""

from __future__ import annotations

from typing import Any

import cbor2
from hypothesis import given, settings
from hypothesis import strategies as st

from micronetwork.errors import MessageTooLarge, RemoteProtocolError
from micronetwork.rpc import Data, FrameReader, Open, Role, RpcCall, decode_frame, encode_frame

OURS = (RemoteProtocolError, MessageTooLarge)

plain: st.SearchStrategy[Any] = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**64), 2**64) | st.text() | st.binary()
    | st.floats(allow_nan=False),
    lambda children: st.lists(children, max_size=5)
    | st.dictionaries(st.text(max_size=8) | st.binary(max_size=8), children, max_size=5),
    max_leaves=30,
)

# CBOR items that look like frames: right type tags, arbitrary fields.
frame_like = st.lists(
    st.integers(0, 5) | st.none() | st.text(max_size=10) | st.integers() | plain, max_size=9
).map(cbor2.dumps)


@given(st.binary(max_size=300))
@settings(max_examples=300)
def test_random_payloads_raise_only_our_errors(data: bytes) -> None:
    try:
        decode_frame(data, 1024)
    except OURS:
        pass


@given(frame_like)
@settings(max_examples=150)
def test_frame_like_cbor_raises_only_our_errors(data: bytes) -> None:
    try:
        decode_frame(data, 1024)
    except OURS:
        pass


@given(st.lists(st.binary(max_size=64), max_size=20))
def test_reader_on_random_chunks_raises_only_our_errors(chunks: list[bytes]) -> None:
    reader = FrameReader(1024)
    try:
        for chunk in chunks:
            reader.feed(chunk)
            while reader.next_frame() is not None:
                pass
    except OURS:
        pass


@given(plain)
def test_plain_data_round_trips(body: Any) -> None:
    reader = FrameReader()
    reader.feed(encode_frame(Data(body)))
    assert reader.next_frame() == Data(body)


@given(st.binary(max_size=200), st.integers(0, 200), st.integers(0, 255))
def test_a_server_fed_corrupted_calls_raises_only_our_errors(
    junk: bytes, where: int, byte: int
) -> None:
    wire = bytearray(
        encode_frame(Open(1, "svc", "ep", "bidi", 100, {"a": "b"}))
        + encode_frame(Data({"x": [1, 2]}))
        + junk
    )
    if wire:
        wire[where % len(wire)] = byte
    server = RpcCall(Role.SERVER, max_message_size=1024)
    server.receive_data(bytes(wire))
    try:
        while server.next_frame(0.0) is not None:
            pass
        server.receive_eof()
    except OURS:
        pass
