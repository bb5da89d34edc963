"""Plain (YAML/JSON) payloads to typed values and back: round trips and path-precise refusals."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from carbon.error_codes import ErrorCode
from carbon.typed_input import MAX_ITEMS, PlainInputError, from_plain, to_plain
from carbon.types import (
    ANY,
    BOOL,
    BYTES,
    INT,
    NULL,
    STR,
    CarbonType,
    dumps_typed,
    list_of,
    loads_typed,
    map_of,
    optional,
    record,
)
from tests.property.carbon import type_strategies

plain_scalars = st.one_of(st.integers(-(2**63), 2**64 - 1), st.text(max_size=12),
                          st.booleans(), st.none())
plain_any = st.recursive(plain_scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=5), inner, max_size=3)),
    max_leaves=8)
"""`any` values JSON can write: no bytes, text keys (the module docstring says why)."""

_SCALARS: dict[str, st.SearchStrategy[Any]] = {
    "int": st.integers(-(2**64), 2**64 - 1), "bytes": st.binary(max_size=12),
    "str": st.text(max_size=12), "bool": st.booleans(), "null": st.none(), "any": plain_any}
typed_values = type_strategies.typed_values(_SCALARS)


@given(typed_values)
def test_a_printed_value_reads_back_as_itself_through_json_text(pair: tuple[Any, Any]) -> None:
    """What `call` prints for a reply is valid JSON that, typed back in, is the same value;
    and the value is then exactly what the wire carries back."""
    kind, value = pair
    text = json.dumps(to_plain(kind, value))
    read = from_plain(kind, json.loads(text))
    assert read == value
    assert loads_typed(kind, dumps_typed(kind, read)) == value


@given(typed_values, st.one_of(plain_any, st.floats(), st.dates()))
def test_any_plain_value_is_read_as_the_type_or_refused_with_a_path(
        pair: tuple[Any, Any], other: Any) -> None:
    """Arbitrary parsed YAML either becomes an encodable value of the type or is refused
    with PAYLOAD_TYPE_MISMATCH and a message that starts with the path `$`."""
    kind, _ = pair
    try:
        value = from_plain(kind, other)
    except PlainInputError as exc:
        assert exc.code is ErrorCode.PAYLOAD_TYPE_MISMATCH
        assert exc.message.startswith("$")
    else:
        dumps_typed(kind, value)


@given(typed_values, st.integers(0, 3))
def test_a_wrong_item_is_reported_at_its_own_path(pair: tuple[Any, Any], at: int) -> None:
    """A value no type admits (a float), put among good items, is refused at its index
    inside the field, not somewhere vaguer."""
    kind, value = pair
    good = to_plain(kind, value)
    items = [good] * at + [1.5] + [good]
    with pytest.raises(PlainInputError) as caught:
        from_plain(record(items=list_of(kind)), {"items": items})
    assert caught.value.message.startswith(f"$.items[{at}]")


EXAMPLES: list[tuple[CarbonType, Any, str]] = [
    (record(n=INT), {"n": "5"}, "$.n: expected int, got str"),
    (record(n=INT), {}, "$: missing field 'n' of type int"),
    (record(n=INT), {"n": 1, "m": 2}, "$: unexpected field 'm' (fields: n)"),
    (STR, True, "$: expected str, got bool (quote text that YAML reads as another type)"),
    (BYTES, "abc", "$: expected bytes, written as text starting with hex:, base64: or "
                   "utf8:; got str"),
    (BYTES, "hex:zz", "$: not valid hex bytes"),
    (map_of(INT, STR), {"x": "a"}, "$.<key 'x'>: expected an int key, got text"),
    (map_of(INT, STR), {"1": "a", 1: "b"}, "$: keys 1 and another both mean 1"),
    (list_of(record(q=INT)), [{"q": 1}, {"q": None}], "$[1].q: expected int, got null"),
    (ANY, {"a": [1, 2.5]}, "$['a'][1]: expected a CARBON value (int, str, bool, null, list, "
                           "map), got float"),
    (INT, 2**64, "$: int outside"),
    (NULL, 0, "$: expected null, got int"),
]


@pytest.mark.parametrize(("kind", "plain", "says"), EXAMPLES)
def test_refusals_say_where_and_what(kind: CarbonType, plain: Any, says: str) -> None:
    """Each refusal names the path and what was expected there."""
    with pytest.raises(PlainInputError) as caught:
        from_plain(kind, plain)
    assert caught.value.message.startswith(says)


def test_conventions_a_caller_writes() -> None:
    """Bytes in three spellings, text keys for int/bool maps, optional fields left out."""
    assert from_plain(BYTES, "utf8:hi") == b"hi"
    assert from_plain(BYTES, "base64:aGk=") == b"hi"
    assert from_plain(BYTES, "hex:6869") == b"hi"
    assert from_plain(map_of(BOOL, INT), {"true": 1, False: 0}) == {True: 1, False: 0}
    assert from_plain(record(a=INT, b=optional(STR)), {"a": 1}) == {"a": 1, "b": None}
    assert to_plain(map_of(BYTES, BOOL), {b"\x07": True}) == {"hex:07": True}


def test_an_exponential_document_is_refused_not_walked() -> None:
    """YAML aliases can make a short document name billions of values: bounded work."""
    doc: Any = [1]
    for _ in range(40):
        doc = [doc, doc]
    with pytest.raises(PlainInputError) as caught:
        from_plain(ANY, doc)
    assert f"more than {MAX_ITEMS} values" in caught.value.message
    with pytest.raises(PlainInputError):
        from_plain(list_of(ANY), doc)
