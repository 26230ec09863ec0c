"""Broker events: what a publisher signs, and the rules a receiver checks.

An event is a CBOR map inside a signed envelope (:mod:`micronetwork.identity.envelope`, domain
``micronetwork-broker``, payload type ``/micronetwork/broker/event/1``)::

    {"v": 1, "topic": str, "publisher": <peer id bytes>, "seq": int >= 1,
     "prev": int, "time": float (the publisher's wall clock), "headers": {str: str},
     "payload": bytes}

``prev`` is the seq of the publisher's previous event on the topic: ``seq - 1`` normally, lower
when the publisher restarted without its log and jumped to a new seq range (``0``: "I do not
know"). Subscribers treat the seqs between ``prev`` and ``seq`` as never published, so a
restart is not mistaken for lost events.

Only the publisher may sign its events (:func:`open_event` checks signer == publisher), so an
event cannot be forged on someone else's behalf. Its id is not sent: it is derived,
``sha256(len|"micronetwork-broker-event" || len|publisher || len|topic || seq as 8 bytes)``
(:func:`event_id`), so a receiver can name an event it never saw (a gap) and two events with
the same (publisher, topic, seq) are the same event: a publisher that signs two different
events under one seq has the second one dropped as a duplicate everywhere.

Limits, checked before and after decoding: topic names match ``[a-z0-9][a-z0-9._-]{0,127}``;
at most 64 headers and 8 KiB of header text (keys + values, UTF-8); a payload of at most
``MAX_PAYLOAD`` (1 MiB less 16 KiB, so the largest event plus its signatures still fits the
1 MiB gossip frame); the whole envelope at most ``MAX_EVENT_SIZE``.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors import SignatureError, ValidationError
from ..identity.envelope import open_envelope, seal
from ..identity.keys import KeyPair
from ..identity.peerid import PeerId, _varint

__all__ = [
    "DOMAIN",
    "EVENT_PAYLOAD_TYPE",
    "MAX_EVENT_SIZE",
    "MAX_HEADERS",
    "MAX_HEADER_BYTES",
    "MAX_PAYLOAD",
    "Event",
    "InvalidEvent",
    "event_id",
    "open_event",
    "seal_event",
    "valid_topic",
]

DOMAIN = "micronetwork-broker"
EVENT_PAYLOAD_TYPE = b"/micronetwork/broker/event/1"
MAX_HEADERS = 64
MAX_HEADER_BYTES = 8 * 1024
MAX_PAYLOAD = (1 << 20) - 16 * 1024
MAX_EVENT_SIZE = (1 << 20) - 1024
_TOPIC = re.compile(r"[a-z0-9][a-z0-9._-]{0,127}\Z")


class InvalidEvent(ValidationError):
    """An event broke the broker's rules. ``reason`` is the counter it is counted under:
    ``"oversized"`` (payload, headers or envelope over a limit), ``"topic"`` (bad topic name)
    or ``"malformed"`` (anything else)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def valid_topic(topic: object) -> bool:
    """True for a broker topic name: ``[a-z0-9][a-z0-9._-]{0,127}``."""
    return isinstance(topic, str) and _TOPIC.match(topic) is not None


def event_id(publisher: bytes, topic: str, seq: int) -> bytes:
    """The id of the event ``seq`` of ``publisher`` on ``topic`` (32 bytes)."""
    parts = (b"micronetwork-broker-event", bytes(publisher), topic.encode("utf-8"))
    h = hashlib.sha256(b"".join(_varint(len(p)) + p for p in parts))
    h.update(seq.to_bytes(8, "big"))
    return h.digest()


@dataclass(frozen=True, slots=True)
class Event:
    """One published event, verified (or built by :func:`seal_event`).

    ``signed`` is the publisher's envelope, kept so retention nodes can hand the event on
    and any receiver can check it again; it is left out of comparisons and ``repr``.
    """

    id: bytes
    topic: str
    publisher: PeerId
    seq: int
    time: float
    headers: Mapping[str, str]
    payload: bytes
    prev: int = 0
    signed: bytes = field(default=b"", compare=False, repr=False)

    def __hash__(self) -> int:
        return hash(self.id)

    @property
    def size(self) -> int:
        """Bytes the event costs in a retention log (its signed form)."""
        return len(self.signed)


def _check_headers(headers: object) -> dict[str, str]:
    if not isinstance(headers, dict):
        raise InvalidEvent("malformed", "headers must be a map of text to text")
    if len(headers) > MAX_HEADERS:
        raise InvalidEvent("oversized", f"{len(headers)} headers, over {MAX_HEADERS}")
    total = 0
    for k, v in headers.items():
        if not isinstance(k, str) or not isinstance(v, str) or not k:
            raise InvalidEvent("malformed", "headers must be a map of non-empty text to text")
        total += len(k.encode("utf-8")) + len(v.encode("utf-8"))
        if total > MAX_HEADER_BYTES:
            raise InvalidEvent("oversized", f"headers over {MAX_HEADER_BYTES} bytes")
    return dict(headers)


def _check_fields(topic: object, seq: object, time: object, payload: object) -> None:
    if not valid_topic(topic):
        raise InvalidEvent("topic", f"invalid topic name {topic!r}")
    if not isinstance(seq, int) or isinstance(seq, bool) or not 1 <= seq < 1 << 63:
        raise InvalidEvent("malformed", "seq must be an integer >= 1")
    if not isinstance(time, int | float) or isinstance(time, bool) or not math.isfinite(time):
        raise InvalidEvent("malformed", "time must be a finite number")
    if time < 0:
        raise InvalidEvent("malformed", "time must not be negative")
    if not isinstance(payload, bytes):
        raise InvalidEvent("malformed", "payload must be bytes")
    if len(payload) > MAX_PAYLOAD:
        raise InvalidEvent("oversized", f"payload of {len(payload)} bytes, over {MAX_PAYLOAD}")


def _check_prev(prev: object, seq: int) -> None:
    if not isinstance(prev, int) or isinstance(prev, bool) or not 0 <= prev < seq:
        raise InvalidEvent("malformed", "prev must be an integer with 0 <= prev < seq")


def seal_event(
    key: KeyPair,
    topic: str,
    seq: int,
    time: float,
    payload: bytes,
    headers: Mapping[str, str] | None = None,
    prev: int | None = None,
) -> Event:
    """Build and sign an event of ``key``'s node; raises :class:`InvalidEvent` on bad input."""
    hdrs = _check_headers(dict(headers or {}))
    _check_fields(topic, seq, time, payload)
    prev = seq - 1 if prev is None else prev
    _check_prev(prev, seq)
    wire = {
        "v": 1,
        "topic": topic,
        "publisher": bytes(key.peer_id),
        "seq": seq,
        "prev": prev,
        "time": float(time),
        "headers": hdrs,
        "payload": bytes(payload),
    }
    signed = seal(key, DOMAIN, EVENT_PAYLOAD_TYPE, wire)
    if len(signed) > MAX_EVENT_SIZE:
        raise InvalidEvent("oversized", f"event of {len(signed)} bytes, over {MAX_EVENT_SIZE}")
    ident = event_id(key.peer_id, topic, seq)
    return Event(
        ident, topic, key.peer_id, seq, float(time), hdrs, bytes(payload), prev, signed
    )


def open_event(data: bytes) -> Event:
    """Verify and decode a signed event.

    Raises :class:`InvalidEvent` (a :class:`ValidationError`) for a malformed or oversized
    event and :class:`SignatureError` for a bad signature or a signer that is not the
    publisher.
    """
    if not isinstance(data, bytes | bytearray):
        raise InvalidEvent("malformed", "an event is bytes")
    if len(data) > MAX_EVENT_SIZE:
        raise InvalidEvent("oversized", f"event of {len(data)} bytes, over {MAX_EVENT_SIZE}")
    data = bytes(data)
    env = open_envelope(data, DOMAIN, EVENT_PAYLOAD_TYPE)
    try:
        raw = env.decode()
    except Exception as exc:
        raise InvalidEvent("malformed", f"event payload is not CBOR: {exc}") from exc
    event = _from_wire(raw, data)
    if event.publisher != env.signer:
        raise SignatureError("event signed by a node other than its publisher")
    return event


def _from_wire(raw: Any, signed: bytes) -> Event:
    if not isinstance(raw, dict) or raw.get("v") != 1:
        raise InvalidEvent("malformed", "not a version-1 event")
    topic, seq, time = raw.get("topic"), raw.get("seq"), raw.get("time")
    payload = raw.get("payload")
    _check_fields(topic, seq, time, payload)
    headers = _check_headers(raw.get("headers", {}))
    publisher = raw.get("publisher")
    if not isinstance(publisher, bytes) or not 2 <= len(publisher) <= 64:
        raise InvalidEvent("malformed", "event without a publisher id")
    assert isinstance(topic, str) and isinstance(seq, int) and isinstance(payload, bytes)
    assert isinstance(time, int | float)
    prev = raw.get("prev", seq - 1)
    _check_prev(prev, seq)
    assert isinstance(prev, int)
    pub = PeerId(publisher)
    ident = event_id(pub, topic, seq)
    return Event(ident, topic, pub, seq, float(time), headers, payload, prev, signed)
