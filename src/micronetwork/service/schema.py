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
from collections.abc import Callable, Mapping
from typing import Any

from ..errors import BadRequest, SchemaError
from ._schemautil import (
    _PRIMITIVE_NAMES,
    Schema,
    _check_depth,
    _expected,
    _got,
    _hashable,
    _key_path,
    _same,
    _short,
)
from .jsonschema import from_json, to_json, validate

__all__ = ["Schema", "from_json", "from_wire", "schema_of", "to_json", "to_wire", "validate"]


# -- converters --------------------------------------------------------------------------------


class _Conv:
    name = "?"
    shape: tuple[type, ...] = (object,)  # wire types that could be meant for this converter

    def schema(self, defs: _Defs) -> Schema:
        raise NotImplementedError

    def to_wire(self, v: Any, path: str, depth: int) -> Any:
        raise NotImplementedError

    def from_wire(self, o: Any, path: str, depth: int, lenient: bool) -> Any:
        raise NotImplementedError


class _AnyConv(_Conv):
    name = "Any"

    def schema(self, defs: _Defs) -> Schema:
        return {}

    def to_wire(self, v: Any, path: str, depth: int) -> Any:
        _check_depth(path, depth)
        if isinstance(v, enum.Enum):
            return v.value
        if dataclasses.is_dataclass(v) and not isinstance(v, type):
            return _compile(type(v), path).to_wire(v, path, depth)
        if isinstance(v, Mapping):
            return {k: self.to_wire(x, _key_path(path, k), depth + 1) for k, x in v.items()}
        if isinstance(v, list | tuple | set | frozenset):
            return [self.to_wire(x, f"{path}[{i}]", depth + 1) for i, x in enumerate(v)]
        return v

    def from_wire(self, o: Any, path: str, depth: int, lenient: bool) -> Any:
        return o


class _Scalar(_Conv):
    def __init__(self, tp: type, json_type: str, accepts: tuple[type, ...]) -> None:
        self.tp, self.json_type, self.shape = tp, json_type, accepts
        self.name = _PRIMITIVE_NAMES[tp]

    def schema(self, defs: _Defs) -> Schema:
        if self.tp is bytes:
            return {"type": "string", "format": "bytes"}
        return {"type": self.json_type}

    def from_wire(self, o: Any, path: str, depth: int, lenient: bool) -> Any:
        if not isinstance(o, self.shape) or (isinstance(o, bool) and self.tp is not bool):
            raise _expected(path, self.name, o)
        return None if o is None else self.tp(o)

    def to_wire(self, v: Any, path: str, depth: int) -> Any:
        return self.from_wire(v, path, depth, False)


class _Seq(_Conv):
    shape = (list, tuple)

    def __init__(self, item: _Conv, container: type) -> None:
        self.item, self.container = item, container
        self.unique = container in (set, frozenset)
        suffix = ", ..." if container is tuple else ""
        self.name = f"{container.__name__}[{item.name}{suffix}]"

    def schema(self, defs: _Defs) -> Schema:
        out: Schema = {"type": "array", "items": self.item.schema(defs)}
        if self.unique:
            out["uniqueItems"] = True
        return out

    def from_wire(self, o: Any, path: str, depth: int, lenient: bool) -> Any:
        _check_depth(path, depth)
        if not isinstance(o, list | tuple):
            raise _expected(path, self.name, o)
        items = [self.item.from_wire(x, f"{path}[{i}]", depth + 1, lenient)
                 for i, x in enumerate(o)]
        out = self.container(items)
        if self.unique and len(out) != len(items):
            raise BadRequest(f"{path}: items must be unique")
        return out

    def to_wire(self, v: Any, path: str, depth: int) -> Any:
        _check_depth(path, depth)
        ok = (set, frozenset) if self.unique else (list, tuple)
        if not isinstance(v, ok):
            raise _expected(path, self.name, v)
        out = [self.item.to_wire(x, f"{path}[{i}]", depth + 1) for i, x in enumerate(v)]
        if self.unique:  # a set has no order; sort where possible so the bytes are stable
            try:
                out.sort()
            except TypeError:
                pass
        return out


class _FixedTuple(_Conv):
    shape = (list, tuple)

    def __init__(self, items: list[_Conv]) -> None:
        self.items = items
        self.name = f"tuple[{', '.join(c.name for c in items) or '()'}]"

    def schema(self, defs: _Defs) -> Schema:
        n = len(self.items)
        return {"type": "array", "prefixItems": [c.schema(defs) for c in self.items],
                "items": False, "minItems": n, "maxItems": n}

    def _each(self, v: Any, path: str, depth: int, f: Callable[[_Conv, Any, str], Any]) -> Any:
        _check_depth(path, depth)
        if not isinstance(v, list | tuple):
            raise _expected(path, self.name, v)
        if len(v) != len(self.items):
            raise BadRequest(f"{path}: expected {len(self.items)} items, got {len(v)}")
        return [f(c, x, f"{path}[{i}]") for i, (c, x) in enumerate(zip(self.items, v, strict=True))]

    def from_wire(self, o: Any, path: str, depth: int, lenient: bool) -> Any:
        return tuple(self._each(o, path, depth,
                                lambda c, x, p: c.from_wire(x, p, depth + 1, lenient)))

    def to_wire(self, v: Any, path: str, depth: int) -> Any:
        return self._each(v, path, depth, lambda c, x, p: c.to_wire(x, p, depth + 1))


class _Map(_Conv):
    shape = (dict,)

    def __init__(self, value: _Conv) -> None:
        self.value = value
        self.name = f"dict[str, {value.name}]"

    def schema(self, defs: _Defs) -> Schema:
        return {"type": "object", "additionalProperties": self.value.schema(defs)}

    def _each(self, v: Any, path: str, depth: int, f: Callable[[Any, str], Any]) -> Any:
        _check_depth(path, depth)
        if not isinstance(v, Mapping):
            raise _expected(path, self.name, v)
        out = {}
        for k, x in v.items():
            if not isinstance(k, str):
                raise BadRequest(f"{path}: keys must be str, got {_got(k)}")
            out[k] = f(x, _key_path(path, k))
        return out

    def from_wire(self, o: Any, path: str, depth: int, lenient: bool) -> Any:
        return self._each(o, path, depth, lambda x, p: self.value.from_wire(x, p, depth + 1,
                                                                            lenient))

    def to_wire(self, v: Any, path: str, depth: int) -> Any:
        return self._each(v, path, depth, lambda x, p: self.value.to_wire(x, p, depth + 1))


class _Union(_Conv):
    def __init__(self, members: list[_Conv]) -> None:
        self.members = members
        self.shape = tuple(t for m in members for t in m.shape)
        self.name = " | ".join(m.name for m in members)

    def schema(self, defs: _Defs) -> Schema:
        return {"anyOf": [m.schema(defs) for m in self.members]}

    def _pick(self, v: Any, path: str, f: Callable[[_Conv], Any]) -> Any:
        if type(v) is int:  # an int stays an int when the union allows one (not widened)
            for m in self.members:
                if isinstance(m, _Scalar) and m.tp is int:
                    return f(m)
        errors: list[tuple[_Conv, BadRequest]] = []
        for m in self.members:
            try:
                return f(m)
            except BadRequest as exc:  # no traceback kept: frames would form cycles for gc
                errors.append((m, exc.with_traceback(None)))
        # If only one member could have been meant, its (deeper) message is the useful one.
        fits = [e for m, e in errors if isinstance(v, m.shape) and not isinstance(m, _AnyConv)]
        if len(fits) == 1:
            raise fits[0]
        raise _expected(path, self.name, v)

    def from_wire(self, o: Any, path: str, depth: int, lenient: bool) -> Any:
        return self._pick(o, path, lambda m: m.from_wire(o, path, depth, lenient))

    def to_wire(self, v: Any, path: str, depth: int) -> Any:
        return self._pick(v, path, lambda m: m.to_wire(v, path, depth))


class _Literal(_Conv):
    def __init__(self, values: tuple[Any, ...]) -> None:
        self.values = values
        self.wire = [v.value if isinstance(v, enum.Enum) else v for v in values]
        self.shape = tuple({type(w) for w in self.wire})
        self.name = f"one of {self.wire!r}"

    def schema(self, defs: _Defs) -> Schema:
        return {"enum": list(self.wire)}

    def from_wire(self, o: Any, path: str, depth: int, lenient: bool) -> Any:
        for v, w in zip(self.values, self.wire, strict=True):
            if _same(o, w):
                return v
        raise BadRequest(f"{path}: expected {self.name}, got {_short(o)}")

    def to_wire(self, v: Any, path: str, depth: int) -> Any:
        for value, w in zip(self.values, self.wire, strict=True):
            if _same(v, value) or _same(v, w):
                return w
        raise BadRequest(f"{path}: expected {self.name}, got {_short(v)}")


class _Named(_Conv):
    """A type that gets a ``$defs`` entry: enums, dataclasses, TypedDicts."""

    def __init__(self, cls: type) -> None:
        self.cls = cls
        self.name = cls.__name__

    def schema(self, defs: _Defs) -> Schema:
        return defs.ref(self)

    def body(self, defs: _Defs) -> Schema:
        raise NotImplementedError

    def _doc(self) -> Schema:
        doc = (self.cls.__doc__ or "").strip()
        auto = doc.startswith(self.cls.__name__ + "(") or doc == "An enumeration."
        return {"description": doc.splitlines()[0]} if doc and not auto else {}


class _Enum(_Named):
    def __init__(self, cls: type[enum.Enum], where: str) -> None:
        super().__init__(cls)
        self.members = list(cls)
        for m in self.members:
            if not isinstance(m.value, str | int | float | bool | None):
                raise SchemaError(f"enum {cls.__name__} at {where}: member {m.name} has a "
                                  f"{type(m.value).__name__} value; use str or int values")
        self.shape = tuple({type(m.value) for m in self.members}) or (object,)

    def body(self, defs: _Defs) -> Schema:
        out: Schema = {"title": self.name, **self._doc()}
        kinds = {type(m.value) for m in self.members}
        if kinds in ({str}, {int}):
            out["type"] = "string" if kinds == {str} else "integer"
        out["enum"] = [m.value for m in self.members]
        return out

    def from_wire(self, o: Any, path: str, depth: int, lenient: bool) -> Any:
        for m in self.members:
            if _same(o, m.value):
                return m
        values = [m.value for m in self.members]
        raise BadRequest(f"{path}: expected {self.name} (one of {values!r}), got {_short(o)}")

    def to_wire(self, v: Any, path: str, depth: int) -> Any:
        if isinstance(v, enum.Enum) and v in self.members:
            return v.value
        return self.from_wire(v, path, depth, False).value


@dataclasses.dataclass
class _Field:
    name: str
    conv: _Conv
    required: bool
    extra: Schema  # default / description for the schema


class _Record(_Named):
    """Dataclasses and TypedDicts: closed objects with named, typed fields."""

    shape = (dict,)
    fields: list[_Field]

    def body(self, defs: _Defs) -> Schema:
        props = {f.name: {**f.conv.schema(defs), **f.extra} for f in self.fields}
        out: Schema = {"type": "object", "title": self.name, **self._doc(), "properties": props}
        required = [f.name for f in self.fields if f.required]
        if required:
            out["required"] = required
        out["additionalProperties"] = False
        return out

    def _fields_from_wire(self, o: Any, path: str, depth: int, lenient: bool) -> dict[str, Any]:
        _check_depth(path, depth)
        if not isinstance(o, dict):
            raise _expected(path, self.name, o)
        known = {f.name for f in self.fields}
        if not lenient:
            for key in o:
                if key not in known:
                    raise BadRequest(f"{path}: unknown field {_short(key)} in {self.name}")
        out: dict[str, Any] = {}
        for f in self.fields:
            if f.name in o:
                out[f.name] = f.conv.from_wire(o[f.name], _key_path(path, f.name), depth + 1,
                                               lenient)
            elif f.required:
                raise BadRequest(f"{path}: missing required field {f.name!r} of {self.name}")
        return out


class _Dataclass(_Record):
    def from_wire(self, o: Any, path: str, depth: int, lenient: bool) -> Any:
        kwargs = self._fields_from_wire(o, path, depth, lenient)
        try:
            return self.cls(**kwargs)
        except (TypeError, ValueError) as exc:  # __post_init__ checks are the caller's fault
            raise BadRequest(f"{path}: {exc}") from exc

    def to_wire(self, v: Any, path: str, depth: int) -> Any:
        _check_depth(path, depth)
        if not isinstance(v, self.cls):
            raise _expected(path, self.name, v)
        return {f.name: f.conv.to_wire(getattr(v, f.name), _key_path(path, f.name), depth + 1)
                for f in self.fields}


class _TypedDict(_Record):
    def from_wire(self, o: Any, path: str, depth: int, lenient: bool) -> Any:
        return self._fields_from_wire(o, path, depth, lenient)

    def to_wire(self, v: Any, path: str, depth: int) -> Any:
        _check_depth(path, depth)
        if not isinstance(v, Mapping):
            raise _expected(path, self.name, v)
        known = {f.name for f in self.fields}
        for key in v:
            if key not in known:
                raise BadRequest(f"{path}: unknown field {_short(key)} in {self.name}")
        out = {}
        for f in self.fields:
            if f.name in v:
                out[f.name] = f.conv.to_wire(v[f.name], _key_path(path, f.name), depth + 1)
            elif f.required:
                raise BadRequest(f"{path}: missing required field {f.name!r} of {self.name}")
        return out


class _Defs:
    """The ``$defs`` of one schema being written; named types are written once, by name."""

    def __init__(self) -> None:
        self.bodies: dict[str, Schema] = {}
        self.names: dict[_Named, str] = {}

    def ref(self, conv: _Named) -> Schema:
        name = self.names.get(conv)
        if name is None:
            name, n = conv.name, 1
            while name in self.bodies:  # two types of the same name from different modules
                n += 1
                name = f"{conv.name}_{n}"
            self.names[conv] = name
            self.bodies[name] = {}  # placeholder: a recursive type refers to itself by name
            self.bodies[name] = conv.body(self)
        return {"$ref": f"#/$defs/{name}"}


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
