"""The HTTP gateway of a node (issue 7): call services with JSON, stream events, see the
network, open the dashboard. See ``docs/gateway.md``.

::

    async with Node.open(config) as node, open_gateway(node, port=8080) as gw:
        ...  # POST gw.url + "/greeter/hello" with {"name": "Ada"}
"""

from .app import GatewayApp, GatewayConfig
from .errors import HttpError, from_exception
from .openapi import build_openapi
from .server import DEFAULT_PORT, Gateway, open_gateway

__all__ = [
    "DEFAULT_PORT",
    "Gateway",
    "GatewayApp",
    "GatewayConfig",
    "HttpError",
    "build_openapi",
    "from_exception",
    "open_gateway",
]
