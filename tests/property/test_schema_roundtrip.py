"""Typed values survive the wire (and CBOR, and JSON), and what to_wire makes validates."""

from __future__ import annotations

import enum
import json
import math
from dataclasses import dataclass, field
from typing import Any, Literal

import cbor2
from hypothesis import given, settings
from hypothesis import strategies as st

from micronetwork.service.schema import (
    from_json,
    from_wire,
    schema_of,
    to_json,
    to_wire,
    validate,
)


class Kind(enum.Enum):
    A = "a"
    B = "b"


class Prio(enum.IntEnum):
    LOW = 0
    HIGH = 1


@dataclass(frozen=True)
class Leaf:
    name: str
    data: bytes = b""


@dataclass
class Node:
    value: int
    children: list[Node] = field(default_factory=list)


@dataclass
class Doc:
    kind: Kind
    prio: Prio
    leaves: list[Leaf]
    scores: dict[str, float]
    pair: tuple[int, str]
    tags: frozenset[int]
    mode: Literal["r", "w", 3]
    blob: bytes | None = None
    either: int | str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


ints = st.integers(min_value=-(2**70), max_value=2**70)
floats = st.floats(allow_nan=False, allow_infinity=False)  # JSON has neither
text = st.text(max_size=8)
leaves = st.builds(Leaf, text, st.binary(max_size=8))
nodes = st.recursive(
    st.builds(Node, ints),
    lambda kids: st.builds(Node, ints, st.lists(kids, max_size=3)),
    max_leaves=10,
)
json_like = st.recursive(
    st.none() | st.booleans() | ints | text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(text, inner, max_size=3),
    max_leaves=6,
)
docs = st.builds(
    Doc,
    kind=st.sampled_from(Kind),
    prio=st.sampled_from(Prio),
    leaves=st.lists(leaves, max_size=4),
    scores=st.dictionaries(text, floats, max_size=3),
    pair=st.tuples(ints, text),
    tags=st.frozensets(ints, max_size=4),
    mode=st.sampled_from(["r", "w", 3]),
    blob=st.none() | st.binary(max_size=8),
    either=st.none() | ints | text,
    extra=st.dictionaries(text, json_like, max_size=3),
)

CASES: list[tuple[Any, st.SearchStrategy[Any]]] = [
    (Doc, docs),
    (Node, nodes),
    (list[Leaf], st.lists(leaves, max_size=4)),
    (dict[str, tuple[int, ...]], st.dictionaries(text, st.lists(ints, max_size=3).map(tuple))),
    (set[str] | None, st.none() | st.sets(text, max_size=4)),
    (float | int, floats | ints),
]


def _cases() -> st.SearchStrategy[tuple[Any, Any]]:
    return st.one_of(*[s.map(lambda v, t=t: (t, v)) for t, s in CASES])


def _same_types(a: Any, b: Any) -> bool:
    """== plus: an int stays an int and a float a float (3 == 3.0 would hide a mix-up)."""
    if isinstance(a, float | int) and not isinstance(a, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, list | tuple):
        return type(a) is type(b) and len(a) == len(b) and all(map(_same_types, a, b))
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(
            _same_types(a[k], b[k]) for k in a)
    return bool(a == b)


@settings(max_examples=300, deadline=None)
@given(_cases())
def test_wire_round_trip(case: tuple[Any, Any]) -> None:
    tp, value = case
    wire = to_wire(value, tp)
    back = from_wire(wire, tp)
    assert back == value
    assert _same_types(to_wire(back, tp), wire)
    validate(wire, schema_of(tp))


@settings(max_examples=300, deadline=None)
@given(_cases())
def test_cbor_round_trip(case: tuple[Any, Any]) -> None:
    tp, value = case
    wire = to_wire(value, tp)
    decoded = cbor2.loads(cbor2.dumps(wire))
    assert _same_types(wire, decoded)
    assert from_wire(decoded, tp) == value


@settings(max_examples=300, deadline=None)
@given(_cases())
def test_json_round_trip(case: tuple[Any, Any]) -> None:
    tp, value = case
    schema = schema_of(tp)
    wire = to_wire(value, tp)
    j = json.loads(json.dumps(to_json(wire, schema), allow_nan=False))
    back = from_json(j, schema)
    assert from_wire(back, tp) == value


@settings(max_examples=200, deadline=None)
@given(_cases(), st.data())
def test_a_changed_field_is_caught_by_both_checks(case: tuple[Any, Any], data: st.DataObject
                                                   ) -> None:
    # Replace one field of a dataclass message by a value of the wrong type: from_wire and
    # validate must both refuse it, and name the same place.
    tp, value = case
    wire = to_wire(value, tp)
    if not isinstance(wire, dict) or tp not in (Doc, Node):
        return
    key = data.draw(st.sampled_from(sorted(wire)))
    wire[key] = [object]  # no field of these types accepts a list holding a class
    errors = []
    for check in (lambda: from_wire(wire, tp, path="m"),
                  lambda: validate(wire, schema_of(tp), path="m")):
        try:
            check()
        except ValueError as exc:
            errors.append(str(exc))
    assert len(errors) == 2
    assert all(e.startswith(f"m.{key}") for e in errors), errors


@given(st.floats(allow_nan=True, allow_infinity=True))
def test_any_float_passes(x: float) -> None:
    got = from_wire(to_wire(x, float), float)
    assert got == x or (math.isnan(x) and math.isnan(got))
    validate(x, schema_of(float))
