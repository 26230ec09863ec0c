"""The server side of services: RPC calls dispatched to the endpoints a node serves.

``node.serve(service)`` puts a :class:`~micronetwork.service.Service` here and registers it;
every inbound RPC call (:class:`~micronetwork.rpc.ServerCall`) is matched to its service and
endpoint, checked against the endpoint's kind and request schema, and run under the service's
concurrency limit. A call beyond the limit is refused at once with code ``overloaded`` (the
client then tries another instance) rather than queued behind a slow handler.

How the outcome maps to the wire: a value (or each streamed value) is converted by the
endpoint's response type and sent; a :class:`~micronetwork.errors.RemoteError` raised by the
handler travels with its own code; :class:`~micronetwork.errors.BadRequest` becomes
``bad_request``; any other exception becomes ``internal`` with the exception's message (the
traceback stays in this node's log).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping
from typing import Any

import trio

from ..errors import BadRequest, CallCancelled, ConfigError, MessageTooLarge, RemoteError
from ..host.rpc import ServerCall
from .service import CallContext, Endpoint, Service, error_from_exception

__all__ = ["Server"]

log = logging.getLogger(__name__)


class _Served:
    __slots__ = ("service", "limiter", "calls", "errors", "refused")

    def __init__(self, service: Service) -> None:
        self.service = service
        self.limiter = trio.CapacityLimiter(service.max_concurrency)
        self.calls = 0
        self.errors = 0
        self.refused = 0


class Server:
    """The services one node serves, and the dispatcher of its inbound calls."""

    def __init__(self) -> None:
        self._served: dict[str, _Served] = {}

    def add(self, service: Service) -> None:
        if service.name in self._served and self._served[service.name].service is not service:
            raise ConfigError(f"a service named {service.name!r} is already served here")
        self._served[service.name] = _Served(service)

    def remove(self, name: str) -> None:
        self._served.pop(name, None)

    def services(self) -> list[Service]:
        return [s.service for s in self._served.values()]

    def stats(self) -> dict[str, dict[str, int]]:
        return {
            n: {"calls": s.calls, "errors": s.errors, "refused": s.refused,
                "in_flight": int(s.limiter.borrowed_tokens)}
            for n, s in self._served.items()
        }

    async def handle(self, call: ServerCall) -> None:
        served = self._served.get(call.service)
        if served is None:
            await call.fail("not_found", f"service {call.service!r} is not served by this node")
            return
        endpoint = served.service.endpoints.get(call.endpoint)
        if endpoint is None:
            await call.fail(
                "not_found", f"service {call.service!r} has no endpoint {call.endpoint!r}"
            )
            return
        if endpoint.kind != call.kind:
            await call.fail(
                "bad_request",
                f"{call.service}.{call.endpoint} is a {endpoint.kind} endpoint, "
                f"called as {call.kind}",
            )
            return
        try:
            served.limiter.acquire_nowait()
        except trio.WouldBlock:
            served.refused += 1
            await call.fail(
                "overloaded",
                f"{call.service} is at its limit of {served.service.max_concurrency} calls",
            )
            return
        served.calls += 1
        try:
            await self._run(endpoint, call)
        except (CallCancelled, trio.Cancelled):
            raise
        except RemoteError as exc:
            served.errors += 1
            await call.fail(exc.code, exc.message, exc.details)
        except BadRequest as exc:
            served.errors += 1
            await call.fail("bad_request", str(exc))
        except MessageTooLarge as exc:
            served.errors += 1
            await call.fail("message_too_large", str(exc))
        except Exception as exc:
            served.errors += 1
            code, message, details = error_from_exception(exc)
            log.warning("%s.%s failed", call.service, call.endpoint, exc_info=True)
            await call.fail(code, message, details)
        finally:
            served.limiter.release()

    async def call_local(
        self, service: str, endpoint: str, body: Any, headers: Mapping[str, str] | None = None
    ) -> Any:
        """A unary call to a service this node serves, without the network (the client's
        path when the chosen instance is this node): same checks, limits and error codes."""
        served = self._served.get(service)
        ep = served.service.endpoints.get(endpoint) if served is not None else None
        if served is None or ep is None:
            raise RemoteError("not_found", f"{service}.{endpoint} is not served by this node")
        if ep.kind != "unary":
            raise BadRequest(f"{service}.{endpoint} is a {ep.kind} endpoint, called as unary")
        try:
            served.limiter.acquire_nowait()
        except trio.WouldBlock:
            served.refused += 1
            raise RemoteError("overloaded", f"{service} is at its call limit") from None
        served.calls += 1
        try:
            ctx = CallContext(None, dict(headers or {}), None, service, endpoint)
            result = await ep.invoke(ep.decode_request(body), ctx)
            return ep.encode_response(result)
        except (RemoteError, BadRequest):
            served.errors += 1
            raise
        except Exception as exc:
            served.errors += 1
            code, message, details = error_from_exception(exc)
            raise RemoteError(code, message, details) from exc
        finally:
            served.limiter.release()

    async def _run(self, ep: Endpoint, call: ServerCall) -> None:
        ctx = CallContext(
            peer=call.peer,
            headers=dict(call.headers),
            deadline=call.deadline,
            service=call.service,
            endpoint=call.endpoint,
        )
        if ep.kind == "unary":
            request = ep.decode_request(await call.receive())
            response = await ep.invoke(request, ctx)
            await call.send(ep.encode_response(response))
        elif ep.kind == "server_stream":
            request = ep.decode_request(await call.receive())
            stream = ep.invoke_stream(request, ctx)
            try:
                async for item in stream:
                    await call.send(ep.encode_response(item))
            finally:
                await stream.aclose()
        elif ep.kind == "client_stream":
            response = await ep.invoke(_requests(ep, call), ctx)
            await call.send(ep.encode_response(response))
        else:  # bidi
            stream = ep.invoke_stream(_requests(ep, call), ctx)
            try:
                async for item in stream:
                    await call.send(ep.encode_response(item))
            finally:
                await stream.aclose()
        await call.finish()


async def _requests(ep: Endpoint, call: ServerCall) -> AsyncIterator[Any]:
    async for body in call:
        yield ep.decode_request(body)
