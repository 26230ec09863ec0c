"""``services | routes | call --api URL``: the same tables and answers as with
``--bootstrap``, read from a running node's HTTP gateway."""

from __future__ import annotations

import argparse
import json
import sys
import urllib.parse
from typing import Any

from .services import _schema_name, format_table
from .views import api_json, api_request

__all__ = ["run_via_api"]


def run_via_api(job: str, args: argparse.Namespace) -> int:
    code: int = {"services": _services, "routes": _routes, "call": _call}[job](args)
    return code


def _services(args: argparse.Namespace) -> int:
    services = api_json(args, "/network/services")
    if args.name:
        svc = next((s for s in services if s["name"] == args.name), None)
        if svc is None or not svc["nodes"]:
            from ..errors import ServiceNotFound

            raise ServiceNotFound(f"service {args.name!r} not found in the network")
        addrs = {n["id"]: (n["addrs"] or ["-"])[0] for n in api_json(args, "/network/nodes")}
        rows = [(svc["name"], svc["version"], node, addrs.get(node, "-")) for node in svc["nodes"]]
        print(format_table(("SERVICE", "VERSION", "NODE", "ADDRESS"), rows))
        print()
        print(format_table(
            ("ENDPOINT", "KIND", "REQUEST", "RESPONSE"),
            [(e["name"], e["kind"], _schema_name(e["request"]), _schema_name(e["response"]))
             for e in svc["endpoints"]],
        ))
        return 0
    if not services:
        print("no services found", file=sys.stderr)
        return 1
    print(format_table(("SERVICE", "VERSION", "INSTANCES"),
                       [(s["name"], s["version"], s["instances"]) for s in services]))
    return 0


def _routes(args: argparse.Namespace) -> int:
    routes = [r for r in api_json(args, "/network/routes")
              if not args.name or r["service"] == args.name]
    if not routes:
        print("no routes", file=sys.stderr)
        return 1
    rows = [(r["service"], r["address"] or "-", r["gateway"] or "-", r["router"][-12:],
             r["network"], f"{r['metric']:.1f}", r["link"]) for r in routes]
    print(format_table(
        ("SERVICE", "ADDRESS", "GATEWAY", "ROUTER", "NETWORK", "METRIC", "LINK"), rows))
    return 0


def _call(args: argparse.Namespace) -> int:
    from ..errors import ConfigError

    try:
        body: Any = json.loads(args.body)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"the request is not JSON: {exc}") from exc
    query = {"timeout": str(args.timeout)}
    if args.version:
        query["version"] = args.version
    path = (f"/{urllib.parse.quote(args.service)}/{urllib.parse.quote(args.endpoint)}?"
            + urllib.parse.urlencode(query))
    raw = api_request(args, "POST", path, body, timeout=args.timeout + 5)
    text = raw.decode()
    if text.startswith("event:"):  # a stream: one JSON value per line
        for frame in text.strip().split("\n\n"):
            lines = dict(line.split(": ", 1) for line in frame.splitlines() if ": " in line)
            if lines.get("event") == "message":
                print(lines.get("data", "null"))
            elif lines.get("event") == "error":
                from ..errors import NetworkError

                err = json.loads(lines["data"])["error"]
                raise NetworkError(f"{err['code']}: {err['message']}")
        return 0
    print(json.dumps(json.loads(text), indent=2, sort_keys=True))
    return 0
