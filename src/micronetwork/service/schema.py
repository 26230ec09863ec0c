"""Schemas from type hints, and the conversions between typed values, the wire and JSON.

Theory of operation. A type hint is compiled once into a tree of converters (cached per hint);
each converter knows three things: the JSON Schema of its values (``schema_of``), how to turn a
typed Python value into CBOR-able primitives (``to_wire``) and how to turn CBOR-decoded
primitives back into a typed value, checking them on the way (``from_wire``). A node that only
has a schema (a client that read it from another node's registration) uses ``validate``, which
interprets the schema dict itself, and ``from_json``/``to_json``, which differ from the wire
form only in carrying bytes as base64 text.

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

import base64
import binascii
import contextlib
import dataclasses
import enum
import types
import typing
from collections import abc
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from ..errors import BadRequest, SchemaError

__all__ = ["Schema", "from_json", "from_wire", "schema_of", "to_json", "to_wire", "validate"]

Schema = dict[str, Any]

_MAX_DEPTH = 64  # nesting of values that from_wire / validate follow (the stack is finite)
_MAX_STEPS = 50_000  # schema nodes validate may visit (+16 per value): schemas are untrusted
_PRIMITIVE_NAMES = {type(None): "None", bool: "bool", int: "int", float: "float", str: "str",
                    bytes: "bytes", list: "list", tuple: "list", dict: "dict"}


def _got(obj: object) -> str:
    return _PRIMITIVE_NAMES.get(type(obj)) or type(obj).__name__


def _expected(path: str, expected: str, obj: object) -> BadRequest:
    return BadRequest(f"{path}: expected {expected}, got {_got(obj)}")


def _short(obj: object) -> str:
    text = repr(obj)
    return text if len(text) <= 40 else text[:37] + "..."


def _same(a: object, b: object) -> bool:
    """Equality that keeps True apart from 1 (enum and Literal members)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    return a == b and (type(a) is type(b) or (_is_number(a) and _is_number(b)))


def _is_number(obj: object) -> bool:
    return isinstance(obj, int | float) and not isinstance(obj, bool)


def _key_path(path: str, key: object) -> str:
    return f"{path}.{key}" if isinstance(key, str) and key.isidentifier() else f"{path}[{key!r}]"


def _check_depth(path: str, depth: int) -> None:
    if depth > _MAX_DEPTH:
        raise BadRequest(f"{path}: nested deeper than {_MAX_DEPTH} levels")


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


def _hashable(tp: Any) -> bool:
    try:
        hash(tp)
    except TypeError:
        return False
    return True


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
