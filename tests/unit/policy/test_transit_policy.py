"""Transit policy keys: `transit_floor` and `transit`, their checks, and what they resolve to."""

from __future__ import annotations

import pytest

from policy.access import Target
from policy.load import parse_policy
from policy.transit import (
    entity_clearance,
    sender_classification,
    transit_floor,
    transit_minimum,
)
from policy.yaml_source import ConfigFileError

POLICY = parse_policy("""\
version: 1
levels: [public, internal, confidential, secret]
entities:
  shop:
    classification: public
    clearance: confidential
    transit_floor: internal
    endpoints:
      1:
        operations:
          2: {transit: secret}
          3: {classification: confidential}
      4:
        transit: confidential
  vault:
    classification: internal
    clearance: secret
new_entities:
  - {match: "tmp-*", classification: public, clearance: internal}
""")


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigFileError) as info:
        parse_policy(text, "p.yaml")
    return [str(p) for p in info.value.problems]


def test_transit_floor_is_the_clearance_unless_the_administrator_lowers_it() -> None:
    assert transit_floor(POLICY, b"vault").value == 3
    assert transit_floor(POLICY, b"vault").rule == "entities.vault.clearance"
    assert transit_floor(POLICY, b"shop").value == 1
    assert transit_floor(POLICY, b"shop").rule == "entities.shop.transit_floor"


def test_unlisted_entities_take_their_new_entities_clearance_else_the_lowest() -> None:
    assert transit_floor(POLICY, b"tmp-1").value == 1
    assert transit_floor(POLICY, b"tmp-1").rule == "new_entities[0].clearance"
    assert entity_clearance(POLICY, b"nobody").value == 0


def test_a_caller_may_ask_for_more_protection_never_less() -> None:
    assert sender_classification(POLICY, b"shop").value == 1
    higher = sender_classification(POLICY, b"shop", requested=3)
    assert higher.value == 3
    assert higher.rule == "requested by the caller for this call"
    assert sender_classification(POLICY, b"shop", requested=0).value == 1


def test_receiver_minimum_is_the_access_classification_by_default() -> None:
    # vault: classification internal, floor = clearance secret -> the floor dominates.
    assert transit_minimum(POLICY, Target(b"vault", 9, 9)).value == 3
    # shop op 1/3: access classification confidential beats the floor internal.
    got = transit_minimum(POLICY, Target(b"shop", 1, 3))
    assert (got.value, got.rule) == (2, "entities.shop.endpoints.1.operations.3.classification")


def test_transit_override_raises_the_minimum_per_operation_and_endpoint() -> None:
    got = transit_minimum(POLICY, Target(b"shop", 1, 2))
    assert (got.value, got.rule) == (3, "entities.shop.endpoints.1.operations.2.transit")
    got = transit_minimum(POLICY, Target(b"shop", 4, 0))
    assert (got.value, got.rule) == (2, "entities.shop.endpoints.4.transit")
    # No override on 1/9: the floor (internal) beats the access classification (public).
    got = transit_minimum(POLICY, Target(b"shop", 1, 9))
    assert (got.value, got.rule) == (1, "entities.shop.transit_floor")


def test_an_entity_wide_transit_override_applies_to_every_operation() -> None:
    text = """\
version: 1
levels: [public, internal, secret]
entities:
  quiet: {classification: public, transit: internal, transit_floor: public}
"""
    policy = parse_policy(text)
    got = transit_minimum(policy, Target(b"quiet", 5, 6))
    assert (got.value, got.rule) == (1, "entities.quiet.transit")


def test_floor_above_clearance_is_refused_at_its_line() -> None:
    got = problems("""\
version: 1
levels: [low, mid, high]
entities:
  a:
    clearance: mid
    transit_floor: high
  b:
    transit_floor: mid
  c1:
    transit_floor: mid
new_entities:
  - {match: "c*", classification: low, clearance: low}
""")
    assert len(got) == 3
    assert got[0].startswith("p.yaml:6: entities.a.transit_floor: transit_floor 'high' is "
                             "above the entity's clearance 'mid' (entities.a.clearance)")
    assert got[1].startswith("p.yaml:8: entities.b.transit_floor: transit_floor 'mid' is "
                             "above the entity's clearance 'low' (no clearance")
    assert got[2].startswith("p.yaml:10: entities.c1.transit_floor: transit_floor 'mid' is "
                             "above the entity's clearance 'low' (new_entities[0].clearance)")


def test_transit_below_the_access_classification_is_refused_at_its_line() -> None:
    got = problems("""\
version: 1
levels: [low, mid, high]
entities:
  a:
    classification: mid
    endpoints:
      1:
        transit: low
        operations:
          2: {classification: high, transit: mid}
          3: {transit: mid}
  b:
    transit: mid
""")
    assert len(got) == 3
    assert got[0].startswith("p.yaml:8: entities.a.endpoints.1.transit: transit 'low' is below "
                             "the access classification 'mid' (entities.a.classification)")
    assert got[1].startswith(
        "p.yaml:10: entities.a.endpoints.1.operations.2.transit: transit 'mid' is below the "
        "access classification 'high' (entities.a.endpoints.1.operations.2.classification)")
    assert got[2].startswith("p.yaml:13: entities.b.transit: transit 'mid' is below the access "
                             "classification 'high' (no classification")


def test_unknown_levels_in_the_new_keys_are_reported_not_crashed_on() -> None:
    got = problems("""\
version: 1
levels: [low, high]
entities:
  a:
    transit_floor: nope
    endpoints:
      1: {transit: nada, operations: {2: {transit: zip}}}
""")
    assert [g.split(": ", 2)[1] for g in got] == [
        "entities.a.transit_floor", "entities.a.endpoints.1.transit",
        "entities.a.endpoints.1.operations.2.transit"]
    assert all("is not a level" in g for g in got)
