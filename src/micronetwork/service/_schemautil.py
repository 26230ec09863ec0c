"""Helpers shared by ``schema.py`` (type hints) and ``jsonschema.py`` (schemas alone): error
messages that name the path and the type found, the nesting bound, and equality that keeps
``True`` apart from ``1``. Private to the ``service`` package."""

from __future__ import annotations

from typing import Any

from ..errors import BadRequest

Schema = dict[str, Any]

_MAX_DEPTH = 64  # nesting of values that from_wire / validate follow (the stack is finite)
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


def _hashable(tp: Any) -> bool:
    try:
        hash(tp)
    except TypeError:
        return False
    return True
