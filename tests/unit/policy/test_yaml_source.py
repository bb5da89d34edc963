"""The generic YAML loader reports every problem as file:line: key.path: message."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import BaseModel, ConfigDict

from carbon.error_codes import ErrorCode
from policy import yaml_source
from policy.yaml_source import ConfigFileError, load_model, parse_model


class Inner(BaseModel):
    model_config = ConfigDict(extra="forbid")
    port: int
    name: str = "x"


class Outer(BaseModel):
    model_config = ConfigDict(extra="forbid")
    version: int
    items: list[Inner] = []
    by_name: dict[str, Inner] = {}


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigFileError) as info:
        parse_model(text, "f.yaml", Outer)
    return [str(p) for p in info.value.problems]


def test_valid_file_loads(tmp_path: Path) -> None:
    path = tmp_path / "ok.yaml"
    path.write_text("version: 1\nitems:\n  - port: 80\n")
    assert load_model(path, Outer).items[0].port == 80


def test_every_error_is_reported_with_its_line_and_path() -> None:
    text = ("version: one\n"
            "items:\n"
            "  - port: 80\n"
            "  - port: eighty\n"
            "    colour: red\n"
            "by_name:\n"
            "  a:\n"
            "    name: q\n")
    got = problems(text)
    assert got[0].startswith("f.yaml:1: version: input should be a valid integer")
    assert got[1].startswith("f.yaml:4: items.1.port: input should be a valid integer")
    assert got[2].startswith("f.yaml:5: items.1.colour: unknown key")
    assert got[3] == "f.yaml:7: by_name.a.port: required key is missing"
    assert len(got) == 4


def test_duplicate_keys_are_errors_alongside_validation_errors() -> None:
    got = problems("version: 1\nversion: 2\nitems: 3\n")
    assert "f.yaml:2: version: duplicate key (first at line 1)" in got
    assert any(p.startswith("f.yaml:3: items:") for p in got)


def test_only_duplicates_get_the_duplicate_code() -> None:
    with pytest.raises(ConfigFileError) as info:
        parse_model("version: 1\nby_name:\n  a: {port: 1}\n  a: {port: 2}\n", "f", Outer)
    assert info.value.code is ErrorCode.CONFIG_DUPLICATE_KEY
    assert str(info.value.problems[0]) == "f:4: by_name.a: duplicate key (first at line 3)"


def test_syntax_error_names_the_line() -> None:
    with pytest.raises(ConfigFileError) as info:
        parse_model("version: 1\nitems: [\n  {port: 1\n", "f.yaml", Outer)
    assert info.value.code is ErrorCode.CONFIG_YAML_SYNTAX
    assert str(info.value.problems[0]).startswith("f.yaml:")
    assert "YAML syntax" in str(info.value)


def test_non_mapping_document_is_explained() -> None:
    assert problems("- 1\n- 2\n") == ["f.yaml:1: expected a mapping of keys to values"]


def test_empty_document_is_explained() -> None:
    assert problems("") == ["f.yaml:1: expected a mapping of keys to values"]


def test_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigFileError) as info:
        load_model(tmp_path / "missing.yaml", Outer)
    assert info.value.code is ErrorCode.CONFIG_UNREADABLE
    assert "missing.yaml:1: cannot read file" in str(info.value)


def test_oversized_file_is_refused_before_parsing(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(yaml_source, "MAX_FILE_BYTES", 10)
    path = tmp_path / "big.yaml"
    path.write_text("version: 1\n" * 5)
    with pytest.raises(ConfigFileError) as info:
        load_model(path, Outer)
    assert info.value.code is ErrorCode.CONFIG_TOO_LARGE


def test_alias_bomb_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(yaml_source, "MAX_NODES", 1000)
    bomb = "a: &a [1,1,1,1,1,1,1,1,1,1]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a]\n" \
           "c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b,*b]\n"
    with pytest.raises(ConfigFileError) as info:
        parse_model(bomb, "f", Outer)
    assert "more than 1000 values" in str(info.value)


def test_alias_bomb_as_a_mapping_key_is_refused_before_it_is_built() -> None:
    """A key of nested aliases is 10**9 items as text; it must fail as a non-scalar key
    (printing it first would need some 14 GB)."""
    levels = ["&a0 [x, x, x, x, x, x, x, x, x, x]"]
    levels += [f"&a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 9)]
    for text in ("? [" + ", ".join(levels) + "]\n: 1\n", "a: 1\n<<: {[x]: 1}\n"):
        with pytest.raises(ConfigFileError) as info:
            parse_model(text, "f", Outer)
        assert info.value.code is ErrorCode.CONFIG_YAML_SYNTAX
        assert "mapping keys must be scalars" in str(info.value)


def test_semantic_checks_are_located() -> None:
    def check(model: Outer) -> list[tuple[tuple[str | int, ...], str]]:
        return [(("items", 0, "port"), "port 80 is reserved")] if model.items else []
    with pytest.raises(ConfigFileError) as info:
        parse_model("version: 1\nitems:\n  - port: 80\n", "f", Outer, check)
    assert str(info.value.problems[0]) == "f:3: items.0.port: port 80 is reserved"


def test_merge_keys_work_and_explicit_keys_override() -> None:
    text = ("version: 1\n"
            "base: &base {port: 1, name: base}\n"
            "by_name:\n"
            "  a:\n"
            "    <<: *base\n"
            "    name: a\n")
    with pytest.raises(ConfigFileError) as info:  # `base` is not a field of Outer
        parse_model(text, "f", Outer)
    assert [str(p) for p in info.value.problems] == [
        "f:2: base: unknown key (check the spelling; see the operator guide for allowed keys)"]
    model = parse_model(text.replace("base: &base", "items: [&base").replace(
        "name: base}", "name: base}]"), "f", Outer)
    assert model.by_name["a"] == Inner(port=1, name="a")
