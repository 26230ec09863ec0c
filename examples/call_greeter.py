"""Call the ``greeter`` service from anywhere in the network, knowing only its name.

    python examples/greeter.py --bootstrap ADDR &          # serve it somewhere
    python examples/call_greeter.py --bootstrap ADDR --name Ada
"""

from __future__ import annotations

import argparse

import trio

from micronetwork import Node, NodeConfig, RemoteError, ServiceNotFound


async def main(bootstrap: list[str], name: str) -> int:
    async with Node.open(NodeConfig.peer(bootstrap=tuple(bootstrap))) as node:
        try:
            answer = await node.client.call("greeter", "hello", {"name": name}, timeout=10)
        except ServiceNotFound:
            print("nobody serves greeter yet: start examples/greeter.py first")
            return 1
        except RemoteError as exc:
            print(f"greeter refused: {exc.code}: {exc.message}")
            return 1
        print(answer["message"], f"(served by {answer['served_by']})")
        async with node.client.stream("greeter", "countdown", 3) as call:
            print("countdown:", [n async for n in call])
        return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--bootstrap", action="append", required=True)
    parser.add_argument("--name", default="Ada")
    args = parser.parse_args()
    raise SystemExit(trio.run(main, args.bootstrap, args.name))
