"""``micronetwork node``: run one node in the foreground and log the peers it finds."""

from __future__ import annotations

import argparse
import sys
import time

import trio

from ..config import NodeConfig
from ..kademlia import PeerAdded, PeerRemoved
from ..node import Node


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("node", help="run a node in the foreground")
    role = p.add_mutually_exclusive_group()
    role.add_argument("--super", dest="role", action="store_const", const="super",
                      help="a super node: DHT server, bootstrap for others")
    role.add_argument("--peer", dest="role", action="store_const", const="peer",
                      help="a peer node (default)")
    p.add_argument("--listen", action="append", metavar="ADDR",
                   help="multiaddr to listen on (default /ip4/127.0.0.1/tcp/0); repeatable")
    p.add_argument("--bootstrap", action="append", default=[], metavar="ADDR",
                   help="a super node's multiaddr with /p2p/<id>; repeatable")
    p.add_argument("--key", metavar="FILE",
                   help="node key file (created, mode 0600, if missing); default: a new key")
    p.add_argument("--duration", type=float, metavar="S", help="stop after S seconds")
    p.add_argument("--gateway", type=int, metavar="PORT",
                   help="serve the HTTP API and dashboard on 127.0.0.1:PORT (0: any free port)")
    p.set_defaults(run=run, role="peer")


def run(args: argparse.Namespace) -> int:
    overrides = {"listen": tuple(args.listen)} if args.listen else {}
    factory = NodeConfig.super_node if args.role == "super" else NodeConfig.peer
    config = factory(bootstrap=tuple(args.bootstrap), key_file=args.key, **overrides)
    trio.run(_serve, config, args.duration, args.gateway)
    return 0


def _log(event: object) -> None:
    stamp = time.strftime("%H:%M:%S")
    if isinstance(event, PeerAdded):
        print(f"{stamp} + peer {event.peer_id}", flush=True)
    elif isinstance(event, PeerRemoved):
        print(f"{stamp} - peer {event.peer_id} ({event.reason})", flush=True)


async def _serve(config: NodeConfig, duration: float | None, gateway: int | None) -> None:
    async with Node.open(config) as node:
        node.on_peer_event(_log)
        print(f"{config.role} node {node.peer_id}", flush=True)
        for addr in node.addrs:
            print(f"  listening on {addr}", flush=True)
        for entry in node.routing_table():
            _log(PeerAdded(entry.peer_id, ()))
        if gateway is None:
            await _wait(duration)
            return
        from ..gateway import open_gateway

        async with open_gateway(node, port=gateway) as gw:
            print(f"  gateway and dashboard at {gw.url}", flush=True)
            await _wait(duration)


async def _wait(duration: float | None) -> None:
    print("  Ctrl-C to stop", file=sys.stderr, flush=True)
    if duration is None:
        await trio.sleep_forever()
    await trio.sleep(duration)
