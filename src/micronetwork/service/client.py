"""``node.client``: call any service in the network by name.

::

    answer = await node.client.call("greeter", "hello", {"name": "Ada"})
    async with node.client.stream("clock", "ticks", {"count": 3}) as call:
        async for tick in call:
            ...
    greeter = await node.client.stub("greeter", version="^1")
    answer = await greeter.hello(name="Ada")

Each call: the registry gives the live instances (within the version range, serving the
endpoint); the selector orders them (``"metric"``: lowest route metric first, the default;
``"round_robin"``; ``"random"``); the request is checked against the endpoint's schema before
anything is sent (:class:`BadRequest`); the call goes to the first instance, and on failure to
the next, within one overall ``timeout``.

When another instance is tried: an instance that cannot be reached (dial failure), that refused
the call before running it (``overloaded``, ``not_found``), or whose connection broke. A broken
connection after the request was sent is retried only for endpoints declared idempotent, since
the handler may have run. Between attempts the client waits ``backoff`` × 2ⁿ (with jitter).
Errors: :class:`ServiceNotFound`, :class:`NoInstanceReachable` (every attempt failed; the last
cause is chained), :class:`DeadlineExceeded`, :class:`RemoteError` (the handler's code and
message), :class:`BadRequest`, :class:`MessageTooLarge`.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import trio

from ..errors import (
    BadRequest,
    CallCancelled,
    DeadlineExceeded,
    DialError,
    NetworkError,
    NoInstanceReachable,
    RemoteError,
    RequestTimeout,
    ServiceNotFound,
)
from .registry import ServiceInstance
from .schema import validate

if TYPE_CHECKING:
    from ..host.rpc import ClientCall
    from ..node import Node

__all__ = ["Client", "Stub"]

Selector = Literal["metric", "round_robin", "random"]
_REFUSED = frozenset({"overloaded", "not_found", "unavailable"})


@dataclass(frozen=True, slots=True)
class _Attempt:
    instance: ServiceInstance
    endpoint: Mapping[str, Any]


class Client:
    """Calls services by name; ``node.client`` is the node's client."""

    def __init__(
        self,
        node: Node,
        *,
        timeout: float = 10.0,
        selector: Selector = "metric",
        attempts: int = 3,
        backoff: float = 0.05,
        rng: random.Random | None = None,
    ) -> None:
        self._node = node
        self.timeout = timeout
        self.selector: Selector = selector
        self.attempts = attempts
        self.backoff = backoff
        self._rng = rng or random.Random()
        self._rr: dict[str, int] = {}

    # -- selection ----------------------------------------------------------------------------

    async def _candidates(
        self, service: str, endpoint: str, version: str | None, kind: str | None,
        selector: Selector | None, timeout: float,
    ) -> list[_Attempt]:
        instances = await self._node.registry.get(service, version, timeout=timeout)
        out = []
        for inst in instances:
            ep = inst.endpoint(endpoint)
            if ep is not None and (kind is None or ep.get("kind") == kind):
                out.append(_Attempt(inst, ep))
        if not out:
            eps = [e for i in instances if (e := i.endpoint(endpoint)) is not None]
            kinds = {str(e.get("kind")) for e in eps}
            if kinds and kind is not None:
                raise BadRequest(f"{service}.{endpoint} is a {'/'.join(sorted(kinds))} endpoint, "
                                 f"not {kind}")
            raise ServiceNotFound(f"no instance of {service!r} has an endpoint {endpoint!r}")
        return self._order(service, out, selector or self.selector)

    def _order(self, service: str, items: list[_Attempt], selector: Selector) -> list[_Attempt]:
        if len(items) == 1:  # nothing to choose (round robin still counts the call)
            if selector == "round_robin":
                self._rr[service] = self._rr.get(service, 0) + 1
            return items
        self._rng.shuffle(items)
        if selector == "random":
            return items
        items.sort(key=lambda a: bytes(a.instance.peer))
        if selector == "round_robin":
            n = self._rr.get(service, 0)
            self._rr[service] = n + 1
            k = n % len(items)
            return items[k:] + items[:k]
        routes = self._node.registry.routes
        self._rng.shuffle(items)  # ties broken at random
        return sorted(
            items,
            key=lambda a: r.metric if (r := routes.get(service, a.instance.peer)) else 100.0,
        )

    # -- unary --------------------------------------------------------------------------------

    async def call(
        self,
        service: str,
        endpoint: str,
        body: Any = None,
        *,
        version: str | None = None,
        timeout: float | None = None,
        headers: Mapping[str, str] | None = None,
        selector: Selector | None = None,
        attempts: int | None = None,
    ) -> Any:
        """Call a unary endpoint; returns the response as CBOR-decoded data (dicts, lists,
        numbers, text, bytes)."""
        timeout = self.timeout if timeout is None else timeout
        deadline = trio.current_time() + timeout
        try:
            with trio.fail_after(timeout):
                cands = await self._candidates(service, endpoint, version, "unary", selector,
                                               timeout)
                first = cands[0]
                validate(body, first.endpoint.get("request", {}), path="request")
                return await self._with_failover(
                    service, endpoint, cands, attempts, deadline, body, headers
                )
        except trio.TooSlowError as exc:
            raise DeadlineExceeded(
                f"{service}.{endpoint} did not answer within {timeout} s"
            ) from exc

    async def _with_failover(
        self, service: str, endpoint: str, cands: list[_Attempt], attempts: int | None,
        deadline: float, body: Any, headers: Mapping[str, str] | None,
    ) -> Any:
        limit = max(1, self.attempts if attempts is None else attempts)
        last: BaseException | None = None
        routes = self._node.registry.routes
        for n in range(limit):
            attempt = cands[n % len(cands)]
            peer = attempt.instance.peer
            idempotent = bool(attempt.endpoint.get("idempotent", False))
            if n:
                await trio.sleep(self.backoff * (2 ** (n - 1)) * (0.5 + self._rng.random()))
            sent = False
            start = trio.current_time()
            if peer == self._node.peer_id:
                return await self._node.server.call_local(service, endpoint, body, headers)
            routes.started(service, peer)
            transport = self._node._rpc
            try:
                if not transport.has_stream(peer):  # else the connection is up: skip the dial
                    await self._connect(attempt.instance)
                remaining = max(0.001, deadline - trio.current_time())
                async with await transport.open_call(
                    peer, service, endpoint, kind="unary", headers=headers, timeout=remaining
                ) as call:
                    sent = True
                    result = await call.unary(body)
            except RemoteError as exc:
                routes.finished(service, peer, None, exc.code not in _REFUSED)
                if exc.code in _REFUSED:
                    last = exc
                    continue
                raise
            except (DialError, NetworkError) as exc:
                routes.finished(service, peer, None, False)
                last = exc
                continue
            except CallCancelled as exc:
                routes.finished(service, peer, None, False)
                last = exc
                if sent and not idempotent:
                    raise
                continue
            except RequestTimeout:
                routes.finished(service, peer, None, False)
                raise
            routes.finished(service, peer, trio.current_time() - start, True)
            return result
        raise NoInstanceReachable(
            f"{service}.{endpoint}: {limit} attempt(s) over {len(cands)} instance(s) failed; "
            f"last: {last}"
        ) from last

    async def _connect(self, inst: ServiceInstance) -> None:
        import multiaddr

        addrs = tuple(multiaddr.Multiaddr(a).to_bytes() for a in inst.addrs)
        await self._node._driver.ensure_connected(inst.peer, addrs)

    # -- streams ------------------------------------------------------------------------------

    @asynccontextmanager
    async def stream(
        self,
        service: str,
        endpoint: str,
        body: Any = None,
        *,
        version: str | None = None,
        timeout: float | None = None,
        headers: Mapping[str, str] | None = None,
        selector: Selector | None = None,
    ) -> AsyncIterator[ClientCall]:
        """Open a streaming call (server, client or bidi stream, as the endpoint is).

        For a server stream pass the request as ``body`` and iterate the call; for client and
        bidi streams ``await call.send(x)`` then ``await call.end()``; ``await
        call.receive()`` or ``async for`` reads responses. The instance is chosen as for
        ``call``; a stream is not retried once open (its messages may have been processed).
        """
        timeout = self.timeout if timeout is None else timeout
        cands = await self._candidates(service, endpoint, version, None, selector, timeout)
        errors: list[BaseException] = []
        for attempt in cands[: max(1, self.attempts)]:
            kind = str(attempt.endpoint.get("kind"))
            peer = attempt.instance.peer
            try:
                await self._connect(attempt.instance)
                cm = await self._node._rpc.open_call(
                    peer, service, endpoint, kind=kind, headers=headers, timeout=timeout
                )
            except (DialError, NetworkError, CallCancelled) as exc:
                self._node.registry.routes.finished(service, peer, None, False)
                errors.append(exc)
                continue
            async with cm as call:
                if kind == "server_stream":
                    validate(body, attempt.endpoint.get("request", {}), path="request")
                    await call.send(body)
                    await call.end()
                yield call
            return
        raise NoInstanceReachable(
            f"{service}.{endpoint}: no instance reachable ({errors[-1] if errors else 'none'})"
        )

    # -- typed stubs --------------------------------------------------------------------------

    async def stub(
        self, service: str, version: str | None = None, *, timeout: float | None = None
    ) -> Stub:
        """An object with one async method per unary endpoint of ``service``, built from the
        registry's schema: ``await stub.hello(name="Ada")`` or ``await stub.hello({...})``."""
        timeout = self.timeout if timeout is None else timeout
        instances = await self._node.registry.get(service, version, timeout=timeout)
        return Stub(self, service, version, instances[0])


class Stub:
    def __init__(
        self, client: Client, service: str, version: str | None, instance: ServiceInstance
    ) -> None:
        self._client = client
        self._service = service
        self._version = version
        self.endpoints = {str(e["name"]): e for e in instance.endpoints}

    def __getattr__(self, name: str) -> Any:
        endpoints = self.__dict__.get("endpoints", {})
        ep = endpoints.get(name)
        if ep is None:
            raise AttributeError(f"service {self._service!r} has no endpoint {name!r}")
        if ep.get("kind") != "unary":
            raise AttributeError(
                f"{self._service}.{name} is a {ep.get('kind')} endpoint: use client.stream()"
            )

        async def method(*args: Any, **kwargs: Any) -> Any:
            if args and kwargs or len(args) > 1:
                raise TypeError(f"{name}() takes one request or keyword fields")
            body = args[0] if args else (kwargs or None)
            return await self._client.call(self._service, name, body, version=self._version)

        method.__name__ = name
        method.__doc__ = str(ep.get("doc") or "")
        return method

    def __dir__(self) -> list[str]:
        return sorted(self.endpoints)
