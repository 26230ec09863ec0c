"""Validation of wire objects against a schema alone, and the JSON form of wire objects.

Theory of operation. A node that only has a schema (a client that read it from another node's
registration, or the HTTP gateway) cannot compile a type hint, so it interprets the schema dict
itself: ``validate`` walks the value and the schema together, ``from_json``/``to_json`` convert
between the wire form and JSON, which differ only in carrying bytes as base64 text (and integers
that JSON decoded as floats). The schema is untrusted: ``$ref`` is local only, ``$ref``/``anyOf``
chains and the total number of steps are bounded, and any malformation surfaces as
:class:`SchemaError`, never as a stray ``KeyError``. Only the subset of JSON Schema 2020-12
that ``schema.schema_of`` writes is understood (see :func:`validate`); other keywords are ignored.

This is our own interpreter, unrelated to the third-party ``jsonschema`` package. The public
functions are re-exported by ``schema.py`` and the ``service`` package.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
from collections.abc import Iterator, Mapping
from typing import Any

from ..errors import BadRequest, SchemaError
from ._schemautil import (
    Schema,
    _check_depth,
    _expected,
    _got,
    _hashable,
    _is_number,
    _key_path,
    _same,
    _short,
)

__all__ = ["from_json", "to_json", "validate"]

_MAX_STEPS = 50_000  # schema nodes validate may visit (+16 per value): schemas are untrusted


def validate(obj: Any, schema: Schema | bool, *, path: str = "value") -> None:
    """Check a wire object against a schema alone (as read from a registration).

    Understands what :func:`schema_of` writes: ``$ref``/``$defs``, ``anyOf``/``oneOf``/
    ``allOf``, ``enum``/``const``, ``type`` (``"format": "bytes"`` means CBOR bytes),
    ``properties``/``required``/``additionalProperties``, ``items``/``prefixItems``/
    ``min/maxItems``/``uniqueItems``; other keywords are ignored. The work done is bounded
    whatever the schema. :class:`BadRequest` with a path; :class:`SchemaError` if the schema
    itself is malformed (e.g. a ``$ref`` that points nowhere)."""
    with _untrusted(path):
        _Validator(schema, obj).check(obj, schema, path, 0, 0)


def from_json(obj: Any, schema: Schema | bool, *, path: str = "value") -> Any:
    """JSON-decoded ``obj`` as a wire object for ``schema``: base64 text where the schema has
    bytes becomes bytes, integral floats where it has integers become ints; then validated."""
    with _untrusted(path):
        out = _JsonWalk(schema, obj, decode=True).walk(obj, schema, path, 0, 0)
    validate(out, schema, path=path)
    return out


def to_json(obj: Any, schema: Schema | bool, *, path: str = "value") -> Any:
    """A wire object as JSON-able data: bytes become base64 text (standard alphabet, padded)
    everywhere, since JSON has no bytes; the schema picks the alternative of an ``anyOf``.
    NaN and infinities are passed through (Python's ``json`` writes them; strict JSON has none).
    """
    with _untrusted(path):
        return _JsonWalk(schema, obj, decode=False).walk(obj, schema, path, 0, 0)


@contextlib.contextmanager
def _untrusted(path: str) -> Iterator[None]:
    """Schemas may come from other nodes: whatever shape they have, fail with our errors."""
    try:
        yield
    except (BadRequest, SchemaError):
        raise
    except RecursionError as exc:
        raise BadRequest(f"{path}: nested too deeply") from exc
    except (TypeError, AttributeError, KeyError, IndexError, ValueError) as exc:
        raise SchemaError(f"malformed schema ({type(exc).__name__}: {exc})") from exc


# -- schema interpretation ---------------------------------------------------------------------

_TYPE_LABEL = {"null": "None", "boolean": "bool", "integer": "int", "number": "float",
               "string": "str", "array": "list", "object": "dict"}
_MAX_HOPS = 32  # $ref / anyOf steps in a row without descending into the value


def _type_ok(obj: Any, t: object, fmt: object) -> bool:
    if t == "null":
        return obj is None
    if t == "boolean":
        return isinstance(obj, bool)
    if t == "integer":
        return isinstance(obj, int) and not isinstance(obj, bool)
    if t == "number":
        return _is_number(obj)
    if t == "string":
        return isinstance(obj, bytes) if fmt == "bytes" else isinstance(obj, str)
    if t == "array":
        return isinstance(obj, list | tuple)
    if t == "object":
        return isinstance(obj, dict)
    raise SchemaError(f"unknown type {t!r} in schema")


def _canon(obj: Any) -> Any:
    """A hashable stand-in for ``obj`` for uniqueItems (True and 1 stay different)."""
    if isinstance(obj, dict):
        return ("d", tuple(sorted(((_canon(k), _canon(v)) for k, v in obj.items()), key=repr)))
    if isinstance(obj, list | tuple):
        return ("l", tuple(_canon(x) for x in obj))
    if not _hashable(obj):
        return ("r", repr(obj))
    return ("b" if isinstance(obj, bool) else "v", obj)


class _TooComplex(BadRequest):
    """Out of budget: ends the whole validation, not just one alternative of an anyOf."""


def _size(obj: Any) -> int:
    """How many values ``obj`` holds (bounded), to scale the work validate may do."""
    n, stack = 0, [obj]
    while stack and n < 10 * _MAX_STEPS:
        x = stack.pop()
        n += 1
        if isinstance(x, dict):
            stack.extend(x.values())
        elif isinstance(x, list | tuple):
            stack.extend(x)
    return n


class _SchemaWalker:
    def __init__(self, root: object, obj: Any) -> None:
        self.root = root
        self.steps = 0
        self.budget = _MAX_STEPS + 16 * _size(obj)

    def resolve(self, ref: object) -> Any:
        if not isinstance(ref, str) or not ref.startswith("#"):
            raise SchemaError(f"unsupported $ref {ref!r} (only local references)")
        node: Any = self.root
        for part in ref[1:].split("/")[1:] if ref != "#" else []:
            part = part.replace("~1", "/").replace("~0", "~")
            if not isinstance(node, dict) or part not in node:
                raise SchemaError(f"$ref {ref!r} points nowhere")
            node = node[part]
        return node

    def step(self, path: str, depth: int, hops: int) -> None:
        self.steps += 1
        if self.steps > self.budget:
            raise _TooComplex(f"{path}: too complex to validate")
        if hops > _MAX_HOPS:
            raise SchemaError(f"schema at {path}: $ref/anyOf nested more than {_MAX_HOPS} deep")
        _check_depth(path, depth)


class _Validator(_SchemaWalker):
    def check(self, obj: Any, s: Any, path: str, depth: int, hops: int) -> None:
        self.step(path, depth, hops)
        if s is True:
            return
        if s is False:
            raise BadRequest(f"{path}: no value is allowed here")
        if not isinstance(s, dict):
            raise SchemaError(f"schema at {path} is a {type(s).__name__}, not an object")
        if "$ref" in s:
            self.check(obj, self.resolve(s["$ref"]), path, depth, hops + 1)
        for sub in s.get("allOf", ()):
            self.check(obj, sub, path, depth, hops + 1)
        if "anyOf" in s or "oneOf" in s:
            self._any(obj, s, path, depth, hops + 1)
        if "enum" in s and not any(_same(obj, e) for e in s["enum"]):
            raise BadRequest(f"{path}: expected one of {_short(s['enum'])}, got {_short(obj)}")
        if "const" in s and not _same(obj, s["const"]):
            raise BadRequest(f"{path}: expected {_short(s['const'])}, got {_short(obj)}")
        t = s.get("type")
        if t is not None:
            ts = t if isinstance(t, list) else [t]
            if not any(_type_ok(obj, x, s.get("format")) for x in ts):
                raise _expected(path, self._label(s, ts), obj)
        if isinstance(obj, dict):
            self._object(obj, s, path, depth)
        elif isinstance(obj, list | tuple):
            self._array(obj, s, path, depth)

    def _label(self, s: Mapping[str, Any], ts: list[Any]) -> str:
        if isinstance(s.get("title"), str):
            return str(s["title"])
        if s.get("format") == "bytes" and ts == ["string"]:
            return "bytes"
        return " | ".join(_TYPE_LABEL.get(str(x), str(x)) for x in ts)

    def _shape_ok(self, obj: Any, s: Any) -> bool:
        for _ in range(_MAX_HOPS):
            if not (isinstance(s, dict) and "$ref" in s):
                break
            s = self.resolve(s["$ref"])
        t = s.get("type") if isinstance(s, dict) else None
        return isinstance(t, str) and _type_ok(obj, t, s.get("format"))

    def _any(self, obj: Any, s: Mapping[str, Any], path: str, depth: int, hops: int) -> None:
        one = "oneOf" in s
        branches = s["oneOf"] if one else s["anyOf"]
        errors: list[tuple[Any, BadRequest]] = []
        passed = 0
        for b in branches:
            try:
                self.check(obj, b, path, depth, hops)
            except _TooComplex:
                raise
            except BadRequest as exc:  # no traceback kept: frames would form cycles for gc
                errors.append((b, exc.with_traceback(None)))
                continue
            passed += 1
            if not one:
                return
        if one and passed == 1:
            return
        if one and passed > 1:
            raise BadRequest(f"{path}: matches {passed} of the alternatives, not exactly one")
        # If only one alternative could have been meant, its (deeper) message is the useful one.
        fits = [e for b, e in errors if self._shape_ok(obj, b)]
        if len(fits) == 1:
            raise fits[0]
        names = [self._branch_name(b) for b in branches]
        raise _expected(path, " | ".join(names) or "nothing", obj)

    def _branch_name(self, b: Any) -> str:
        if isinstance(b, dict) and "$ref" in b:
            return str(b["$ref"]).rsplit("/", 1)[-1]
        if isinstance(b, dict) and isinstance(b.get("type"), str):
            return self._label(b, [b["type"]])
        if isinstance(b, dict) and "enum" in b:
            return f"one of {_short(b['enum'])}"
        return "schema"

    def _object(self, obj: dict[Any, Any], s: Mapping[str, Any], path: str, depth: int) -> None:
        props = s.get("properties", {})
        for name in s.get("required", ()):
            if name not in obj:
                what = f" of {s['title']}" if isinstance(s.get("title"), str) else ""
                raise BadRequest(f"{path}: missing required field {name!r}{what}")
        extra = s.get("additionalProperties", True)
        for key, value in obj.items():
            if not isinstance(key, str) and ("properties" in s or "additionalProperties" in s):
                raise BadRequest(f"{path}: keys must be str, got {_got(key)}")
            if isinstance(props, dict) and key in props:
                self.check(value, props[key], _key_path(path, key), depth + 1, 0)
            elif extra is False:
                raise BadRequest(f"{path}: unknown field {_short(key)}")
            elif extra is not True:
                self.check(value, extra, _key_path(path, key), depth + 1, 0)

    def _array(self, obj: list[Any] | tuple[Any, ...], s: Mapping[str, Any], path: str,
               depth: int) -> None:
        lo, hi = s.get("minItems"), s.get("maxItems")
        if isinstance(lo, int) and len(obj) < lo or isinstance(hi, int) and len(obj) > hi:
            want = lo if lo == hi else f"{lo or 0}..{hi if hi is not None else ''}"
            raise BadRequest(f"{path}: expected {want} items, got {len(obj)}")
        prefix = s.get("prefixItems", [])
        items = s.get("items", True)
        for i, x in enumerate(obj):
            sub = prefix[i] if isinstance(prefix, list) and i < len(prefix) else items
            self.check(x, sub, f"{path}[{i}]", depth + 1, 0)
        if s.get("uniqueItems") is True and len({_canon(x) for x in obj}) != len(obj):
            raise BadRequest(f"{path}: items must be unique")


class _JsonWalk(_SchemaWalker):
    def __init__(self, root: object, obj: Any, decode: bool) -> None:
        super().__init__(root, obj)
        self.decode = decode
        self.validator = _Validator(root, obj)

    def walk(self, obj: Any, s: Any, path: str, depth: int, hops: int) -> Any:
        self.step(path, depth, hops)
        if not isinstance(s, dict):
            s = {}
        if "$ref" in s:
            return self.walk(obj, self.resolve(s["$ref"]), path, depth, hops + 1)
        branches = s.get("anyOf") or s.get("oneOf")
        if isinstance(branches, list):
            return self._branch(obj, branches, path, depth, hops + 1)
        if self.decode:
            if s.get("format") == "bytes" and isinstance(obj, str):
                return _b64decode(obj, path)
            if s.get("type") == "integer" and isinstance(obj, float) and obj.is_integer():
                return int(obj)
        elif isinstance(obj, bytes | bytearray | memoryview):
            return base64.b64encode(bytes(obj)).decode("ascii")
        if isinstance(obj, dict):
            return self._object(obj, s, path, depth)
        if isinstance(obj, list | tuple):
            prefix, items = s.get("prefixItems", []), s.get("items", {})
            return [self.walk(x, prefix[i] if isinstance(prefix, list) and i < len(prefix)
                              else items, f"{path}[{i}]", depth + 1, 0)
                    for i, x in enumerate(obj)]
        return obj

    def _object(self, obj: dict[Any, Any], s: Mapping[str, Any], path: str, depth: int) -> Any:
        props = s.get("properties", {})
        extra = s.get("additionalProperties", {})
        out = {}
        for key, value in obj.items():
            if not self.decode and not isinstance(key, str):
                raise BadRequest(f"{path}: a JSON object needs str keys, got {_got(key)}")
            sub = props.get(key, extra) if isinstance(props, dict) else extra
            out[key] = self.walk(value, sub, _key_path(path, key), depth + 1, 0)
        return out

    def _branch(self, obj: Any, branches: list[Any], path: str, depth: int, hops: int) -> Any:
        # The first alternative the value fits decides how it is converted (str | bytes:
        # JSON text is taken as text).
        for b in branches:
            try:
                if self.decode:
                    out = self.walk(obj, b, path, depth, hops)
                    self.validator.check(out, b, path, depth, hops)
                    return out
                self.validator.check(obj, b, path, depth, hops)
                return self.walk(obj, b, path, depth, hops)
            except _TooComplex:
                raise
            except BadRequest:
                continue
        return self.walk(obj, {}, path, depth, hops)  # validation reports the mismatch


def _b64decode(text: str, path: str) -> bytes:
    # Accept both alphabets and missing padding: JSON clients differ.
    data = text.replace("-", "+").replace("_", "/")
    data += "=" * (-len(data) % 4)
    try:
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise BadRequest(f"{path}: expected base64 text for bytes ({exc})") from exc
