"""Declaring services: kinds and schemas from type hints, names, describe(), error codes."""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, AsyncIterable, AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import cbor2
import pytest

from micronetwork.errors import (
    BadRequest,
    ConfigError,
    DeadlineExceeded,
    RemoteError,
    SchemaError,
)
from micronetwork.service import CallContext, Endpoint, Service, error_from_exception
from micronetwork.service.service import EndpointKind


@dataclass
class HelloRequest:
    name: str


@dataclass
class HelloReply:
    message: str


@dataclass
class Tick:
    n: int


class NotASchema:
    pass


def make_greeter() -> Service:
    svc = Service("greeter", version="1.2.0", metadata={"team": "x", "b": [1, 2]})

    @svc.endpoint
    async def hello(req: HelloRequest) -> HelloReply:
        """Say hello.

        A longer description that is not part of the summary.
        """
        return HelloReply(f"hello {req.name}")

    @svc.endpoint(name="count", idempotent=True)
    async def count_ticks(req: int, ctx: CallContext) -> AsyncIterator[Tick]:
        for i in range(req):
            yield Tick(i)

    @svc.endpoint
    async def upload(reqs: AsyncIterator[bytes]) -> int:
        return sum([len(b) async for b in reqs])

    @svc.endpoint
    async def chat(reqs: AsyncIterable[str], ctx: CallContext) -> AsyncGenerator[str, None]:
        async for r in reqs:
            yield f"{ctx.endpoint}:{r}"

    return svc


def test_kinds_and_types_come_from_the_hints() -> None:
    eps = make_greeter().endpoints
    assert list(eps) == ["hello", "count", "upload", "chat"]
    expected: dict[str, tuple[EndpointKind, Any, Any]] = {
        "hello": ("unary", HelloRequest, HelloReply),
        "count": ("server_stream", int, Tick),
        "upload": ("client_stream", bytes, int),
        "chat": ("bidi", str, str),
    }
    for name, (kind, req, resp) in expected.items():
        ep = eps[name]
        assert (ep.kind, ep.request_type, ep.response_type) == (kind, req, resp), name
    assert eps["count"].idempotent and not eps["hello"].idempotent
    assert eps["count"].takes_context and not eps["hello"].takes_context
    assert eps["hello"].doc == "Say hello."
    assert eps["upload"].request_schema == {"type": "string", "format": "bytes"}
    assert eps["hello"].response_schema["$ref"] == "#/$defs/HelloReply"


def test_decorator_returns_the_function_unchanged() -> None:
    svc = Service("x")

    async def ping(req: None) -> None:
        return None

    assert svc.endpoint(ping) is ping
    assert svc.endpoint(name="ping2")(ping) is ping
    assert set(svc.endpoints) == {"ping", "ping2"}


def test_describe_is_deterministic_and_cbor_and_json_able() -> None:
    d = make_greeter().describe()
    assert d["name"] == "greeter" and d["version"] == "1.2.0"
    assert d["metadata"] == {"b": [1, 2], "team": "x"}
    assert [e["name"] for e in d["endpoints"]] == ["chat", "count", "hello", "upload"]
    hello = next(e for e in d["endpoints"] if e["name"] == "hello")
    assert set(hello) == {"name", "kind", "request", "response", "idempotent", "doc"}
    assert hello["request"]["$defs"]["HelloRequest"]["required"] == ["name"]
    assert json.dumps(d) == json.dumps(make_greeter().describe())
    assert cbor2.loads(cbor2.dumps(d)) == d
    assert json.loads(json.dumps(d)) == d


def test_decode_and_encode_messages() -> None:
    ep = make_greeter().endpoints["hello"]
    assert ep.decode_request({"name": "Ada"}) == HelloRequest("Ada")
    assert ep.encode_response(HelloReply("hi")) == {"message": "hi"}
    with pytest.raises(BadRequest, match=r"^request\.name: expected str, got int$"):
        ep.decode_request({"name": 1})
    with pytest.raises(BadRequest, match=r"^response: expected HelloReply, got str$"):
        ep.encode_response("hi")


async def test_invoke_each_kind() -> None:
    eps = make_greeter().endpoints
    assert await eps["hello"].invoke(HelloRequest("Ada")) == HelloReply("hello Ada")

    ctx = CallContext(service="greeter", endpoint="count", headers={"k": "v"})
    ticks = [t async for t in eps["count"].invoke_stream(3, ctx)]
    assert ticks == [Tick(0), Tick(1), Tick(2)]

    async def chunks() -> AsyncIterator[bytes]:
        yield b"ab"
        yield b"cde"

    assert await eps["upload"].invoke(chunks()) == 5

    async def words() -> AsyncIterator[str]:
        yield "a"
        yield "b"

    chat = eps["chat"].invoke_stream(words(), CallContext(endpoint="chat"))
    assert [x async for x in chat] == ["chat:a", "chat:b"]
    with pytest.raises(TypeError, match="invoke_stream"):
        await eps["count"].invoke(1)
    with pytest.raises(TypeError, match="invoke()"):
        eps["hello"].invoke_stream(HelloRequest("x"))


async def test_stream_closed_early_runs_the_handlers_finally() -> None:
    svc = Service("x")
    closed: list[bool] = []

    @svc.endpoint
    async def forever(req: None) -> AsyncIterator[int]:
        try:
            n = 0
            while True:
                yield n
                n += 1
        finally:
            closed.append(True)

    stream = svc.endpoints["forever"].invoke_stream(None)
    assert await stream.__anext__() == 0
    await stream.aclose()
    assert closed == [True]


async def test_context_only_and_no_parameter_handlers() -> None:
    svc = Service("x")

    @svc.endpoint
    async def who(ctx: CallContext) -> str:
        return ctx.service

    @svc.endpoint
    async def ping() -> str:
        return "pong"

    who_ep, ping_ep = svc.endpoints["who"], svc.endpoints["ping"]
    assert who_ep.request_schema == {"type": "null"} and not who_ep.takes_request
    assert who_ep.decode_request(None) is None
    assert await who_ep.invoke(None, CallContext(service="x")) == "x"
    assert await ping_ep.invoke(None) == "pong"


def _declare(func: Callable[..., Any], **kw: Any) -> Endpoint:
    return Service("x").add_endpoint(func, **kw)


async def _no_hints(req):  # type: ignore[no-untyped-def]
    return req


async def _no_return(req: int):  # type: ignore[no-untyped-def]
    return req


async def _bad_type(req: NotASchema) -> int:
    return 1


async def _bad_response(req: int) -> Callable[[], int]:
    raise NotImplementedError


def _sync(req: int) -> int:
    return req


async def _three(a: int, b: int, c: int) -> int:
    return a


async def _second_not_ctx(req: int, other: int) -> int:
    return req


async def _gen_without_iterator_hint(req: int) -> int:  # type: ignore[misc]
    yield req


async def _unresolvable(req: DoesNotExist) -> int:  # type: ignore[name-defined] # noqa: F821
    return 1


@pytest.mark.parametrize(
    ("func", "message"),
    [
        (_no_hints, "parameter 'req' has no type annotation"),
        (_no_return, "no return annotation"),
        (_bad_type, "NotASchema"),
        (_bad_response, "Callable"),
        (_sync, "async def"),
        (_three, "must take"),
        (_second_not_ctx, "CallContext"),
        (_gen_without_iterator_hint, "AsyncIterator"),
        (_unresolvable, "DoesNotExist"),
    ],
)
def test_bad_handlers_raise_schema_error_naming_the_function(
    func: Callable[..., Any], message: str
) -> None:
    with pytest.raises(SchemaError) as err:
        _declare(func)
    assert message in str(err.value)
    assert func.__name__ in str(err.value)


def test_schema_error_says_which_endpoint_and_side() -> None:
    with pytest.raises(SchemaError, match=r"x\._bad_type request"):
        _declare(_bad_type)


@pytest.mark.parametrize("name", ["Greeter", "-x", "", "a" * 64, "a_b", "a b", "ü"])
def test_invalid_service_names(name: str) -> None:
    with pytest.raises(ConfigError, match="service name"):
        Service(name)


@pytest.mark.parametrize("name", ["greeter", "billing.v2", "a-b", "0", "a" * 63])
def test_valid_service_names(name: str) -> None:
    assert Service(name).name == name


def test_endpoint_names_are_checked_and_unique() -> None:
    async def ping(req: int) -> int:
        return req

    svc = Service("x")
    for bad in ["1abc", "a b", "", "a/b"]:
        with pytest.raises(ConfigError, match="endpoint name"):
            svc.add_endpoint(ping, name=bad)
    svc.add_endpoint(ping, name="v1.ping-now")
    svc.add_endpoint(ping)
    with pytest.raises(ConfigError, match="already has an endpoint 'ping'"):
        svc.add_endpoint(ping)


def test_service_settings_are_checked() -> None:
    with pytest.raises(ConfigError, match="semantic version"):
        Service("x", version="1.2")
    with pytest.raises(ConfigError, match="max_concurrency"):
        Service("x", max_concurrency=0)
    with pytest.raises(ConfigError, match="max_concurrency"):
        Service("x", max_concurrency=True)
    with pytest.raises(ConfigError, match=r"metadata\.when"):
        Service("x", metadata={"when": object()})
    with pytest.raises(ConfigError, match="keys must be str"):
        Service("x", metadata={1: "a"})
    svc = Service("x", metadata={"a": 1})
    with pytest.raises(TypeError):
        svc.metadata["a"] = 2  # type: ignore[index]
    with pytest.raises(TypeError):
        svc.endpoints["y"] = svc.endpoints.get("y")  # type: ignore[index]


def test_error_from_exception() -> None:
    assert error_from_exception(RemoteError("not_found", "no such user", {"id": 3})) == (
        "not_found", "no such user", {"id": 3})
    assert error_from_exception(BadRequest("request.x: bad")) == (
        "bad_request", "request.x: bad", None)
    assert error_from_exception(DeadlineExceeded("late"))[0] == "deadline_exceeded"
    assert error_from_exception(NotImplementedError())[0] == "unimplemented"
    code, message, details = error_from_exception(KeyError("k"))
    assert code == "internal" and message == "KeyError: 'k'" and details == {"type": "KeyError"}
    assert error_from_exception(ValueError())[1] == "ValueError"
