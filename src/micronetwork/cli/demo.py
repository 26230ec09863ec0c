"""``micronetwork demo``: a local network in one process on 127.0.0.1, and what it can do.

One super node and N peers start; each peer is given only the super node's address. The demo
then shows, step by step, that every peer finds every other through the DHT, that values and
provider records round-trip, and prints each node's routing table.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import trio

from ..config import NodeConfig
from ..node import Node


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("demo", help="start a local network on 127.0.0.1 and show discovery")
    p.add_argument("--peers", type=int, default=6, help="peer nodes besides the super node")
    p.add_argument("--duration", type=float, default=0.0, metavar="S",
                   help="keep the network running S seconds after the demo (default: exit)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if not 1 <= args.peers <= 200:
        print("micronetwork demo: --peers must be between 1 and 200")
        return 2
    return trio.run(_demo, args.peers, args.duration)


def _say(text: str) -> None:
    print(text, flush=True)


async def _demo(n_peers: int, duration: float) -> int:
    t0 = time.perf_counter()
    async with Node.open(NodeConfig.super_node()) as sup, trio.open_nursery() as nursery:
        boot = sup.addrs[0]
        _say(f"super node  {sup.peer_id}  at {boot}")
        peers: list[Node] = []

        async def run_peer(task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
            async with Node.open(NodeConfig.peer(bootstrap=(boot,))) as node:
                task_status.started(node)
                await trio.sleep_forever()

        for i in range(n_peers):
            node = await nursery.start(run_peer)
            peers.append(node)
            _say(f"peer {i + 1:<3}    {node.peer_id}  joined, knows {len(node.routing_table())}")
        _say(f"\n{n_peers + 1} nodes up in {time.perf_counter() - t0:.2f} s; "
             "each peer was given only the super node's address.\n")

        everyone = [sup, *peers]
        _say("find_peer(column) from each peer (row):")
        _say(" " * 15 + "".join(f"{n.peer_id.short()[-2:]:>3}" for n in everyone))
        found = 0
        total = 0
        t1 = time.perf_counter()
        for a in peers:
            row = []
            for b in everyone:
                if a is b:
                    row.append("  .")
                    continue
                total += 1
                try:
                    await a.find_peer(b.peer_id, timeout=10)
                    found += 1
                    row.append("  ✓")
                except Exception:
                    row.append("  ✗")
            _say(f"{a.peer_id.short()} found{''.join(row)}")
        _say(f"\nwho found whom: {found}/{total} lookups succeeded "
             f"in {time.perf_counter() - t1:.2f} s")

        stored = await peers[0].put("/mn/demo/greeting", b"hello, micro network")
        value = await peers[-1].get("/mn/demo/greeting")
        _say(f"put /mn/demo/greeting on {peers[0].peer_id.short()}: stored on {stored} peers; "
             f"get from {peers[-1].peer_id.short()}: {value.decode()!r}")
        await peers[1 % n_peers].provide("service/greeter")
        providers = await peers[-1].find_providers("service/greeter")
        _say("providers of service/greeter: "
             + ", ".join(f"{p.peer_id.short()} {p.addrs[0] if p.addrs else ''}" for p in providers))

        _say("\nrouting tables:")
        for node in everyone:
            names = " ".join(e.peer_id.short() for e in node.routing_table())
            _say(f"  {node.role:5} {node.peer_id.short()}: {names}")
        if duration > 0:
            _say(f"\nnetwork keeps running for {duration:.0f} s (Ctrl-C to stop)")
            await trio.sleep(duration)
        nursery.cancel_scope.cancel()
    return 0 if found == total else 1
