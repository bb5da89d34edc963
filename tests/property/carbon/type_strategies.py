"""Hypothesis strategies for CARBON types and values of them, shared by the codec and the
typed-input properties (each gives its own scalar values: JSON cannot write every value
the wire can)."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from carbon.types import (
    ANY,
    BOOL,
    BYTES,
    INT,
    NULL,
    STR,
    CarbonType,
    ListOf,
    MapOf,
    OptionalOf,
    Prim,
    Record,
)

Scalars = dict[str, st.SearchStrategy[Any]]
"""Values per primitive type name (int, bytes, str, bool, null, any)."""

field_names = st.from_regex(r"[a-z_][a-z0-9_]{0,7}", fullmatch=True)


def carbon_types() -> st.SearchStrategy[CarbonType]:
    """Any type: primitives, lists, maps (primitive keys), optionals and records."""
    prims = st.sampled_from([INT, BYTES, STR, BOOL, NULL, ANY])
    keys = st.sampled_from([INT, BYTES, STR, BOOL])

    def extend(inner: st.SearchStrategy[CarbonType]) -> st.SearchStrategy[CarbonType]:
        return st.one_of(
            inner.map(ListOf),
            st.tuples(keys, inner).map(lambda kv: MapOf(*kv)),
            inner.filter(lambda t: t not in (NULL, ANY) and not isinstance(t, OptionalOf))
            .map(OptionalOf),
            st.dictionaries(field_names, inner, max_size=4)
            .map(lambda d: Record(tuple(d.items()))))
    return st.recursive(prims, extend, max_leaves=6)


def value_of(kind: CarbonType, scalars: Scalars) -> st.SearchStrategy[Any]:
    """A value of `kind`, its primitives drawn from `scalars`."""
    if isinstance(kind, Prim):
        return scalars[kind.name]
    if isinstance(kind, ListOf):
        return st.lists(value_of(kind.item, scalars), max_size=3)
    if isinstance(kind, MapOf):
        assert isinstance(kind.key, Prim)
        return st.dictionaries(scalars[kind.key.name], value_of(kind.value, scalars),
                               max_size=3)
    if isinstance(kind, OptionalOf):
        return st.one_of(st.none(), value_of(kind.inner, scalars))
    return st.fixed_dictionaries({name: value_of(k, scalars) for name, k in kind.fields})


def typed_values(scalars: Scalars) -> st.SearchStrategy[tuple[CarbonType, Any]]:
    """(type, a value of it) pairs."""
    return carbon_types().flatmap(lambda t: st.tuples(st.just(t), value_of(t, scalars)))
