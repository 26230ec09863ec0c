"""How errors become HTTP answers: one status per error, and a JSON body::

    {"error": {"code": "service_not_found", "message": "...", "details": null}}

==========================  ======  ============================================================
error                       status  code in the body
==========================  ======  ============================================================
malformed JSON              400     ``malformed_json``
``BadRequest``              400     ``bad_request`` (the message has the path: ``request.name``)
``ConfigError``             400     ``bad_request`` (an invalid name, version range, ...)
``ServiceNotFound``         404     ``service_not_found`` (also: no such endpoint)
``MessageTooLarge``         413     ``message_too_large`` (also: a body over the gateway limit)
``NoInstanceReachable``     503     ``no_instance_reachable``
``NodeClosedError``         503     ``node_closed``
``DeadlineExceeded``        504     ``deadline_exceeded`` (also ``RequestTimeout``: a lookup)
``CallCancelled``           502     ``call_cancelled``
``RemoteError``             by its code (below); ``details`` is passed on
other ``MicronetworkError``  500     ``internal``
==========================  ======  ============================================================

A ``RemoteError`` keeps the handler's code. Codes that say the *caller* is wrong map to 4xx,
following gRPC's HTTP mapping: ``invalid_argument``/``bad_request``/``failed_precondition``/
``out_of_range`` 400, ``unauthenticated`` 401, ``permission_denied`` 403, ``not_found`` 404,
``already_exists``/``aborted`` 409, ``message_too_large`` 413, ``resource_exhausted`` 429;
``unimplemented`` 501, ``unavailable``/``overloaded`` 503, ``deadline_exceeded`` 504; any other
code (``internal``, ``unknown``, a service's own) is 502: the gateway worked, the service failed.
"""

from __future__ import annotations

from typing import Any

from ..errors import (
    BadRequest,
    CallCancelled,
    ConfigError,
    DeadlineExceeded,
    MessageTooLarge,
    MicronetworkError,
    NodeClosedError,
    NoInstanceReachable,
    RemoteError,
    RequestTimeout,
    ServiceNotFound,
    ValidationError,
)

__all__ = ["HttpError", "REMOTE_STATUS", "error_body", "from_exception"]

REMOTE_STATUS = {
    "invalid_argument": 400, "bad_request": 400, "failed_precondition": 400, "out_of_range": 400,
    "unauthenticated": 401, "permission_denied": 403, "not_found": 404,
    "already_exists": 409, "aborted": 409, "message_too_large": 413, "resource_exhausted": 429,
    "unimplemented": 501, "unavailable": 503, "overloaded": 503, "deadline_exceeded": 504,
}

_LOCAL: tuple[tuple[type[BaseException], int, str], ...] = (
    (ServiceNotFound, 404, "service_not_found"),
    (BadRequest, 400, "bad_request"),
    (ConfigError, 400, "bad_request"),
    (ValidationError, 400, "bad_request"),
    (MessageTooLarge, 413, "message_too_large"),
    (NoInstanceReachable, 503, "no_instance_reachable"),
    (NodeClosedError, 503, "node_closed"),
    (DeadlineExceeded, 504, "deadline_exceeded"),
    (RequestTimeout, 504, "deadline_exceeded"),
    (CallCancelled, 502, "call_cancelled"),
)


class HttpError(Exception):
    """An answer other than 2xx, raised inside the app and written as the JSON error body."""

    def __init__(self, status: int, code: str, message: str, details: Any = None,
                 headers: list[tuple[bytes, bytes]] | None = None) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.details = details
        self.headers = headers or []

    def body(self) -> dict[str, Any]:
        return error_body(self.code, self.message, self.details)


def error_body(code: str, message: str, details: Any = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": details}}


def from_exception(exc: MicronetworkError) -> HttpError:
    """The HTTP answer for a library error (see the table above)."""
    if isinstance(exc, RemoteError):
        status = REMOTE_STATUS.get(exc.code, 502)
        return HttpError(status, exc.code, exc.message, _jsonable(exc.details))
    for cls, status, code in _LOCAL:
        if isinstance(exc, cls):
            return HttpError(status, code, str(exc))
    return HttpError(500, "internal", str(exc))


def _jsonable(value: Any, depth: int = 0) -> Any:
    """Details are CBOR-decoded data: bytes become hex text, other odd values their repr."""
    if depth > 32:
        return None
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, bytes | bytearray):
        return bytes(value).hex()
    if isinstance(value, dict):
        return {str(k): _jsonable(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v, depth + 1) for v in value]
    return repr(value)
