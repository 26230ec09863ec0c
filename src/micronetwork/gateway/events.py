"""``/events/{topic}``: the broker over HTTP.

``GET`` streams the topic's events as server-sent events: first ``event: subscribed``, then
``event: event`` per event (``id:`` is a resume token: pass it back as ``?since=`` or as the
``Last-Event-ID`` header, which browsers' EventSource does on reconnect, to get every retained
event after it exactly once), ``event: missed`` and ``event: lagging`` as the broker reports
them. ``since``: ``0`` (from the oldest retained event), epoch seconds, or a token.
``POST`` publishes ``{"data": <JSON>}`` (sent as JSON text with ``content-type:
application/json``) or ``{"payload_base64": "..."}``, with optional ``"headers"``;
``?retained=true`` waits until a retention node stored it.

If the node has no broker (``node.broker`` missing), both answer 501.
"""

from __future__ import annotations

import base64
import binascii
import json
import time
from typing import TYPE_CHECKING, Any

from .app import b64url, unb64url
from .errors import HttpError
from .http import Emit, Request, Send, send_json, stream_events

if TYPE_CHECKING:
    from .app import GatewayApp

__all__ = ["publish", "subscribe"]


def _broker(app: GatewayApp) -> Any:
    broker = getattr(app.node, "broker", None)
    if broker is None:
        raise HttpError(501, "unimplemented", "this node has no broker: /events is not "
                                              "available")
    return broker


def _topic(topic: str) -> str:
    from ..broker.event import valid_topic

    if not valid_topic(topic):
        raise HttpError(400, "bad_request",
                        f"invalid topic {topic!r}: [a-z0-9][a-z0-9._-]{{0,127}}")
    return topic


def event_json(event: Any) -> dict[str, Any]:
    payload: bytes = event.payload
    out: dict[str, Any] = {
        "id": event.id.hex(), "topic": event.topic, "publisher": event.publisher.to_base58(),
        "seq": event.seq, "time": event.time, "headers": dict(event.headers),
    }
    if event.headers.get("content-type") == "application/json":
        try:
            out["data"] = json.loads(payload)
            return out
        except ValueError:
            pass
    out["payload_base64"] = base64.b64encode(payload).decode()
    return out


def _since(request: Request) -> Any:
    from ..broker import Cursor

    raw = request.query.get("since") or request.headers.get("last-event-id")
    if raw is None or raw == "":
        return None
    try:
        value = float(raw)
    except ValueError:
        pass
    else:
        if value < 0 or value != value:
            raise HttpError(400, "bad_request", "since must be 0, epoch seconds or a token")
        return 0 if value == 0 else value
    try:
        return Cursor.from_bytes(unb64url(raw))
    except HttpError:
        raise
    except Exception:
        raise HttpError(400, "bad_request", "since is not 0, a time or a valid token") from None


async def subscribe(app: GatewayApp, topic: str, request: Request, send: Send) -> None:
    broker = _broker(app)
    _topic(topic)
    since = _since(request)
    group = request.query.get("group") or None

    async def produce(emit: Emit) -> None:
        from ..broker import Cursor, Event, Lagging, Missed

        # The resume token of each event: the starting point advanced by every event sent.
        if isinstance(since, Cursor):
            cursor = since
        else:
            cursor = Cursor.of(float(since) if since is not None else time.time(), {})
        async with broker.subscribe(topic, group=group, since=since) as sub:
            await emit("subscribed", {"topic": topic, "group": group}, None)
            async for item in sub:
                if isinstance(item, Event):
                    cursor = cursor.advance(item)
                    await emit("event", event_json(item), b64url(cursor.to_bytes()))
                elif isinstance(item, Missed):
                    await emit("missed", {"count": item.count, "reason": item.reason,
                                          "exact": getattr(item, "exact", True)}, None)
                elif isinstance(item, Lagging):
                    await emit("lagging", {}, None)

    await stream_events(request, send, produce)


async def publish(app: GatewayApp, topic: str, request: Request, send: Send) -> None:
    broker = _broker(app)
    _topic(topic)
    body = await request.json(app.config.max_body)
    if not isinstance(body, dict) or not set(body) <= {"data", "payload_base64", "headers"}:
        raise HttpError(400, "bad_request", 'send {"data": <JSON>} or {"payload_base64": '
                                            '"..."}, with optional "headers"')
    headers = body.get("headers", {})
    if not isinstance(headers, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in headers.items()
    ):
        raise HttpError(400, "bad_request", "headers must map text to text")
    if "payload_base64" in body:
        if "data" in body or not isinstance(body["payload_base64"], str):
            raise HttpError(400, "bad_request", "give data or payload_base64, not both")
        try:
            payload = base64.b64decode(body["payload_base64"], validate=True)
        except (binascii.Error, ValueError):
            raise HttpError(400, "bad_request", "payload_base64 is not base64") from None
    else:
        payload = json.dumps(body.get("data"), separators=(",", ":")).encode()
        headers = {"content-type": "application/json", **headers}
    retained = request.query.get("retained", "").lower() in ("1", "true", "yes")
    event = await broker.publish(topic, payload, headers=headers, retained=retained)
    await send_json(send, 200, {"id": event.id.hex(), "topic": event.topic,
                                "publisher": event.publisher.to_base58(), "seq": event.seq,
                                "time": event.time})
