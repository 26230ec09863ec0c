"""Schemas from type hints, and the conversions between typed values, the wire and JSON.

Theory of operation. A type hint is compiled once into a tree of converters (cached per hint);
each converter knows three things: the JSON Schema of its values (``schema_of``), how to turn a
typed Python value into CBOR-able primitives (``to_wire``) and how to turn CBOR-decoded
primitives back into a typed value, checking them on the way (``from_wire``). A node that only
has a schema (a client that read it from another node's registration) uses ``validate``, which
interprets the schema dict itself, and ``from_json``/``to_json``, which differ from the wire
form only in carrying bytes as base64 text; those three live in ``jsonschema.py`` and are
re-exported here.

=========================================  ==================================================
hint                                       schema (JSON Schema 2020-12 subset)
=========================================  ==================================================
``None`` / ``bool`` / ``int`` / ``float``  ``{"type": "null" | "boolean" | "integer" | "number"}``
``str`` / ``bytes``                        ``{"type": "string"}`` (+ ``"format": "bytes"``)
``list[T]``, ``tuple[T, ...]``             ``{"type": "array", "items": T}``
``set[T]``, ``frozenset[T]``               the same with ``"uniqueItems": true``
``tuple[A, B]``                            ``prefixItems``, ``"items": false``, min/maxItems
``dict[str, T]``                           ``{"type": "object", "additionalProperties": T}``
``A | B``, ``Optional[A]``                 ``{"anyOf": [A, B]}``
``Literal["a", 1]``                        ``{"enum": ["a", 1]}``
``Enum`` / dataclass / ``TypedDict``       ``{"$ref": "#/$defs/Name"}``, body in ``"$defs"``
``Any``                                    ``{}``
=========================================  ==================================================

Dataclasses and TypedDicts are closed: the schema says ``"additionalProperties": false`` and
``from_wire`` rejects unknown fields (``ignore_unknown=True`` drops them instead), so a typo in a
field name is an error rather than a silently ignored value. Required fields are the dataclass
fields without a default (TypedDict: ``__required_keys__``). ``int`` is never satisfied by a
``bool`` (or the reverse); a ``float`` accepts an ``int`` (widened); NaN and infinities pass.
"""

from __future__ import annotations

import dataclasses
import enum
import types
import typing
from collections import abc
from typing import Any

from ..errors import BadRequest, SchemaError
from ._schemaconv import (
    _AnyConv,
    _Conv,
    _Dataclass,
    _Defs,
    _Enum,
    _Field,
    _FixedTuple,
    _Literal,
    _Map,
    _Scalar,
    _Seq,
    _TypedDict,
    _Union,
)
from ._schemautil import Schema, _hashable
from .jsonschema import from_json, to_json, validate

__all__ = ["Schema", "from_json", "from_wire", "schema_of", "to_json", "to_wire", "validate"]


# -- compiling hints ---------------------------------------------------------------------------

_CACHE: dict[Any, _Conv] = {}
_SCALARS: dict[Any, _Conv] = {
    None: _Scalar(type(None), "null", (type(None),)),
    type(None): _Scalar(type(None), "null", (type(None),)),
    bool: _Scalar(bool, "boolean", (bool,)),
    int: _Scalar(int, "integer", (int,)),
    float: _Scalar(float, "number", (int, float)),
    str: _Scalar(str, "string", (str,)),
    bytes: _Scalar(bytes, "string", (bytes, bytearray, memoryview)),
}
_ANY = _AnyConv()
_SEQS: dict[Any, type] = {list: list, abc.Sequence: list, abc.MutableSequence: list,
                          set: set, abc.MutableSet: set, frozenset: frozenset, abc.Set: frozenset}
_MAPS: set[Any] = {dict, abc.Mapping, abc.MutableMapping}
_WRAPPERS = {typing.Required, typing.NotRequired, typing.ClassVar, typing.Final}


def _hint_name(tp: Any) -> str:
    if isinstance(tp, type):
        return tp.__qualname__
    return repr(tp).replace("typing.", "").replace("collections.abc.", "")


def _compile(tp: Any, where: str) -> _Conv:
    try:
        return _CACHE[tp]
    except (KeyError, TypeError):
        pass
    session: dict[Any, _Conv] = {}
    conv = _Compiler(session).compile(tp, where)
    _CACHE.update(session)  # only once every part compiled, so no half-built entry is kept
    return conv


class _Compiler:
    def __init__(self, session: dict[Any, _Conv]) -> None:
        self.session = session

    def compile(self, tp: Any, where: str) -> _Conv:
        try:
            found = _CACHE.get(tp) or self.session.get(tp)
        except TypeError:  # an unhashable hint (e.g. a Literal of a list): described below
            found = None
        if found is not None:
            return found
        conv = self._compile(tp, where)
        try:
            self.session[tp] = conv
        except TypeError:
            pass
        return conv

    def _compile(self, tp: Any, where: str) -> _Conv:
        origin, args = typing.get_origin(tp), typing.get_args(tp)
        if origin is typing.Annotated or origin in _WRAPPERS:
            return self.compile(args[0], where)
        if isinstance(tp, typing.NewType):
            return self.compile(tp.__supertype__, where)
        if tp is Any or tp is object:
            return _ANY
        if not _hashable(tp):
            raise SchemaError(f"cannot describe {tp!r} as a schema, at {where}")
        if tp in _SCALARS:
            return _SCALARS[tp]
        if origin is typing.Union or origin is types.UnionType:
            members: list[_Conv] = []
            for i, a in enumerate(args):
                c = self.compile(a, f"{where} (member {i + 1})")
                members.extend(c.members if isinstance(c, _Union) else [c])
            return _Union(members)
        if origin is typing.Literal:
            return self._literal(tp, args, where)
        if tp is tuple or origin is tuple:
            return self._tuple(args if origin is tuple else (Any, ...), where)
        if (origin or tp) in _SEQS:
            item = self.compile(args[0] if args else Any, f"{where}[]")
            return _Seq(item, _SEQS[origin or tp])
        if (origin or tp) in _MAPS:
            return self._map(tp, args, where)
        if typing.is_typeddict(tp):
            return self._record(_TypedDict(tp), where)
        if isinstance(tp, type) and dataclasses.is_dataclass(tp):
            return self._record(_Dataclass(tp), where)
        if isinstance(tp, type) and issubclass(tp, enum.Enum):
            return _Enum(tp, where)
        detail = ""
        if isinstance(origin, type) and dataclasses.is_dataclass(origin):
            detail = " (generic dataclasses are not supported)"
        elif isinstance(tp, str | typing.ForwardRef | typing.TypeVar):
            detail = " (unresolved forward reference or type variable)"
        raise SchemaError(
            f"cannot describe {_hint_name(tp)} as a schema, at {where}{detail}; supported: None, "
            "bool, int, float, str, bytes, list, tuple, set, dict[str, T], unions, Literal, "
            "Enum, dataclasses, TypedDict, Any"
        )

    def _literal(self, tp: Any, args: tuple[Any, ...], where: str) -> _Conv:
        for a in args:
            value = a.value if isinstance(a, enum.Enum) else a
            if not isinstance(value, str | int | bool | None):
                raise SchemaError(f"cannot describe {_hint_name(tp)} as a schema, at {where}: "
                                  f"Literal values must be str, int, bool or None")
        return _Literal(args)

    def _tuple(self, args: tuple[Any, ...], where: str) -> _Conv:
        if len(args) == 2 and args[1] is Ellipsis:
            return _Seq(self.compile(args[0], f"{where}[]"), tuple)
        if args == ((),):  # the spelling of the empty tuple type before 3.11
            args = ()
        return _FixedTuple([self.compile(a, f"{where}[{i}]") for i, a in enumerate(args)])

    def _map(self, tp: Any, args: tuple[Any, ...], where: str) -> _Conv:
        key, value = args if args else (str, Any)
        if key is not str:
            raise SchemaError(f"cannot describe {_hint_name(tp)} as a schema, at {where}: "
                              "map keys must be str (JSON objects have text keys)")
        return _Map(self.compile(value, f"{where}{{}}"))

    def _record(self, conv: _Dataclass | _TypedDict, where: str) -> _Conv:
        cls = conv.cls
        self.session[cls] = conv  # before the fields, so a recursive field finds it
        try:
            hints = typing.get_type_hints(cls, include_extras=True)
        except Exception as exc:
            raise SchemaError(f"cannot resolve the type hints of {cls.__qualname__} "
                              f"(at {where}): {exc}") from exc
        conv.fields = []
        if isinstance(conv, _TypedDict):
            required_keys: frozenset[str] = getattr(cls, "__required_keys__", frozenset())
            for name, hint in hints.items():
                sub = self.compile(hint, f"{cls.__qualname__}.{name}")
                # Python 3.11 misses (Not)Required in string annotations: read them here.
                wrapper = typing.get_origin(hint)
                required = (wrapper is typing.Required if wrapper in _WRAPPERS
                            else name in required_keys)
                conv.fields.append(_Field(name, sub, required, {}))
            return conv
        for f in dataclasses.fields(cls):
            if not f.init:
                continue  # computed in __post_init__: not part of the message
            sub = self.compile(hints[f.name], f"{cls.__qualname__}.{f.name}")
            required = (f.default is dataclasses.MISSING
                        and f.default_factory is dataclasses.MISSING)
            extra: Schema = {}
            default = f.default.value if isinstance(f.default, enum.Enum) else f.default
            if type(default) in (str, int, float, bool, type(None)) and not required:
                extra["default"] = default
            doc = f.metadata.get("description") or f.metadata.get("doc")
            if isinstance(doc, str):
                extra["description"] = doc
            conv.fields.append(_Field(f.name, sub, required, extra))
        return conv


# -- the public functions ----------------------------------------------------------------------


def schema_of(tp: Any, *, where: str = "value") -> Schema:
    """The JSON Schema of the values of type hint ``tp``. Named types (dataclasses,
    TypedDicts, enums) are described once in ``"$defs"`` and referred to by ``"$ref"``, so
    recursive types work. :class:`SchemaError` names the hint that cannot be described and
    ``where`` it was found."""
    defs = _Defs()
    out = _compile(tp, where).schema(defs)
    if defs.bodies:
        out = {**out, "$defs": dict(sorted(defs.bodies.items()))}
    return out


def to_wire(value: Any, tp: Any, *, path: str = "value") -> Any:
    """``value`` (of type ``tp``) as CBOR-able primitives: dataclass -> dict, enum -> its
    value, tuple and set -> list. :class:`BadRequest` with a path if it is not of type ``tp``."""
    conv = _compile(tp, path)
    try:
        return conv.to_wire(value, path, 0)
    except RecursionError as exc:  # a cycle of objects, or nesting past the stack
        raise BadRequest(f"{path}: nested too deeply") from exc


def from_wire(obj: Any, tp: Any, *, path: str = "value", ignore_unknown: bool = False) -> Any:
    """CBOR-decoded ``obj`` as a value of type ``tp`` (dict -> dataclass, ...), checked on the
    way: :class:`BadRequest` says where and what, e.g. ``request.items[2].name: expected str,
    got int``. Unknown fields of dataclasses/TypedDicts are errors unless ``ignore_unknown``."""
    conv = _compile(tp, path)
    try:
        return conv.from_wire(obj, path, 0, ignore_unknown)
    except RecursionError as exc:
        raise BadRequest(f"{path}: nested too deeply") from exc
