"""Services: declare endpoints with type hints, serve them, call them by name.

This package's declaration half is pure: :class:`Service` and its :class:`Endpoint` objects
(``service.py``), schemas and message conversion (``schema.py``), versions and ranges
(``semver.py``). The server, client and registry facade build on them with trio.
"""

from __future__ import annotations

from .schema import from_json, from_wire, schema_of, to_json, to_wire, validate
from .semver import Version, VersionRange, best
from .service import CallContext, Endpoint, EndpointKind, Service, error_from_exception

__all__ = [
    "CallContext",
    "Endpoint",
    "EndpointKind",
    "Service",
    "Version",
    "VersionRange",
    "best",
    "error_from_exception",
    "from_json",
    "from_wire",
    "schema_of",
    "to_json",
    "to_wire",
    "validate",
]
