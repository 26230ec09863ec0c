"""Running the gateway: hypercorn's trio worker serving :class:`GatewayApp` for one node.

::

    async with Node.open(config) as node, open_gateway(node, port=8080) as gateway:
        print("dashboard at", gateway.url)
        await trio.sleep_forever()
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import trio

from ..errors import ConfigError
from .app import GatewayApp, GatewayConfig

if TYPE_CHECKING:
    from ..node import Node

__all__ = ["DEFAULT_PORT", "Gateway", "open_gateway"]

DEFAULT_PORT = 8080


class Gateway:
    """A running gateway: ``url`` (``http://127.0.0.1:<port>``), ``app`` (its counters)."""

    def __init__(self, app: GatewayApp, url: str) -> None:
        self.app = app
        self.url = url

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])


@asynccontextmanager
async def open_gateway(
    node: Node, config: GatewayConfig | None = None, **overrides: Any
) -> AsyncIterator[Gateway]:
    """Serve the node's HTTP gateway while the block runs (``port=0``: any free port).

    ``overrides`` are :class:`GatewayConfig` fields (``host``, ``port``, ``token``,
    ``allow_remote``, ``max_body``, ...). Raises ConfigError for a non-loopback ``host``
    without ``allow_remote=True`` and a token, or when the port cannot be bound.
    """
    from hypercorn.config import Config
    from hypercorn.trio import serve

    cfg = config or GatewayConfig()
    if overrides:
        cfg = replace(cfg, **overrides)
    app = GatewayApp(node, cfg)
    hconfig = Config()
    host = f"[{cfg.host}]" if ":" in cfg.host and not cfg.host.startswith("[") else cfg.host
    hconfig.bind = [f"{host}:{cfg.port}"]
    hconfig.accesslog = None
    hconfig.errorlog = logging.getLogger("micronetwork.gateway.hypercorn")
    hconfig.graceful_timeout = 0.5
    hconfig.keep_alive_timeout = 30.0
    hconfig.h11_max_incomplete_size = 64 * 1024  # request line + headers
    stop = trio.Event()
    failed: OSError | None = None
    async with trio.open_nursery() as nursery:
        try:
            binds = await nursery.start(_serve, serve, app, hconfig, stop)
        except (OSError, BaseExceptionGroup) as exc:
            failed = _os_error(exc)
            if failed is None:
                raise
        else:
            try:
                yield Gateway(app, binds[0])
            finally:
                stop.set()
    if failed is not None:  # raised out here, not wrapped in the nursery's group
        raise ConfigError(f"cannot serve the gateway on {host}:{cfg.port}: {failed}") from failed


def _os_error(exc: BaseException) -> OSError | None:
    """The OSError behind a failed start (bind), if that is all that failed."""
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return exc if isinstance(exc, OSError) else None


async def _serve(serve: Any, app: GatewayApp, hconfig: Any, stop: trio.Event,
                 task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
    await serve(app, hconfig, shutdown_trigger=stop.wait, task_status=task_status)
