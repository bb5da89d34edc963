"""MAC and DAC decisions, each naming the policy key that decided."""

from __future__ import annotations

from carbon.error_codes import ErrorCode
from carbon.principal import Persona, Principal
from carbon.symbols import Symbol
from policy.access import (
    Granted,
    PolicyAcls,
    Refused,
    Target,
    caller_clearance,
    dac_decision,
    mac_decision,
    required_bits,
    required_classification,
)
from policy.load import parse_policy
from tests.gate_support import LOCAL, PARTNER, STRANGER

POLICY = parse_policy(f"""\
version: 1
levels: [public, internal, secret, top]
entities:
  store:
    classification: internal
    hashcash_bits: 4
    acl: {{deny: [eve]}}
    endpoints:
      1:
        classification: secret
        hashcash_bits: 9
        acl: {{allow: [alice, bob, "partner:carol", root]}}
        operations:
          7: {{classification: public, hashcash_bits: 2, acl: {{deny: [bob]}}}}
          8: {{classification: top}}
      2:
        acl: {{allow: [alice]}}
  helper: {{clearance: public}}
  alice: {{clearance: secret}}
  bob: {{clearance: top}}
  eve: {{clearance: top}}
  root: {{clearance: top}}
new_entities:
  - {{match: "tmp-*", classification: public, clearance: internal}}
trusted_clusters:
  partner:
    master_hash: "{PARTNER.hex()}"
    max_clearance: secret
    default_clearance: internal
    entities: {{carol: top}}
acl_bypass: ["root#/argon/persona/admin", helper]
""")


def local(name: str, persona: str | None = None) -> Principal:
    return Principal(LOCAL, name.encode(), Persona(Symbol(persona)) if persona else None)


def test_needed_clearance_is_the_highest_of_three() -> None:
    assert required_classification(POLICY, Target(b"store", 1, 7)).value == 2
    top = required_classification(POLICY, Target(b"store", 1, 8))
    assert (top.value, top.rule) == (3, "entities.store.endpoints.1.operations.8.classification")
    assert required_classification(POLICY, Target(b"store", 2, 0)).rule == \
        "entities.store.classification"


def test_unlisted_entities_follow_new_entity_rules_else_fail_safe() -> None:
    assert required_classification(POLICY, Target(b"tmp-1", 0, 0)).value == 0
    assert caller_clearance(POLICY, local("tmp-1"), LOCAL) == \
        caller_clearance(POLICY, local("tmp-2"), LOCAL)
    unknown = required_classification(POLICY, Target(b"ghost", 0, 0))
    assert unknown.value == 3
    clearance = caller_clearance(POLICY, local("ghost"), LOCAL)
    assert not isinstance(clearance, Refused) and clearance.value == 0


def test_hashcash_cost_is_the_highest_of_three() -> None:
    cost = required_bits(POLICY, Target(b"store", 1, 7))
    assert (cost.value, cost.rule) == (9, "entities.store.endpoints.1.hashcash_bits")
    assert required_bits(POLICY, Target(b"nobody", 1, 1)).value == 0


def test_remote_clearance_is_capped_by_the_cluster_maximum() -> None:
    carol = caller_clearance(POLICY, Principal(PARTNER, b"carol"), LOCAL)
    assert carol == caller_clearance(POLICY, Principal(PARTNER, b"carol"), LOCAL)
    assert not isinstance(carol, Refused)
    assert (carol.value, carol.rule) == (2, "trusted_clusters.partner.max_clearance")
    dave = caller_clearance(POLICY, Principal(PARTNER, b"dave"), LOCAL)
    assert not isinstance(dave, Refused)
    assert (dave.value, dave.rule) == (1, "trusted_clusters.partner.default_clearance")


def test_unknown_cluster_is_refused_when_no_clearance_is_configured() -> None:
    result = mac_decision(POLICY, Principal(STRANGER, b"x"), Target(b"tmp-1", 0, 0), LOCAL)
    assert isinstance(result, Refused) and result.code is ErrorCode.MAC_UNKNOWN_CLUSTER


def test_mac_refusal_says_what_clearance_would_pass() -> None:
    result = mac_decision(POLICY, local("alice"), Target(b"store", 1, 8), LOCAL)
    assert isinstance(result, Refused)
    assert result.code is ErrorCode.MAC_INSUFFICIENT_CLEARANCE
    assert "needs clearance 'top'" in result.message and "has 'secret'" in result.message


def dac(who: Principal, target: Target) -> Granted | Refused:
    return dac_decision(POLICY, PolicyAcls(POLICY).acls_for(target), who, target, LOCAL)


def test_every_acl_must_permit_most_specific_first() -> None:
    assert isinstance(dac(local("alice"), Target(b"store", 1, 7)), Granted)
    bob = dac(local("bob"), Target(b"store", 1, 7))
    assert isinstance(bob, Refused) and bob.code is ErrorCode.DAC_ON_DENY_LIST
    assert bob.rule == "entities.store.endpoints.1.operations.7.acl.deny"
    eve = dac(local("eve"), Target(b"store", 1, 0))
    assert isinstance(eve, Refused) and eve.code is ErrorCode.DAC_NOT_ON_ALLOW_LIST
    assert "allowed: alice, bob, partner:carol, root" in eve.message
    eve2 = dac(local("eve"), Target(b"store", 3, 0))
    assert isinstance(eve2, Refused) and eve2.rule == "entities.store.acl.deny"


def test_acl_entries_name_remote_entities_and_personas() -> None:
    assert isinstance(dac(Principal(PARTNER, b"carol"), Target(b"store", 1, 0)), Granted)
    assert isinstance(dac(Principal(STRANGER, b"carol"), Target(b"store", 1, 0)), Refused)
    assert isinstance(dac(local("alice", "/argon/p"), Target(b"store", 1, 0)), Granted)


def test_bypass_skips_acls_for_the_listed_persona_only() -> None:
    admin = local("root", "/argon/persona/admin")
    granted = dac(admin, Target(b"store", 2, 0))
    assert isinstance(granted, Granted) and granted.rule == "dac: acl_bypass[0] bypasses ACLs"
    assert isinstance(dac(local("root"), Target(b"store", 2, 0)), Refused)
    assert isinstance(dac(local("root", "/other"), Target(b"store", 2, 0)), Refused)


def test_bypass_never_skips_mac() -> None:
    helper = local("helper")
    assert isinstance(dac(helper, Target(b"store", 2, 0)), Granted)
    assert isinstance(mac_decision(POLICY, helper, Target(b"store", 2, 0), LOCAL), Refused)
