"""Type hints -> JSON Schema, and the wire/JSON conversions and checks built on them."""

from __future__ import annotations

import enum
import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal, NewType, NotRequired, Optional, TypedDict, Union

import cbor2
import pytest

from micronetwork.errors import BadRequest, SchemaError
from micronetwork.service.schema import (
    from_json,
    from_wire,
    schema_of,
    to_json,
    to_wire,
    validate,
)


class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


class Level(enum.IntEnum):
    LOW = 1
    HIGH = 2


@dataclass
class Item:
    """One line of an order."""

    name: str
    qty: int = 1


@dataclass
class Order:
    items: list[Item]
    color: Color
    note: str | None = None
    tags: set[str] = field(default_factory=set)


@dataclass
class Tree:
    value: int
    children: list[Tree] = field(default_factory=list)


@dataclass
class Positive:
    n: int

    def __post_init__(self) -> None:
        if self.n <= 0:
            raise ValueError("n must be positive")


class Movie(TypedDict):
    title: str
    year: NotRequired[int]


class Partial(TypedDict, total=False):
    a: int
    b: str


class Plain:
    pass


UserId = NewType("UserId", str)


# -- schemas ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("hint", "schema"),
    [
        (None, {"type": "null"}),
        (bool, {"type": "boolean"}),
        (int, {"type": "integer"}),
        (float, {"type": "number"}),
        (str, {"type": "string"}),
        (bytes, {"type": "string", "format": "bytes"}),
        (Any, {}),
        (list[int], {"type": "array", "items": {"type": "integer"}}),
        (Sequence[str], {"type": "array", "items": {"type": "string"}}),
        (tuple[int, ...], {"type": "array", "items": {"type": "integer"}}),
        (set[str], {"type": "array", "items": {"type": "string"}, "uniqueItems": True}),
        (frozenset[int], {"type": "array", "items": {"type": "integer"}, "uniqueItems": True}),
        (dict[str, float], {"type": "object", "additionalProperties": {"type": "number"}}),
        (Optional[int], {"anyOf": [{"type": "integer"}, {"type": "null"}]}),  # noqa: UP045
        (int | str | None, {"anyOf": [{"type": "integer"}, {"type": "string"}, {"type": "null"}]}),
        (Union[int, Union[str, bytes]],  # noqa: UP007
         {"anyOf": [{"type": "integer"}, {"type": "string"},
                    {"type": "string", "format": "bytes"}]}),
        (Literal["a", 1, True], {"enum": ["a", 1, True]}),
        (Annotated[int, "meta"], {"type": "integer"}),
        (UserId, {"type": "string"}),
        (tuple[int, str], {"type": "array", "prefixItems": [{"type": "integer"},
                                                             {"type": "string"}],
                           "items": False, "minItems": 2, "maxItems": 2}),
    ],
)
def test_schema_of_plain_hints(hint: Any, schema: dict[str, Any]) -> None:
    assert schema_of(hint) == schema


def test_dataclass_goes_into_defs_with_required_and_defaults() -> None:
    s = schema_of(Order)
    assert s["$ref"] == "#/$defs/Order"
    assert set(s["$defs"]) == {"Order", "Item", "Color"}
    order = s["$defs"]["Order"]
    assert order["required"] == ["items", "color"]
    assert order["additionalProperties"] is False
    assert list(order["properties"]) == ["items", "color", "note", "tags"]  # declaration order
    assert order["properties"]["note"]["default"] is None
    assert "default" not in order["properties"]["tags"]  # a factory has no literal default
    item = s["$defs"]["Item"]
    assert item["description"] == "One line of an order."
    assert item["properties"]["qty"] == {"type": "integer", "default": 1}
    assert s["$defs"]["Color"] == {"title": "Color", "type": "string", "enum": ["red", "blue"]}
    assert "description" not in order  # the generated dataclass docstring is not a description


def test_typeddict_required_and_not_required() -> None:
    movie = schema_of(Movie)["$defs"]["Movie"]
    assert movie["required"] == ["title"]
    assert movie["properties"] == {"title": {"type": "string"}, "year": {"type": "integer"}}
    partial = schema_of(Partial)["$defs"]["Partial"]
    assert "required" not in partial


def test_recursive_type_refers_to_itself() -> None:
    s = schema_of(Tree)
    assert s["$defs"]["Tree"]["properties"]["children"] == {
        "type": "array", "items": {"$ref": "#/$defs/Tree"}}
    tree = Tree(1, [Tree(2), Tree(3, [Tree(4)])])
    wire = to_wire(tree, Tree)
    assert wire["children"][1]["children"][0] == {"value": 4, "children": []}
    assert from_wire(wire, Tree) == tree
    validate(wire, s)


def test_same_name_from_two_places_gets_two_defs() -> None:
    other = dataclass(type("Item", (), {"__annotations__": {"x": "int"}}))
    s = schema_of(tuple[Item, other])
    assert set(s["$defs"]) == {"Item", "Item_2"}
    assert s["prefixItems"] == [{"$ref": "#/$defs/Item"}, {"$ref": "#/$defs/Item_2"}]
    assert s["$defs"]["Item_2"]["required"] == ["x"]


def test_schema_is_deterministic_and_serialisable() -> None:
    a, b = schema_of(Order), schema_of(Order)
    assert json.dumps(a) == json.dumps(b)
    assert cbor2.loads(cbor2.dumps(a)) == a
    assert list(a["$defs"]) == sorted(a["$defs"])


@pytest.mark.parametrize(
    ("hint", "named"),
    [
        (Plain, "Plain"),
        (Callable[[int], int], "Callable"),
        (dict[int, str], "dict[int, str]"),
        (list[Plain], "Plain"),
        (Literal[b"x"], "Literal"),
    ],
)
def test_unsupported_hints_raise_schema_error_naming_hint_and_place(hint: Any, named: str) -> None:
    with pytest.raises(SchemaError) as err:
        schema_of(hint, where="svc.ep request")
    assert named in str(err.value)
    assert "svc.ep request" in str(err.value)


def test_unsupported_field_names_the_field() -> None:
    @dataclass
    class Bad:
        ok: int
        cb: Plain

    with pytest.raises(SchemaError, match=r"Bad\.cb"):
        schema_of(Bad)


def test_failed_compile_is_not_cached_half_built() -> None:
    with pytest.raises(SchemaError):
        schema_of(list[Plain])
    with pytest.raises(SchemaError):  # still an error the second time, not a cached converter
        to_wire([], list[Plain])


# -- from_wire / to_wire ------------------------------------------------------------------------


def test_error_path_points_at_the_bad_value() -> None:
    wire = {"items": [{"name": "a"}, {"name": "b"}, {"name": 3}], "color": "red"}
    with pytest.raises(BadRequest, match=r"^request\.items\[2\]\.name: expected str, got int$"):
        from_wire(wire, Order, path="request")
    with pytest.raises(BadRequest, match=r"^request\.items\[2\]\.name: expected str, got int$"):
        validate(wire, schema_of(Order), path="request")


def test_missing_and_unknown_fields() -> None:
    with pytest.raises(BadRequest, match="missing required field 'color'"):
        from_wire({"items": []}, Order)
    with pytest.raises(BadRequest, match="unknown field 'colour'"):
        from_wire({"items": [], "color": "red", "colour": "red"}, Order)
    got = from_wire({"items": [], "color": "red", "colour": "red"}, Order, ignore_unknown=True)
    assert got == Order([], Color.RED)
    with pytest.raises(BadRequest, match="unknown field"):
        validate({"items": [], "color": "red", "colour": "red"}, schema_of(Order))


def test_defaults_fill_missing_optional_fields() -> None:
    assert from_wire({"name": "x"}, Item) == Item("x", 1)
    assert from_wire({"title": "T"}, Movie) == {"title": "T"}


def test_bool_and_int_are_not_confused() -> None:
    with pytest.raises(BadRequest, match="expected int, got bool"):
        from_wire(True, int)
    with pytest.raises(BadRequest, match="expected bool, got int"):
        from_wire(1, bool)
    with pytest.raises(BadRequest, match="expected float, got bool"):
        from_wire(False, float)
    with pytest.raises(BadRequest):
        from_wire(True, Level)  # IntEnum values are ints, not bools
    with pytest.raises(BadRequest):
        from_wire(True, Literal[1])
    assert from_wire(1, Literal[1, True]) == 1 and from_wire(True, Literal[1, True]) is True
    with pytest.raises(BadRequest, match="expected int, got bool"):
        validate(True, schema_of(int))
    with pytest.raises(BadRequest):
        validate(1, schema_of(Literal[True]))


def test_int_widens_to_float_and_nan_passes() -> None:
    got = from_wire(3, float)
    assert got == 3.0 and type(got) is float
    assert math.isnan(from_wire(math.nan, float))
    assert to_wire(math.inf, float) == math.inf
    validate(3, schema_of(float))
    with pytest.raises(BadRequest):
        validate(3.5, schema_of(int))


def test_union_keeps_ints_and_reports_the_member_meant() -> None:
    assert type(from_wire(3, float | int)) is int
    assert type(from_wire(3.0, float | int)) is float
    with pytest.raises(BadRequest, match=r"^value\.name: expected str, got int$"):
        from_wire({"name": 1}, Item | None)  # the dict could only be an Item: say why not
    with pytest.raises(BadRequest, match="expected int | str, got list"):
        from_wire([1], int | str)


def test_enums_and_literals() -> None:
    assert from_wire("blue", Color) is Color.BLUE
    assert from_wire(2, Level) is Level.HIGH
    assert to_wire(Color.RED, Color) == "red"
    assert to_wire(Level.LOW, Level) == 1 and type(to_wire(Level.LOW, Level)) is int
    with pytest.raises(BadRequest, match="expected Color"):
        from_wire("green", Color)
    with pytest.raises(BadRequest):
        validate("green", schema_of(Color))
    assert from_wire("b", Literal["a", "b"]) == "b"
    with pytest.raises(BadRequest):
        to_wire("c", Literal["a", "b"])


def test_containers() -> None:
    assert from_wire([1, 2], tuple[int, ...]) == (1, 2)
    assert from_wire([1, "x"], tuple[int, str]) == (1, "x")
    with pytest.raises(BadRequest, match="expected 2 items, got 3"):
        from_wire([1, "x", 2], tuple[int, str])
    with pytest.raises(BadRequest, match="expected 2 items, got 3"):
        validate([1, "x", 2], schema_of(tuple[int, str]))
    assert from_wire(["b", "a"], set[str]) == {"a", "b"}
    with pytest.raises(BadRequest, match="unique"):
        from_wire(["a", "a"], set[str])
    with pytest.raises(BadRequest, match="unique"):
        validate(["a", "a"], schema_of(set[str]))
    validate([1, True], schema_of(set[Any]))  # True and 1 are different items
    assert to_wire({"b", "c", "a"}, set[str]) == ["a", "b", "c"]  # sorted: stable bytes
    assert to_wire((1, 2), list[int]) == [1, 2]
    with pytest.raises(BadRequest, match="keys must be str"):
        from_wire({1: 2}, dict[str, int])
    with pytest.raises(BadRequest, match=r"value\['a b'\]: expected int, got str"):
        from_wire({"a b": "x"}, dict[str, int])
    with pytest.raises(BadRequest, match="expected list"):
        from_wire("abc", list[str])  # text is not a list of characters
    assert from_wire(bytearray(b"ab"), bytes) == b"ab"


def test_to_wire_checks_the_value() -> None:
    with pytest.raises(BadRequest, match=r"^response: expected Item, got dict$"):
        to_wire({"name": "x"}, Item, path="response")
    with pytest.raises(BadRequest, match=r"response\.qty: expected int, got str"):
        to_wire(Item("x", "2"), Item, path="response")  # type: ignore[arg-type]
    with pytest.raises(BadRequest, match="missing required field 'title'"):
        to_wire({}, Movie)
    assert to_wire({"a": Item("x")}, Any) == {"a": {"name": "x", "qty": 1}}


def test_post_init_errors_are_bad_requests() -> None:
    assert from_wire({"n": 1}, Positive) == Positive(1)
    with pytest.raises(BadRequest, match="n must be positive"):
        from_wire({"n": 0}, Positive)


def test_deep_nesting_is_refused_not_crashing() -> None:
    deep: Any = {"value": 0, "children": []}
    for i in range(500):
        deep = {"value": i, "children": [deep]}
    with pytest.raises(BadRequest, match="nested"):
        from_wire(deep, Tree)
    with pytest.raises(BadRequest, match="nested"):
        validate(deep, schema_of(Tree))


# -- validate on schemas alone -----------------------------------------------------------------


def test_validate_accepts_what_to_wire_makes() -> None:
    order = Order([Item("a", 2)], Color.BLUE, None, {"x"})
    validate(to_wire(order, Order), schema_of(Order))
    validate(to_wire({"title": "T", "year": 1999}, Movie), schema_of(Movie))
    validate(b"\x00", schema_of(bytes))
    with pytest.raises(BadRequest, match="expected bytes, got str"):
        validate("AA==", schema_of(bytes))


def test_validate_keywords_not_emitted_by_schema_of() -> None:
    one_of = {"oneOf": [{"type": "integer"}, {"type": "number"}]}
    validate(1.5, one_of)
    with pytest.raises(BadRequest, match="not exactly one"):
        validate(1, one_of)
    validate(3, {"allOf": [{"type": "integer"}, {"enum": [3, 4]}]})
    with pytest.raises(BadRequest):
        validate(5, {"allOf": [{"type": "integer"}, {"enum": [3, 4]}]})
    with pytest.raises(BadRequest):
        validate("x", {"const": "y"})
    validate(None, {"type": ["integer", "null"]})
    validate({"anything": 1}, True)
    with pytest.raises(BadRequest):
        validate(1, False)


def test_validate_rejects_malformed_or_hostile_schemas() -> None:
    with pytest.raises(SchemaError, match="points nowhere"):
        validate(1, {"$ref": "#/$defs/Missing"})
    with pytest.raises(SchemaError, match="only local"):
        validate(1, {"$ref": "https://example.com/s.json"})
    with pytest.raises(SchemaError):
        validate(1, {"$ref": "#/$defs/A", "$defs": {"A": {"$ref": "#/$defs/A"}}})
    with pytest.raises(SchemaError):
        validate(1, {"type": "integer", "enum": 5})  # enum must be a list
    with pytest.raises(SchemaError):
        validate(1, {"type": "whatever"})
    # Each level multiplies the work of a naive validator by 10: the budget keeps it bounded.
    defs = {f"D{i}": {"anyOf": [{"$ref": f"#/$defs/D{i + 1}"}] * 10} for i in range(8)}
    defs["D8"] = {"type": "string"}
    t0 = time.monotonic()
    with pytest.raises(BadRequest, match="too complex"):
        validate(1, {"$ref": "#/$defs/D0", "$defs": defs})
    assert time.monotonic() - t0 < 30


# -- JSON ---------------------------------------------------------------------------------------


@dataclass
class Blob:
    data: bytes
    maybe: bytes | None = None
    either: str | bytes = ""
    count: int = 0


def test_json_carries_bytes_as_base64() -> None:
    s = schema_of(Blob)
    wire = to_wire(Blob(b"\x00\xff", b"hi", b"\x01", 2), Blob)
    j = to_json(wire, s)
    assert j == {"data": "AP8=", "maybe": "aGk=", "either": "AQ==", "count": 2}
    assert from_json(json.loads(json.dumps(j)), s) == {"data": b"\x00\xff", "maybe": b"hi",
                                                       "either": "AQ==", "count": 2}


def test_from_json_is_lenient_on_base64_and_integral_floats() -> None:
    s = schema_of(Blob)
    got = from_json({"data": "AP8", "maybe": "_-8", "count": 2.0}, s)
    assert got == {"data": b"\x00\xff", "maybe": b"\xff\xef", "count": 2}
    assert type(got["count"]) is int
    with pytest.raises(BadRequest, match=r"value\.data: expected base64"):
        from_json({"data": "not base64!"}, s)
    with pytest.raises(BadRequest, match=r"value\.count: expected int, got float"):
        from_json({"data": "", "count": 2.5}, s)
    with pytest.raises(BadRequest, match="missing required field 'data'"):
        from_json({}, s)


def test_to_json_handles_bytes_under_any_and_refuses_non_text_keys() -> None:
    assert to_json({"x": [b"a"]}, {}) == {"x": ["YQ=="]}
    with pytest.raises(BadRequest, match="str keys"):
        to_json({1: "a"}, {})
