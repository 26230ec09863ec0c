"""Shared by the gateway tests: a super node with the gateway + 2 peers, one serving the
greeter example and a test service (``lab``) with every endpoint kind and failure."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import trio

from micronetwork import Node, NodeConfig
from micronetwork.errors import RemoteError
from micronetwork.gateway import Gateway, open_gateway
from micronetwork.service import CallContext, Service

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "examples"))
from greeter import NODE, greeter  # noqa: E402

lab = Service("lab", version="0.3.0")
STATE: dict[str, Any] = {}


@dataclass
class Blob:
    data: bytes
    n: int = 0


@lab.endpoint
async def echo(blob: Blob) -> Blob:
    """Echo bytes (base64 in JSON)."""
    return Blob(blob.data, blob.n + 1)


@lab.endpoint
async def fail(code: str) -> None:
    raise RemoteError(code, f"failed with {code} on purpose", {"asked": code})


@lab.endpoint
async def boom() -> None:
    raise RuntimeError("a bug in the handler")


@lab.endpoint
async def slow(seconds: float) -> float:
    await trio.sleep(seconds)
    return seconds


@lab.endpoint
async def total(nums: AsyncIterator[int]) -> int:
    return sum([n async for n in nums])


@lab.endpoint
async def double(nums: AsyncIterator[int]) -> AsyncIterator[int]:
    async for n in nums:
        yield 2 * n


@lab.endpoint
async def ticks(ctx: CallContext) -> AsyncIterator[int]:
    """Ticks until the caller goes away."""
    STATE["ticking"].set()
    try:
        n = 0
        while True:
            yield n
            n += 1
            await trio.sleep(0.005)
    finally:
        STATE["stopped"].set()


@dataclass
class Net:
    sup: Node
    server: Node
    other: Node
    gateway: Gateway

    @property
    def nodes(self) -> list[Node]:
        return [self.sup, self.server, self.other]


def known_roles(node: Node) -> int:
    return sum(1 for _, r in node.network_graph().nodes(data="role") if r != "unknown")


async def converged(node: Node, n: int) -> None:
    while known_roles(node) < n:
        await node.netview.changed()


@asynccontextmanager
async def network(**gateway: Any) -> AsyncIterator[Net]:
    STATE.update(ticking=trio.Event(), stopped=trio.Event())
    async with Node.open(NodeConfig.super_node()) as sup:
        boot = (sup.addrs[0],)
        async with Node.open(NodeConfig.peer(bootstrap=boot)) as server, \
                Node.open(NodeConfig.peer(bootstrap=boot)) as other:
            NODE[0] = str(server.peer_id)
            await server.serve(greeter)
            await server.serve(lab)
            async with open_gateway(sup, port=0, **gateway) as gw:
                net = Net(sup, server, other, gw)
                await converged(sup, 3)
                yield net
