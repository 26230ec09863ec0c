"""The data path's buffers: the RPC frame reader (chunks kept as they arrive, frames decoded
from views), the Data fast path, the outbox, the yamux session's output buffer and the Noise
message reader. Whatever the split of the byte stream, the same frames come out."""

from __future__ import annotations

from collections import Counter
from typing import Any

import cbor2
import pytest
import trio
import trio.testing
from hypothesis import given, settings
from hypothesis import strategies as st

from micronetwork._buffers import after
from micronetwork.errors import MessageTooLarge, RemoteProtocolError
from micronetwork.framing import encode_varint
from micronetwork.host._noiseio import NoiseFrames
from micronetwork.host.rpc._outbox import Outbox
from micronetwork.rpc import Cancel, Data, End, Frame, FrameReader, Status, encode_frame
from micronetwork.rpc import frames as frames_module
from micronetwork.rpc.frames import FRAME_OVERHEAD, OversizedFrame, decode_item
from micronetwork.yamux.session import StreamData, YamuxSession

bodies = st.one_of(
    st.binary(max_size=3000),
    st.just(b"\x07" * 70_000),
    st.text(max_size=50),
    st.integers(),
    st.none(),
    st.lists(st.binary(max_size=40), max_size=4),
    st.dictionaries(st.text(max_size=8), st.integers(), max_size=4),
)
frames = st.one_of(
    st.builds(Data, bodies),
    st.just(End()),
    st.just(Status()),
    st.builds(Status, st.just("not_found"), st.text(max_size=20)),
    st.builds(Cancel, st.text(max_size=20)),
)


def _split(data: bytes, cuts: list[int]) -> list[bytes]:
    out, i = [], 0
    for cut in cuts * (len(data) // max(1, sum(cuts)) + 1):
        if i >= len(data):
            break
        out.append(data[i:i + cut])
        i += cut
    if i < len(data):
        out.append(data[i:])
    return out


@given(items=st.lists(st.tuples(st.integers(0, 2**64 - 1), frames), min_size=1, max_size=8),
       cuts=st.lists(st.integers(min_value=1, max_value=90_000), min_size=1, max_size=30),
       kind=st.sampled_from(["bytes", "bytearray"]))
@settings(max_examples=150, deadline=None)
def test_any_split_of_the_stream_gives_the_same_frames(
    items: list[tuple[int, Frame]], cuts: list[int], kind: str
) -> None:
    wire = b"".join(encode_frame(f, call_id=cid) for cid, f in items)
    reader = FrameReader(skip_oversized=True)
    got = []
    for chunk in _split(wire, cuts):
        reader.feed(bytearray(chunk) if kind == "bytearray" else chunk)  # type: ignore[arg-type]
        while (item := reader.next_item()) is not None:
            got.append(item)
    expected = [(cid, Data(list(f.body)) if isinstance(f, Data) and isinstance(f.body, tuple)
                 else f) for cid, f in items]
    assert got == expected
    assert reader.buffered == 0


@given(items=st.lists(frames, min_size=1, max_size=6),
       cuts=st.lists(st.integers(min_value=1, max_value=90_000), min_size=1, max_size=30))
@settings(max_examples=50, deadline=None)
def test_next_payload_gives_each_payload_once(items: list[Frame], cuts: list[int]) -> None:
    encoded = [encode_frame(f) for f in items]
    reader = FrameReader()
    got = []
    for chunk in _split(b"".join(encoded), cuts):
        reader.feed(chunk)
        while (p := reader.next_payload()) is not None:
            assert type(p) is bytes
            got.append(p)
    assert [encode_varint(len(p)) + p for p in got] == encoded


def test_a_fed_bytearray_is_not_kept_or_changed() -> None:
    frame = encode_frame(Data(b"abc" * 100), call_id=3)
    chunk = bytearray(frame[:50])
    reader = FrameReader()
    reader.feed(chunk)  # type: ignore[arg-type]
    chunk[:] = b"\xff" * 50  # the caller reuses its buffer
    reader.feed(frame[50:])
    assert reader.next_item() == (3, Data(b"abc" * 100))
    assert chunk == bytearray(b"\xff" * 50)


@pytest.mark.parametrize("size", [0, 1, 23, 24, 255, 256, 65535, 65536, 70_000])
@pytest.mark.parametrize("call_id", [0, 23, 24, 255, 256, 65536, 2**32, 2**64 - 1])
def test_bytes_bodies_are_encoded_as_cbor2_would(size: int, call_id: int) -> None:
    body = bytes(range(256)) * (size // 256) + bytes(size % 256)
    payload = cbor2.dumps([1, call_id, body])
    assert encode_frame(Data(body), call_id=call_id) == encode_varint(len(payload)) + payload
    assert decode_item(payload) == (call_id, Data(body))
    assert decode_item(memoryview(payload)) == (call_id, Data(body))


def _head(major: int, n: int, width: int) -> bytes:
    if width == 0:
        return bytes((major | n,))
    code = {1: 24, 2: 25, 4: 26, 8: 27}[width]
    return bytes((major | code,)) + n.to_bytes(width, "big")


def _outcome(payload: bytes) -> Any:
    try:
        return decode_item(payload, 100)
    except MessageTooLarge as exc:
        return type(exc), getattr(exc, "call_id", None)
    except RemoteProtocolError as exc:
        return type(exc)


@given(call_id=st.integers(0, 300), id_width=st.sampled_from([0, 1, 2, 4, 8]),
       size=st.integers(0, 120), len_width=st.sampled_from([0, 1, 2, 4, 8]),
       tail=st.binary(max_size=3), cut=st.integers(0, 3), head=st.binary(max_size=2))
def test_the_data_fast_path_agrees_with_the_full_decoder(
    call_id: int, id_width: int, size: int, len_width: int, tail: bytes, cut: int, head: bytes
) -> None:
    """Any head width cbor2 accepts gives the same frame; trailing or missing bytes, and
    bodies over the limit, are refused as the full decoder refuses them."""
    if (id_width == 0 and call_id > 23) or (id_width == 1 and call_id > 255):
        id_width = 2
    if (len_width == 0 and size > 23) or (len_width == 1 and size > 255):
        len_width = 2
    body = bytes(range(size))
    payload = (head or b"\x83\x01") + _head(0, call_id, id_width) \
        + _head(0x40, size, len_width) + body
    payload = payload[:len(payload) - cut] + tail
    fast = _outcome(payload)
    with pytest.MonkeyPatch.context() as m:
        m.setattr(frames_module, "_data_bytes_at", lambda payload: None)
        full = _outcome(payload)
    assert fast == full


def test_an_oversized_data_body_is_skipped_and_the_reader_goes_on() -> None:
    """A Data body just over the limit (within the frame overhead) is refused after decoding,
    while the reader's own buffer was viewed; that buffer can still grow afterwards, even with
    the error (and its traceback) kept, as the stream keeps it in its event."""
    limit = 1000
    small = encode_frame(Data(b"a"), call_id=4)
    big = encode_frame(Data(b"x" * (limit + 10)), call_id=5, max_message_size=limit + 20)
    after = encode_frame(Data(b"y" * 900), call_id=6)
    reader = FrameReader(limit, skip_oversized=True)
    reader.feed(small[:2])
    reader.feed(small[2:] + big[:7])  # our bytearray from here on
    reader.feed(big[7:] + after[:10])
    assert reader.next_item() == (4, Data(b"a"))
    with pytest.raises(OversizedFrame) as caught:
        reader.next_item()
    kept = caught.value
    assert kept.call_id == 5
    reader.feed(after[10:500])
    reader.feed(after[500:])
    assert reader.next_item() == (6, Data(b"y" * 900))
    assert reader.next_item() is None and reader.buffered == 0


def test_frames_over_the_limit_are_still_refused_before_buffering() -> None:
    reader = FrameReader(100)
    reader.feed(encode_varint(100 + FRAME_OVERHEAD + 1))
    with pytest.raises(MessageTooLarge):
        reader.next_item()


# -- the outbox -------------------------------------------------------------------------------


class _Sink:
    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.gate = trio.Event()

    async def write(self, data: bytes) -> None:
        await self.gate.wait()
        self.writes.append(bytes(data))

    async def close(self) -> None:
        await trio.lowlevel.checkpoint()


async def test_the_outbox_writes_what_was_queued_in_order_and_drains() -> None:
    sink = _Sink()
    box = Outbox(sink, Counter(), high_water=10)
    box.put(b"abc")
    box.put_many([b"de", b"", b"fghijkl"])
    assert box.buffered == 12
    drained = []

    async def waiter(i: int) -> None:
        await box.drain()
        drained.append(i)

    async with trio.open_nursery() as nursery:
        for i in range(3):
            nursery.start_soon(waiter, i)
        await trio.testing.wait_all_tasks_blocked()
        nursery.start_soon(box.run)
        await trio.testing.wait_all_tasks_blocked()
        assert drained == [] and box.buffered == 0  # taken by the writer, not yet written
        box.put(b"m" * 11)  # over the high water again while the first write waits
        sink.gate.set()
        await trio.testing.wait_all_tasks_blocked()
        assert sorted(drained) == [0, 1, 2] and box.buffered == 0
        box.close()
    assert sink.writes == [b"abcdefghijkl", b"m" * 11]


# -- yamux output, Noise input ----------------------------------------------------------------


def test_yamux_output_parts_and_views() -> None:
    a, b = YamuxSession(is_initiator=True), YamuxSession(is_initiator=False)
    sid = a.open_stream()
    b.receive(b"".join(a.take_output_parts()))
    data = bytearray(b"z" * 70_000)
    assert a.send(sid, memoryview(data)) == 70_000
    assert a.output_size == 70_000 + 2 * 12  # two DATA frames
    out = a.take_output_parts()
    data[:] = b"q" * 70_000  # the sender's buffer was copied
    assert a.output_size == 0 and a.take_output() == b""
    got = b"".join(ev.data for ev in b.receive(b"".join(out)) if isinstance(ev, StreamData))
    assert got == b"z" * 70_000
    body = b"y" * 100_000  # immutable: queued as views of it, not copied
    assert a.send(sid, body) == 100_000
    parts = a.take_output_parts()
    views = [p for p in parts if isinstance(p, memoryview)]
    assert len(parts) == 4 and len(views) == 2 and all(v.obj is body for v in views)
    small = b"s" * 10  # a whole small body is queued as it is
    assert a.send(sid, small) == 10
    assert a.take_output_parts()[1] is small


@given(sizes=st.lists(st.sampled_from([0, 1, 11, 65507, 65508, 70_000]) | st.integers(0, 200_000),
                      min_size=1, max_size=5),
       views=st.lists(st.booleans(), min_size=5, max_size=5))
@settings(max_examples=60, deadline=None)
def test_yamux_send_parts_frames_them_as_one_string(sizes: list[int], views: list[bool]) -> None:
    """Frames cut across the parts are those of one send of the parts joined (the window
    included: a send stops at the credit, and the rest follows once it is granted)."""
    parts: list[bytes | memoryview] = [
        memoryview(bytes([i + 1]) * n) if views[i] else bytes([i + 1]) * n
        for i, n in enumerate(sizes)]
    joined = b"".join(bytes(p) for p in parts)
    a, b = YamuxSession(is_initiator=True), YamuxSession(is_initiator=True)
    sa, sb = a.open_stream(), b.open_stream()
    rest: list[bytes | memoryview] = [p for p in parts if len(p)]
    sent = a.send_parts(sa, rest)
    assert sent == b.send(sb, joined) == min(len(joined), 256 * 1024)
    size = a.output_size
    wire_a, wire_b = b"".join(a.take_output_parts()), b.take_output()
    assert wire_a == wire_b and len(wire_a) == size and a.output_size == 0
    assert b"".join(bytes(p) for p in after(rest, sent)) == joined[sent:]


def test_after_drops_the_first_bytes_without_copies() -> None:
    body = b"abcdef"
    rest = after([b"xy", body, b"z"], 4)
    assert [bytes(p) for p in rest] == [b"cdef", b"z"]
    assert isinstance(rest[0], memoryview) and rest[0].obj is body
    assert after([b"xy", b"z"], 3) == [] and after([b"xy"], 0) == [b"xy"]


class _FakeSock:
    def __init__(self, chunks: list[bytes]) -> None:
        self._chunks = chunks

    async def receive_some(self, n: int) -> bytes:
        await trio.lowlevel.checkpoint()
        return self._chunks.pop(0) if self._chunks else b""

    async def send_all(self, data: Any) -> None:
        await trio.lowlevel.checkpoint()
        self._chunks.append(bytes(data))


class _Plain:
    """A stand-in Noise session: "encryption" appends a 16-byte tag."""

    def encrypt(self, data: bytes) -> bytes:
        assert type(data) is bytes
        return data + b"T" * 16

    def decrypt(self, data: bytes) -> bytes:
        assert type(data) is bytes and data.endswith(b"T" * 16)
        return data[:-16]


@given(sizes=st.lists(st.integers(0, 150_000), min_size=1, max_size=6),
       groups=st.lists(st.integers(1, 3), min_size=1, max_size=6),
       cuts=st.lists(st.integers(min_value=1, max_value=300_000), min_size=1, max_size=20))
@settings(max_examples=60, deadline=None)
def test_noise_messages_split_anyhow_give_the_same_plaintext(
        sizes: list[int], groups: list[int], cuts: list[int]) -> None:
    """Writes of several parts (bytes, views of bytes, empty ones) however they are cut into
    messages, read back however the socket splits them: the same plaintext, and no message
    over the limit."""
    async def main() -> None:
        out = _FakeSock([])
        writer = NoiseFrames(out, _Plain())  # type: ignore[arg-type]
        plain = [bytes([i % 256]) * size for i, size in enumerate(sizes)]
        parts: list[bytes | memoryview] = [memoryview(p)[1:] if len(p) % 2 else p for p in plain]
        pos, g = 0, 0
        while pos < len(parts):
            n = groups[g % len(groups)]
            await writer.write(parts[pos:pos + n])
            pos, g = pos + n, g + 1
        wire = b"".join(out._chunks)
        at, lengths = 0, []
        while at < len(wire):
            n = int.from_bytes(wire[at:at + 2], "big")
            lengths.append(n)
            at += 2 + n
        assert at == len(wire) and all(16 < n <= 65535 for n in lengths)
        reader = NoiseFrames(_FakeSock(_split(wire, cuts)),  # type: ignore[arg-type]
                             _Plain(), leftover=b"left")
        got = bytearray()
        while data := await reader.read():
            got += data
        assert bytes(got) == b"left" + b"".join(bytes(p) for p in parts)

    trio.run(main)


@given(sizes=st.lists(st.integers(min_value=0, max_value=150_000), min_size=1, max_size=6),
       cuts=st.lists(st.sampled_from([1, 5, 11, 12, 13, 4096, 4097, 65519, 65531, 200_000])
                     | st.integers(min_value=1, max_value=300_000), min_size=1, max_size=30))
@settings(max_examples=80, deadline=None)
def test_yamux_reads_of_any_size_give_the_same_events(sizes: list[int], cuts: list[int]) -> None:
    """Large reads take from an unfinished frame only what it lacks, then read the rest in
    place; the events are those of one read of everything."""
    a = YamuxSession(is_initiator=True, window=1 << 20)
    sid = a.open_stream()
    payload = bytes(i % 251 for i in range(sum(sizes)))
    pos = 0
    for size in sizes:
        pos += a.send(sid, payload[pos:pos + size])
        a.ping()
    a.close_stream(sid)
    wire = a.take_output()
    whole = YamuxSession(is_initiator=False, window=1 << 20)
    expected = whole.receive(wire)
    b = YamuxSession(is_initiator=False, window=1 << 20)
    got: list[object] = []
    for chunk in _split(wire, cuts):
        got.extend(b.receive(chunk))
    assert got == expected and b.take_output() == whole.take_output()
    assert b"".join(ev.data for ev in got if isinstance(ev, StreamData)) == payload[:pos]


def _drain_reader(reader: FrameReader, out: list[object]) -> None:
    while True:
        try:
            item = reader.next_item()
        except OversizedFrame as exc:
            out.append(("oversized", exc.call_id, exc.frame_type))
            continue
        if item is None:
            return
        out.append(item)


@given(items=st.lists(st.tuples(st.integers(0, 300),
                                st.sampled_from([0, 10, 500, 1500, 70_000, 200_000])),
                      min_size=1, max_size=6),
       cuts=st.lists(st.sampled_from([1, 2, 3, 7, 11, 100, 1024, 65507])
                     | st.integers(min_value=1, max_value=250_000), min_size=1, max_size=30))
@settings(max_examples=120, deadline=None)
def test_oversized_frames_are_skipped_whatever_the_split(items: list[tuple[int, int]],
                                                         cuts: list[int]) -> None:
    limit = 1000
    wire = b"".join(encode_frame(Data(b"d" * size), call_id=cid, max_message_size=1 << 20)
                    for cid, size in items)
    whole: list[object] = []
    reader = FrameReader(limit, skip_oversized=True)
    reader.feed(wire)
    _drain_reader(reader, whole)
    assert whole == [(cid, Data(b"d" * size)) if size <= limit else ("oversized", cid, 1)
                     for cid, size in items]
    split: list[object] = []
    reader = FrameReader(limit, skip_oversized=True)
    for chunk in _split(wire, cuts):
        reader.feed(chunk)
        _drain_reader(reader, split)
    assert split == whole and reader.buffered == 0
    queued: list[object] = []  # every chunk fed before any is read
    reader = FrameReader(limit, skip_oversized=True)
    for chunk in _split(wire, cuts):
        reader.feed(chunk)
    _drain_reader(reader, queued)
    assert queued == whole and reader.buffered == 0


async def test_noise_writes_go_out_whole_over_a_real_socket() -> None:
    """sendmsg takes the lengths and ciphertexts as they are; when the kernel takes only
    part (its buffer is full), the rest follows."""
    a, b = trio.socket.socketpair()
    left, right = trio.SocketStream(a), trio.SocketStream(b)
    writer = NoiseFrames(left, _Plain())
    reader = NoiseFrames(right, _Plain())
    sizes = [3, 65519, 65520, 3_000_000, 10]
    plain = [bytes([i + 1]) * size for i, size in enumerate(sizes)]
    got = bytearray()

    async def read_all() -> None:
        while len(got) < 2 * sum(sizes):
            for part in await reader.read_parts():
                got.extend(part)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(read_all)
        for p in plain:
            await writer.write([p])
        await writer.write(plain)  # all at once: more than the kernel takes in one sendmsg
    assert bytes(got) == b"".join(plain) * 2
    await left.aclose()
    assert await reader.read_parts() == []
    await right.aclose()


def test_views_fed_are_kept_only_when_they_view_bytes() -> None:
    frame = encode_frame(Data(b"v" * 5000), call_id=9)
    reader = FrameReader()
    backing = bytearray(frame)
    reader.feed(memoryview(backing)[:3000])  # a view of a mutable buffer: copied
    backing[:] = b"\x00" * len(backing)
    reader.feed(memoryview(frame)[3000:])  # a view of bytes: kept
    assert reader.next_item() == (9, Data(b"v" * 5000))
    assert reader.buffered == 0
