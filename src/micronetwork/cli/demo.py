"""``micronetwork demo``: a local network in one process on 127.0.0.1, and what it can do.

One super node and N peers start; each peer is given only the super node's address. The demo
then shows, step by step: every peer finds every other through the DHT; two peers serve the
``greeter`` service and one serves ``clock``; another peer finds them by name and calls them
(unary, server stream, client stream, a typed stub, a typed error); one greeter instance stops,
the registry says so at once and calls fail over; broker events with retention (a late
subscriber catches up); the network views (services, routes) as the ``micronetwork services`` /
``routes`` commands print them; and then the HTTP gateway with the dashboard, served until
Ctrl-C (``--duration S`` for a timed run, ``--duration 0`` to exit at once).
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import trio

from ..broker import Event, gossip_topic
from ..config import NodeConfig
from ..errors import RemoteError
from ..node import Node
from .demo_services import clock_service, greeter_service
from .services import format_table


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("demo", help="start a local network on 127.0.0.1: discovery, services, "
                       "broker, dashboard")
    p.add_argument("--peers", type=int, default=5, help="peer nodes besides the super node "
                   "(at least 4; default 5)")
    p.add_argument("--duration", type=float, default=None, metavar="S",
                   help="serve the dashboard S seconds after the demo, then exit (default: "
                        "until Ctrl-C; 0: exit at once)")
    p.add_argument("--port", type=int, default=8080,
                   help="the dashboard's port on 127.0.0.1 (default 8080; busy: any free port)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if not 4 <= args.peers <= 200:
        print("micronetwork demo: --peers must be between 4 and 200")
        return 2
    return trio.run(_demo, args.peers, args.duration, args.port)


async def _broker(peers: list[Node]) -> bool:
    _step("7. broker: events with retention; a late subscriber catches up")
    pub, live_node, late_node = peers[1], peers[2], peers[3]
    async with live_node.broker.subscribe("demo.orders") as live:
        # Live delivery starts once the subscription reached the publisher (milliseconds).
        with trio.fail_after(10):
            while live_node.peer_id not in pub.topic_peers(gossip_topic("demo.orders")):
                await trio.sleep(0.01)
        for i in range(1, 4):
            await pub.broker.publish("demo.orders", f"order {i}".encode(),
                                     headers={"kind": "created"}, retained=True)
        got_live = [(await live.receive()) for _ in range(3)]
    _say(f"  {pub.peer_id.short()} published 3 events on demo.orders; live subscriber "
         f"{live_node.peer_id.short()} got: "
         + ", ".join(e.payload.decode() for e in got_live if isinstance(e, Event)))
    async with late_node.broker.subscribe("demo.orders", since=0) as late:
        got_late = [(await late.receive()) for _ in range(3)]
        await late.caught_up.wait()
    payloads = [e.payload.decode() for e in got_late if isinstance(e, Event)]
    _say(f"  {late_node.peer_id.short()} subscribed later with since=0 and replayed from the "
         f"super node's retention: {', '.join(payloads)}")
    return payloads == ["order 1", "order 2", "order 3"]


async def _dashboard(node: Node, peers: list[Node], duration: float | None, port: int) -> None:
    from ..errors import ConfigError
    from ..gateway import open_gateway

    _step("8. the HTTP gateway and the dashboard")
    try:
        gw_cm = open_gateway(node, port=port)
        gw = await gw_cm.__aenter__()
    except ConfigError:
        gw_cm = open_gateway(node, port=0)  # the port is busy: any free one
        gw = await gw_cm.__aenter__()
    try:
        url = gw.url.rstrip("/")
        _say(f"  dashboard:  {url}/   (graph, nodes, services, a call form, live events)")
        _say(f"  call:       curl -s -X POST {url}/greeter/hello "
             "-H 'content-type: application/json' -d '{\"name\": \"Ada\"}'")
        _say(f"  views:      {url}/network/nodes  {url}/network/services  "
             f"{url}/network/graph?depth=3")
        _say(f"  OpenAPI:    {url}/openapi.json")
        _say(f"  CLI:        micronetwork services --api {url}   (also routes, nodes, graph)")
        if duration is None:
            _say("\nserving until Ctrl-C")
            await trio.sleep_forever()
        _say(f"\nserving for {duration:.0f} s")
        await trio.sleep(duration)
    finally:
        await gw_cm.__aexit__(None, None, None)


def _say(text: str = "") -> None:
    print(text, flush=True)


def _step(title: str) -> None:
    _say(f"\n== {title} " + "=" * max(0, 74 - len(title)))


async def _demo(n_peers: int, duration: float | None, port: int) -> int:
    t0 = time.perf_counter()
    ok = True
    async with Node.open(NodeConfig.super_node()) as sup, trio.open_nursery() as nursery:
        boot = sup.addrs[0]
        _step("1. a local network")
        _say(f"super node  {sup.peer_id}  at {boot}")
        peers: list[Node] = []
        stoppers: list[trio.Event] = []

        async def run_peer(task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
            stop = trio.Event()
            async with Node.open(NodeConfig.peer(bootstrap=(boot,))) as node:
                task_status.started((node, stop))
                await stop.wait()

        for i in range(n_peers):
            node, stop = await nursery.start(run_peer)
            peers.append(node)
            stoppers.append(stop)
            _say(f"peer {i + 1:<3}    {node.peer_id}  joined, knows {len(node.routing_table())}")
        _say(f"{n_peers + 1} nodes up in {time.perf_counter() - t0:.2f} s; "
             "each peer was given only the super node's address.")

        ok &= await _discovery(sup, peers)
        ok &= await _services(sup, peers, stoppers)
        ok &= await _broker(peers)

        if duration is None or duration > 0:
            await _dashboard(peers[-1], peers, duration, port)
        for stop in stoppers:
            stop.set()
        nursery.cancel_scope.cancel()
    _say(f"\ndemo {'finished' if ok else 'FAILED'} in {time.perf_counter() - t0:.1f} s")
    return 0 if ok else 1


async def _discovery(sup: Node, peers: list[Node]) -> bool:
    _step("2. discovery: every peer looks up every node through the DHT")
    everyone = [sup, *peers]
    found = total = 0
    t1 = time.perf_counter()
    for a in peers:
        for b in everyone:
            if a is b:
                continue
            total += 1
            try:
                await a.find_peer(b.peer_id, timeout=10)
                found += 1
            except Exception as exc:
                _say(f"  {a.peer_id.short()} could not find {b.peer_id.short()}: {exc}")
    _say(f"{found}/{total} lookups succeeded in {time.perf_counter() - t1:.2f} s")
    return found == total


async def _services(sup: Node, peers: list[Node], stoppers: list[trio.Event]) -> bool:
    g1, g2, clk, caller = peers[0], peers[1], peers[2], peers[-1]
    _step("3. services: two peers serve greeter, one serves clock")
    await g1.serve(greeter_service(g1.peer_id.short(), "1.0.0"))
    await g2.serve(greeter_service(g2.peer_id.short(), "1.1.0"))
    await clk.serve(clock_service(clk.peer_id.short()))
    for node, what in ((g1, "greeter 1.0.0"), (g2, "greeter 1.1.0"), (clk, "clock 0.3.0")):
        _say(f"  {node.peer_id.short()} serves {what}")

    _step(f"4. calls from {caller.peer_id.short()}, which knows only the names")
    t = time.perf_counter()
    instances = await caller.registry.get("greeter")
    _say(f"registry.get('greeter'): {len(instances)} instances, found through the DHT in "
         f"{(time.perf_counter() - t) * 1000:.0f} ms; endpoints: "
         + ", ".join(f"{e['name']} ({e['kind']})" for e in instances[0].endpoints))
    for name in ("Ada", "Grace", "Linus"):
        t = time.perf_counter()
        answer = await caller.client.call("greeter", "hello", {"name": name},
                                          selector="round_robin")
        _say(f"  call greeter.hello {{'name': {name!r}}} -> {answer}  "
             f"({(time.perf_counter() - t) * 1000:.1f} ms)")
    answer = await caller.client.call("greeter", "hello", {"name": "v1.1 only"}, version="^1.1")
    _say(f"  call with version '^1.1' -> served by {answer['served_by']} (the 1.1.0 instance)")
    async with caller.client.stream("clock", "countdown", 3) as call:
        ticks = [tick["n"] async for tick in call]
    _say(f"  stream clock.countdown(3) -> {ticks}")
    async with caller.client.stream("clock", "total") as call:
        for n in (1, 2, 3, 4):
            await call.send(n)
        await call.end()
        total = await call.receive()
    _say(f"  client stream clock.total(1, 2, 3, 4) -> {total}")
    greeter = await caller.client.stub("greeter")
    answer = await greeter.hello(name="stub", excited=True)
    _say(f"  typed stub: await greeter.hello(name='stub', excited=True) -> {answer['message']}")
    try:
        await caller.client.call("greeter", "hello", {"name": " "})
        ok_error = False
    except RemoteError as exc:
        _say(f"  a handler's typed error arrives as RemoteError: code={exc.code!r} "
             f"message={exc.message!r}")
        ok_error = exc.code == "invalid_argument"

    _step("5. an instance stops: the registry says so at once, calls fail over")
    async with caller.registry.watch("greeter") as events:
        while len(caller.registry.known("greeter")) < 2:
            await events.receive()
        t = time.perf_counter()
        stoppers[0].set()  # g1 leaves gracefully: it withdraws its registration
        while True:
            ev = await events.receive()
            if ev.kind == "deleted":
                break
        _say(f"  {ev.peer.short()} stopped; {caller.peer_id.short()} saw 'deleted "
             f"({ev.reason})' after {(time.perf_counter() - t) * 1000:.0f} ms")
    served = {(await caller.client.call("greeter", "hello", {"name": "again"}))["served_by"]
              for _ in range(3)}
    _say(f"  3 more calls were served by: {', '.join(sorted(served))}")

    _step("6. network views (micronetwork services / routes print these)")
    summaries = await caller.registry.list_network()
    _say(format_table(("SERVICE", "VERSION", "INSTANCES"),
                      [(s.name, s.version, s.instances) for s in summaries]))
    _say()
    rows = [(r.service, r.address, r.gateway or "-", caller.peer_id.short(), "micronetwork",
             f"{r.metric:.1f}", r.link) for r in caller.registry.route_table()]
    _say(format_table(("SERVICE", "ADDRESS", "GATEWAY", "ROUTER", "NETWORK", "METRIC", "LINK"),
                      rows))
    return ok_error and served == {g2.peer_id.short()} and ticks == [3, 2, 1, 0] and total == 10
