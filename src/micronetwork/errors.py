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
    └── NodeClosedError        the node was closed (or not yet started) when it was used
"""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "DialError",
    "IdentityError",
    "LocalProtocolError",
    "MicronetworkError",
    "NetworkError",
    "NodeClosedError",
    "PeerNotFoundError",
    "ProtocolError",
    "RecordNotFoundError",
    "RemoteProtocolError",
    "RequestTimeout",
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
