"""The gate agrees with a small, obviously correct model over random policies and requests."""

from __future__ import annotations

import fnmatch
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from carbon.error_codes import ErrorCode
from carbon.principal import Persona, Principal
from carbon.symbols import Symbol
from mercury_rt.core.gate import (
    Allow,
    GateRequest,
    GateState,
    LocalSource,
    MemorySpentStore,
    evaluate,
    hashcash_payment,
    mint_stamp,
    request_digest,
    stamp_resource,
    target_tag,
)
from policy.access import Target
from policy.load import compile_policy
from policy.schema import PolicyFile, check_policy
from tests.gate_support import (
    LOCAL,
    NOW,
    PARTNER,
    STRANGER,
    CountingVerifier,
    remote,
)

LEVELS = ["l0", "l1", "l2", "l3"]
NAMES = ["e0", "e1", "t-x"]
PERSONAS = [None, "/per/a"]
# (cluster alias or None for local, name, persona)
CALLERS = [(c, n, p) for c in (None, "partner", "stranger") for n in ("e0", "t-x")
           for p in PERSONAS]
HASHES = {None: LOCAL, "partner": PARTNER, "stranger": STRANGER}

level = st.sampled_from(LEVELS)
maybe_level = st.none() | level
low_level = st.sampled_from(["l0", "l0", "l1", "l2", "l3"])
maybe_low = st.none() | low_level
high_level = st.sampled_from(["l0", "l1", "l2", "l3", "l3"])
maybe_high = st.none() | high_level
bits = st.sampled_from([0, 0, 2, 4])


def ref_text(caller: tuple[str | None, str, str | None]) -> str:
    cluster, name, persona = caller
    prefix = "" if cluster is None else ("partner:" if cluster == "partner"
                                         else STRANGER.hex() + ":")
    return prefix + name + (f"#{persona}" if persona else "")


def acls(favourite: str) -> st.SearchStrategy[dict[str, list[str]] | None]:
    """ACLs that name the caller about half the time, so DAC decides often."""
    refs = st.sampled_from([*(ref_text(c) for c in CALLERS), *[favourite] * 6])
    acl_list = st.builds(lambda kind, names: {kind: names}, st.sampled_from(["allow", "deny"]),
                         st.lists(refs, max_size=3))
    return st.one_of(st.none(), acl_list, acl_list)


def rules(favourite: str, with_clearance: bool = False) -> st.SearchStrategy[dict[str, Any]]:
    base: dict[str, Any] = {"classification": maybe_low, "hashcash_bits": bits,
                            "acl": acls(favourite)}
    if with_clearance:
        base["clearance"] = maybe_high
    return st.fixed_dictionaries({}, optional=base)


@st.composite
def policies(draw: st.DrawFn, caller: tuple[str | None, str, str | None]) -> dict[str, Any]:
    fav = draw(st.sampled_from([ref_text(caller), ref_text((*caller[:2], None))]))
    entities = {}
    for name in draw(st.lists(st.sampled_from(NAMES), unique=True, min_size=2)):
        ent = draw(rules(fav, with_clearance=True))
        endpoints = {}
        for ep in draw(st.lists(st.integers(0, 1), unique=True, min_size=1)):
            ep_rules = draw(rules(fav))
            ops = draw(st.dictionaries(st.integers(0, 1), rules(fav), max_size=2))
            endpoints[ep] = {**ep_rules, "operations": ops}
        entities[name] = {**ent, "endpoints": endpoints}
    new = draw(st.lists(st.fixed_dictionaries({
        "match": st.sampled_from(["e*", "t-*", "*", "nothing"]),
        "classification": low_level, "clearance": high_level}), max_size=2))
    if draw(st.booleans()):
        new.append({"match": "*", "classification": draw(low_level),
                    "clearance": draw(high_level)})
    partner = {"master_hash": PARTNER.hex(), "max_clearance": draw(high_level),
               "entities": draw(st.dictionaries(st.sampled_from(NAMES), level, max_size=2))}
    default = draw(maybe_high)
    if default is not None:
        partner["default_clearance"] = default
    doc: dict[str, Any] = {
        "version": 1, "levels": LEVELS, "entities": entities, "new_entities": new,
        "trusted_clusters": {"partner": partner},
        "acl_bypass": draw(st.lists(st.sampled_from([*(ref_text(c) for c in CALLERS), fav]),
                                    max_size=1))}
    unknown = draw(maybe_high)
    if unknown is not None:
        doc["unknown_cluster_clearance"] = unknown
    if draw(st.booleans()):  # everything public, so DAC decides
        doc = _everything_public(doc)
    return doc


def _everything_public(doc: dict[str, Any]) -> dict[str, Any]:
    def strip(node: Any) -> Any:
        if isinstance(node, dict):
            return {k: strip(v) for k, v in node.items() if k != "classification"}
        return node
    doc = strip(doc)
    doc["new_entities"] = [{**r, "classification": "l0"} for r in doc["new_entities"]]
    doc["new_entities"].append({"match": "*", "classification": "l0", "clearance": "l0"})
    doc["trusted_clusters"]["partner"]["default_clearance"] = "l0"
    doc["unknown_cluster_clearance"] = "l0"
    return doc


def chain(doc: dict[str, Any], target: tuple[str, int, int]) -> list[dict[str, Any]]:
    ent = doc["entities"].get(target[0])
    ep = ent["endpoints"].get(target[1]) if ent else None
    op = ep["operations"].get(target[2]) if ep else None
    return [r for r in (ent, ep, op) if r is not None]


def ref_matches(ref: str, caller: tuple[str | None, str, str | None]) -> bool:
    body, _, persona = ref.partition("#")
    cluster, _, name = body.rpartition(":")
    cluster_of = {"": None, "partner": "partner", STRANGER.hex(): "stranger"}[cluster]
    return (cluster_of, name) == caller[:2] and (not persona or persona == caller[2])


def rule_for(doc: dict[str, Any], name: str) -> dict[str, Any] | None:
    return next((r for r in doc["new_entities"] if fnmatch.fnmatchcase(name, r["match"])), None)


def reference(doc: dict[str, Any], caller: tuple[str | None, str, str | None],
              target: tuple[str, int, int], stamp_bits: int | None) -> ErrorCode | None:
    """None = allow; else the expected denial code."""
    rank = LEVELS.index
    rs = chain(doc, target)
    cost = max([r.get("hashcash_bits", 0) for r in rs] + [0])
    if cost and stamp_bits is None:
        return ErrorCode.HASHCASH_REQUIRED
    if cost and stamp_bits is not None and stamp_bits < cost:
        return ErrorCode.HASHCASH_INSUFFICIENT
    ent = doc["entities"].get(target[0], {})
    rule = rule_for(doc, target[0])
    ent_cls = rank(ent["classification"]) if ent.get("classification") else (
        rank(rule["classification"]) if rule else len(LEVELS) - 1)
    needed = max([ent_cls] + [rank(r["classification"]) for r in rs[1:]
                              if r.get("classification")])
    cluster, name, _ = caller
    if cluster is None:
        own = doc["entities"].get(name, {}).get("clearance")
        crule = rule_for(doc, name)
        has = rank(own) if own else (rank(crule["clearance"]) if crule else 0)
    elif cluster == "partner":
        p = doc["trusted_clusters"]["partner"]
        found = p["entities"].get(name, p.get("default_clearance"))
        if found is None:
            return ErrorCode.MAC_UNKNOWN_CLUSTER
        has = min(rank(found), rank(p["max_clearance"]))
    else:
        if "unknown_cluster_clearance" not in doc:
            return ErrorCode.MAC_UNKNOWN_CLUSTER
        has = rank(doc["unknown_cluster_clearance"])
    if has < needed:
        return ErrorCode.MAC_INSUFFICIENT_CLEARANCE
    if any(ref_matches(r, caller) for r in doc["acl_bypass"]):
        return None
    for r in reversed(rs):
        a = r.get("acl")
        if a and "allow" in a and not any(ref_matches(x, caller) for x in a["allow"]):
            return ErrorCode.DAC_NOT_ON_ALLOW_LIST
        if a and "deny" in a and any(ref_matches(x, caller) for x in a["deny"]):
            return ErrorCode.DAC_ON_DENY_LIST
    return None


cases = st.sampled_from(CALLERS).flatmap(lambda caller: st.tuples(
    policies(caller), st.just(caller),
    st.tuples(st.sampled_from([*NAMES, "zz"]), st.integers(0, 1), st.integers(0, 1)),
    st.sampled_from([None, 0, 2, 4, 4, 4])))


@settings(max_examples=400)
@given(cases)
def test_gate_agrees_with_reference(case: tuple[dict[str, Any], tuple[str | None, str,
                                    str | None], tuple[str, int, int], int | None]) -> None:
    doc, caller, target, stamp_bits = case
    model = PolicyFile.model_validate(doc)
    assert list(check_policy(model)) == []
    policy = compile_policy(model)
    cluster, name, persona = caller
    who = Principal(HASHES[cluster], name.encode(), Persona(Symbol(persona)) if persona else None)
    tgt = Target(target[0].encode(), target[1], target[2])
    digest = request_digest(repr((caller, target)).encode())
    payments = ()
    if stamp_bits is not None:
        resource = stamp_resource(target_tag(Principal(LOCAL, tgt.entity)), tgt.endpoint,
                                  tgt.operation, digest)
        payments = (hashcash_payment(mint_stamp(resource, stamp_bits, NOW, digest)),)
    source = LocalSource(who) if cluster is None else remote(who)
    request = GateRequest(tgt, source, digest, payments)
    decision = evaluate(request, policy, GateState(LOCAL, CountingVerifier(),
                                                   MemorySpentStore()), NOW)
    expected = reference(doc, caller, target, stamp_bits)
    if expected is None:
        assert isinstance(decision, Allow), decision
        assert decision.principal == who
    else:
        assert not isinstance(decision, Allow), (expected, decision)
        assert decision.code is expected, (expected, decision)
