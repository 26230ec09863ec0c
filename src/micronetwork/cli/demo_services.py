"""The services the demo network serves: small, but each shows one kind of endpoint."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

from ..errors import RemoteError
from ..service import CallContext, Service

__all__ = ["clock_service", "greeter_service"]


@dataclass
class HelloRequest:
    name: str
    excited: bool = False


@dataclass
class HelloReply:
    message: str
    served_by: str


@dataclass
class Tick:
    n: int
    served_by: str


def greeter_service(node_name: str, version: str = "1.0.0") -> Service:
    """``greeter``: a unary endpoint with a typed request and typed errors."""
    svc = Service("greeter", version=version, metadata={"demo": "yes"})

    @svc.endpoint(idempotent=True)
    async def hello(req: HelloRequest, ctx: CallContext) -> HelloReply:
        """Greet someone by name."""
        if not req.name.strip():
            raise RemoteError("invalid_argument", "name must not be empty")
        return HelloReply(f"Hello, {req.name}{'!' if req.excited else '.'}", node_name)

    return svc


def clock_service(node_name: str) -> Service:
    """``clock``: a server stream (countdown) and a client stream (sum)."""
    svc = Service("clock", version="0.3.0")

    @svc.endpoint
    async def countdown(start: int) -> AsyncIterator[Tick]:
        """Count down from ``start`` to 0, one message per number."""
        if not 0 <= start <= 1000:
            raise RemoteError("invalid_argument", "start must be within 0..1000")
        for i in range(start, -1, -1):
            yield Tick(i, node_name)

    @svc.endpoint
    async def total(numbers: AsyncIterator[int]) -> int:
        """Sum the numbers the caller streams."""
        return sum([n async for n in numbers])

    return svc
