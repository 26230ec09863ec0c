"""Broker events: signing, id derivation, limits, forgery."""

from __future__ import annotations

import cbor2
import pytest

from micronetwork.broker import InvalidEvent, event_id, open_event, seal_event, valid_topic
from micronetwork.broker.event import (
    DOMAIN,
    EVENT_PAYLOAD_TYPE,
    MAX_HEADER_BYTES,
    MAX_HEADERS,
    MAX_PAYLOAD,
)
from micronetwork.errors import SignatureError, ValidationError
from micronetwork.identity.envelope import seal
from micronetwork.identity.keys import KeyPair

A = KeyPair.from_seed(b"\x01" * 32)
B = KeyPair.from_seed(b"\x02" * 32)


def test_round_trip_and_id() -> None:
    ev = seal_event(A, "orders", 3, 1000.5, b"hi", {"k": "v"})
    got = open_event(ev.signed)
    assert got == ev and got.signed == ev.signed
    assert (got.topic, got.publisher, got.seq, got.prev, got.time) == (
        "orders", A.peer_id, 3, 2, 1000.5)
    assert got.headers == {"k": "v"} and got.payload == b"hi"
    assert got.id == event_id(A.peer_id, "orders", 3) and len(got.id) == 32
    assert event_id(A.peer_id, "orders", 4) != got.id
    assert event_id(B.peer_id, "orders", 3) != got.id
    assert hash(got) == hash(ev)
    assert "payload" in repr(got) and "signed" not in repr(got)


def test_topic_rules() -> None:
    assert valid_topic("a") and valid_topic("orders.eu-1_x") and valid_topic("x" * 128)
    for bad in ("", "A", "-a", "a/b", "x" * 129, "a b", 5):
        assert not valid_topic(bad)
        if isinstance(bad, str):
            with pytest.raises(InvalidEvent) as exc:
                seal_event(A, bad, 1, 0.0, b"")
            assert exc.value.reason == "topic"


def test_limits() -> None:
    seal_event(A, "t", 1, 0.0, b"x" * MAX_PAYLOAD)
    with pytest.raises(InvalidEvent) as exc:
        seal_event(A, "t", 1, 0.0, b"x" * (MAX_PAYLOAD + 1))
    assert exc.value.reason == "oversized"
    seal_event(A, "t", 1, 0.0, b"", {f"h{i}": "" for i in range(MAX_HEADERS)})
    with pytest.raises(InvalidEvent, match="headers"):
        seal_event(A, "t", 1, 0.0, b"", {f"h{i}": "" for i in range(MAX_HEADERS + 1)})
    with pytest.raises(InvalidEvent) as exc:
        seal_event(A, "t", 1, 0.0, b"", {"k": "v" * MAX_HEADER_BYTES})
    assert exc.value.reason == "oversized"
    for seq, prev in ((0, None), (-1, None), (2, 2), (2, -1)):
        with pytest.raises(ValidationError):
            seal_event(A, "t", seq, 0.0, b"", prev=prev)
    for t in (float("nan"), float("inf"), -1.0):
        with pytest.raises(InvalidEvent):
            seal_event(A, "t", 1, t, b"")


def _wire(**over: object) -> dict[str, object]:
    base: dict[str, object] = {
        "v": 1, "topic": "t", "publisher": bytes(A.peer_id), "seq": 1, "prev": 0,
        "time": 1.0, "headers": {}, "payload": b"",
    }
    base.update(over)
    return base


def test_forged_and_malformed_are_rejected() -> None:
    # B signs an event naming A as its publisher
    forged = seal(B, DOMAIN, EVENT_PAYLOAD_TYPE, _wire())
    with pytest.raises(SignatureError):
        open_event(forged)
    # one byte changed
    good = seal_event(A, "t", 1, 0.0, b"payload").signed
    tampered = bytearray(good)
    tampered[-70] ^= 1
    with pytest.raises((SignatureError, ValidationError)):
        open_event(bytes(tampered))
    # another domain
    other = seal(A, "micronetwork-registry", EVENT_PAYLOAD_TYPE, _wire())
    with pytest.raises(SignatureError):
        open_event(other)
    # bad fields, signed properly by A
    for over in (
        {"v": 2}, {"seq": 0}, {"seq": "1"}, {"prev": 1}, {"time": "x"}, {"topic": "A"},
        {"headers": {"k": 1}}, {"headers": [1]}, {"payload": "text"}, {"publisher": b""},
        {"headers": {f"h{i}": "" for i in range(65)}},
    ):
        with pytest.raises(ValidationError):
            open_event(seal(A, DOMAIN, EVENT_PAYLOAD_TYPE, _wire(**over)))
    for garbage in (b"", b"\xff\xff", cbor2.dumps([1, 2, 3]), b"x" * (1 << 20)):
        with pytest.raises((SignatureError, ValidationError)):
            open_event(garbage)
