"""The HTTP gateway on a real node (127.0.0.1): calls, errors, streams, events, network views,
the OpenAPI contract, access control. Every test is bounded by trio.fail_after."""

from __future__ import annotations

import json
from typing import Any

import httpx
import jsonschema
import networkx as nx
import pytest
import trio
from gateway_net import STATE, network

from micronetwork.errors import (
    BadRequest,
    CallCancelled,
    ConfigError,
    DeadlineExceeded,
    MessageTooLarge,
    NoInstanceReachable,
    RemoteError,
    ServiceNotFound,
)
from micronetwork.gateway import GatewayApp, GatewayConfig, from_exception, open_gateway

pytestmark = pytest.mark.integration
LIMIT = 45


def sse(text: str) -> list[tuple[str, Any]]:
    out = []
    for frame in text.strip().split("\n\n"):
        name, data = "message", None
        for line in frame.splitlines():
            if line.startswith("event: "):
                name = line[7:]
            elif line.startswith("data: "):
                data = json.loads(line[6:])
        out.append((name, data))
    return out


async def test_calls_errors_and_streams() -> None:
    with trio.fail_after(LIMIT):
        async with network() as net, httpx.AsyncClient(base_url=net.gateway.url) as http:
            served_by = net.server.peer_id.to_base58()
            r = await http.post("/greeter/hello", json={"name": "Ada", "excited": True})
            assert r.status_code == 200, r.text
            assert r.json() == {"message": "Hello, Ada!", "served_by": served_by}
            # bytes travel as base64 text, both ways
            r = await http.post("/lab/echo", json={"data": "aGk=", "n": 1})
            assert r.json() == {"data": "aGk=", "n": 2}

            async def error(method: str, path: str, status: int, code: str, **kw: Any) -> dict:
                r = await http.request(method, path, **kw)
                assert r.status_code == status, (path, r.status_code, r.text)
                body = r.json()["error"]
                assert body["code"] == code and body["message"], body
                return body

            await error("POST", "/greeter/hello", 400, "bad_request", json={"name": 5})
            await error("POST", "/greeter/hello", 400, "bad_request", json={"nmae": "x"})
            await error("POST", "/greeter/hello", 400, "bad_request", json=[1, 2])
            await error("POST", "/greeter/hello", 400, "malformed_json", content=b"{nope",
                        headers={"content-type": "application/json"})
            await error("POST", "/greeter/hello", 415, "unsupported_media_type",
                        content=b"name=Ada",
                        headers={"content-type": "application/x-www-form-urlencoded"})
            await error("POST", "/greeter/hello", 400, "invalid_argument", json={"name": ""})
            await error("POST", "/nosuch/hello", 404, "service_not_found", json={})
            await error("POST", "/greeter/nosuch", 404, "service_not_found", json={})
            await error("POST", "/greeter/hello?version=^2", 404, "service_not_found",
                        json={"name": "x"})
            await error("GET", "/greeter/hello", 405, "method_not_allowed")
            await error("GET", "/a/b/c", 404, "not_found")
            await error("POST", "/lab/boom", 502, "internal")
            body = await error("POST", "/lab/fail", 409, "already_exists", json="already_exists")
            assert body["details"] == {"asked": "already_exists"}
            await error("POST", "/lab/fail", 403, "permission_denied", json="permission_denied")
            await error("POST", "/lab/fail", 502, "my_own_code", json="my_own_code")
            await error("POST", "/lab/slow?timeout=0.3", 504, "deadline_exceeded", json=5)
            await error("POST", "/lab/slow?timeout=abc", 400, "bad_request", json=5)
            # a huge body is refused before it is read
            await error("POST", "/greeter/hello", 413, "message_too_large",
                        content=b'{"name": "' + b"x" * (2 << 20) + b'"}',
                        headers={"content-type": "application/json"})

            # server stream as SSE; client stream and bidi take a JSON array
            r = await http.post("/greeter/countdown", json=3)
            assert r.headers["content-type"].startswith("text/event-stream")
            assert sse(r.text) == [("message", 3), ("message", 2), ("message", 1),
                                   ("message", 0), ("end", {"messages": 4})]
            r = await http.post("/lab/total", json=[1, 2, 3])
            assert r.json() == 6
            r = await http.post("/lab/double", json=[1, 2])
            assert sse(r.text) == [("message", 2), ("message", 4), ("end", {"messages": 2})]
            await error("POST", "/lab/total", 400, "bad_request", json=5)
            await error("POST", "/lab/total", 400, "bad_request", json=[1, "x"])

            # a client that goes away mid-stream: the handler is stopped, the node goes on
            async with http.stream("POST", "/lab/ticks") as r:
                async for line in r.aiter_lines():
                    if line.startswith("data: 3"):
                        break
            await STATE["stopped"].wait()
            r = await http.post("/greeter/hello", json={"name": "Bo"})
            assert r.status_code == 200
            assert net.gateway.app.counters["requests"] >= 25


async def test_network_views_events_and_exports() -> None:
    with trio.fail_after(LIMIT):
        async with network() as net, httpx.AsyncClient(base_url=net.gateway.url) as http:
            sup, server = net.sup.peer_id.to_base58(), net.server.peer_id.to_base58()
            nodes = (await http.get("/network/nodes")).json()
            assert [n["role"] for n in nodes] == ["super", "peer", "peer"]
            assert nodes[0]["id"] == sup and nodes[0]["local"]
            by_id = {n["id"]: n for n in nodes}
            assert set(by_id) == {n.peer_id.to_base58() for n in net.nodes}
            assert by_id[server]["services"] == ["greeter", "lab"]
            assert by_id[server]["addrs"][0].startswith("/ip4/127.0.0.1/tcp/")
            assert all(n["latency_ms"] > 0 for n in nodes[1:])  # direct peers, measured
            assert all(n["last_seen"] is not None for n in nodes)

            graph = (await http.get("/network/graph?depth=2")).json()
            g = nx.node_link_graph(graph, edges="links")
            assert set(g.nodes) == set(by_id) and g.has_edge(sup, server)
            assert (await http.get("/network/graph?depth=0")).json()["nodes"][0]["id"] == sup
            assert len((await http.get("/network/graph?depth=0")).json()["nodes"]) == 1
            dot = (await http.get("/network/graph?format=dot")).text
            assert dot.startswith("graph ") and sup in dot
            graphml = (await http.get("/network/graph?format=graphml")).text
            assert set(nx.parse_graphml(graphml).nodes) == set(by_id)
            r = await http.get("/network/graph?format=svg")
            assert r.headers["content-type"] == "image/svg+xml" and b"<svg" in r.content[:400]
            r = await http.get("/network/graph?format=png")
            assert r.content.startswith(b"\x89PNG")
            assert (await http.get("/network/graph?format=gif")).status_code == 400
            assert (await http.get("/network/graph?depth=99")).status_code == 400
            assert (await http.get("/network/nosuch")).status_code == 404

            services = {s["name"]: s for s in (await http.get("/network/services")).json()}
            assert services["greeter"]["version"] == "1.0.0"
            assert services["greeter"]["nodes"] == [server]
            eps = {e["name"]: e for e in services["lab"]["endpoints"]}
            assert eps["total"]["kind"] == "client_stream" and eps["double"]["kind"] == "bidi"
            await http.post("/greeter/hello", json={"name": "Ada"})
            routes = (await http.get("/network/routes")).json()
            assert any(r["service"] == "greeter" and r["node"] == server and r["calls"] >= 1
                       for r in routes)

            # broker events: publish, then replay from the start as SSE. (Through a peer's
            # gateway: the super node is the retention node, and a retention node does not
            # replay to its own subscribers yet.)
            async with open_gateway(net.other, port=0) as pgw:
                await _events(pgw.url)


async def _events(url: str) -> None:
    async with httpx.AsyncClient(base_url=url) as http:
        # ?retained=true: answered once a retention node stored the event, so the replay
        # below finds all four (without it the replay may overtake the hand-over)
        for i in range(3):
            r = await http.post("/events/orders?retained=true",
                                json={"data": {"n": i}, "headers": {"kind": "test"}})
            assert r.status_code == 200, r.text
        r = await http.post("/events/orders?retained=true", json={"payload_base64": "AAEC"})
        assert r.status_code == 200
        assert (await http.post("/events/Bad Topic", json={"data": 1})).status_code == 400
        assert (await http.post("/events/orders", json={"dat": 1})).status_code == 400
        got: list[Any] = []
        token = None
        async with http.stream("GET", "/events/orders?since=0") as r:
            assert r.status_code == 200
            name = None
            async for line in r.aiter_lines():
                if line.startswith("event: "):
                    name = line[7:]
                elif line.startswith("id: "):
                    token = line[4:]
                elif line.startswith("data: ") and name == "event":
                    got.append(json.loads(line[6:]))
                    if len(got) == 4:
                        break
        assert [e.get("data") for e in got] == [{"n": 0}, {"n": 1}, {"n": 2}, None]
        assert got[0]["headers"]["kind"] == "test" and got[3]["payload_base64"] == "AAEC"
        # resuming from the last id gives what came after it, nothing before
        await http.post("/events/orders?retained=true", json={"data": "later"})
        async with http.stream("GET", f"/events/orders?since={token}") as r:
            async for line in r.aiter_lines():
                if line.startswith("data: ") and "later" in line:
                    assert json.loads(line[6:])["data"] == "later"
                    break
                assert '"n":' not in line
        assert (await http.get("/events/orders?since=nonsense!")).status_code == 400


async def test_events_answer_501_without_a_broker() -> None:
    class NoBroker:
        broker = None

    app = GatewayApp(NoBroker(), GatewayConfig())  # type: ignore[arg-type]
    for method in ("GET", "POST"):
        status, body = await asgi(app, method, "/events/orders", b'{"data": 1}')
        assert status == 501 and body["error"]["code"] == "unimplemented"


async def asgi(app: GatewayApp, method: str, path: str, body: bytes = b"",
               client: str = "127.0.0.1", headers: list[tuple[bytes, bytes]] | None = None,
               ) -> tuple[int, Any]:
    """One request straight into the ASGI app (no sockets)."""
    sent: list[dict[str, Any]] = []
    messages = [{"type": "http.request", "body": body, "more_body": False}]

    async def receive() -> dict[str, Any]:
        if messages:
            return messages.pop()
        await trio.sleep_forever()
        raise AssertionError

    async def send(msg: dict[str, Any]) -> None:
        sent.append(msg)

    scope = {"type": "http", "method": method, "path": path, "query_string": b"",
             "headers": headers or [(b"host", b"127.0.0.1:8080"),
                                    (b"content-type", b"application/json")],
             "client": (client, 50000)}
    with trio.fail_after(10):
        await app(scope, receive, send)
    status = sent[0]["status"]
    data = b"".join(m.get("body", b"") for m in sent[1:])
    return status, json.loads(data) if data else None


async def test_access_control() -> None:
    class Fake:
        broker = None

    app = GatewayApp(Fake(), GatewayConfig())  # type: ignore[arg-type]
    status, body = await asgi(app, "POST", "/events/x", b"{}", client="10.1.2.3")
    assert status == 403 and body["error"]["code"] == "forbidden"
    assert app.counters["refused"] == 1
    # DNS rebinding: a loopback gateway only answers to loopback host names
    status, body = await asgi(app, "GET", "/events/x",
                              headers=[(b"host", b"evil.example:8080")])
    assert status == 403 and body["error"]["code"] == "host_not_allowed"
    status, _ = await asgi(app, "GET", "/events/x", headers=[(b"host", b"[::1]:8080")])
    assert status == 501
    # with a token, remote clients must present it
    token = "s3cret-token-0123456789"
    app = GatewayApp(Fake(), GatewayConfig(host="0.0.0.0", allow_remote=True,  # type: ignore[arg-type]
                                           token=token))
    status, body = await asgi(app, "GET", "/events/x", client="10.1.2.3")
    assert status == 401 and body["error"]["code"] == "unauthorized"
    status, _ = await asgi(app, "GET", "/events/x", client="10.1.2.3", headers=[
        (b"host", b"node.example:8080"), (b"authorization", f"Bearer {token}".encode())])
    assert status == 501  # past the access check
    status, _ = await asgi(app, "GET", "/events/x", client="10.1.2.3",
                           headers=[(b"authorization", b"Bearer wrong")])
    assert status == 401
    # a body over the limit without a Content-Length is cut off while it is read
    small = GatewayApp(Fake(), GatewayConfig(max_body=10))  # type: ignore[arg-type]
    status, body = await asgi(small, "POST", "/svc/ep", b'{"name": "' + b"x" * 20 + b'"}')
    assert status == 413 and body["error"]["code"] == "message_too_large"
    # binding beyond loopback needs allow_remote and a token
    for kwargs in ({"host": "0.0.0.0"}, {"host": "0.0.0.0", "token": token},
                   {"host": "192.0.2.1", "allow_remote": True}, {"token": "short"}):
        with pytest.raises(ConfigError):
            GatewayConfig(**kwargs)  # type: ignore[arg-type]


async def test_bind_beyond_loopback_with_token_and_port_in_use() -> None:
    with trio.fail_after(LIMIT):
        from micronetwork import Node

        async with Node.open() as node:
            token = "s3cret-token-0123456789"
            async with open_gateway(node, host="0.0.0.0", port=0, allow_remote=True,
                                    token=token) as gw:
                url = f"http://127.0.0.1:{gw.port}"
                async with httpx.AsyncClient(base_url=url) as http:
                    r = await http.get("/network/nodes")  # loopback: no token needed
                    assert r.status_code == 200 and r.json()[0]["local"]
                with pytest.raises(ConfigError, match="cannot serve"):
                    async with open_gateway(node, port=gw.port):
                        pass


def test_error_statuses() -> None:
    cases = [
        (ServiceNotFound("x"), 404, "service_not_found"),
        (BadRequest("x"), 400, "bad_request"),
        (DeadlineExceeded("x"), 504, "deadline_exceeded"),
        (NoInstanceReachable("x"), 503, "no_instance_reachable"),
        (MessageTooLarge("x"), 413, "message_too_large"),
        (CallCancelled("x"), 502, "call_cancelled"),
        (RemoteError("not_found", "x"), 404, "not_found"),
        (RemoteError("unavailable", "x"), 503, "unavailable"),
        (RemoteError("internal", "x", b"\x01"), 502, "internal"),
    ]
    for exc, status, code in cases:
        err = from_exception(exc)
        assert (err.status, err.code) == (status, code), exc
        jsonschema.validate(err.body(), {"type": "object", "required": ["error"]})
    assert from_exception(RemoteError("internal", "x", b"\x01")).details == "01"
