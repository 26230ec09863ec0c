"""The broker's server side: answers to ``store``, ``replay`` and ``range`` requests.

Functions of :class:`~.core.BrokerCore` (kept apart to keep that module small): a retaining
node stores events pushed by their publisher and serves pages of its log (``replay``); a
retaining node or a publisher serves ``range`` (the events between two seqs of one
publisher). Every answer is one ``Respond``; refusals are counted by reason.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..commands import Respond
from ..errors import MicronetworkError
from ..identity.peerid import PeerId
from .event import Event, open_event
from .log import RetentionLog
from .wire import (
    RangeRequest,
    ReplayRequest,
    StoreRequest,
    decode,
    parse_request,
    serve_range,
    serve_replay,
)

if TYPE_CHECKING:
    from .core import BrokerCore

__all__ = ["on_request"]


def on_request(core: BrokerCore, peer: PeerId, token: int, data: Any, now: float) -> None:
    """Answer one request (a malformed one with ``None``)."""
    req = parse_request(decode(data))
    if req is None:
        core.counters["bad_requests"] += 1
        core._out.append(Respond(token, None))
        return
    if isinstance(req, ReplayRequest):
        _serve_replay(core, token, req, now)
    elif isinstance(req, StoreRequest):
        _serve_store(core, peer, token, req, now)
    else:
        _serve_range(core, token, req)


def _serve_store(
    core: BrokerCore, peer: PeerId, token: int, req: StoreRequest, now: float
) -> None:
    try:
        ev = open_event(req.signed)
    except MicronetworkError:
        core.counters["rejected_store"] += 1
        core._out.append(Respond(token, {"error": "invalid event"}))
        return
    if ev.publisher != peer:
        core.counters["rejected_store"] += 1  # only a publisher hands in its own events
        core._out.append(Respond(token, {"error": "not the publisher"}))
        return
    if ev.topic not in core.logs and core.config.retain_topics == "*":
        core.retain(ev.topic, now)
    rlog = core.logs.get(ev.topic)
    if rlog is None:
        core._out.append(Respond(token, {"error": "not retained"}))
        return
    entry = rlog.append(ev, core._wall(now))
    offset: int | None
    if entry is not None:
        core.counters["stored_pushed"] += 1
        core._offer(ev, entry.offset, core.local_id, now)
        offset = entry.offset
    else:
        offset = _held_offset(rlog, ev)
    core._out.append(Respond(token, {"offset": offset}))


def _serve_replay(core: BrokerCore, token: int, req: ReplayRequest, now: float) -> None:
    rlog = core.logs.get(req.topic)
    if rlog is None:
        core.counters["rejected_unknown_topic"] += 1
        core._out.append(Respond(token, {"error": "unknown topic"}))
        if core.config.retain_topics == "*":
            core.retain(req.topic, now)
        return
    core.counters["replays_served"] += 1
    core._out.append(Respond(token, serve_replay(rlog, req, core.config)))


def _serve_range(core: BrokerCore, token: int, req: RangeRequest) -> None:
    rlog = core.logs.get(req.topic)
    offsets = rlog is not None
    if rlog is None:
        rlog = core.own_logs.get(req.topic)
    if rlog is None:
        core.counters["rejected_unknown_topic"] += 1
        core._out.append(Respond(token, {"error": "unknown topic"}))
        return
    core.counters["ranges_served"] += 1
    core._out.append(Respond(token, serve_range(rlog, req, core.config, offsets=offsets)))


def _held_offset(rlog: RetentionLog, ev: Event) -> int | None:
    """The offset of an event the log already holds (a repeated push)."""
    for entry in rlog.range(ev.publisher, ev.seq, ev.seq):
        if entry.event.id == ev.id:
            return entry.offset
    return None
