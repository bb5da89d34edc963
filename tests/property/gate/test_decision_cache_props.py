"""The gate's decision cache changes nothing but the cost (issue 13).

For random policies and random sequences of requests interleaved with policy reloads, key
rotations (and revocations), label/ACL changes and a change of our cluster, the gate with a
DecisionCache returns exactly what the gate without one returns (outcome, code, message,
rule, principals, stamp bits), never holds more than its bounds, and never serves a request
that paid a stamp or carries a delegation from it. The MAC/DAC checks that skip building
explanations agree with the decisions that build them, and an explanation is the one the
gate built before explanations became lazy.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from carbon.principal import Persona, Principal
from carbon.symbols import Symbol
from mercury_rt.core.gate import (
    Allow,
    DecisionCache,
    Deny,
    GateRequest,
    GateState,
    LocalSource,
    MemorySpentStore,
    RemoteSource,
    SourceError,
    VerifiedSource,
    authenticate,
    decide_access,
)
from mercury_rt.core.gate.pipeline import Decision
from policy.access import (
    PolicyAcls,
    Refused,
    Target,
    TargetAcls,
    dac_decision,
    dac_passes,
    mac_decision,
    mac_passes,
)
from policy.load import compile_policy
from policy.model import Acl, EntityRef, Policy
from policy.schema import PolicyFile
from tests.gate_support import (
    LOCAL,
    NOW,
    PARTNER,
    STRANGER,
    CountingVerifier,
    SessionOf,
    fake_eid,
)
from tests.property.gate.test_pipeline_reference import CALLERS, HASHES, NAMES, policies

CLUSTERS = (LOCAL, PARTNER, STRANGER)
WHO = [Principal(HASHES[c], n.encode(), Persona(Symbol(p)) if p else None) for c, n, p in CALLERS]
TARGETS = st.tuples(st.sampled_from([*NAMES, "zz"]), st.integers(0, 1), st.integers(0, 1))


class RotatingVerifier:
    """Fake EIDs (tests.gate_support) whose clusters' keys rotate: each change bumps that
    cluster's generation (as KeyRing.cluster_generation does), and a revoked cluster's
    EIDs and sessions no longer verify."""

    def __init__(self) -> None:
        self.inner = CountingVerifier()
        self.generations = dict.fromkeys(CLUSTERS, 0)
        self.revoked: set[bytes] = set()

    def verify(self, eid: bytes) -> VerifiedSource:
        verified = self.inner.verify(eid)
        if verified.principal.cluster in self.revoked:
            raise SourceError("cluster key revoked")
        return verified

    def cluster_key(self, master_hash: bytes, key_hash: bytes) -> Any:
        return None if master_hash in self.revoked else self.inner.cluster_key(master_hash,
                                                                               key_hash)

    def generation(self, master_hash: bytes) -> int:
        return self.generations.get(master_hash, -1)

    def rotate(self, cluster: bytes, revoke: bool) -> None:
        self.generations[cluster] += 1
        if revoke:
            self.revoked.add(cluster)
        else:
            self.revoked.discard(cluster)


@dataclass
class Labels:
    """An ACL source that changes in place (entity state, later): ACLs per entity that
    override the policy's; whoever changes them clears the cache."""

    policy: Policy
    overrides: dict[bytes, TargetAcls] = field(default_factory=dict)

    def acls_for(self, target: Target) -> TargetAcls:
        held = self.overrides.get(target.entity)
        return held if held is not None else PolicyAcls(self.policy).acls_for(target)

    def change(self, entity: bytes, acls: TargetAcls | None) -> None:
        if acls is None:
            self.overrides.pop(entity, None)
        else:
            self.overrides[entity] = acls


def ref(who: Principal, any_persona: bool) -> EntityRef:
    cluster = None if who.cluster == LOCAL else who.cluster
    persona = None if any_persona or who.persona is None else who.persona.cls.text
    return EntityRef(cluster, who.local, persona, who.short())


acl = st.builds(lambda allow, refs: Acl(allow, tuple(refs), "labels.acl"), st.booleans(),
                st.lists(st.builds(ref, st.sampled_from(WHO), st.booleans()), max_size=3))
target_acls = st.none() | st.builds(TargetAcls, st.none() | acl, st.none() | acl,
                                    st.none() | acl)

FEW_TARGETS = st.tuples(st.sampled_from(["e0", "t-x"]), st.just(0), st.integers(0, 1))
"""Few enough that requests repeat, so the cache is read often between changes."""
request_op = st.tuples(st.just("request"), st.sampled_from([0, 1, 4, 6, 8, 11]), FEW_TARGETS,
                       st.sampled_from([0, 0, 1, 2, 3]),
                       st.sampled_from(["plain"] * 4 + ["stamp", "delegated"]))
reload_op = st.tuples(st.just("reload"), st.integers(0, 1))
rotate_op = st.tuples(st.just("rotate"), st.sampled_from(CLUSTERS), st.booleans())
NOBODY = TargetAcls(None, None, Acl(True, (), "labels.nobody"))
"""An entity closed to every caller: a label change that flips every allow."""
label_op = st.tuples(st.just("label"), st.sampled_from([b"e0", b"t-x"]),
                     st.sampled_from([NOBODY, None]) | target_acls)
local_op = st.tuples(st.just("local"), st.sampled_from([LOCAL, LOCAL, PARTNER]))
ops = st.lists(st.one_of(*[request_op] * 8, rotate_op, rotate_op, label_op, label_op,
                         reload_op, local_op), min_size=20, max_size=80)
two_policies = st.lists(st.sampled_from(CALLERS).flatmap(policies), min_size=2, max_size=2)


def compiled(doc: dict[str, Any]) -> Policy:
    return compile_policy(PolicyFile.model_validate(doc))


@dataclass
class Run:
    """One sequence: the shared collaborators, the request sources (two sessions of the
    caller's own cluster, one of another cluster, none), and the cache under test."""

    docs: list[dict[str, Any]]
    cache: DecisionCache[Decision]
    verifier: RotatingVerifier
    labels: Labels
    local: bytes = LOCAL
    sources: dict[tuple[int, int], LocalSource | RemoteSource] = field(default_factory=dict)

    def source(self, caller: int, session: int) -> LocalSource | RemoteSource:
        who = WHO[caller]
        if who.cluster == LOCAL and session == 0:
            return LocalSource(who)
        if (caller, session) not in self.sources:
            other = PARTNER if who.cluster != PARTNER else STRANGER
            proof = [SessionOf(who.cluster), SessionOf(who.cluster), SessionOf(other), None]
            self.sources[caller, session] = RemoteSource(fake_eid(who), proof[session])
        return self.sources[caller, session]

    def apply(self, op: tuple[Any, ...]) -> None:
        kind = op[0]
        if kind == "reload":
            self.labels.policy = compiled(self.docs[op[1]])  # a new object, even if equal
        elif kind == "rotate":
            self.verifier.rotate(op[1], op[2])
        elif kind == "label":
            self.labels.change(op[1], op[2])
            self.cache.clear()
        elif kind == "local":
            self.local = op[1]
        else:
            self.request(*op[1:])

    def request(self, caller: int, target: tuple[str, int, int], session: int,
                kind: str) -> None:
        tgt = Target(target[0].encode(), target[1], target[2])
        delegation = (b"not a certificate",) if kind == "delegated" else ()
        request = GateRequest(tgt, self.source(caller, session), b"", (), delegation)
        bits = 4 if kind == "stamp" else 0
        policy = self.labels.policy
        plain = GateState(self.local, self.verifier, MemorySpentStore(), self.labels)
        cached = GateState(self.local, self.verifier, MemorySpentStore(), self.labels,
                           decisions=self.cache)
        before = self.cache.statistics()
        expected = decide_access(request, policy, plain, NOW, bits)
        got = decide_access(request, policy, cached, NOW, bits)
        assert type(got) is type(expected)
        assert got == expected, (got, expected)
        if kind != "plain":  # paid or delegated: the cache is neither read nor written
            assert self.cache.statistics() == before
        assert len(self.cache) <= self.cache.max_entries
        assert self.cache.size_bytes <= self.cache.max_bytes


@settings(max_examples=300, deadline=None)
@given(two_policies, ops, st.integers(1, 6), st.sampled_from([800, 10**6]))
def test_the_cached_gate_decides_exactly_as_the_uncached_gate(
        docs: list[dict[str, Any]], sequence: list[tuple[Any, ...]], entries: int,
        max_bytes: int) -> None:
    verifier = RotatingVerifier()
    labels = Labels(compiled(docs[0]))
    cache: DecisionCache[Decision] = DecisionCache(verifier.generation, max_entries=entries,
                                                   max_bytes=max_bytes)
    run = Run(docs, cache, verifier, labels)
    for op in sequence:
        run.apply(op)


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(CALLERS).flatmap(policies), st.integers(0, len(WHO) - 1), TARGETS,
       st.integers(1, 5))
def test_a_repeated_allowed_request_is_served_from_the_cache_without_its_source_check(
        doc: dict[str, Any], caller: int, target: tuple[str, int, int], repeats: int) -> None:
    verifier = RotatingVerifier()
    policy = compiled(doc)
    cache: DecisionCache[Decision] = DecisionCache(verifier.generation)
    who = WHO[caller]
    source = LocalSource(who) if who.cluster == LOCAL else \
        RemoteSource(fake_eid(who), SessionOf(who.cluster))
    request = GateRequest(Target(target[0].encode(), target[1], target[2]), source, b"")
    state = GateState(LOCAL, verifier, MemorySpentStore(), PolicyAcls(policy), decisions=cache)
    first = decide_access(request, policy, state, NOW)
    calls = verifier.inner.calls
    for _ in range(repeats):
        again = decide_access(request, policy, state, NOW)
        if isinstance(first, Allow):
            assert again is first
        else:  # a refusal is never remembered (a peer could flood it): decided afresh
            assert again == first and again is not first
    if isinstance(first, Allow):
        assert verifier.inner.calls == calls
        assert cache.hits == repeats
    else:
        assert cache.hits == 0 and len(cache) == 0


def old_decide(request: GateRequest, policy: Policy, state: GateState) -> Decision:
    """The gate's source, MAC and DAC stages as they were before explanations were lazy:
    every explanation built as it went."""
    originator = authenticate(request.source, state.verifier)
    if isinstance(originator, Deny):
        return originator
    mac = mac_decision(policy, originator, request.target, state.local_cluster)
    if isinstance(mac, Refused):
        return Deny(mac.code, mac.message, mac.rule, "mac", originator)
    acls = PolicyAcls(policy).acls_for(request.target)
    dac = dac_decision(policy, acls, originator, request.target, state.local_cluster)
    if isinstance(dac, Refused):
        return Deny(dac.code, dac.message, dac.rule, "dac", originator)
    return Allow(originator, originator, (), f"{mac.rule}; {dac.rule}")


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(CALLERS).flatmap(policies), st.integers(0, len(WHO) - 1), TARGETS,
       st.sampled_from([LOCAL, PARTNER]))
def test_explanations_are_those_the_gate_built_before(
        doc: dict[str, Any], caller: int, target: tuple[str, int, int], local: bytes) -> None:
    policy = compiled(doc)
    who = WHO[caller]
    source = LocalSource(who) if who.cluster == LOCAL else \
        RemoteSource(fake_eid(who), SessionOf(who.cluster))
    tgt = Target(target[0].encode(), target[1], target[2])
    request = GateRequest(tgt, source, b"")
    state = GateState(local, CountingVerifier(), MemorySpentStore())
    now = decide_access(request, policy, state, NOW)
    before = old_decide(request, policy, state)
    assert now == before
    if isinstance(now, Deny):
        assert (now.code, now.message, now.rule, now.stage) == \
            (before.code, before.message, before.rule, before.stage)
    else:
        assert now.rule == before.rule


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(CALLERS).flatmap(policies), st.sampled_from(WHO), TARGETS,
       st.sampled_from([LOCAL, PARTNER]), target_acls)
def test_the_checks_without_explanations_agree_with_the_decisions(
        doc: dict[str, Any], who: Principal, target: tuple[str, int, int], local: bytes,
        labels: TargetAcls | None) -> None:
    policy = compiled(doc)
    tgt = Target(target[0].encode(), target[1], target[2])
    acls = labels if labels is not None else PolicyAcls(policy).acls_for(tgt)
    mac = mac_decision(policy, who, tgt, local)
    assert mac_passes(policy, who, tgt, local) is not isinstance(mac, Refused)
    dac = dac_decision(policy, acls, who, tgt, local)
    assert dac_passes(policy, acls, who, local) is not isinstance(dac, Refused)
