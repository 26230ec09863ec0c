"""The frames of ``/micronetwork/rpc/1.1.0``: CBOR arrays inside varint length prefixes.

Every frame is one unsigned-varint length prefix followed by one CBOR array whose first item
is the frame type and whose second is the id of the call it belongs to (one stream may carry
many calls)::

    Open    [0, call_id, version, service, endpoint, kind, deadline_ms | null, {headers}]
    Data    [1, call_id, body]
    End     [2, call_id]
    Status  [3, call_id, code, message, details]          code "ok" for success
    Cancel  [4, call_id, reason]

The frame dataclasses do not hold the id (except Open, which creates it): the id travels
beside them (:func:`encode_frame`'s ``call_id``, ``FrameReader.next_item`` in ``frame_reader.py``).

Decoding is strict: a length prefix over the limit raises :class:`MessageTooLarge` before the
frame is buffered; an unknown frame type, a wrong number of fields, a field of the wrong type,
too many or too large headers, trailing bytes after the array, and anything that is not plain
data (only null, bool, int, float, text, bytes, arrays and maps with text or byte-string keys
are carried; no tags, no sets, no shared references) raise
:class:`~micronetwork.errors.RemoteProtocolError`. Map keys must be strings so that a peer
cannot craft colliding hashes; duplicate keys and indefinite lengths are refused.

The size limit (``max_message_size``) is on the CBOR encoding of a Data frame's body; every
other frame must fit in the same limit plus :data:`FRAME_OVERHEAD`. A reader made with
``skip_oversized=True`` (one that serves several calls on a stream) does not give up the stream
for an oversized frame: it reads the frame's type and call id from its first bytes, raises
:class:`OversizedFrame` naming them, and discards the rest of the frame as it arrives, so the
other calls on the stream go on.
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
    "END",
    "FRAME_OVERHEAD",
    "KINDS",
    "MAX_DEPTH",
    "MAX_HEADERS",
    "MAX_HEADERS_BYTES",
    "MAX_NAME",
    "MAX_STATUS_MESSAGE",
    "OK",
    "PROTOCOL_VERSION",
    "Cancel",
    "Data",
    "End",
    "Frame",
    "Kind",
    "Open",
    "OversizedFrame",
    "Status",
    "check_open",
    "deadline_ms",
    "decode_frame",
    "decode_item",
    "encode_frame",
]

PROTOCOL_VERSION = 2
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
_DATA_HEAD = b"\x83\x01"  # CBOR: array of 3, then the unsigned integer 1 (Data); the id follows
_MAX_HEAD = 11  # array header, type, and the largest CBOR unsigned integer (the call id)


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

END = End()  # frames are immutable: these two are shared rather than made for every call
OK = Status()


class OversizedFrame(MessageTooLarge):
    """A frame over the limit, skipped by a ``skip_oversized`` reader: which call it was for
    (``call_id``) and its type (``frame_type``, 0 = Open ... 4 = Cancel)."""

    def __init__(self, message: str, call_id: int, frame_type: int) -> None:
        super().__init__(message)
        self.call_id = call_id
        self.frame_type = frame_type


def _uint(n: int, major: int = 0) -> bytes:
    """CBOR head of an unsigned integer (the call id), or with ``major`` 0x40 of a byte
    string of ``n`` bytes; the shortest form, as cbor2 writes it."""
    if n < 24:
        return bytes((major | n,))
    if n < 0x100:
        return bytes((major | 0x18, n))
    if n < 0x10000:
        return bytes((major | 0x19,)) + n.to_bytes(2, "big")
    if n < 0x100000000:
        return bytes((major | 0x1A,)) + n.to_bytes(4, "big")
    return bytes((major | 0x1B,)) + n.to_bytes(8, "big")


_BYTES = 0x40  # CBOR major type 2 (byte string), in the first byte


def _data_bytes_at(
    payload: bytes | bytearray | memoryview, start: int = 0, n: int | None = None
) -> tuple[int, int] | None:
    """(call id, where the body starts, from ``start``) for a Data frame of ``n`` bytes at
    ``start`` (by default: all of ``payload``) whose body is one definite-length byte string
    ending exactly at the frame's end, read without cbor2 (a large body is then copied once);
    None for anything else, which the full decoder then checks, and when the frame's head is
    not all in ``payload``. Any head width is accepted for the id and the length, as cbor2
    accepts them."""
    have = len(payload) - start
    if n is None:
        n = have
    if n < 4 or have < 4 or payload[start] != 0x83 or payload[start + 1] != _DATA:
        return None
    first = payload[start + 2]
    if first < 24:
        call_id, pos = first, 3
    elif 0x18 <= first <= 0x1B:
        pos = 3 + (1 << (first - 0x18))
        if pos >= n or pos >= have:
            return None
        call_id = int.from_bytes(payload[start + 3:start + pos], "big")
    else:
        return None
    head = payload[start + pos]
    if _BYTES <= head < _BYTES + 24:
        size, pos = head - _BYTES, pos + 1
    elif _BYTES + 0x18 <= head <= _BYTES + 0x1B:
        at = pos + 1
        pos = at + (1 << (head - _BYTES - 0x18))
        if pos > n or pos > have:
            return None
        size = int.from_bytes(payload[start + at:start + pos], "big")
    else:
        return None
    return (call_id, pos) if pos + size == n else None


def _peek_head(buf: bytearray | bytes | memoryview, start: int) -> tuple[int, int] | None:
    """(frame type, call id) from the first bytes of a payload at ``start``; None if more bytes
    are needed. Raises RemoteProtocolError if they cannot start a frame."""
    if len(buf) < start + 3:
        return None
    head, ftype, first = buf[start], buf[start + 1], buf[start + 2]
    if not 0x82 <= head <= 0x88 or ftype > _CANCEL:
        raise RemoteProtocolError("an RPC frame starts with an array, its type and a call id")
    if first < 24:
        return ftype, first
    width = {0x18: 1, 0x19: 2, 0x1A: 4, 0x1B: 8}.get(first)
    if width is None:
        raise RemoteProtocolError("an RPC frame's call id is an unsigned integer")
    if len(buf) < start + 3 + width:
        return None
    return ftype, int.from_bytes(buf[start + 3 : start + 3 + width], "big")


# -- plain data ---------------------------------------------------------------------------------


_SCALARS = (bool, int, float, str, bytes)


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


class _Decoder:
    """A strict CBOR decoder kept between frames (making one costs more than decoding a small
    frame); replaced after any error, so no state survives a failed decode."""

    __slots__ = ("_fp", "_decoder")

    def __init__(self) -> None:
        self._fp = io.BytesIO()
        self._decoder = self._new()

    def _new(self) -> cbor2.CBORDecoder:
        return cbor2.CBORDecoder(
            self._fp,
            max_depth=MAX_DEPTH + 4,
            allow_indefinite=False,
            allow_duplicate_keys=False,
            strict_hashable_types=True,
        )

    def loads(self, payload: bytes | bytearray | memoryview) -> Any:
        fp = self._fp
        fp.seek(0)
        fp.truncate()
        fp.write(payload)
        fp.seek(0)
        try:
            value = self._decoder.decode()
        except Exception as exc:  # cbor2 raises several types on garbage
            self._fp = io.BytesIO()
            self._decoder = self._new()
            raise RemoteProtocolError(f"undecodable RPC frame: {exc}") from None
        if fp.tell() != len(payload):
            raise RemoteProtocolError(f"{len(payload) - fp.tell()} bytes after the RPC frame")
        return value


def _loads(payload: bytes) -> Any:
    return _Decoder().loads(payload)


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


def check_open(frame: Open) -> None:
    """Raise :class:`LocalProtocolError` unless we may send ``frame`` (before any I/O)."""
    _check_open(frame, LocalProtocolError)


def _check_call_id(call_id: object, err: type[Exception]) -> int:
    if type(call_id) is not int or not 0 <= call_id <= _MAX_CALL_ID:
        raise err(f"call id {call_id!r} is not an unsigned 64-bit integer")
    return call_id


def _check_open(frame: Open, err: type[Exception]) -> None:
    if type(frame.version) is not int or frame.version != PROTOCOL_VERSION:
        raise err(f"RPC version {frame.version!r} is not supported (only {PROTOCOL_VERSION})")
    _check_call_id(frame.call_id, err)
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


def encode_frame(
    frame: Frame, max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE, call_id: int | None = None
) -> bytes:
    """The frame with its length prefix. ``call_id`` is the call the frame belongs to (an Open
    carries its own; for the others it defaults to 0). Raises :class:`MessageTooLarge` for a
    Data body over ``max_message_size`` (nothing is written), :class:`LocalProtocolError` for a
    frame that breaks the protocol's rules (non-plain body, bad headers, ...)."""
    if isinstance(frame, Open):
        if call_id is not None and call_id != frame.call_id:
            raise LocalProtocolError(f"an Open for call {frame.call_id} sent as call {call_id}")
        call_id = frame.call_id
    elif call_id is None:
        call_id = 0
    else:
        _check_call_id(call_id, LocalProtocolError)
    if isinstance(frame, Data):
        body = frame.body
        if type(body) is bytes:  # the body's bytes are copied once, into the frame
            head = _uint(len(body), _BYTES)
            size = len(head) + len(body)
            if size > max_message_size:
                raise MessageTooLarge(
                    f"message of {size} bytes exceeds the limit of {max_message_size}"
                )
            cid = _uint(call_id)
            return b"".join(
                (encode_varint(len(_DATA_HEAD) + len(cid) + size), _DATA_HEAD, cid, head, body)
            )
        if not (body is None or type(body) in _SCALARS):
            _check_plain(body, 0, "body", LocalProtocolError)
        encoded = _dumps(body)
        if len(encoded) > max_message_size:
            raise MessageTooLarge(
                f"message of {len(encoded)} bytes exceeds the limit of {max_message_size}"
            )
        cid = _uint(call_id)
        return b"".join(
            (encode_varint(len(_DATA_HEAD) + len(cid) + len(encoded)), _DATA_HEAD, cid, encoded)
        )
    else:
        if isinstance(frame, Open):
            _check_open(frame, LocalProtocolError)
            item: list[Any] = [
                _OPEN, call_id, frame.version, frame.service, frame.endpoint, frame.kind,
                frame.deadline_ms, dict(frame.headers),
            ]
        elif isinstance(frame, End):
            item = [_END, call_id]
        elif isinstance(frame, Status):
            _check_status(frame, LocalProtocolError)
            item = [_STATUS, call_id, frame.code, frame.message, frame.details]
        elif isinstance(frame, Cancel):
            _check_name(frame.reason, "cancel reason", LocalProtocolError, empty=True)
            item = [_CANCEL, call_id, frame.reason]
        else:
            raise LocalProtocolError(f"not an RPC frame: {frame!r}")
        payload = _dumps(item)
        if len(payload) > max_message_size + FRAME_OVERHEAD:
            raise MessageTooLarge(
                f"{type(frame).__name__} frame of {len(payload)} bytes exceeds the limit"
            )
    return encode_varint(len(payload)) + payload


# -- decoding -----------------------------------------------------------------------------------

_ARITY = {_OPEN: 8, _DATA: 3, _END: 2, _STATUS: 5, _CANCEL: 3}


def decode_frame(
    payload: bytes | memoryview, max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE
) -> Frame:
    """One frame from its payload (the bytes after the length prefix), strictly checked."""
    return decode_item(payload, max_message_size)[1]


def decode_item(
    payload: bytes | bytearray | memoryview,
    max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
    decoder: Any = None,
) -> tuple[int, Frame]:
    """(call id, frame) from a payload, strictly checked. A Data body over the limit raises
    :class:`OversizedFrame` (a :class:`MessageTooLarge`) naming the call."""
    if len(payload) > max_message_size + FRAME_OVERHEAD:
        raise MessageTooLarge(
            f"frame of {len(payload)} bytes exceeds the limit of {max_message_size}"
        )
    fast = _data_bytes_at(payload)
    if fast is not None:  # Data with a byte-string body: the same checks as below
        call_id, at = fast
        size = len(payload) - len(_DATA_HEAD) - len(_uint(call_id))
        if size > max_message_size:
            raise OversizedFrame(
                f"message of {size} bytes exceeds the limit of {max_message_size}", call_id,
                _DATA,
            )
        return call_id, Data(bytes(payload[at:]))
    item = (decoder or _Decoder()).loads(payload)
    if not isinstance(item, list) or len(item) < 2:
        raise RemoteProtocolError("an RPC frame is a CBOR array: type, call id, fields")
    ftype = item[0]
    if type(ftype) is not int or ftype not in _ARITY:
        raise RemoteProtocolError(f"unknown RPC frame type {ftype!r}")
    if len(item) != _ARITY[ftype]:
        raise RemoteProtocolError(
            f"RPC frame type {ftype} has {len(item)} fields, expected {_ARITY[ftype]}"
        )
    call_id = _check_call_id(item[1], RemoteProtocolError)
    frame: Frame
    if ftype == _DATA:
        size = len(payload) - len(_DATA_HEAD) - len(_uint(call_id))
        if size > max_message_size:
            raise OversizedFrame(
                f"message of {size} bytes exceeds the limit of {max_message_size}", call_id, ftype
            )
        body = item[2]
        if not (body is None or type(body) in _SCALARS):
            _check_plain(body, 0, "body", RemoteProtocolError)
        return call_id, Data(body)
    if ftype == _END:
        return call_id, END
    if ftype == _OPEN:
        _, _, version, service, endpoint, kind, deadline_ms, headers = item
        frame = Open(call_id, service, endpoint, kind, deadline_ms, headers, version)
        _check_open(frame, RemoteProtocolError)
        return call_id, frame
    if ftype == _STATUS:
        if item[2] == "ok" and item[3] == "" and item[4] is None:
            return call_id, OK
        frame = Status(item[2], item[3], item[4])
        _check_status(frame, RemoteProtocolError)
        return call_id, frame
    _check_name(item[2], "cancel reason", RemoteProtocolError, empty=True)
    return call_id, Cancel(item[2])


def deadline_ms(remaining: float | None) -> int | None:
    """Remaining seconds as the whole milliseconds an Open carries (rounded up; never < 0)."""
    if remaining is None or math.isinf(remaining):
        return None
    return max(0, math.ceil(remaining * 1000))
