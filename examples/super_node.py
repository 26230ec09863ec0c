"""A super node: DHT server and bootstrap point for the network.

    python examples/super_node.py [--listen /ip4/127.0.0.1/tcp/4001] [--key super.key]

Prints its address; give that address to peers with --bootstrap.
"""

import argparse

import trio

from micronetwork import Node, NodeConfig, PeerAdded, PeerRemoved


def log(event: object) -> None:
    if isinstance(event, PeerAdded):
        print("+ peer", event.peer_id, flush=True)
    elif isinstance(event, PeerRemoved):
        print("- peer", event.peer_id, event.reason, flush=True)


async def main(listen: str, key: str | None) -> None:
    config = NodeConfig.super_node(listen=(listen,), key_file=key)
    async with Node.open(config) as node:
        node.on_peer_event(log)
        print("super node", node.peer_id)
        for addr in node.addrs:
            print("  bootstrap address:", addr, flush=True)
        await trio.sleep_forever()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--listen", default="/ip4/127.0.0.1/tcp/4001")
    parser.add_argument("--key", help="key file, created if missing")
    args = parser.parse_args()
    trio.run(main, args.listen, args.key)
