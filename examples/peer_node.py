"""A peer node: joins through a super node and finds the others through the DHT.

    python examples/peer_node.py --bootstrap /ip4/127.0.0.1/tcp/4001/p2p/12D3KooW...
"""

import argparse

import trio

from micronetwork import Node, NodeConfig, PeerAdded, PeerRemoved


def log(event: object) -> None:
    if isinstance(event, PeerAdded):
        print("+ peer", event.peer_id, flush=True)
    elif isinstance(event, PeerRemoved):
        print("- peer", event.peer_id, event.reason, flush=True)


async def main(bootstrap: list[str]) -> None:
    async with Node.open(NodeConfig.peer(bootstrap=tuple(bootstrap))) as node:
        node.on_peer_event(log)
        print("peer node", node.peer_id, "at", node.addrs[0])
        for entry in node.routing_table():
            print("  knows", entry.peer_id)
        # Announce ourselves under a name anyone can look up, then look at the network.
        await node.provide("examples/peer_node")
        while True:
            providers = await node.find_providers("examples/peer_node")
            print(f"{len(providers)} peer_node examples online; table: {len(node.routing_table())}")
            await trio.sleep(10)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--bootstrap", action="append", required=True)
    trio.run(main, parser.parse_args().bootstrap)
