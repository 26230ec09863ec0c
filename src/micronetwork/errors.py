"""The exception tree of micronetwork.

Every error the library raises on purpose is a :class:`MicronetworkError`; errors of the
libraries underneath (py-libp2p, trio, OS) are converted at the boundary (the host driver and
:class:`~micronetwork.Node`), so a program needs to catch only these::

    MicronetworkError
    ├── ConfigError            a configuration value is invalid (bad multiaddr, role, size)
    ├── IdentityError          a key file is missing where required, corrupt or of the wrong type
    ├── SignatureError         a signed envelope fails verification (any byte changed, wrong domain)
    ├── ProtocolError          a message could not be decoded or broke the protocol's rules
    │   ├── LocalProtocolError     we were asked to send something the protocol forbids
    │   └── RemoteProtocolError    a peer sent something malformed, oversized or unexpected
    ├── ValidationError        a record failed its namespace's validator
    ├── NetworkError           something on the network failed
    │   ├── DialError              no address of a peer could be connected to
    │   ├── PeerNotFoundError      a lookup ended without finding the peer
    │   └── RecordNotFoundError    a lookup ended without finding a value / providers
    ├── RequestTimeout         a request to a peer got no answer before its deadline
    │   └── DeadlineExceeded       an RPC call's deadline passed (either side)
    ├── NodeClosedError        the node was closed (or not yet started) when it was used
    └── ServiceError           calling or serving a service failed
        ├── ServiceNotFound        no registration of that name (and version range) is known
        ├── NoInstanceReachable    every instance of the service failed to answer
        ├── RemoteError            the handler raised: carries ``code``, ``message``, ``details``
        ├── BadRequest             a request or response does not match the endpoint's schema
        ├── MessageTooLarge        an RPC message is over the size limit (either side)
        ├── CallCancelled          the other side cancelled the call (or the stream broke)
        └── SchemaError            a handler's type hints cannot be described as a schema
"""

from __future__ import annotations

__all__ = [
    "BadRequest",
    "CallCancelled",
    "ConfigError",
    "DeadlineExceeded",
    "DialError",
    "IdentityError",
    "LocalProtocolError",
    "MessageTooLarge",
    "MicronetworkError",
    "NetworkError",
    "NoInstanceReachable",
    "NodeClosedError",
    "PeerNotFoundError",
    "ProtocolError",
    "RecordNotFoundError",
    "RemoteProtocolError",
    "RemoteError",
    "RequestTimeout",
    "SchemaError",
    "ServiceError",
    "ServiceNotFound",
    "SignatureError",
    "ValidationError",
]


class MicronetworkError(Exception):
    """Root of every error micronetwork raises on purpose."""


class ConfigError(MicronetworkError, ValueError):
    """A configuration value is invalid: raised by config constructors and ``Node.open``."""


class IdentityError(MicronetworkError):
    """A key file is corrupt, of the wrong key type, or unreadable; the message names the file.

    Never answered by silently creating a new identity.
    """


class SignatureError(MicronetworkError):
    """A signed envelope failed verification: bad signature, wrong domain or payload type."""


class ProtocolError(MicronetworkError):
    """A message could not be decoded or broke the protocol's rules."""


class LocalProtocolError(ProtocolError):
    """We were asked to send something the protocol forbids (e.g. a message over the size limit)."""


class RemoteProtocolError(ProtocolError):
    """A peer sent something malformed, oversized or unexpected. Counted; the node goes on."""


class ValidationError(MicronetworkError):
    """A record failed its namespace's validator (``PUT_VALUE`` input or a fetched value)."""


class NetworkError(MicronetworkError):
    """Something on the network failed."""


class DialError(NetworkError):
    """No address of a peer could be connected to."""


class PeerNotFoundError(NetworkError):
    """A DHT lookup ended without finding the peer (``Node.find_peer``)."""


class RecordNotFoundError(NetworkError):
    """A DHT lookup ended without finding a value (``Node.get``)."""


class RequestTimeout(MicronetworkError, TimeoutError):
    """A request to a peer (or a whole lookup) got no answer before its deadline."""


class NodeClosedError(MicronetworkError):
    """The node was used after ``close()`` (or before it started)."""


class DeadlineExceeded(RequestTimeout):
    """An RPC call's deadline passed; the server side stops the handler when it hears of it."""


class ServiceError(MicronetworkError):
    """Calling or serving a service failed."""


class ServiceNotFound(ServiceError, LookupError):
    """No registration of the service (within the version range asked for) is known."""


class NoInstanceReachable(ServiceError, NetworkError):
    """Every known instance of the service failed (unreachable, or failed on every retry)."""


class RemoteError(ServiceError):
    """The remote handler failed: ``code`` (a short machine-readable string), ``message`` and
    optional ``details`` (CBOR-able), as the server sent them."""

    def __init__(self, code: str, message: str, details: object = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.details = details


class BadRequest(ServiceError, ValueError):
    """A request (or response) does not match the endpoint's schema; the message says where."""


class MessageTooLarge(ServiceError):
    """An RPC message is over the size limit; raised before sending, or reported by the peer."""


class CallCancelled(ServiceError):
    """The other side cancelled the call, or its stream broke before the call ended."""


class SchemaError(ServiceError, TypeError):
    """A handler's type hints cannot be described as a schema (raised when it is declared)."""
