"""The converters a type hint compiles into (:mod:`.schema` compiles them and holds the API).

Each converter knows the JSON Schema of its values (``schema``), how to turn a typed Python
value into CBOR-able primitives (``to_wire``) and how to turn CBOR-decoded primitives back into
a typed value, checking them on the way (``from_wire``). Named types (enums, dataclasses,
TypedDicts) are written once into the schema's ``$defs`` (:class:`_Defs`).
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Callable, Mapping
from typing import Any

from ..errors import BadRequest, SchemaError
from ._schemautil import (
    _PRIMITIVE_NAMES,
    Schema,
    _check_depth,
    _expected,
    _got,
    _key_path,
    _same,
    _short,
)

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
            from .schema import _compile  # a dataclass value under Any: compiled on first use

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
