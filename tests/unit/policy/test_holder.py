"""Policy files: semantic validation, compilation, and reload that never loads a bad file."""

from __future__ import annotations

from pathlib import Path

import pytest

from policy.holder import KeptOld, PolicyHolder, Reloaded
from policy.load import load_policy, parse_policy
from policy.yaml_source import ConfigFileError

EXAMPLE = Path(__file__).resolve().parents[3] / "conf" / "policy.example.yaml"

GOOD = """\
version: 1
levels: [public, secret]
entities:
  vault:
    classification: secret
"""


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigFileError) as info:
        parse_policy(text, "p.yaml")
    return [str(p) for p in info.value.problems]


def test_example_policy_is_valid() -> None:
    policy = load_policy(EXAMPLE)
    assert policy.levels == ("public", "internal", "confidential", "secret")
    assert b"billing" in policy.entities


def test_unknown_levels_and_references_are_all_reported() -> None:
    text = """\
version: 1
levels: [low, high, low]
entities:
  x:
    classification: ultra
    acl:
      allow: [ok, "nosuch:bob", "y#not-a-symbol"]
    endpoints:
      1:
        operations:
          2: {classification: mega}
new_entities:
  - {match: "*", classification: low, clearance: top}
trusted_clusters:
  a: {master_hash: "abcd", max_clearance: high, entities: {z: huge}}
  b: {master_hash: "abcd", max_clearance: high}
acl_bypass: ["abcd:root", "q:r"]
transit:
  inter_cluster: {nope: [1]}
"""
    got = problems(text)
    expected = [
        "p.yaml:2: levels.2: level 'low' is listed twice",
        "p.yaml:5: entities.x.classification: 'ultra' is not a level",
        "p.yaml:7: entities.x.acl.allow.1: 'nosuch:bob': 'nosuch' is neither",
        "p.yaml:7: entities.x.acl.allow.2: 'y#not-a-symbol': persona must be a symbol",
        "p.yaml:11: entities.x.endpoints.1.operations.2.classification: 'mega' is not a level",
        "p.yaml:13: new_entities.0.clearance: 'top' is not a level",
        "p.yaml:15: trusted_clusters.a.entities.z: 'huge' is not a level",
        "p.yaml:16: trusted_clusters.b.master_hash: same master_hash as trusted cluster 'a'",
        "p.yaml:17: acl_bypass.1: 'q:r': 'q' is neither",
        "p.yaml:19: transit.inter_cluster.nope: 'nope' is not a level",
    ]
    assert len(got) == len(expected)
    for line, want in zip(got, expected, strict=True):
        assert line.startswith(want), (line, want)


def test_odd_length_hex_hashes_are_reported_not_crashed_on() -> None:
    """Hex that is not whole bytes cannot become a cluster hash: a located problem."""
    got = problems("version: 1\nlevels: [a]\nacl_bypass: ['abcde:bob']\n")
    assert got[0].startswith("p.yaml:3: acl_bypass.0: 'abcde:bob': 'abcde' is neither")
    got = problems("version: 1\nlevels: [a]\ntrusted_clusters:\n"
                   "  p: {master_hash: abcde, max_clearance: a}\n")
    assert got[0].startswith("p.yaml:4: trusted_clusters.p.master_hash: string should match")


def test_persona_references_must_be_valid_symbols() -> None:
    """A persona no Symbol can have would never match: reported, not silently dead."""
    for ref in ("bob#/a//b", "bob#", "bob#/" + "x" * 70):
        got = problems(f"version: 1\nlevels: [a]\nacl_bypass: ['{ref}']\n")
        assert got[0].startswith(f"p.yaml:3: acl_bypass.0: '{ref}': persona must be a symbol")
    assert parse_policy("version: 1\nlevels: [a]\nacl_bypass: ['bob#/argon/p']\n")


def test_shape_errors_name_the_key() -> None:
    got = problems("version: 1\nlevels: [a]\nentities:\n  x:\n    hashcash_bits: 99\n"
                   "    acl: {allow: [a], deny: [b]}\n    endpoints: {many: {}}\n")
    assert got[0].startswith("p.yaml:5: entities.x.hashcash_bits: input should be less than")
    assert got[1].startswith("p.yaml:6: entities.x.acl: value error, an acl has exactly one")
    assert got[2].startswith("p.yaml:7: entities.x.endpoints.many: input should be a valid int")


def test_misspelt_key_is_an_error_not_a_missing_restriction() -> None:
    got = problems("version: 1\nlevels: [a]\nentities:\n  x: {classificaton: a}\n")
    assert got == ["p.yaml:4: entities.x.classificaton: unknown key (check the spelling; "
                   "see the operator guide for allowed keys)"]


def test_version_is_required() -> None:
    assert problems("levels: [a]\n") == ["p.yaml:1: version: required key is missing"]


def test_reload_swaps_only_a_valid_policy(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(GOOD)
    holder = PolicyHolder.load(path)
    first = holder.current
    path.write_text(GOOD.replace("classification: secret", "classification: cosmic"))
    outcome = holder.reload()
    assert isinstance(outcome, KeptOld)
    assert "'cosmic' is not a level" in str(outcome.problems[0])
    assert holder.current is first and holder.generation == 1
    path.write_text(GOOD.replace("[public, secret]", "[public, secret, top]"))
    outcome = holder.reload()
    assert isinstance(outcome, Reloaded)
    assert holder.current.levels == ("public", "secret", "top") and holder.generation == 2


def test_invalid_policy_refuses_to_start(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text("version: 1\n")
    with pytest.raises(ConfigFileError):
        PolicyHolder.load(path)


def test_operator_guide_example_is_valid() -> None:
    guide = (EXAMPLE.parents[1] / "docs" / "operator-guide.md").read_text()
    section = guide[guide.index("## Policy"):]
    block = section[section.index("```yaml\n") + 8:]
    policy = parse_policy(block[:block.index("```")], "operator-guide.md")
    assert policy.levels[-1] == "secret" and len(policy.clusters) == 1


def test_the_spent_stamp_bound_is_a_node_setting_not_a_policy_one() -> None:
    """One setting bounds spent stamps: the node config's gate.spent_store_limit; the
    policy key that used to duplicate it is refused, naming the one to use (issue 16
    item 23)."""
    got = problems("version: 1\nlevels: [a]\nhashcash:\n  spent_store_limit: 5000\n")
    assert len(got) == 1 and "gate.spent_store_limit" in got[0]
    assert parse_policy("version: 1\nlevels: [a]\nhashcash: {max_age_seconds: 600}\n")
