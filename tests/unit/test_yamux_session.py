"""The sans-IO yamux session: two sessions wired back to back, and bad input."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from micronetwork.errors import RemoteProtocolError
from micronetwork.yamux.session import (
    ACK,
    DATA,
    FIN,
    GO_AWAY,
    HEADER,
    INITIAL_WINDOW,
    PING,
    RST,
    SYN,
    WINDOW_UPDATE,
    GoAway,
    Pong,
    StreamData,
    StreamEnded,
    StreamOpened,
    StreamReset,
    WindowOpened,
    YamuxSession,
)


def pair() -> tuple[YamuxSession, YamuxSession]:
    return YamuxSession(is_initiator=True), YamuxSession(is_initiator=False)


def deliver(src: YamuxSession, dst: YamuxSession) -> list[object]:
    return list(dst.receive(src.take_output()))


def test_open_send_close_both_ways() -> None:
    a, b = pair()
    sid = a.open_stream()
    assert sid == 1 and a.open_stream() == 3
    assert a.send(sid, b"hello") == 5
    events = deliver(a, b)
    assert events == [StreamOpened(1), StreamOpened(3), StreamData(1, b"hello")]
    assert b.open_stream() == 2  # the listener's ids are even
    # b's ACKs and the new SYN reach a
    assert deliver(b, a) == [StreamOpened(2)]
    assert a.close_stream(sid) is False  # half-closed: b may still send
    assert deliver(a, b) == [StreamEnded(1)]
    assert b.send(1, b"bye") == 3
    assert b.close_stream(1) is True  # closed both ways: forgotten at b
    assert deliver(b, a) == [StreamData(1, b"bye"), StreamEnded(1)]
    assert not a.is_open(1) and not b.is_open(1)


def test_the_window_bounds_what_is_sent_and_consuming_reopens_it() -> None:
    a, b = pair()
    sid = a.open_stream()
    big = b"x" * (INITIAL_WINDOW + 1000)
    assert a.send(sid, big) == INITIAL_WINDOW
    assert a.send(sid, b"more") == 0 and a.send_credit(sid) == 0
    events = deliver(a, b)
    assert sum(len(e.data) for e in events if isinstance(e, StreamData)) == INITIAL_WINDOW
    # each DATA frame fits one Noise message
    assert all(len(e.data) <= 65519 - 12 for e in events if isinstance(e, StreamData))
    b.consumed(sid, INITIAL_WINDOW // 2 - 1)
    assert b.output_size == 12  # only the ACK of the SYN: no update below half a window
    b.consumed(sid, 1)
    assert deliver(b, a) == [WindowOpened(sid)]
    assert a.send_credit(sid) == INITIAL_WINDOW // 2


def test_a_peer_that_overruns_the_window_is_a_protocol_error() -> None:
    a, b = pair()
    sid = a.open_stream()
    b.receive(a.take_output())
    frame = HEADER.pack(0, DATA, 0, sid, INITIAL_WINDOW + 1) + b"\0" * (INITIAL_WINDOW + 1)
    with pytest.raises(RemoteProtocolError, match="over its window"):
        b.receive(frame)
    assert HEADER.unpack_from(b.take_output(), 12)[1] == GO_AWAY  # after the ACK


@pytest.mark.parametrize(
    ("frame", "match"),
    [
        (HEADER.pack(1, DATA, SYN, 1, 0), "version"),
        (HEADER.pack(0, 9, 0, 1, 0), "frame type"),
        (HEADER.pack(0, WINDOW_UPDATE, SYN, 2, 0), "parity"),  # the dialer's ids are odd
        (HEADER.pack(0, WINDOW_UPDATE, SYN, 0, 0), "parity"),
    ],
)
def test_malformed_frames_are_rejected(frame: bytes, match: str) -> None:
    _, b = pair()
    with pytest.raises(RemoteProtocolError, match=match):
        b.receive(frame)


def test_a_second_syn_for_an_open_stream_is_rejected() -> None:
    a, b = pair()
    a.open_stream()
    b.receive(a.take_output())
    with pytest.raises(RemoteProtocolError, match="open"):
        b.receive(HEADER.pack(0, WINDOW_UPDATE, SYN, 1, 0))


def test_data_after_fin_is_rejected_and_frames_for_forgotten_streams_ignored() -> None:
    a, b = pair()
    sid = a.open_stream()
    a.close_stream(sid)
    b.receive(a.take_output())
    with pytest.raises(RemoteProtocolError, match="after its FIN"):
        b.receive(HEADER.pack(0, DATA, 0, sid, 1) + b"x")
    _, c = pair()
    assert c.receive(HEADER.pack(0, DATA, 0, 7, 2) + b"xy") == []  # never opened: ignored


def test_reset_both_ways() -> None:
    a, b = pair()
    sid = a.open_stream()
    b.receive(a.take_output())
    b.reset_stream(sid)
    assert deliver(b, a) == [StreamReset(sid)]
    assert not a.is_open(sid)
    with pytest.raises(RemoteProtocolError, match="not open"):
        a.send(sid, b"late")


def test_ping_is_answered_and_go_away_refuses_new_streams() -> None:
    a, b = pair()
    value = a.ping()
    assert deliver(a, b) == []
    assert deliver(b, a) == [Pong(value)]
    b.go_away()
    assert deliver(b, a) == [GoAway(0)]
    with pytest.raises(RemoteProtocolError, match="going away"):
        a.open_stream()
    # a SYN that crosses our GO_AWAY is refused with RST
    c, d = pair()
    c.open_stream()
    d.go_away()
    assert d.receive(c.take_output()) == []
    out = d.take_output()
    assert HEADER.unpack_from(out, 12)[2] == RST


def test_streams_beyond_the_limit_are_refused() -> None:
    a = YamuxSession(is_initiator=True)
    b = YamuxSession(is_initiator=False, max_streams=2)
    for _ in range(3):
        a.open_stream()
    assert deliver(a, b) == [StreamOpened(1), StreamOpened(3)]
    out = b.take_output()
    flags = [HEADER.unpack_from(out, i)[2] for i in range(0, len(out), 12)]
    assert flags == [ACK, ACK, RST]


def test_a_larger_window_is_announced_with_the_syn() -> None:
    a = YamuxSession(is_initiator=True, window=1 << 20)
    b = YamuxSession(is_initiator=False)
    sid = a.open_stream()
    b.receive(a.take_output())
    assert b.send(sid, b"x" * (2 << 20)) == 1 << 20
    with pytest.raises(ValueError):
        YamuxSession(is_initiator=True, window=1000)


@given(sizes=st.lists(st.integers(min_value=0, max_value=70_000), min_size=1, max_size=6),
       cuts=st.lists(st.integers(min_value=1, max_value=5000), min_size=1, max_size=40))
def test_any_split_of_the_byte_stream_gives_the_same_data(sizes: list[int],
                                                          cuts: list[int]) -> None:
    a, b = pair()
    sid = a.open_stream()
    payload = bytes(i % 251 for i in range(sum(sizes)))
    pos = 0
    for size in sizes:
        pos += a.send(sid, payload[pos:pos + size])
    a.close_stream(sid)
    wire = a.take_output()
    got = bytearray()
    ended = False
    i = 0
    for cut in cuts * (len(wire) // max(1, sum(cuts)) + 1):
        for ev in b.receive(wire[i:i + cut]):
            if isinstance(ev, StreamData):
                got += ev.data
            elif isinstance(ev, StreamEnded):
                ended = True
        i += cut
        if i >= len(wire):
            break
    assert bytes(got) == payload[:pos] and ended
    assert FIN and PING  # the constants the wire format names
