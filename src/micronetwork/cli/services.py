"""``micronetwork services | routes | call``: look at and call the network's services.

Each joins the network briefly as a client node (``--bootstrap ADDR``, a super node's address
with ``/p2p/<id>``), does its job, prints a table or the JSON answer, and leaves; or, with
``--api URL``, asks a running node's HTTP gateway instead (see :mod:`.views`).
"""

from __future__ import annotations

import argparse
import base64
import json
import sys
from collections.abc import Sequence
from typing import Any

import trio

from ..config import NodeConfig
from ..errors import ConfigError
from ..node import Node

__all__ = ["add_parser", "format_table"]


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("services", help="list the network's services (or one service's instances)")
    p.add_argument("name", nargs="?", help="show this service's instances and endpoints")
    _common(p)
    p.set_defaults(run=lambda a: _run(_services, a))

    p = sub.add_parser("routes", help="the route to every instance of the services known")
    p.add_argument("name", nargs="?", help="only this service")
    _common(p)
    p.set_defaults(run=lambda a: _run(_routes, a))

    p = sub.add_parser("call", help="call a service endpoint and print its JSON answer")
    p.add_argument("service")
    p.add_argument("endpoint")
    p.add_argument("body", nargs="?", default="null", help="the request as JSON (default null)")
    p.add_argument("--version", help="a semver range, e.g. ^1.2")
    p.add_argument("--timeout", type=float, default=10.0, help="seconds (default 10)")
    _common(p)
    p.set_defaults(run=lambda a: _run(_call, a))


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--bootstrap", action="append", default=[], metavar="ADDR",
                   help="a super node's multiaddr with /p2p/<id>; repeatable")
    from .views import add_api_args

    add_api_args(p, default=None)  # --api URL: ask a running node's gateway instead
    p.add_argument("--join-timeout", type=float, default=10.0, metavar="S",
                   help="how long to wait for the network (default 10 s)")


def _run(job: Any, args: argparse.Namespace) -> int:
    if args.api:
        from .views_api import run_via_api

        return run_via_api(job.__name__.strip("_"), args)
    if not args.bootstrap:
        raise ConfigError("give --bootstrap ADDR (join the network) or --api URL (ask a "
                          "running node's gateway)")
    config = NodeConfig.peer(bootstrap=tuple(args.bootstrap))
    code: int = trio.run(_with_node, job, config, args)
    return code


async def _with_node(job: Any, config: NodeConfig, args: argparse.Namespace) -> int:
    with trio.fail_after(args.join_timeout + getattr(args, "timeout", 10.0) + 5):
        async with Node.open(config) as node:
            code: int = await job(node, args)
            return code


def format_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A plain, aligned text table (micro's CLI style): header row, then one row per item."""
    cells = [[str(h) for h in headers]] + [[str(c) for c in r] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
             for row in cells]
    return "\n".join(lines)


async def _services(node: Node, args: argparse.Namespace) -> int:
    if args.name:
        instances = await node.registry.get(args.name, timeout=args.join_timeout)
        rows = [(i.name, i.version, i.peer, i.addrs[0] if i.addrs else "-") for i in instances]
        print(format_table(("SERVICE", "VERSION", "NODE", "ADDRESS"), rows))
        eps = instances[0].endpoints
        print()
        print(format_table(
            ("ENDPOINT", "KIND", "REQUEST", "RESPONSE"),
            [(e.get("name"), e.get("kind"), _schema_name(e.get("request")),
              _schema_name(e.get("response"))) for e in eps],
        ))
        return 0
    summaries = await node.registry.list_network(timeout=args.join_timeout)
    if not summaries:
        print("no services found", file=sys.stderr)
        return 1
    print(format_table(("SERVICE", "VERSION", "INSTANCES"),
                       [(s.name, s.version, s.instances) for s in summaries]))
    return 0


async def _routes(node: Node, args: argparse.Namespace) -> int:
    names = [args.name] if args.name else [
        s.name for s in await node.registry.list_network(timeout=args.join_timeout)
    ]
    for name in names:
        await node.registry.get(name, timeout=args.join_timeout)
    rows = []
    for r in node.registry.route_table(args.name):
        metric = f"{r.metric:.1f}"
        rows.append((r.service, r.address or "-", r.gateway or "-", node.peer_id.short(),
                     "micronetwork", metric, r.link))
    if not rows:
        print("no routes", file=sys.stderr)
        return 1
    print(format_table(
        ("SERVICE", "ADDRESS", "GATEWAY", "ROUTER", "NETWORK", "METRIC", "LINK"), rows
    ))
    return 0


async def _call(node: Node, args: argparse.Namespace) -> int:
    try:
        body = json.loads(args.body)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"the request is not JSON: {exc}") from exc
    answer = await node.client.call(
        args.service, args.endpoint, body, version=args.version, timeout=args.timeout
    )
    print(json.dumps(answer, default=_json_default, indent=2, sort_keys=True))
    return 0


def _json_default(value: Any) -> Any:
    if isinstance(value, bytes | bytearray):
        return base64.b64encode(value).decode()
    raise TypeError(f"{type(value).__name__} is not JSON")


def _schema_name(schema: Any) -> str:
    if not isinstance(schema, dict):
        return "-"
    if "$ref" in schema:
        return str(schema["$ref"]).rsplit("/", 1)[-1]
    if "title" in schema:
        return str(schema["title"])
    return str(schema.get("type", "any"))
