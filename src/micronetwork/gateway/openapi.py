"""The gateway's OpenAPI 3.1 document, generated from what the registry says.

Every endpoint of every service the node knows becomes ``POST /{service}/{endpoint}`` with the
endpoint's request and response schemas (JSON Schema 2020-12, which OpenAPI 3.1 uses as is).
Each endpoint's schema carries its own ``$defs``; they are hoisted into
``components/schemas`` as ``<service>.<Name>`` (``<service>.<Name>_2`` if two endpoints of a
service define different types of one name) and the ``$ref``\\ s rewritten. Bytes
(``"format": "bytes"`` on the wire) travel as base64 text: ``"contentEncoding": "base64"``.
Streams: a server stream answers ``text/event-stream``; client streams and bidi streams take a
JSON array of messages. The gateway's own paths (``/network/*``, ``/events/{topic}``) are fixed.
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["ERROR_STATUSES", "NETWORK_SCHEMAS", "build_openapi"]

ERROR_STATUSES = ("400", "401", "403", "404", "409", "413", "415", "429", "500", "501", "502",
                  "503", "504")

_NULLABLE_STR = {"type": ["string", "null"]}
_NULLABLE_NUM = {"type": ["number", "null"]}

NETWORK_SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object",
        "required": ["error"],
        "properties": {"error": {
            "type": "object",
            "required": ["code", "message", "details"],
            "properties": {"code": {"type": "string"}, "message": {"type": "string"},
                           "details": {}},
        }},
    },
    "NetworkNode": {
        "type": "object",
        "required": ["id", "role", "addrs", "latency_ms", "last_seen", "services", "hops",
                     "local"],
        "properties": {
            "id": {"type": "string"},
            "role": {"enum": ["super", "peer", "unknown"]},
            "addrs": {"type": "array", "items": {"type": "string"}},
            "latency_ms": _NULLABLE_NUM,
            "last_seen": _NULLABLE_NUM,
            "services": {"type": "array", "items": {"type": "string"}},
            "hops": {"type": "integer", "minimum": 0},
            "local": {"type": "boolean"},
        },
    },
    "Endpoint": {
        "type": "object",
        "required": ["name", "kind", "request", "response"],
        "properties": {
            "name": {"type": "string"},
            "kind": {"enum": ["unary", "server_stream", "client_stream", "bidi"]},
            "request": {}, "response": {}, "doc": {"type": "string"},
            "idempotent": {"type": "boolean"},
        },
    },
    "ServiceInfo": {
        "type": "object",
        "required": ["name", "version", "instances", "nodes", "endpoints"],
        "properties": {
            "name": {"type": "string"},
            "version": {"type": "string"},
            "instances": {"type": "integer", "minimum": 0},
            "nodes": {"type": "array", "items": {"type": "string"}},
            "metadata": {"type": "object"},
            "endpoints": {"type": "array", "items": {"$ref": "#/components/schemas/Endpoint"}},
        },
    },
    "Route": {
        "type": "object",
        "required": ["service", "node", "address", "gateway", "link", "metric", "rtt_ms",
                     "calls", "errors"],
        "properties": {
            "service": {"type": "string"}, "node": {"type": "string"},
            "address": {"type": "string"}, "gateway": _NULLABLE_STR,
            "router": {"type": "string"}, "network": {"type": "string"},
            "link": {"type": "string"}, "metric": {"type": "number"},
            "rtt_ms": _NULLABLE_NUM, "calls": {"type": "integer"}, "errors": {"type": "integer"},
        },
    },
    "Graph": {
        "type": "object",
        "required": ["directed", "multigraph", "graph", "nodes", "links"],
        "properties": {
            "directed": {"const": False},
            "multigraph": {"const": False},
            "graph": {"type": "object"},
            "nodes": {"type": "array", "items": {
                "type": "object", "required": ["id", "role", "addrs", "services", "hops"],
                "properties": {"id": {"type": "string"},
                               "role": {"enum": ["super", "peer", "unknown"]},
                               "addrs": {"type": "array", "items": {"type": "string"}},
                               "services": {"type": "array", "items": {"type": "string"}},
                               "last_seen": _NULLABLE_NUM,
                               "hops": {"type": "integer"}}}},
            "links": {"type": "array", "items": {
                "type": "object", "required": ["source", "target"],
                "properties": {"source": {"type": "string"}, "target": {"type": "string"},
                               "latency_ms": {"type": "number"}}}},
        },
    },
    "PublishRequest": {
        "type": "object",
        "additionalProperties": False,
        "not": {"required": ["data", "payload_base64"]},
        "properties": {
            "data": {"description": "any JSON value: sent as JSON text with the header "
                                    "content-type: application/json"},
            "payload_base64": {"type": "string", "contentEncoding": "base64"},
            "headers": {"type": "object", "additionalProperties": {"type": "string"}},
        },
    },
    "Published": {
        "type": "object",
        "required": ["id", "topic", "publisher", "seq", "time"],
        "properties": {"id": {"type": "string"}, "topic": {"type": "string"},
                       "publisher": {"type": "string"}, "seq": {"type": "integer"},
                       "time": {"type": "number"}},
    },
}


def _sse_schema(*events: str) -> dict[str, Any]:
    """Each server-sent event (as schemathesis and OpenAPI 3.2's itemSchema see them)."""
    return {"type": "object", "required": ["data"], "properties": {
        "event": {"enum": list(events)}, "data": {"type": "string",
                                                  "contentMediaType": "application/json"},
        "id": {"type": "string"}}}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: Any, description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(*statuses: str) -> dict[str, Any]:
    return {s: {"$ref": "#/components/responses/Error"} for s in statuses}


def _rewrite(node: Any, refs: Mapping[str, str]) -> Any:
    if isinstance(node, list):
        return [_rewrite(x, refs) for x in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for k, v in node.items():
        if k == "$ref" and isinstance(v, str) and v in refs:
            out[k] = refs[v]
        elif k == "$defs":
            continue
        else:
            out[k] = _rewrite(v, refs)
    if out.get("format") == "bytes" and out.get("type") == "string":
        out.pop("format")
        out["contentEncoding"] = "base64"
    return out


def _hoist(schema: Any, service: str, components: dict[str, Any]) -> Any:
    """The schema with its ``$defs`` moved into ``components`` (named per service; a suffix
    ``_2``, ``_3`` ... when a different type of the same name is already there)."""
    if not isinstance(schema, dict):
        return schema if isinstance(schema, bool) else {}
    defs = schema.get("$defs") or {}
    for k in itertools.count(1):
        suffix = "" if k == 1 else f"_{k}"
        refs = {f"#/$defs/{n}": f"#/components/schemas/{service}.{n}{suffix}" for n in defs}
        bodies = {f"{service}.{n}{suffix}": _rewrite(b, refs) for n, b in defs.items()}
        if all(components.get(c, body) == body for c, body in bodies.items()):
            components.update(bodies)
            return _rewrite(schema, refs)
    raise AssertionError("unreachable")


def _endpoint_op(svc: Mapping[str, Any], ep: Mapping[str, Any],
                 components: dict[str, Any]) -> dict[str, Any]:
    name, kind = str(svc["name"]), str(ep.get("kind", "unary"))
    request = _hoist(ep.get("request", {}), name, components)
    response = _hoist(ep.get("response", {}), name, components)
    if kind in ("client_stream", "bidi"):
        request = {"type": "array", "items": request,
                   "description": "the stream's messages, in order"}
    if kind in ("server_stream", "bidi"):
        ok: dict[str, Any] = {
            "description": "server-sent events: `event: message` with each response as "
                           "JSON data, then `event: end`, or `event: error` with an Error",
            "content": {"text/event-stream": {"schema": _sse_schema("message", "end", "error"),
                                              "x-message-schema": response}},
        }
    else:
        ok = _json(response, "the endpoint's response")
    nullable = request == {"type": "null"}
    op: dict[str, Any] = {
        "operationId": f"{name}.{ep['name']}",
        "tags": [name],
        "summary": str(ep.get("doc") or f"{name}.{ep['name']} ({kind})"),
        "x-kind": kind,
        "x-idempotent": bool(ep.get("idempotent", False)),
        "parameters": [
            {"name": "version", "in": "query", "required": False,
             "schema": {"type": "string"}, "description": "a semver range, e.g. ^1.2"},
            {"name": "timeout", "in": "query", "required": False,
             "schema": {"type": "number", "exclusiveMinimum": 0, "maximum": 60},
             "description": "seconds (default 10, at most 60)"},
        ],
        "requestBody": {"required": not nullable,
                        "content": {"application/json": {"schema": request}}},
        "responses": {"200": ok, **_errors(*ERROR_STATUSES)},
    }
    return op


def build_openapi(services: Sequence[Mapping[str, Any]], *, title: str = "micronetwork gateway",
                  node: str = "") -> dict[str, Any]:
    """The document for the services given (``/network/services`` entries)."""
    components: dict[str, Any] = copy.deepcopy(NETWORK_SCHEMAS)
    paths: dict[str, Any] = {}
    for svc in sorted(services, key=lambda s: str(s["name"])):
        for ep in svc.get("endpoints", []):
            path = f"/{svc['name']}/{ep['name']}"
            paths[path] = {"post": _endpoint_op(svc, ep, components)}
    depth = {"name": "depth", "in": "query", "required": False,
             "schema": {"type": "integer", "minimum": 0, "maximum": 16}}
    paths.update({
        "/network/nodes": {"get": {
            "operationId": "network.nodes", "tags": ["network"],
            "summary": "the nodes this node knows of", "parameters": [depth],
            "responses": {"200": _json({"type": "array", "items": _ref("NetworkNode")}),
                          **_errors("400", "403")}}},
        "/network/services": {"get": {
            "operationId": "network.services", "tags": ["network"],
            "summary": "services with their endpoints and schemas",
            "responses": {"200": _json({"type": "array", "items": _ref("ServiceInfo")}),
                          **_errors("403")}}},
        "/network/routes": {"get": {
            "operationId": "network.routes", "tags": ["network"],
            "summary": "the route to every known instance, with its metric",
            "responses": {"200": _json({"type": "array", "items": _ref("Route")}),
                          **_errors("403")}}},
        "/network/graph": {"get": {
            "operationId": "network.graph", "tags": ["network"],
            "summary": "the peer graph within depth hops (node-link JSON, DOT, GraphML, "
                       "SVG or PNG)",
            "parameters": [depth, {"name": "format", "in": "query", "required": False,
                                   "schema": {"enum": ["json", "dot", "graphml", "svg",
                                                       "png"]}}],
            "responses": {"200": {"description": "the graph", "content": {
                "application/json": {"schema": _ref("Graph")},
                "text/vnd.graphviz": {"schema": {"type": "string"}},
                "application/graphml+xml": {"schema": {"type": "string"}},
                "image/svg+xml": {"schema": {"type": "string"}},
                "image/png": {"schema": {"type": "string", "contentEncoding": "binary"}},
            }}, **_errors("400", "403")}}},
        "/events/{topic}": {
            "parameters": [{"name": "topic", "in": "path", "required": True,
                            "schema": {"type": "string", "pattern": "^[a-z0-9][a-z0-9._-]*$"}}],
            "get": {
                "operationId": "events.subscribe", "tags": ["events"],
                "summary": "the topic's events as server-sent events (replay with since)",
                "parameters": [
                    {"name": "since", "in": "query", "required": False,
                     "schema": {"type": "string"},
                     "description": "0 (oldest retained), epoch seconds, or an event id "
                                    "(cursor) from a previous stream; Last-Event-ID works too"},
                    {"name": "group", "in": "query", "required": False,
                     "schema": {"type": "string"}}],
                "responses": {"200": {"description": "`event: event` per event",
                                      "content": {"text/event-stream": {
                                          "schema": _sse_schema("subscribed", "event", "missed",
                                                                "lagging", "error")}}},
                              **_errors("400", "403", "501")}},
            "post": {
                "operationId": "events.publish", "tags": ["events"],
                "summary": "publish an event to the topic",
                "requestBody": {"required": True, "content": {"application/json": {
                    "schema": _ref("PublishRequest")}}},
                "responses": {"200": _json(_ref("Published")),
                              **_errors("400", "403", "413", "415", "501", "503", "504")}},
        },
    })
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": "1",
                 "description": "HTTP gateway of a micronetwork node" +
                                (f" ({node})" if node else "")},
        "paths": paths,
        "components": {
            "schemas": components,
            "responses": {"Error": _json(_ref("Error"), "an error (see docs/gateway.md)")},
        },
    }
