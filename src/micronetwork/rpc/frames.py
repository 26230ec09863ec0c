"""The frames of ``/micronetwork/rpc/1.0.0``: CBOR arrays inside varint length prefixes.

Every frame is one unsigned-varint length prefix followed by one CBOR array whose first item
is the frame type::

    Open    [0, version, call_id, service, endpoint, kind, deadline_ms | null, {headers}]
    Data    [1, body]
    End     [2]
    Status  [3, code, message, details]          code "ok" for success
    Cancel  [4, reason]

Decoding is strict: a length prefix over the limit raises :class:`MessageTooLarge` before the
frame is buffered; an unknown frame type, a wrong number of fields, a field of the wrong type,
too many or too large headers, trailing bytes after the array, and anything that is not plain
data (only null, bool, int, float, text, bytes, arrays and maps with text or byte-string keys
are carried; no tags, no sets, no shared references) raise
:class:`~micronetwork.errors.RemoteProtocolError`. Map keys must be strings so that a peer
cannot craft colliding hashes; duplicate keys and indefinite lengths are refused.

The size limit (``max_message_size``) is on the CBOR encoding of a Data frame's body; every
other frame must fit in the same limit plus :data:`FRAME_OVERHEAD`.
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, TypeAlias, get_args

import cbor2

from ..errors import LocalProtocolError, MessageTooLarge, RemoteProtocolError
from ..framing import encode_varint

__all__ = [
    "DEFAULT_MAX_MESSAGE_SIZE",
    "FRAME_OVERHEAD",
    "KINDS",
    "MAX_DEPTH",
    "MAX_HEADERS",
    "MAX_HEADERS_BYTES",
    "MAX_NAME",
    "MAX_STATUS_MESSAGE",
    "PROTOCOL_VERSION",
    "Cancel",
    "Data",
    "End",
    "Frame",
    "FrameReader",
    "Kind",
    "Open",
    "Status",
    "deadline_ms",
    "decode_frame",
    "encode_frame",
]

PROTOCOL_VERSION = 1
DEFAULT_MAX_MESSAGE_SIZE = 4 * 1024 * 1024
FRAME_OVERHEAD = 64  # what a frame may carry besides a body of max_message_size bytes
MAX_HEADERS = 64
MAX_HEADERS_BYTES = 16 * 1024  # UTF-8 bytes of all keys and values together
MAX_NAME = 256  # service, endpoint, status code, cancel reason (characters)
MAX_STATUS_MESSAGE = 16 * 1024  # characters
MAX_DEPTH = 64  # nesting of arrays and maps in a body or in details
_MAX_CALL_ID = 2**64 - 1

Kind = Literal["unary", "server_stream", "client_stream", "bidi"]
KINDS: tuple[Kind, ...] = get_args(Kind)

_OPEN, _DATA, _END, _STATUS, _CANCEL = 0, 1, 2, 3, 4
_DATA_PREFIX = b"\x82\x01"  # CBOR: array of 2, then the unsigned integer 1


@dataclass(frozen=True, slots=True)
class Open:
    """The client's first frame: which endpoint, how long it may take, and metadata.

    ``deadline_ms`` is the time the client has left, relative (clocks are not shared); None
    means no deadline.
    """

    call_id: int
    service: str
    endpoint: str
    kind: Kind
    deadline_ms: int | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    version: int = PROTOCOL_VERSION


@dataclass(frozen=True, slots=True)
class Data:
    """One message (any plain CBOR data) in the sender's direction."""

    body: Any


@dataclass(frozen=True, slots=True)
class End:
    """The sender will send no more Data (a half-close of its direction)."""


@dataclass(frozen=True, slots=True)
class Status:
    """The server's last frame: ``code`` "ok", or an error code with a message and details."""

    code: str = "ok"
    message: str = ""
    details: Any = None

    @property
    def ok(self) -> bool:
        return self.code == "ok"


@dataclass(frozen=True, slots=True)
class Cancel:
    """The client abandons the call (its last frame); the server stops the handler."""

    reason: str = "cancelled"


Frame: TypeAlias = Open | Data | End | Status | Cancel


# -- plain data ---------------------------------------------------------------------------------


def _check_plain(value: Any, depth: int, path: str, err: type[Exception]) -> None:
    """Raise ``err`` unless ``value`` is plain data (what RPC carries), at most MAX_DEPTH deep."""
    if value is None or isinstance(value, bool | int | float | str | bytes):
        return
    if depth >= MAX_DEPTH:
        raise err(f"{path}: nested deeper than {MAX_DEPTH} levels")
    if isinstance(value, list | tuple):
        for i, item in enumerate(value):
            _check_plain(item, depth + 1, f"{path}[{i}]", err)
        return
    if isinstance(value, dict):
        for k, v in value.items():
            if not isinstance(k, str | bytes):
                raise err(f"{path}: map key {k!r} is not a text or byte string")
            _check_plain(v, depth + 1, f"{path}[{k!r}]", err)
        return
    raise err(
        f"{path}: {type(value).__name__} is not plain data "
        "(null, bool, int, float, text, bytes, arrays, maps with string keys)"
    )


def _loads(payload: bytes) -> Any:
    fp = io.BytesIO(payload)
    try:
        decoder = cbor2.CBORDecoder(
            fp,
            max_depth=MAX_DEPTH + 4,
            allow_indefinite=False,
            allow_duplicate_keys=False,
            strict_hashable_types=True,
        )
        value = decoder.decode()
    except Exception as exc:  # cbor2 raises several types on garbage
        raise RemoteProtocolError(f"undecodable RPC frame: {exc}") from None
    if fp.tell() != len(payload):
        raise RemoteProtocolError(f"{len(payload) - fp.tell()} bytes after the RPC frame")
    return value


def _dumps(value: Any) -> bytes:
    try:
        return cbor2.dumps(value)
    except Exception as exc:
        raise LocalProtocolError(f"cannot encode as CBOR: {exc}") from exc


# -- encoding -----------------------------------------------------------------------------------


def _check_name(value: object, what: str, err: type[Exception], *, empty: bool = False) -> str:
    if not isinstance(value, str):
        raise err(f"{what} is a {type(value).__name__}, not text")
    if not empty and not value:
        raise err(f"{what} is empty")
    if len(value) > MAX_NAME:
        raise err(f"{what} is longer than {MAX_NAME} characters")
    return value


def _check_headers(headers: object, err: type[Exception]) -> dict[str, str]:
    if not isinstance(headers, Mapping):
        raise err(f"headers are a {type(headers).__name__}, not a map")
    if len(headers) > MAX_HEADERS:
        raise err(f"{len(headers)} headers; the limit is {MAX_HEADERS}")
    size = 0
    out: dict[str, str] = {}
    for k, v in headers.items():
        if not isinstance(k, str) or not isinstance(v, str):
            raise err("header names and values must be text")
        if not k:
            raise err("empty header name")
        size += len(k.encode("utf-8", "surrogatepass")) + len(v.encode("utf-8", "surrogatepass"))
        out[k] = v
    if size > MAX_HEADERS_BYTES:
        raise err(f"headers take {size} bytes; the limit is {MAX_HEADERS_BYTES}")
    return out


def _check_open(frame: Open, err: type[Exception]) -> None:
    if type(frame.version) is not int or frame.version != PROTOCOL_VERSION:
        raise err(f"RPC version {frame.version!r} is not supported (only {PROTOCOL_VERSION})")
    if type(frame.call_id) is not int or not 0 <= frame.call_id <= _MAX_CALL_ID:
        raise err(f"call id {frame.call_id!r} is not an unsigned 64-bit integer")
    _check_name(frame.service, "service", err)
    _check_name(frame.endpoint, "endpoint", err)
    if frame.kind not in KINDS:
        raise err(f"unknown call kind {frame.kind!r}")
    dl = frame.deadline_ms
    if dl is not None and (type(dl) is not int or dl < 0):
        raise err(f"deadline {dl!r} is not a non-negative integer of milliseconds")
    _check_headers(frame.headers, err)


def _check_status(frame: Status, err: type[Exception]) -> None:
    _check_name(frame.code, "status code", err)
    if not isinstance(frame.message, str):
        raise err(f"status message is a {type(frame.message).__name__}, not text")
    if len(frame.message) > MAX_STATUS_MESSAGE:
        raise err(f"status message is longer than {MAX_STATUS_MESSAGE} characters")
    _check_plain(frame.details, 0, "details", err)


def encode_frame(frame: Frame, max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE) -> bytes:
    """The frame with its length prefix. Raises :class:`MessageTooLarge` for a Data body over
    ``max_message_size`` (nothing is written), :class:`LocalProtocolError` for a frame that
    breaks the protocol's rules (non-plain body, bad headers, ...)."""
    if isinstance(frame, Data):
        _check_plain(frame.body, 0, "body", LocalProtocolError)
        body = _dumps(frame.body)
        if len(body) > max_message_size:
            raise MessageTooLarge(
                f"message of {len(body)} bytes exceeds the limit of {max_message_size}"
            )
        payload = _DATA_PREFIX + body
    else:
        if isinstance(frame, Open):
            _check_open(frame, LocalProtocolError)
            item: list[Any] = [
                _OPEN, frame.version, frame.call_id, frame.service, frame.endpoint, frame.kind,
                frame.deadline_ms, dict(frame.headers),
            ]
        elif isinstance(frame, End):
            item = [_END]
        elif isinstance(frame, Status):
            _check_status(frame, LocalProtocolError)
            item = [_STATUS, frame.code, frame.message, frame.details]
        elif isinstance(frame, Cancel):
            _check_name(frame.reason, "cancel reason", LocalProtocolError, empty=True)
            item = [_CANCEL, frame.reason]
        else:
            raise LocalProtocolError(f"not an RPC frame: {frame!r}")
        payload = _dumps(item)
        if len(payload) > max_message_size + FRAME_OVERHEAD:
            raise MessageTooLarge(
                f"{type(frame).__name__} frame of {len(payload)} bytes exceeds the limit"
            )
    return encode_varint(len(payload)) + payload


# -- decoding -----------------------------------------------------------------------------------

_ARITY = {_OPEN: 8, _DATA: 2, _END: 1, _STATUS: 4, _CANCEL: 2}


def decode_frame(payload: bytes, max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE) -> Frame:
    """One frame from its payload (the bytes after the length prefix), strictly checked."""
    if len(payload) > max_message_size + FRAME_OVERHEAD:
        raise MessageTooLarge(
            f"frame of {len(payload)} bytes exceeds the limit of {max_message_size}"
        )
    item = _loads(payload)
    if not isinstance(item, list) or not item:
        raise RemoteProtocolError("an RPC frame is a non-empty CBOR array")
    ftype = item[0]
    if type(ftype) is not int or ftype not in _ARITY:
        raise RemoteProtocolError(f"unknown RPC frame type {ftype!r}")
    if len(item) != _ARITY[ftype]:
        raise RemoteProtocolError(
            f"RPC frame type {ftype} has {len(item)} fields, expected {_ARITY[ftype]}"
        )
    frame: Frame
    if ftype == _DATA:
        if len(payload) - len(_DATA_PREFIX) > max_message_size:
            raise MessageTooLarge(
                f"message of {len(payload) - 2} bytes exceeds the limit of {max_message_size}"
            )
        _check_plain(item[1], 0, "body", RemoteProtocolError)
        return Data(item[1])
    if ftype == _END:
        return End()
    if ftype == _OPEN:
        _, version, call_id, service, endpoint, kind, deadline_ms, headers = item
        frame = Open(call_id, service, endpoint, kind, deadline_ms, headers, version)
        _check_open(frame, RemoteProtocolError)
        return frame
    if ftype == _STATUS:
        frame = Status(item[1], item[2], item[3])
        _check_status(frame, RemoteProtocolError)
        return frame
    _check_name(item[1], "cancel reason", RemoteProtocolError, empty=True)
    return Cancel(item[1])


class FrameReader:
    """Split received bytes into frames (sans-IO). A length prefix over the limit raises
    :class:`MessageTooLarge` before any of the frame is buffered."""

    __slots__ = ("_buf", "_max", "_limit")

    def __init__(self, max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE) -> None:
        self._buf = bytearray()
        self._max = max_message_size
        self._limit = max_message_size + FRAME_OVERHEAD

    def feed(self, data: bytes) -> None:
        self._buf += data

    @property
    def buffered(self) -> int:
        return len(self._buf)

    def next_payload(self) -> bytes | None:
        """The next whole frame's payload, or None when more bytes are needed."""
        buf = self._buf
        length = 0
        for i in range(min(len(buf), 10)):
            b = buf[i]
            length |= (b & 0x7F) << (7 * i)
            if not b & 0x80:
                if length > self._limit:
                    raise MessageTooLarge(
                        f"peer announced a frame of {length} bytes; the limit is {self._limit}"
                    )
                start = i + 1
                if len(buf) < start + length:
                    return None
                payload = bytes(buf[start : start + length])
                del buf[: start + length]
                return payload
        if len(buf) >= 10:
            raise RemoteProtocolError("varint length prefix longer than 10 bytes")
        return None

    def next_frame(self) -> Frame | None:
        payload = self.next_payload()
        return None if payload is None else decode_frame(payload, self._max)


def deadline_ms(remaining: float | None) -> int | None:
    """Remaining seconds as the whole milliseconds an Open carries (rounded up; never < 0)."""
    if remaining is None or math.isinf(remaining):
        return None
    return max(0, math.ceil(remaining * 1000))
