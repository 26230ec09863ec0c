"""A chat room on the Micro network's broker: type lines, see everyone's, catch up on join.

    python examples/chat.py --bootstrap /ip4/127.0.0.1/tcp/4001/p2p/12D3KooW... --name ada

Each line you type is published to the topic ``chat.<room>``; the super node retains the room,
so someone who joins later first sees the last messages (``--history``, default all retained),
then the conversation live. ``--say TEXT`` posts one message and exits (no typing needed).
"""

from __future__ import annotations

import argparse
import sys
import time

import trio

from micronetwork import Node, NodeConfig
from micronetwork.broker import Event, Missed


async def show(node: Node, topic: str, since: float | None) -> None:
    async with node.broker.subscribe(topic, since=since) as sub:
        async for item in sub:
            if isinstance(item, Event):
                who = item.headers.get("name", item.publisher.short())
                stamp = time.strftime("%H:%M:%S", time.localtime(item.time))
                print(f"[{stamp}] {who}: {item.payload.decode(errors='replace')}", flush=True)
            elif isinstance(item, Missed):
                print(f"({item.count} older messages are no longer retained)", flush=True)


async def main(args: argparse.Namespace) -> None:
    topic = f"chat.{args.room}"
    async with Node.open(NodeConfig.peer(bootstrap=tuple(args.bootstrap))) as node:
        headers = {"name": args.name}
        if args.say is not None:
            await node.broker.publish(topic, args.say.encode(), headers=headers, retained=True)
            return
        since = 0.0 if args.history else None
        async with trio.open_nursery() as nursery:
            nursery.start_soon(show, node, topic, since)
            print(f"joined {topic} as {args.name}; type a line and press enter", flush=True)
            stdin = trio.wrap_file(sys.stdin)
            async for line in stdin:
                text = line.rstrip("\n")
                if text:
                    await node.broker.publish(topic, text.encode(), headers=headers)
            nursery.cancel_scope.cancel()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--bootstrap", action="append", required=True)
    parser.add_argument("--name", default="anon")
    parser.add_argument("--room", default="lobby")
    parser.add_argument("--say", help="post one message and exit")
    parser.add_argument("--no-history", dest="history", action="store_false",
                        help="only new messages")
    trio.run(main, parser.parse_args())
