"""``micronetwork``: run a node, a local demo network, or a simulation.

Each subcommand lives in its own module with ``add_parser(subparsers)`` and ``run(args)``;
errors the user can fix (bad address, unreadable key file) print one line and exit 2, never a
traceback.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from ..errors import MicronetworkError

_SUBCOMMANDS = ("node", "demo", "sim", "services", "broker", "views")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="micronetwork",
        description="The Micro network: an open peer-to-peer network for micro services.",
    )
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in _SUBCOMMANDS:
        try:
            module = importlib.import_module(f".{name}", __package__)
        except ImportError as exc:  # an optional part is missing: say so, keep the rest
            if exc.name and exc.name.startswith("micronetwork.cli"):
                continue
            raise
        module.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    level = logging.WARNING - 10 * args.verbose
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        code: int = args.run(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except MicronetworkError as exc:
        print(f"micronetwork: error: {exc}", file=sys.stderr)
        return 2
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
