"""``micronetwork nodes | graph``: the network as a running node's gateway sees it.

Both read the HTTP API of a node (``--api URL``, default ``http://127.0.0.1:8080``, the
gateway's default port; or ``$MICRONETWORK_API``); a gateway reached beyond loopback needs
``--token`` (or ``$MICRONETWORK_TOKEN``). ``services``, ``routes`` and ``call`` take ``--api``
too (see :mod:`.services`).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from ..errors import ConfigError, NetworkError

__all__ = ["DEFAULT_API", "add_api_args", "add_parser", "api_request"]

DEFAULT_API = "http://127.0.0.1:8080"
FORMATS = ("table", "json", "dot", "graphml", "svg", "png")


def add_api_args(p: argparse.ArgumentParser, default: str | None = DEFAULT_API) -> None:
    p.add_argument("--api", metavar="URL", default=os.environ.get("MICRONETWORK_API", default),
                   help=f"a node's gateway (default {DEFAULT_API} or $MICRONETWORK_API)")
    p.add_argument("--token", default=os.environ.get("MICRONETWORK_TOKEN"),
                   help="bearer token of a remote gateway (or $MICRONETWORK_TOKEN)")


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("nodes", help="the nodes a running node knows of (via its gateway)")
    p.add_argument("--depth", type=int, help="only nodes within this many hops")
    add_api_args(p)
    p.set_defaults(run=_nodes)

    p = sub.add_parser("graph", help="the peer graph of a running node (table, JSON, DOT, "
                                     "GraphML, SVG, PNG)")
    p.add_argument("--format", choices=FORMATS,
                   help="default: from --out's suffix, else table")
    p.add_argument("--out", type=Path, help="write to this file (needed for svg/png)")
    p.add_argument("--depth", type=int, default=3, help="hops from the node (default 3)")
    add_api_args(p)
    p.set_defaults(run=_graph)


def api_request(args: argparse.Namespace, method: str, path: str, body: Any = None,
                timeout: float = 30.0) -> bytes:
    """One request to the gateway; an error answer raises with its code and message."""
    base = str(args.api).rstrip("/")
    if not base.startswith(("http://", "https://")):
        raise ConfigError(f"--api {base!r} is not an http:// or https:// URL")
    headers = {"Accept": "application/json"}
    data = None
    if method == "POST":
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    if getattr(args, "token", None):
        headers["Authorization"] = f"Bearer {args.token}"
    req = urllib.request.Request(base + path, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            payload: bytes = resp.read()
            return payload
    except urllib.error.HTTPError as exc:
        raw = exc.read()
        try:
            err = json.loads(raw)["error"]
            message = f"{err['code']}: {err['message']}"
        except Exception:
            message = f"HTTP {exc.code}: {raw[:200]!r}"
        raise NetworkError(message) from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise NetworkError(f"cannot reach the node's API at {base}: {reason} (is a node "
                           "running with its gateway? see --api)") from None


def api_json(args: argparse.Namespace, path: str) -> Any:
    return json.loads(api_request(args, "GET", path))


def _ms(v: Any) -> str:
    return "-" if v is None else f"{v:.2f} ms"


def _ago(v: Any) -> str:
    return "-" if v is None else ("now" if v < 1 else f"{v:.0f} s ago")


def _nodes(args: argparse.Namespace) -> int:
    from .services import format_table

    query = f"?depth={args.depth}" if args.depth is not None else ""
    nodes = api_json(args, f"/network/nodes{query}")
    rows = [(n["id"] + (" *" if n["local"] else ""), n["role"], n["addrs"][0] if n["addrs"]
             else "-", _ms(n["latency_ms"]), _ago(n["last_seen"]),
             ",".join(n["services"]) or "-") for n in nodes]
    print(format_table(("ID", "ROLE", "ADDRESS", "LATENCY", "LAST SEEN", "SERVICES"), rows))
    return 0


def _graph(args: argparse.Namespace) -> int:
    from .services import format_table

    fmt = args.format
    if fmt is None:
        suffix = args.out.suffix.lstrip(".").lower() if args.out else ""
        fmt = {"gv": "dot", "xml": "graphml"}.get(suffix, suffix) if suffix else "table"
        if fmt not in FORMATS:
            raise ConfigError(f"cannot tell the format from {args.out}: give --format")
    if fmt in ("svg", "png") and args.out is None and sys.stdout.isatty():
        raise ConfigError(f"{fmt} is a picture: give --out FILE (or redirect stdout)")
    if fmt == "table":
        graph = api_json(args, f"/network/graph?depth={args.depth}")
        roles = {n["id"]: n["role"] for n in graph["nodes"]}
        rows = [(link["source"], roles.get(link["source"], "?"), link["target"],
                 roles.get(link["target"], "?"), _ms(link.get("latency_ms")))
                for link in graph["links"]]
        text = format_table(("NODE", "ROLE", "PEER", "ROLE", "LATENCY"), rows) + "\n"
        data = text.encode()
        summary = f"{len(graph['nodes'])} nodes, {len(graph['links'])} links"
    else:
        data = api_request(args, "GET", f"/network/graph?depth={args.depth}&format={fmt}")
        summary = f"{fmt}, {len(data)} bytes"
    if args.out is not None:
        args.out.write_bytes(data)
        print(f"wrote {args.out} ({summary})", file=sys.stderr)
    else:
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
    return 0
