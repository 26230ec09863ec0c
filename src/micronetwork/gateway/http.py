"""Small ASGI helpers: the request as read, JSON and byte responses, server-sent events.

The gateway is a plain ASGI application (no framework): it needs a dozen routes, a body limit
enforced while reading, and streams that stop the moment the client goes away, all on trio;
hypercorn runs it (``hypercorn.trio.serve``).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from typing import Any
from urllib.parse import parse_qs

import trio

from ..errors import MicronetworkError
from .errors import HttpError, from_exception

__all__ = ["Emit", "Request", "send_bytes", "send_json", "stream_events"]

Scope = Mapping[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
Emit = Callable[[str, Any, "str | None"], Awaitable[None]]


class Request:
    def __init__(self, scope: Scope, receive: Receive) -> None:
        self.scope = scope
        self.receive = receive
        self.method: str = scope["method"]
        self.path: str = scope["path"]
        self.query = {k: v[-1] for k, v in
                      parse_qs(scope.get("query_string", b"").decode("latin-1")).items()}
        self.headers = {k.decode("latin-1").lower(): v.decode("latin-1")
                        for k, v in scope.get("headers", [])}
        client = scope.get("client")
        self.client_host: str | None = client[0] if client else None

    async def body(self, limit: int) -> bytes:
        """The whole body; 413 as soon as it is known to be over ``limit`` bytes."""
        declared = self.headers.get("content-length")
        if declared is not None:
            try:
                if int(declared) > limit:
                    raise _too_large(limit)
            except ValueError:
                raise HttpError(400, "bad_request", "Content-Length is not a number") from None
        chunks: list[bytes] = []
        size = 0
        while True:
            msg = await self.receive()
            if msg["type"] == "http.disconnect":
                raise HttpError(499, "client_closed", "the client went away")
            body = msg.get("body", b"")
            size += len(body)
            if size > limit:
                raise _too_large(limit)
            chunks.append(body)
            if not msg.get("more_body", False):
                return b"".join(chunks)

    async def json(self, limit: int) -> Any:
        """The body as JSON (an empty body is ``null``); 415 unless it is sent as JSON."""
        ctype = self.headers.get("content-type", "application/json").split(";")[0].strip()
        if ctype.lower() not in ("application/json", ""):
            raise HttpError(415, "unsupported_media_type",
                            f"send the body as application/json, not {ctype}")
        raw = await self.body(limit)
        if not raw.strip():
            return None
        try:
            return json.loads(raw)
        except (ValueError, RecursionError) as exc:
            raise HttpError(400, "malformed_json", f"the body is not JSON: {exc}") from None


def _too_large(limit: int) -> HttpError:
    return HttpError(413, "message_too_large", f"the body is over the gateway's limit of "
                                               f"{limit} bytes")


def dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


async def send_bytes(send: Send, status: int, body: bytes, content_type: str,
                     headers: list[tuple[bytes, bytes]] | None = None) -> None:
    await send({"type": "http.response.start", "status": status, "headers": [
        (b"content-type", content_type.encode()),
        (b"content-length", str(len(body)).encode()),
        (b"x-content-type-options", b"nosniff"),
        *(headers or []),
    ]})
    await send({"type": "http.response.body", "body": body, "more_body": False})


async def send_json(send: Send, status: int, obj: Any,
                    headers: list[tuple[bytes, bytes]] | None = None) -> None:
    await send_bytes(send, status, dumps(obj), "application/json", headers)


def sse_frame(event: str, data: Any, event_id: str | None = None) -> bytes:
    """One server-sent event; the data is JSON on a single line."""
    out = f"event: {event}\n"
    if event_id is not None:
        out += f"id: {event_id}\n"
    out += f"data: {dumps(data).decode()}\n\n"
    return out.encode("utf-8")


async def stream_events(request: Request, send: Send,
                        produce: Callable[[Emit], Awaitable[None]]) -> None:
    """Answer with ``text/event-stream`` and run ``produce(emit)`` until it returns, fails
    (an ``event: error`` with the JSON error body) or the client disconnects (``produce`` is
    cancelled at once, which cancels the call or subscription behind it)."""
    await send({"type": "http.response.start", "status": 200, "headers": [
        (b"content-type", b"text/event-stream; charset=utf-8"),
        (b"cache-control", b"no-cache"),
        (b"x-accel-buffering", b"no"),
    ]})

    async def emit(event: str, data: Any, event_id: str | None = None) -> None:
        await send({"type": "http.response.body", "body": sse_frame(event, data, event_id),
                    "more_body": True})

    gone = False

    async def watch(scope: trio.CancelScope) -> None:
        nonlocal gone
        while True:
            msg = await request.receive()
            if msg["type"] == "http.disconnect":
                gone = True
                scope.cancel()
                return

    async with trio.open_nursery() as nursery:
        nursery.start_soon(watch, nursery.cancel_scope)
        try:
            await produce(emit)
        except MicronetworkError as exc:
            err = from_exception(exc)
            await emit("error", {"status": err.status, **err.body()})
        except HttpError as exc:
            await emit("error", {"status": exc.status, **exc.body()})
        nursery.cancel_scope.cancel()
    if not gone:
        await send({"type": "http.response.body", "body": b"", "more_body": False})
