"""Hostile YAML (issue 17 item 10): deep nesting and booleans where numbers belong are
refused with a coded, located problem, never a traceback and never silently coerced."""

from __future__ import annotations

import types
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, Literal

import pydantic
import pytest
from pydantic import TypeAdapter

from carbon.error_codes import ErrorCode
from mercury_rt.config import node as node_schema
from policy import schema as policy_schema
from policy import yaml_source
from policy.load import parse_policy
from policy.yaml_source import ConfigFileError
from tests.nodecfg_support import run

POLICY = "version: 1\nlevels: [public, secret]\n"


def _block(depth: int) -> str:
    """`levels:` then `depth` nested mappings, one level of indent each."""
    return POLICY.replace("levels: [public, secret]\n", "") + "levels:\n" + "".join(
        "  " * (i + 1) + f"k{i}:\n" for i in range(depth)) + "  " * (depth + 1) + "x\n"


def _flow(depth: int) -> str:
    return "version: 1\nlevels: " + "[" * depth + "]" * depth + "\n"


def _refusal(text: str) -> ConfigFileError:
    with pytest.raises(ConfigFileError) as info:
        parse_policy(text, "p.yaml")
    return info.value


@pytest.mark.parametrize("text", [_block(900), _flow(900), _block(yaml_source.MAX_DEPTH + 1),
                                  _flow(yaml_source.MAX_DEPTH + 1), _flow(5000)],
                         ids=["block-900", "flow-900", "block-limit+1", "flow-limit+1",
                              "flow-5000"])
def test_nesting_deeper_than_the_limit_is_a_located_coded_problem(text: str) -> None:
    error = _refusal(text)
    assert error.code is ErrorCode.CONFIG_TOO_DEEP
    (problem,) = error.problems
    assert problem.file == "p.yaml" and problem.line >= 2
    assert f"limit is {yaml_source.MAX_DEPTH}" in problem.message


def test_the_deepest_problem_line_is_where_the_limit_was_crossed() -> None:
    problem = _refusal(_block(yaml_source.MAX_DEPTH + 10)).problems[0]
    assert problem.line == 2 + yaml_source.MAX_DEPTH, "the first level too deep"


def test_nesting_at_the_limit_is_only_judged_by_the_schema() -> None:
    error = _refusal(_block(yaml_source.MAX_DEPTH - 1))
    assert error.code is ErrorCode.CONFIG_INVALID, "deep but allowed: the schema decides"


def test_the_size_bound_still_holds(tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    path.write_text("#" * (yaml_source.MAX_FILE_BYTES + 1))
    with pytest.raises(ConfigFileError) as info:
        yaml_source.load_model(path, policy_schema.PolicyFile)
    assert info.value.code is ErrorCode.CONFIG_TOO_LARGE


@pytest.mark.parametrize(("snippet", "where"), [
    ("entities:\n  alice: {hashcash_bits: true}\n", "entities.alice.hashcash_bits"),
    ("entities:\n  alice:\n    endpoints:\n      true: {}\n", "entities.alice.endpoints"),
    ("hashcash: {max_age_seconds: true}\n", "hashcash.max_age_seconds"),
    ("delegation: {max_chain: false}\n", "delegation.max_chain"),
    ("transit: {inter_cluster: {public: [true]}}\n", "transit.inter_cluster.public.0"),
])
def test_a_boolean_is_not_a_number_in_the_policy(snippet: str, where: str) -> None:
    error = _refusal(POLICY + snippet)
    assert error.code is ErrorCode.CONFIG_INVALID
    assert any(p.path.startswith(where) for p in error.problems), error


def test_a_boolean_is_not_the_policy_version() -> None:
    assert _refusal("version: true\nlevels: [public]\n").problems[0].path == "version"


def _leaves(annotation: Any) -> Iterator[Any]:
    """Every scalar type inside an annotation (list/dict/union/Annotated unwrapped)."""
    origin = typing.get_origin(annotation)
    if origin is Annotated:
        base = typing.get_args(annotation)[0]
        if base in (int, float) or typing.get_origin(base) is Literal:
            yield annotation
        else:
            yield from _leaves(base)
    elif origin in (list, dict, typing.Union, types.UnionType):
        for arg in typing.get_args(annotation):
            yield from _leaves(arg)
    elif annotation in (int, float) or origin is Literal:
        yield annotation


def _number_fields() -> Iterator[tuple[str, Any]]:
    for module in (policy_schema, node_schema):
        for model in vars(module).values():
            if not (isinstance(model, type) and issubclass(model, pydantic.BaseModel)):
                continue
            for name, field in model.model_fields.items():
                whole = Annotated[field.annotation, *field.metadata] if field.metadata \
                    else field.annotation
                for leaf in _leaves(whole):
                    yield f"{module.__name__}.{model.__name__}.{name}", leaf


NUMBER_FIELDS = sorted(set(_number_fields()), key=str)


def test_the_schemas_have_number_fields_to_check() -> None:
    names = {name for name, _ in NUMBER_FIELDS}
    assert "policy.schema.OperationSpec.hashcash_bits" in names
    assert "mercury_rt.config.node.GateSettings.spent_store_limit" in names


@pytest.mark.parametrize(("name", "leaf"), NUMBER_FIELDS, ids=[n for n, _ in NUMBER_FIELDS])
@pytest.mark.parametrize("boolean", [True, False])
def test_every_number_field_refuses_a_boolean(name: str, leaf: Any, boolean: bool) -> None:
    with pytest.raises(pydantic.ValidationError):
        TypeAdapter(leaf).validate_python(boolean)


@pytest.mark.parametrize("kind", ["block", "flow"])
def test_node_check_refuses_a_900_deep_config_without_a_traceback(tmp_path: Path,
                                                                  kind: str) -> None:
    deep = _block(900) if kind == "block" else _flow(900)
    config = tmp_path / "node.yaml"
    config.write_text(deep.replace("version: 1\n", "node_id: node-a\n"))
    result = run("node", "check", str(config))
    assert result.exit_code == 2 and result.exception is not None  # SystemExit(2) only
    assert isinstance(result.exception, SystemExit)
    assert f"limit is {yaml_source.MAX_DEPTH}" in result.output
    assert "error 805 CONFIG_TOO_DEEP" in result.output and "Traceback" not in result.output


def test_policy_check_refuses_a_900_deep_policy_without_a_traceback(tmp_path: Path) -> None:
    policy = tmp_path / "p.yaml"
    policy.write_text(_block(900))
    result = run("policy", "check", str(policy))
    assert result.exit_code == 2 and isinstance(result.exception, SystemExit)
    assert f"{policy}:{2 + yaml_source.MAX_DEPTH}: nested more than" in result.output


def test_aliases_count_where_they_are_used() -> None:
    """Each anchor is 40 deep, within the limit; used inside one another they are not."""
    text = "version: 1\nlevels: [public]\nx0: &a0 " + "[" * 40 + "]" * 40 + "\n"
    for i in range(1, 4):
        text += f"x{i}: &a{i} " + "[" * 39 + f"*a{i - 1}" + "]" * 39 + "\n"
    error = _refusal(text)
    assert error.code is ErrorCode.CONFIG_TOO_DEEP
