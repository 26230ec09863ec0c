"""The broker's request/response messages (``/micronetwork/broker/1.0.0``, CBOR maps).

::

    replay   {"op": "replay", "topic": t, "since_offset": int | null, "since_time": float | null,
              "after": [[publisher, seq], ...], "max_bytes": int}
          -> {"events": [[offset, signed event], ...], "missed": int, "exact": bool,
              "next": int, "more": bool, "first": int,
              "evicted": [[publisher, [seq, ...]], ...], "heads": [[publisher, seq], ...],
              "counted": [[publisher, [seq, ...]], ...]}
    range    {"op": "range", "topic": t, "publisher": p, "from": seq, "to": seq}
          -> {"events": [[offset | null, signed event], ...]}
    store    {"op": "store", "event": signed event}
          -> {"offset": int} | {"error": "not retained" | "invalid event"}
    error    -> {"error": "unknown topic" | "bad request"}

``after`` holds what the subscriber has (publisher -> last seq); ``evicted`` lists, for those
publishers, the seqs past it this node evicted, and ``heads`` the highest seq it ever stored of
each (so a tail that was lost can be detected); ``counted`` lists, for the other publishers,
the seqs counted in ``missed`` (the subscriber drops a late gossip copy of one, so that what it
was told it missed is never also delivered; optional, at most ``MAX_AFTER`` publishers).
Every event is the publisher's signed envelope and is verified again by the receiver: a
retention node cannot forge events, only withhold them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import cbor2

from ..identity.peerid import PeerId
from .config import BrokerConfig
from .event import valid_topic
from .log import RetentionLog

__all__ = [
    "RangeRequest",
    "StoreRequest",
    "ReplayAnswer",
    "ReplayRequest",
    "decode",
    "parse_answer",
    "parse_request",
    "serve_range",
    "serve_replay",
]

MAX_AFTER = 4096
MAX_EVENTS_PER_ANSWER = 4096


def decode(data: Any) -> Any:
    """A message as the driver handed it: bytes (host) or an already decoded object (sim)."""
    if isinstance(data, bytes | bytearray):
        try:
            return cbor2.loads(data)
        except Exception:
            return None
    return data


@dataclass(frozen=True, slots=True)
class ReplayRequest:
    topic: str
    since_offset: int | None
    since_time: float | None
    after: dict[PeerId, int]
    max_bytes: int

    def to_wire(self) -> dict[str, Any]:
        return {
            "op": "replay", "topic": self.topic, "since_offset": self.since_offset,
            "since_time": self.since_time,
            "after": [[bytes(p), s] for p, s in self.after.items()],
            "max_bytes": self.max_bytes,
        }


@dataclass(frozen=True, slots=True)
class RangeRequest:
    topic: str
    publisher: PeerId
    first: int
    last: int

    def to_wire(self) -> dict[str, Any]:
        return {"op": "range", "topic": self.topic, "publisher": bytes(self.publisher),
                "from": self.first, "to": self.last}


def _int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 1 << 63


def _pairs(raw: Any, limit: int) -> dict[PeerId, Any] | None:
    if not isinstance(raw, list) or len(raw) > limit:
        return None
    out: dict[PeerId, Any] = {}
    for item in raw:
        if not (isinstance(item, list) and len(item) == 2 and isinstance(item[0], bytes)
                and 2 <= len(item[0]) <= 64):
            return None
        out[PeerId(item[0])] = item[1]
    return out


@dataclass(frozen=True, slots=True)
class StoreRequest:
    """A publisher hands one of its events to a retention node (and waits for the offset):
    how a short-lived publisher's events reach retention when no retention node is subscribed
    to the topic yet."""

    signed: bytes

    def to_wire(self) -> dict[str, Any]:
        return {"op": "store", "event": self.signed}


def parse_request(raw: Any) -> ReplayRequest | RangeRequest | StoreRequest | None:
    """A request, or None if it is malformed."""
    if isinstance(raw, dict) and raw.get("op") == "store":
        signed = raw.get("event")
        return StoreRequest(signed) if isinstance(signed, bytes) else None
    if not isinstance(raw, dict) or not valid_topic(raw.get("topic")):
        return None
    topic: str = raw["topic"]
    if raw.get("op") == "replay":
        so, st, mb = raw.get("since_offset"), raw.get("since_time"), raw.get("max_bytes", 0)
        if so is not None and not _int(so):
            return None
        if st is not None and (
            not isinstance(st, int | float) or isinstance(st, bool) or not math.isfinite(st)
        ):
            return None
        after = _pairs(raw.get("after", []), MAX_AFTER)
        if after is None or not all(_int(s) for s in after.values()) or not _int(mb):
            return None
        return ReplayRequest(topic, so, None if st is None else float(st), after, mb)
    if raw.get("op") == "range":
        pub, first, last = raw.get("publisher"), raw.get("from"), raw.get("to")
        if not (isinstance(pub, bytes) and 2 <= len(pub) <= 64 and _int(first) and _int(last)):
            return None
        assert isinstance(first, int) and isinstance(last, int)
        return RangeRequest(topic, PeerId(pub), first, last)
    return None


@dataclass(frozen=True, slots=True)
class ReplayAnswer:
    events: list[tuple[int | None, bytes]]
    missed: int = 0
    exact: bool = True
    next: int = 0
    more: bool = False
    evicted: dict[PeerId, list[int]] | None = None
    heads: dict[PeerId, int] | None = None
    error: str | None = None
    counted: dict[PeerId, list[int]] | None = None


def parse_answer(raw: Any) -> ReplayAnswer | None:
    """A replay or range answer, or None if it is malformed."""
    if not isinstance(raw, dict):
        return None
    if "error" in raw:
        return ReplayAnswer([], error=str(raw["error"])[:100])
    events = raw.get("events")
    if not isinstance(events, list) or len(events) > MAX_EVENTS_PER_ANSWER:
        return None
    out: list[tuple[int | None, bytes]] = []
    for item in events:
        if not (isinstance(item, list) and len(item) == 2 and isinstance(item[1], bytes)
                and (item[0] is None or _int(item[0]))):
            return None
        out.append((item[0], item[1]))
    missed, nxt = raw.get("missed", 0), raw.get("next", 0)
    exact, more = raw.get("exact", True), raw.get("more", False)
    evicted = _pairs(raw.get("evicted", []), MAX_AFTER)
    heads = _pairs(raw.get("heads", []), MAX_AFTER)
    counted = _pairs(raw.get("counted", []), MAX_AFTER)
    if (
        not _int(missed) or not _int(nxt) or not isinstance(exact, bool)
        or not isinstance(more, bool) or evicted is None or heads is None or counted is None
        or not all(_int(h) for h in heads.values())
        or not all(
            isinstance(v, list) and len(v) <= 65536 and all(_int(s) for s in v)
            for v in (*evicted.values(), *counted.values())
        )
    ):
        return None
    return ReplayAnswer(out, missed, exact, nxt, more, evicted, heads, counted=counted)


def serve_replay(rlog: RetentionLog, req: ReplayRequest, config: BrokerConfig) -> dict[str, Any]:
    """The answer of a retaining node to ``req``: one page of its log."""
    r = rlog.read(
        since_offset=req.since_offset, since_time=req.since_time, after=req.after,
        limit=config.page_events, max_bytes=min(max(req.max_bytes, 1), config.page_bytes),
    )
    heads = {p: rlog.head(p) for p in req.after if rlog.head(p) > req.after[p]}
    return {
        "events": [[e.offset, e.event.signed] for e in r.entries],
        "missed": r.missed, "exact": r.exact, "next": r.next_offset, "more": r.more,
        "first": rlog.first_offset,
        "evicted": [[bytes(p), s] for p, s in r.evicted.items()],
        "heads": [[bytes(p), h] for p, h in heads.items()],
        # at most MAX_AFTER publishers (a larger list would be refused by the parser)
        "counted": [[bytes(p), s] for p, s in list(r.counted.items())[:MAX_AFTER]],
    }


def serve_range(
    rlog: RetentionLog, req: RangeRequest, config: BrokerConfig, *, offsets: bool
) -> dict[str, Any]:
    """The retained events of one publisher in a seq range (offsets only from a full log)."""
    out: list[list[Any]] = []
    size = 0
    for e in rlog.range(req.publisher, req.first, req.last, config.page_events):
        if out and size + e.event.size > config.page_bytes:
            break
        size += e.event.size
        out.append([e.offset if offsets else None, e.event.signed])
    return {"events": out}
