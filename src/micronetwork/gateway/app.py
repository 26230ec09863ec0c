"""The gateway's ASGI application: routes, access control, calls, events, the dashboard.

=======================================  =====================================================
``POST /{service}/{endpoint}``           call (JSON in/out; streams as server-sent events)
``GET /events/{topic}``                  the topic's broker events as server-sent events
``POST /events/{topic}``                 publish an event
``GET /network/nodes|services|routes``   the network views as JSON
``GET /network/graph?depth=N&format=F``  the peer graph (json, dot, graphml, svg, png)
``GET /openapi.json``                    the OpenAPI 3.1 document
``GET /``, ``/dashboard/*``              the dashboard (static files, no CDN)
=======================================  =====================================================

Access: requests from loopback addresses are served; others get 403 unless the gateway has a
token, and then only with ``Authorization: Bearer <token>`` (401 otherwise). A loopback-bound
gateway also checks the ``Host`` header (403 for names other than localhost / 127.0.0.1 /
[::1]), so a web page cannot reach it through DNS rebinding, and POST bodies must be
``application/json`` (415), so a cross-site form cannot post to it.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import ipaddress
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from typing import TYPE_CHECKING, Any

import trio

from ..errors import ConfigError, MicronetworkError, ServiceNotFound
from ..service.schema import from_json, to_json
from .errors import HttpError, error_body, from_exception
from .http import Emit, Receive, Request, Scope, Send, send_bytes, send_json, stream_events
from .openapi import build_openapi
from .views import GRAPH_TYPES, ServicesView, graph_answer, routes_json

if TYPE_CHECKING:
    from ..node import Node

__all__ = ["GatewayApp", "GatewayConfig", "is_loopback"]

log = logging.getLogger(__name__)

RESERVED = ("network", "events", "dashboard", "openapi.json")
_STATIC = {"app.js": "text/javascript; charset=utf-8", "style.css": "text/css; charset=utf-8",
           "index.html": "text/html; charset=utf-8"}
_LOOPBACK_NAMES = {"localhost", "127.0.0.1", "::1", "[::1]"}


@dataclass(frozen=True, slots=True)
class GatewayConfig:
    """Where the gateway listens and what it accepts.

    Binding to anything but a loopback address needs ``allow_remote=True`` *and* a ``token``
    (ConfigError otherwise): the gateway calls services with this node's identity.
    """

    host: str = "127.0.0.1"
    port: int = 8080
    token: str | None = None
    allow_remote: bool = False
    max_body: int = 1 << 20  # bytes of request body
    call_timeout: float = 10.0  # default per call; ?timeout= up to max_timeout
    max_timeout: float = 60.0
    dashboard: bool = True

    def __post_init__(self) -> None:
        if not is_loopback(self.host) and not (self.allow_remote and self.token):
            raise ConfigError(
                f"binding the gateway to {self.host} exposes this node's services: pass "
                "allow_remote=True and a token (--allow-remote --token) to do it")
        if self.token is not None and len(self.token) < 16:
            raise ConfigError("the gateway token must be at least 16 characters")
        if not 0 <= self.port <= 65535 or self.max_body < 1:
            raise ConfigError("gateway: bad port or max_body")


def is_loopback(host: str) -> bool:
    if host.strip("[]") == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class GatewayApp:
    """The ASGI application (``app(scope, receive, send)``) for one node."""

    def __init__(self, node: Node, config: GatewayConfig | None = None) -> None:
        self.node = node
        self.config = config or GatewayConfig()
        self.services = ServicesView(node)
        self.counters: dict[str, int] = {"requests": 0, "errors": 0, "refused": 0}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":  # websockets are not served (streams are SSE)
            await send({"type": "websocket.close", "code": 1003})
            return
        self.counters["requests"] += 1
        request = Request(scope, receive)
        try:
            self._check_access(request)
            await self._route(request, send)
        except HttpError as exc:
            self.counters["errors"] += 1
            await send_json(send, exc.status, exc.body(), exc.headers)
        except MicronetworkError as exc:
            self.counters["errors"] += 1
            err = from_exception(exc)
            await send_json(send, err.status, err.body())
        except trio.TooSlowError:
            self.counters["errors"] += 1
            await send_json(send, 504, error_body("deadline_exceeded", "the call took too long"))
        except Exception as exc:  # a bug here must not take the node down: log, answer 500
            self.counters["errors"] += 1
            log.exception("gateway: %s %s failed", request.method, request.path)
            await send_json(send, 500, error_body("internal", f"{type(exc).__name__}: {exc}"))

    # -- access ---------------------------------------------------------------------------------

    def _check_access(self, request: Request) -> None:
        host = request.client_host
        if host is None or not is_loopback(host):
            token = self.config.token
            if token is None:
                self.counters["refused"] += 1
                raise HttpError(403, "forbidden", f"requests from {host} are refused: this "
                                "gateway serves loopback clients only")
            given = request.headers.get("authorization", "")
            if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
                self.counters["refused"] += 1
                raise HttpError(401, "unauthorized", "a bearer token is required",
                                headers=[(b"www-authenticate", b"Bearer")])
        if is_loopback(self.config.host):
            name = _host_name(request.headers.get("host", "localhost"))
            if name.lower() not in _LOOPBACK_NAMES:
                self.counters["refused"] += 1
                raise HttpError(403, "host_not_allowed",
                                f"Host {name!r} is not a loopback name")

    # -- routing --------------------------------------------------------------------------------

    async def _route(self, request: Request, send: Send) -> None:
        method, path = request.method, request.path
        parts = [p for p in path.split("/") if p]
        if path == "/" or (parts and parts[0] == "dashboard"):
            _only(method, "GET")
            await self._static(parts[1] if len(parts) == 2 else "index.html", send)
        elif path == "/openapi.json":
            _only(method, "GET")
            services = await self.services.get()
            doc = build_openapi(services, node=self.node.peer_id.to_base58())
            await send_json(send, 200, doc)
        elif parts and parts[0] == "network" and len(parts) == 2:
            _only(method, "GET")
            await self._network(parts[1], request, send)
        elif parts and parts[0] == "events" and len(parts) == 2:
            _only(method, "GET", "POST")
            from .events import publish, subscribe

            if method == "POST":
                await publish(self, parts[1], request, send)
            else:
                await subscribe(self, parts[1], request, send)
        elif len(parts) == 2 and parts[0] not in RESERVED:
            _only(method, "POST")
            await self._call(parts[0], parts[1], request, send)
        else:
            raise HttpError(404, "not_found", f"no route for {method} {path}")

    async def _static(self, name: str, send: Send) -> None:
        if not self.config.dashboard or name not in _STATIC:
            raise HttpError(404, "not_found", f"no dashboard file {name!r}")
        data = resources.files(__package__).joinpath("static", name).read_bytes()
        await send_bytes(send, 200, data, _STATIC[name], [
            (b"content-security-policy",
             b"default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'"),
            (b"cache-control", b"no-cache"),
        ])

    async def _network(self, what: str, request: Request, send: Send) -> None:
        depth = _int_param(request.query, "depth", None, 0, 16)
        if what == "nodes":
            views = await self.node.network_nodes(depth)
            await send_json(send, 200, [v.to_json() for v in views])
        elif what == "services":
            await send_json(send, 200, await self.services.get())
        elif what == "routes":
            await send_json(send, 200, routes_json(self.node))
        elif what == "graph":
            fmt = request.query.get("format", "json")
            if fmt not in GRAPH_TYPES:
                raise HttpError(400, "bad_request",
                                f"format must be one of {', '.join(GRAPH_TYPES)}")
            body = await graph_answer(self.node, 3 if depth is None else depth, fmt)
            await send_bytes(send, 200, body, GRAPH_TYPES[fmt])
        else:
            raise HttpError(404, "not_found", f"no network view {what!r}")

    # -- calls ----------------------------------------------------------------------------------

    def _timeout(self, request: Request) -> float:
        raw = request.query.get("timeout") or request.headers.get("x-timeout")
        if raw is None:
            return self.config.call_timeout
        try:
            value = float(raw)
        except ValueError:
            raise HttpError(400, "bad_request", f"timeout {raw!r} is not a number") from None
        if not 0 < value <= self.config.max_timeout:
            raise HttpError(400, "bad_request",
                            f"timeout must be within (0, {self.config.max_timeout}] s")
        return value

    async def _endpoint(self, service: str, endpoint: str, version: str | None,
                        timeout: float) -> Mapping[str, Any]:
        instances = await self.node.registry.get(service, version, timeout=timeout)
        for inst in instances:
            ep = inst.endpoint(endpoint)
            if ep is not None:
                return ep
        raise ServiceNotFound(f"service {service!r} has no endpoint {endpoint!r}")

    async def _call(self, service: str, endpoint: str, request: Request, send: Send) -> None:
        timeout = self._timeout(request)
        version = request.query.get("version") or None
        body = await request.json(self.config.max_body)
        ep = await self._endpoint(service, endpoint, version, timeout)
        kind = str(ep.get("kind", "unary"))
        req_schema, resp_schema = ep.get("request", {}), ep.get("response", {})
        if kind in ("client_stream", "bidi"):
            if not isinstance(body, list):
                raise HttpError(400, "bad_request",
                                f"{service}.{endpoint} is a {kind} endpoint: send a JSON "
                                "array of its messages")
            messages = [from_json(m, req_schema, path=f"request[{i}]")
                        for i, m in enumerate(body)]
        else:
            wire = from_json(body, req_schema, path="request")
        client = self.node.client
        if kind == "unary":
            result = await client.call(service, endpoint, wire, version=version, timeout=timeout)
            await send_json(send, 200, to_json(result, resp_schema, path="response"))
            return
        if kind == "client_stream":
            with trio.fail_after(timeout):
                async with client.stream(service, endpoint, version=version,
                                         timeout=timeout) as call:
                    for m in messages:
                        await call.send(m)
                    await call.end()
                    result = await call.receive()
            await send_json(send, 200, to_json(result, resp_schema, path="response"))
            return

        async def produce(emit: Emit) -> None:
            n = 0
            stream_body = wire if kind == "server_stream" else None
            async with client.stream(service, endpoint, stream_body, version=version,
                                     timeout=timeout) as call:
                if kind == "bidi":
                    for m in messages:
                        await call.send(m)
                    await call.end()
                async for msg in call:
                    await emit("message", to_json(msg, resp_schema, path="response"), str(n))
                    n += 1
            await emit("end", {"messages": n}, None)

        await stream_events(request, send, produce)


def _host_name(header: str) -> str:
    if header.startswith("["):
        return header[: header.find("]") + 1]
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header


def _only(method: str, *allowed: str) -> None:
    if method not in allowed:
        raise HttpError(405, "method_not_allowed", f"use {' or '.join(allowed)}",
                        headers=[(b"allow", ", ".join(allowed).encode())])


def _int_param(query: Mapping[str, str], name: str, default: int | None, lo: int,
               hi: int) -> int | None:
    raw = query.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise HttpError(400, "bad_request", f"{name} must be an integer") from None
    if not lo <= value <= hi:
        raise HttpError(400, "bad_request", f"{name} must be within {lo}..{hi}")
    return value


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        msg = await receive()
        if msg["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif msg["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64url(text: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise HttpError(400, "bad_request", "not a valid event id / cursor") from None
