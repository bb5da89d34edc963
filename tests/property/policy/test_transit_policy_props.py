"""The transit policy keys over random single-entity policies: `policy check` refuses
exactly a floor above the clearance or a `transit` below the access classification, and
every accepted policy gives minima that never fall below what access control or the
entity's floor requires."""

from __future__ import annotations

from typing import Any

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from policy.access import Target, required_classification
from policy.load import parse_policy
from policy.transit import entity_clearance, sender_classification, transit_floor, transit_minimum
from policy.yaml_source import ConfigFileError

LEVELS = ["l0", "l1", "l2", "l3"]
LEVEL = st.none() | st.sampled_from(range(len(LEVELS)))


def _set(spec: dict[str, Any], key: str, rank: int | None) -> None:
    if rank is not None:
        spec[key] = LEVELS[rank]


@st.composite
def entities(draw: st.DrawFn) -> dict[str, int | None]:
    return {key: draw(LEVEL) for key in ("classification", "clearance", "transit_floor",
                                         "transit", "ep_classification", "ep_transit",
                                         "op_classification", "op_transit")}


def document(e: dict[str, int | None]) -> str:
    op: dict[str, Any] = {}
    _set(op, "classification", e["op_classification"])
    _set(op, "transit", e["op_transit"])
    ep: dict[str, Any] = {"operations": {2: op}}
    _set(ep, "classification", e["ep_classification"])
    _set(ep, "transit", e["ep_transit"])
    ent: dict[str, Any] = {"endpoints": {1: ep}}
    for key in ("classification", "clearance", "transit_floor", "transit"):
        _set(ent, key, e[key])
    return yaml.safe_dump({"version": 1, "levels": LEVELS, "entities": {"e": ent}})


def expected_problems(e: dict[str, int | None]) -> set[str]:
    """The reference rule, written independently of policy.schema."""
    found = set()
    clearance = 0 if e["clearance"] is None else e["clearance"]
    if e["transit_floor"] is not None and e["transit_floor"] > clearance:
        found.add("entities.e.transit_floor")
    level = len(LEVELS) - 1 if e["classification"] is None else e["classification"]
    for prefix, cls_key, transit_key in (
            ("entities.e", None, "transit"),
            ("entities.e.endpoints.1", "ep_classification", "ep_transit"),
            ("entities.e.endpoints.1.operations.2", "op_classification", "op_transit")):
        own = e[cls_key] if cls_key else None
        level = max(level, own if own is not None else 0)
        transit = e[transit_key]
        if transit is not None and transit < level:
            found.add(f"{prefix}.transit")
    return found


@settings(max_examples=300)
@given(entities())
def test_checks_refuse_exactly_the_weakening_settings(e: dict[str, int | None]) -> None:
    want = expected_problems(e)
    try:
        policy = parse_policy(document(e), "p.yaml")
    except ConfigFileError as exc:
        got = {str(p).split(": ", 2)[1] for p in exc.problems}
        assert got == want
        return
    assert want == set()
    for endpoint, operation in ((1, 2), (1, 3), (4, 5)):
        target = Target(b"e", endpoint, operation)
        minimum = transit_minimum(policy, target)
        assert minimum.value >= required_classification(policy, target).value
        assert minimum.value >= transit_floor(policy, b"e").value
    assert transit_floor(policy, b"e").value <= entity_clearance(policy, b"e").value
    for requested in (None, 0, 3):
        got = sender_classification(policy, b"e", requested).value
        assert got >= transit_floor(policy, b"e").value
        assert requested is None or got >= requested
