"""Declaring a service: ``Service``, ``@service.endpoint``, ``Endpoint`` and ``CallContext``.

::

    greeter = Service("greeter", version="1.2.0", metadata={"team": "x"})

    @greeter.endpoint
    async def hello(req: HelloRequest) -> HelloReply: ...                 # unary

    @greeter.endpoint(name="count", idempotent=True)
    async def count(req: CountReq, ctx: CallContext) -> AsyncIterator[Tick]:  # server stream
        yield Tick(...)

A handler's kind and message types come from its type hints, read once when it is declared:
an ``AsyncIterator[T]`` (or ``AsyncIterable``/``AsyncGenerator``) parameter makes it a client
stream of ``T``, an ``AsyncIterator[T]`` return type a server stream; both make it ``bidi``.
A second parameter annotated ``CallContext`` receives the call's context. Hints that cannot be
described as a schema raise :class:`SchemaError` at declaration, naming the function, so a
service that starts is a service whose messages can be checked.

No I/O here: the :class:`~micronetwork.service.server.Server` runs endpoints; this module only
describes them, converts their messages and maps exceptions to error codes.
"""

from __future__ import annotations

import collections.abc as abc
import inspect
import re
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType, UnionType
from typing import TYPE_CHECKING, Any, Literal, TypeVar, overload

from ..errors import (
    BadRequest,
    ConfigError,
    DeadlineExceeded,
    MessageTooLarge,
    RemoteError,
    SchemaError,
)
from .schema import Schema, from_wire, schema_of, to_wire
from .semver import Version

if TYPE_CHECKING:
    from ..identity.peerid import PeerId

__all__ = ["CallContext", "Endpoint", "EndpointKind", "Service", "error_from_exception"]

EndpointKind = Literal["unary", "server_stream", "client_stream", "bidi"]
F = TypeVar("F", bound=Callable[..., Any])

_SERVICE_NAME = re.compile(r"[a-z0-9][a-z0-9.-]{0,62}\Z")
_ENDPOINT_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*\Z")
_STREAMS = (abc.AsyncIterator, abc.AsyncIterable, abc.AsyncGenerator)


@dataclass(frozen=True, slots=True)
class CallContext:
    """What a handler may know about the call it serves (its optional second parameter)."""

    peer: PeerId | None = None  # the caller; None for local calls
    headers: dict[str, str] = field(default_factory=dict)
    deadline: float | None = None  # on trio's clock (``trio.current_time()``)
    service: str = ""
    endpoint: str = ""


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One endpoint of a service, as read from its handler's signature."""

    name: str
    kind: EndpointKind
    handler: Callable[..., Any]
    request_type: Any  # for client streams and bidi: the type of each request message
    response_type: Any  # for server streams and bidi: the type of each response message
    request_schema: Schema
    response_schema: Schema
    idempotent: bool = False
    doc: str = ""
    takes_request: bool = True
    takes_context: bool = False

    def decode_request(self, obj: Any) -> Any:
        """A CBOR-decoded request message as the handler's type; :class:`BadRequest` if not."""
        return from_wire(obj, self.request_type, path="request")

    def encode_response(self, value: Any) -> Any:
        """A handler's result (or streamed item) as CBOR-able primitives; :class:`BadRequest`
        if it is not of the declared response type."""
        return to_wire(value, self.response_type, path="response")

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind, "request": self.request_schema,
                "response": self.response_schema, "idempotent": self.idempotent,
                "doc": self.doc}

    def _args(self, request: Any, ctx: CallContext | None) -> list[Any]:
        args = [request] if self.takes_request else []
        if self.takes_context:
            args.append(ctx if ctx is not None else CallContext(endpoint=self.name))
        return args

    async def invoke(self, request: Any, ctx: CallContext | None = None) -> Any:
        """Run a unary or client-stream handler (``request``: the decoded message, or an async
        iterator of them) and return its result."""
        if self.kind in ("server_stream", "bidi"):
            raise TypeError(f"{self.name} is a {self.kind} endpoint: use invoke_stream()")
        return await self.handler(*self._args(request, ctx))

    def invoke_stream(
        self, request: Any, ctx: CallContext | None = None
    ) -> abc.AsyncGenerator[Any, None]:
        """Run a server-stream or bidi handler; the items it yields, as an async generator
        (``aclose()`` it when done early)."""
        if self.kind not in ("server_stream", "bidi"):
            raise TypeError(f"{self.name} is a {self.kind} endpoint: use invoke()")
        return self._stream(self._args(request, ctx))

    async def _stream(self, args: list[Any]) -> abc.AsyncGenerator[Any, None]:
        result = self.handler(*args)
        if inspect.isawaitable(result):  # ``async def f() -> AsyncIterator[T]: return gen``
            result = await result
        if isinstance(result, abc.AsyncGenerator):
            try:
                async for item in result:
                    yield item
            finally:
                await result.aclose()
        else:
            async for item in result:
                yield item


class Service:
    """A named, versioned set of endpoints that a node can serve (``node.serve(service)``)."""

    def __init__(
        self,
        name: str,
        version: str = "0.1.0",
        *,
        metadata: Mapping[str, Any] | None = None,
        max_concurrency: int = 64,
    ) -> None:
        if not isinstance(name, str) or not _SERVICE_NAME.match(name):
            raise ConfigError(
                f"service name {name!r} is invalid: use 1-63 characters of a-z, 0-9, '.' and "
                "'-', starting with a letter or digit (e.g. 'greeter' or 'billing.v2')"
            )
        Version.parse(version)  # ConfigError with the reason
        if not isinstance(max_concurrency, int) or isinstance(max_concurrency, bool) \
                or max_concurrency < 1:
            raise ConfigError(f"max_concurrency must be a positive int, not {max_concurrency!r}")
        meta = dict(metadata or {})
        _check_metadata(meta, "metadata")
        self.name = name
        self.version = version
        self.metadata: Mapping[str, Any] = MappingProxyType(meta)
        self.max_concurrency = max_concurrency
        self._endpoints: dict[str, Endpoint] = {}

    def __repr__(self) -> str:
        eps = list(self._endpoints)
        return f"Service({self.name!r}, version={self.version!r}, endpoints={eps})"

    @property
    def endpoints(self) -> Mapping[str, Endpoint]:
        """The endpoints by name, in the order they were declared (read-only)."""
        return MappingProxyType(self._endpoints)

    @overload
    def endpoint(self, func: F, /) -> F: ...

    @overload
    def endpoint(
        self, *, name: str | None = None, idempotent: bool = False
    ) -> Callable[[F], F]: ...

    def endpoint(
        self,
        func: Callable[..., Any] | None = None,
        *,
        name: str | None = None,
        idempotent: bool = False,
    ) -> Any:
        """Declare a handler as an endpoint: ``@svc.endpoint`` or ``@svc.endpoint(name=...,
        idempotent=True)``. Returns the function unchanged. ``idempotent`` tells clients that
        a call may be retried on another instance even after the request was sent."""

        def register(f: Callable[..., Any]) -> Callable[..., Any]:
            self.add_endpoint(f, name=name, idempotent=idempotent)
            return f

        return register if func is None else register(func)

    def add_endpoint(
        self, func: Callable[..., Any], *, name: str | None = None, idempotent: bool = False
    ) -> Endpoint:
        """The non-decorator form of :meth:`endpoint`; returns the :class:`Endpoint`."""
        ep = _make_endpoint(func, name, idempotent, self.name)
        if ep.name in self._endpoints:
            raise ConfigError(f"service {self.name!r} already has an endpoint {ep.name!r}")
        self._endpoints[ep.name] = ep
        return ep

    def describe(self) -> dict[str, Any]:
        """The self-description that goes into registry records: name, version, metadata and
        the endpoints (sorted by name) with their schemas. CBOR- and JSON-able."""
        return {
            "name": self.name,
            "version": self.version,
            "metadata": _plain(self.metadata),
            "endpoints": [self._endpoints[n].describe() for n in sorted(self._endpoints)],
        }


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _plain(value[k]) for k in sorted(value)}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _check_metadata(value: Any, path: str) -> None:
    if isinstance(value, Mapping):
        for k, v in value.items():
            if not isinstance(k, str):
                raise ConfigError(f"{path}: keys must be str, not {type(k).__name__}")
            _check_metadata(v, f"{path}.{k}")
    elif isinstance(value, list | tuple):
        for i, v in enumerate(value):
            _check_metadata(v, f"{path}[{i}]")
    elif not isinstance(value, str | int | float | bool | None):
        raise ConfigError(
            f"{path}: {type(value).__name__} is not allowed in metadata (JSON values only)"
        )


def _make_endpoint(
    func: Callable[..., Any], name: str | None, idempotent: bool, service: str
) -> Endpoint:
    qual = getattr(func, "__qualname__", repr(func))
    ep_name = name if name is not None else getattr(func, "__name__", "")
    if not isinstance(ep_name, str) or not _ENDPOINT_NAME.match(ep_name):
        raise ConfigError(
            f"endpoint name {ep_name!r} of {service!r} is invalid: use letters, digits, '_', "
            "'.' and '-', starting with a letter or '_'"
        )
    is_gen = inspect.isasyncgenfunction(func)
    if not (is_gen or inspect.iscoroutinefunction(func)):
        raise SchemaError(f"handler {qual} must be an 'async def' function")
    try:
        hints = typing.get_type_hints(func, include_extras=True)
    except Exception as exc:
        raise SchemaError(f"cannot resolve the type hints of handler {qual}: {exc}") from exc
    params = list(inspect.signature(func).parameters.values())
    takes_request, takes_context, req_hint = _read_params(params, hints, qual)
    if "return" not in hints:
        raise SchemaError(f"handler {qual} has no return annotation (use '-> None' for none)")
    client_stream, request_type = _stream_item(req_hint)
    server_stream, response_type = _stream_item(hints["return"])
    if is_gen and not server_stream:
        raise SchemaError(f"handler {qual} is an async generator: annotate its return type "
                          "as AsyncIterator[T]")
    kind: EndpointKind = (
        ("bidi" if server_stream else "client_stream") if client_stream
        else ("server_stream" if server_stream else "unary")
    )
    where = f"{service}.{ep_name}"
    doc = (inspect.getdoc(func) or "").strip()
    return Endpoint(
        name=ep_name,
        kind=kind,
        handler=func,
        request_type=request_type,
        response_type=response_type,
        request_schema=schema_of(request_type, where=f"{where} request ({qual})"),
        response_schema=schema_of(response_type, where=f"{where} response ({qual})"),
        idempotent=bool(idempotent),
        doc=doc.splitlines()[0] if doc else "",
        takes_request=takes_request,
        takes_context=takes_context,
    )


def _read_params(
    params: list[inspect.Parameter], hints: dict[str, Any], qual: str
) -> tuple[bool, bool, Any]:
    """(takes a request, takes a context, the request's hint) from ``(request[, ctx])``."""
    usable = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    extra = [p for p in params if p not in usable and p.default is p.empty
             and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    if extra or len(usable) > 2:
        raise SchemaError(f"handler {qual} must take (request) or (request, ctx: CallContext)")
    for p in usable:
        if p.name not in hints:
            raise SchemaError(f"handler {qual}: parameter {p.name!r} has no type annotation")
    is_ctx = [_is_context(hints[p.name]) for p in usable]
    if len(usable) == 2 and (is_ctx[0] or not is_ctx[1]):
        raise SchemaError(f"handler {qual}: the second parameter must be 'ctx: CallContext'")
    if not usable:
        return False, False, type(None)
    if is_ctx[0]:
        return False, True, type(None)
    return True, len(usable) == 2, hints[usable[0].name]


def _is_context(hint: Any) -> bool:
    if typing.get_origin(hint) is typing.Annotated:
        hint = typing.get_args(hint)[0]
    if hint is CallContext:
        return True  # also "CallContext | None": a handler that can be called without one
    union = typing.get_origin(hint) in (typing.Union, UnionType)
    return union and CallContext in typing.get_args(hint)


def _stream_item(hint: Any) -> tuple[bool, Any]:
    """(is a stream, the message type) for a parameter or return hint."""
    if typing.get_origin(hint) is typing.Annotated:
        hint = typing.get_args(hint)[0]
    if typing.get_origin(hint) in _STREAMS:
        args = typing.get_args(hint)
        return True, (args[0] if args else Any)
    if hint in _STREAMS:
        return True, Any
    return False, hint


def error_from_exception(exc: BaseException) -> tuple[str, str, object]:
    """The ``(code, message, details)`` a server sends for an exception a handler raised.

    :class:`RemoteError` carries its own code (raise ``RemoteError("not_found", "no such
    user")`` to choose one); :class:`BadRequest` is ``bad_request``, :class:`MessageTooLarge`
    ``message_too_large``, :class:`DeadlineExceeded` ``deadline_exceeded``,
    ``NotImplementedError`` ``unimplemented``; anything else is ``internal``, with the
    exception's type and message (the traceback stays in the serving node's log).
    """
    if isinstance(exc, RemoteError):
        return exc.code, exc.message, exc.details
    if isinstance(exc, BadRequest):
        return "bad_request", str(exc), None
    if isinstance(exc, MessageTooLarge):
        return "message_too_large", str(exc), None
    if isinstance(exc, DeadlineExceeded):
        return "deadline_exceeded", str(exc), None
    if isinstance(exc, NotImplementedError):
        return "unimplemented", str(exc) or "not implemented", None
    text = str(exc)
    return "internal", f"{type(exc).__name__}: {text}" if text else type(exc).__name__, {
        "type": type(exc).__name__
    }
