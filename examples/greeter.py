"""A service on the Micro network: ``greeter`` with a unary and a streaming endpoint.

    python examples/greeter.py --bootstrap /ip4/127.0.0.1/tcp/4001/p2p/12D3KooW...

Then, from anywhere that can reach the super node::

    micronetwork services --bootstrap ADDR
    micronetwork call greeter hello '{"name": "Ada"}' --bootstrap ADDR
"""

from __future__ import annotations

import argparse
from collections.abc import AsyncIterator
from dataclasses import dataclass

import trio

from micronetwork import Node, NodeConfig
from micronetwork.errors import RemoteError
from micronetwork.service import CallContext, Service

greeter = Service("greeter", version="1.0.0", metadata={"example": "yes"})


@dataclass
class HelloRequest:
    name: str
    excited: bool = False


@dataclass
class HelloReply:
    message: str
    served_by: str


@greeter.endpoint(idempotent=True)
async def hello(req: HelloRequest, ctx: CallContext) -> HelloReply:
    """Greet someone by name."""
    if not req.name:
        raise RemoteError("invalid_argument", "name must not be empty")
    mark = "!" if req.excited else "."
    return HelloReply(f"Hello, {req.name}{mark}", served_by=NODE[0])


@greeter.endpoint
async def countdown(start: int) -> AsyncIterator[int]:
    """Count down from ``start`` to 0, one number per message."""
    for i in range(start, -1, -1):
        yield i


NODE = [""]


async def main(bootstrap: list[str], duration: float | None) -> None:
    async with Node.open(NodeConfig.peer(bootstrap=tuple(bootstrap))) as node:
        NODE[0] = str(node.peer_id)
        await node.serve(greeter)
        print(f"serving greeter 1.0.0 on {node.peer_id}", flush=True)
        if duration is None:
            await trio.sleep_forever()
        await trio.sleep(duration)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--bootstrap", action="append", required=True)
    parser.add_argument("--duration", type=float, help="stop after this many seconds")
    args = parser.parse_args()
    trio.run(main, args.bootstrap, args.duration)
