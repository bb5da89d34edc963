"""The YAML loader round-trips data and points each problem at the right line."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel, ConfigDict

from policy.yaml_source import ConfigFileError, parse_model

keys = st.text("abcdefghij_-", min_size=1, max_size=8).filter(
    lambda k: k not in {"y", "n"} and not k.startswith("-"))
scalars = st.one_of(st.integers(-1000, 1000), st.text("xyz ", max_size=5), st.booleans())
values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(keys, inner, max_size=3)), max_leaves=12)


class Free(BaseModel):
    model_config = ConfigDict(extra="forbid")
    doc: dict[str, Any]


class Counts(BaseModel):
    model_config = ConfigDict(extra="forbid")
    counts: dict[str, int]


@given(st.dictionaries(keys, values, max_size=5))
def test_round_trip(doc: dict[str, Any]) -> None:
    text = yaml.safe_dump({"doc": doc}, default_flow_style=False)
    assert parse_model(text, "f", Free).doc == doc


@given(st.dictionaries(keys, st.integers(0, 99), min_size=1, max_size=8), st.data())
def test_each_bad_value_is_reported_at_its_own_line(counts: dict[str, int],
                                                    data: st.DataObject) -> None:
    bad = data.draw(st.lists(st.sampled_from(sorted(counts)), unique=True, min_size=1))
    lines = ["counts:"] + [f"  {k}: {'oops' if k in bad else v}" for k, v in counts.items()]
    with pytest.raises(ConfigFileError) as info:
        parse_model("\n".join(lines) + "\n", "f.yaml", Counts)
    got = {(p.line, p.path) for p in info.value.problems}
    want = {(lines.index(f"  {k}: oops") + 1, f"counts.{k}") for k in bad}
    assert got == want
