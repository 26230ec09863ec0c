"""``micronetwork publish | subscribe``: the broker from the command line.

Both join the network briefly as a client node through a super node (``--bootstrap``), which
is also the retention node: ``publish`` returns once the super node has stored the event, so a
subscriber that starts later still gets it; ``subscribe --since 0`` replays everything the
super node retains, then follows the topic live, printing each event's payload on its own line.
"""

from __future__ import annotations

import argparse
import sys
from datetime import datetime
from typing import Any

import trio

from ..broker import Event, FromOffset, FromTime, Lagging, Missed
from ..config import NodeConfig
from ..errors import ConfigError
from ..identity.peerid import PeerId
from ..node import Node

__all__ = ["add_parser"]


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("publish", help="publish an event to a broker topic")
    p.add_argument("topic")
    p.add_argument("data", help="the payload (text, sent as UTF-8)")
    p.add_argument("--header", action="append", default=[], metavar="K=V",
                   help="an event header; repeatable")
    _common(p)
    p.set_defaults(run=lambda a: _run(_publish, a))

    p = sub.add_parser("subscribe", help="print a topic's events, one payload per line")
    p.add_argument("topic")
    p.add_argument("--since", metavar="OFFSET|TIME",
                   help="replay retained events first: an offset in the super node's log "
                        "(0: the oldest retained), or a time (ISO 8601 or epoch seconds)")
    p.add_argument("--group", help="join a queue group: each event goes to one member")
    p.add_argument("--count", type=int, metavar="N", help="exit after N events")
    p.add_argument("--duration", type=float, metavar="S", help="exit after S seconds")
    _common(p)
    p.set_defaults(run=lambda a: _run(_subscribe, a))


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--bootstrap", action="append", default=[], metavar="ADDR", required=True,
                   help="a super node's multiaddr with /p2p/<id>; repeatable")
    p.add_argument("--timeout", type=float, default=10.0, metavar="S",
                   help="bound on joining and on publishing (default 10 s)")


def _run(job: Any, args: argparse.Namespace) -> int:
    config = NodeConfig.peer(bootstrap=tuple(args.bootstrap))
    code: int = trio.run(_with_node, job, config, args)
    return code


async def _with_node(job: Any, config: NodeConfig, args: argparse.Namespace) -> int:
    async with Node.open(config) as node:
        code: int = await job(node, args)
        return code


async def _publish(node: Node, args: argparse.Namespace) -> int:
    headers = {}
    for h in args.header:
        key, sep, value = h.partition("=")
        if not sep or not key:
            raise ConfigError(f"a header is KEY=VALUE, not {h!r}")
        headers[key] = value
    event = await node.broker.publish(args.topic, args.data.encode(), headers=headers,
                                      retained=True, timeout=args.timeout)
    print(f"published {args.topic} seq {event.seq} id {event.id.hex()[:16]}", file=sys.stderr)
    return 0


def parse_since(text: str | None, retention: PeerId | None) -> FromOffset | FromTime | None:
    """``--since``: an integer is an offset in the retention node's log (0: oldest), anything
    else a time (ISO 8601, or epoch seconds with a decimal point)."""
    if text is None:
        return None
    if text.isdigit():
        if retention is None:
            raise ConfigError("--since OFFSET needs a retention node (--bootstrap)")
        return FromOffset(retention, int(text)) if int(text) else FromTime(0.0)
    try:
        return FromTime(float(text))
    except ValueError:
        pass
    try:
        return FromTime(datetime.fromisoformat(text).timestamp())
    except ValueError as exc:
        raise ConfigError(f"--since takes an offset or a time, not {text!r}") from exc


async def _subscribe(node: Node, args: argparse.Namespace) -> int:
    peers = node._core.broker.retention_peers.get(None) or []
    since = parse_since(args.since, peers[0] if peers else None)
    seen = 0
    with trio.move_on_after(args.duration if args.duration is not None else float("inf")):
        async with node.broker.subscribe(args.topic, group=args.group, since=since) as sub:
            async for item in sub:
                if isinstance(item, Event):
                    sys.stdout.buffer.write(item.payload + b"\n")
                    sys.stdout.flush()
                    seen += 1
                    if args.count is not None and seen >= args.count:
                        break
                elif isinstance(item, Missed):
                    print(f"missed {item.count} events ({item.reason})", file=sys.stderr)
                elif isinstance(item, Lagging):
                    print("falling behind; resuming from retention", file=sys.stderr)
    return 0
