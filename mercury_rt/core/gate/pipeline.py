"""The security gate: nothing reaches a handler unless every check passes, in this order.

1. hashcash (before any signature verification: a bad stamp costs a few µs, never ~120),
2. source authentication (local: vouched principal; remote: EID via the injected verifier,
   and the session's proof that a node of that EID's cluster sent it),
3. delegation chain (the request then acts as the final entity),
4. MAC (clearance against the highest classification), 5. DAC (ACLs; bypass skips only these).

`evaluate` is a pure function of (request, policy, state, now) returning a typed Decision;
its only side effect is recording a spent stamp in the injected store. When the cluster
shares spent stamps (replication), an Allow says which stamp the shell must still spend
cluster-wide (`Allow.spend`) before the handler runs. Peer input never
makes it raise: every malformed stamp, EID or certificate becomes a Deny with its code.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from carbon.error_codes import ErrorCode, MercuryError
from carbon.principal import Persona, Principal
from mercury_rt.core.gate.decisions import DecisionCache
from mercury_rt.core.gate.delegation import Chain, DelegationError, SignatureCache, verify_chain
from mercury_rt.core.gate.hashcash import (
    PAYMENT_HASHCASH,
    PaymentStamp,
    StampError,
    TargetTags,
    check_stamp,
    request_digest,
    stamp_resource,
    target_tag_of,
)
from mercury_rt.core.gate.source import LocalSource, Source, SourceVerifier, source_failure_code
from mercury_rt.core.gate.spent import (
    ClusterSpend,
    SpendResult,
    SpentStampStore,
    local_refusal,
)
from policy.access import (
    AclSource,
    PolicyAcls,
    Refused,
    Ruled,
    Target,
    TargetAcls,
    dac_decision,
    dac_passes,
    mac_decision,
    mac_passes,
    required_bits,
)
from policy.model import Policy


@dataclass(frozen=True, slots=True)
class GateRequest:
    """What the gate needs from a decoded request.

    `request_digest` is computed by the receiver (`hashcash.request_digest(body)`), never
    taken from the peer; or the receiver gives the request's `body` instead (and b"" as
    `request_digest`), hashed only when a stamp is due (`digest`): most requests owe none.
    `delegation` holds the raw certificates, decoded here so a malformed one is a denial
    rather than a decoder exception.
    """

    target: Target
    source: Source
    request_digest: bytes
    payments: tuple[PaymentStamp, ...] = ()
    delegation: tuple[bytes, ...] = ()
    target_persona: Persona | None = None
    has_request_id: bool = False
    """The caller chose an id for it (body key 11, or a one-way message id), so a stamp
    spent here may be this same request's retry (decided cluster-wide, shared spending)."""
    body: bytes | None = None

    def digest(self) -> bytes:
        """The request digest a stamp must be bound to."""
        return self.request_digest if self.body is None else request_digest(self.body)


@dataclass(frozen=True, slots=True)
class GateState:
    """The node-side collaborators: our cluster, EID verification, spent stamps, ACLs,
    and the caches the node keeps for the gate (none given: nothing is remembered).
    `decisions` remembers the allows of requests that pay and delegate nothing
    (decisions.py); whoever changes what they depend on without replacing the policy,
    ACL source or cluster (ACLs changed in place, a cluster-ID change) clears it."""

    local_cluster: bytes
    verifier: SourceVerifier
    spent: SpentStampStore
    acls: AclSource | None = None
    signatures: SignatureCache | None = None
    tags: TargetTags | None = None
    shared_spent: bool = False
    """The cluster's nodes share spent stamps (replication): admitted stamps are also spent
    cluster-wide by the shell."""
    decisions: DecisionCache[Decision] | None = None


@dataclass(frozen=True, slots=True, eq=False)
class Allow:
    """Run the handler as `principal`; `originator` really sent it (audit both).

    `why` is the explanation, or how to build it: the gate does not format one for an
    allowed request unless someone reads `rule` (the audit trail, metrics, `policy
    explain`); it is built once, then kept. Equality compares `rule`, not how it was made.
    """

    principal: Principal
    originator: Principal
    chain: tuple[Principal, ...]
    why: str | Callable[[], str]
    stamp_bits: int = 0
    spend: ClusterSpend | None = None
    """The stamp still to spend cluster-wide before running (shared spending only)."""

    @property
    def rule(self) -> str:
        """The policy keys that allowed it (MAC; DAC)."""
        why = self.why
        if isinstance(why, str):
            return why
        text = why()
        object.__setattr__(self, "why", text)
        return text

    def _compared(self) -> tuple[object, ...]:
        return (self.principal, self.originator, self.chain, self.rule, self.stamp_bits,
                self.spend)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Allow):
            return NotImplemented
        return self._compared() == other._compared()

    def __hash__(self) -> int:
        return hash(self._compared())

    def __repr__(self) -> str:
        return (f"Allow(principal={self.principal!r}, originator={self.originator!r}, "
                f"chain={self.chain!r}, rule={self.rule!r}, stamp_bits={self.stamp_bits!r}, "
                f"spend={self.spend!r})")


@dataclass(frozen=True, slots=True)
class Paid:
    """Stage 1 passed: the stamp's bits (0: none was due) and what is left to spend."""

    bits: int = 0
    spend: ClusterSpend | None = None


@dataclass(frozen=True, slots=True)
class Deny:
    """Reject with `code`; `message` says what would pass; `rule` is the deciding key."""

    code: ErrorCode
    message: str
    rule: str
    stage: str
    originator: Principal | None = None
    required_bits: int | None = None


Decision = Allow | Deny


def evaluate(request: GateRequest, policy: Policy, state: GateState, now: float) -> Decision:
    """Decide one request. Never raises for anything a peer can send."""
    paid = pay(request, policy, state, now)
    if isinstance(paid, Deny):
        return paid
    return decide_access(request, policy, state, now, paid.bits, spend=paid.spend)


def pay(request: GateRequest, policy: Policy, state: GateState, now: float,
        demand: Ruled | None = None, *, spend: bool = True) -> Paid | Deny:
    """Stage 1 alone: the bits of the request's stamp (0 when nothing is due) and, with
    shared spending, the stamp still to spend cluster-wide; or its Deny.
    The cost is the policy's, or `demand` when that is higher (a node under a flood of
    signature checks asks for more, docs/protocol.md 7.1); `spend=False` checks without
    spending (a node forwarding to the mirror that will spend it). Costs no signature."""
    cost = required_bits(policy, request.target)
    if demand is not None and demand.value > cost.value:
        cost = demand
    if not cost.value:
        return Paid()
    return _pay(request, policy, state, now, cost, spend)


def decide_access(request: GateRequest, policy: Policy, state: GateState, now: float,
                  stamp_bits: int = 0, *, spend: ClusterSpend | None = None) -> Decision:
    """Stages 2-5 (after hashcash has been paid): source, delegation, MAC, DAC; `spend`
    (from `pay`) goes into the Allow. With `state.decisions`, a request that paid no stamp
    and delegates nothing is decided from the cache when it holds the decision, and
    remembered otherwise if allowed (refusals are never kept): the same decision either way
    (tests/property/gate/test_decision_cache_props). A paid request (stamp_bits, or a
    stamp still to spend) never touches the cache."""
    cache = state.decisions
    if cache is None or stamp_bits or spend is not None or request.delegation:
        return _decide(request, policy, state, now, stamp_bits, spend)
    cache.bind(policy, state.acls, state.local_cluster)
    target, source = request.target, request.source
    known = cache.get(target, source, state.verifier.cluster_key)
    if known is not None:
        return known
    decision = _decide(request, policy, state, now, 0, None)
    if isinstance(decision, Allow):  # a refusal is never remembered (decisions.py)
        cache.put(target, source, decision.originator, decision)
    return decision


def _decide(request: GateRequest, policy: Policy, state: GateState, now: float,
            stamp_bits: int, spend: ClusterSpend | None) -> Decision:
    originator = authenticate(request.source, state.verifier)
    if isinstance(originator, Deny):
        return originator
    chain = Chain(originator, ())
    if request.delegation:
        try:
            chain = verify_chain(originator, request.delegation, state.verifier, now,
                                 policy.max_delegation_chain, cache=state.signatures)
        except DelegationError as exc:
            rule = "delegation.max_chain" if exc.code is ErrorCode.DELEGATION_TOO_LONG \
                else "delegation"
            return Deny(exc.code, exc.message, rule, "delegation", originator)
    return _access(request, policy, state, chain, stamp_bits, spend)


def _access(request: GateRequest, policy: Policy, state: GateState, chain: Chain,
            stamp_bits: int, spend: ClusterSpend | None) -> Decision:
    """MAC, then DAC: checked without their explanations, which are built for a refusal
    here, for an allow only when its rule is read."""
    acting, originator, target, local = (chain.acting_as, chain.originator, request.target,
                                         state.local_cluster)
    if not mac_passes(policy, acting, target, local):
        mac = mac_decision(policy, acting, target, local)
        if isinstance(mac, Refused):
            return Deny(mac.code, mac.message, mac.rule, "mac", originator)
    acls = (state.acls or PolicyAcls(policy)).acls_for(target)
    if not dac_passes(policy, acls, acting, local):
        dac = dac_decision(policy, acls, acting, target, local)
        if isinstance(dac, Refused):
            return Deny(dac.code, dac.message, dac.rule, "dac", originator)
    return Allow(acting, originator, chain.principals,
                 _AllowRule(policy, acls, acting, target, local), stamp_bits, spend)


class _AllowRule:
    """How to build an allowed request's explanation, the keys MAC and DAC passed by.
    A slotted object rather than a functools.partial (which carries an args tuple and a
    keywords dict): the decision cache keeps one per remembered allow."""

    __slots__ = ("acls", "acting", "local", "policy", "target")

    def __init__(self, policy: Policy, acls: TargetAcls, acting: Principal, target: Target,
                 local: bytes) -> None:
        self.policy, self.acls, self.acting, self.target, self.local = (policy, acls, acting,
                                                                        target, local)

    def __call__(self) -> str:
        mac = mac_decision(self.policy, self.acting, self.target, self.local)
        dac = dac_decision(self.policy, self.acls, self.acting, self.target, self.local)
        return f"{mac.rule}; {dac.rule}"


def _pay(request: GateRequest, policy: Policy, state: GateState, now: float,
         cost: Ruled, spend: bool) -> Paid | Deny:
    """Check the first hashcash payment and spend it here (and, with shared spending, say
    it is still to spend cluster-wide); the bits it carried, or a Deny."""
    target = request.target
    persona = request.target_persona
    tag_of = target_tag_of if state.tags is None else state.tags.of
    tag = tag_of(state.local_cluster, target.entity, persona.cls.text if persona else None)
    resource = stamp_resource(tag, target.endpoint, target.operation, request.digest())
    stamp = None
    for payment in request.payments:
        if payment.kind == PAYMENT_HASHCASH:
            stamp = payment
            break
    if stamp is None:
        return _stamp_deny(ErrorCode.HASHCASH_REQUIRED, "this request needs", cost, resource)
    try:
        text = stamp.data.decode("ascii")
        ok = check_stamp(text, resource, cost.value, now, max_age=policy.stamp_max_age,
                         max_future=policy.stamp_max_future)
    except UnicodeDecodeError:
        return _stamp_deny(ErrorCode.HASHCASH_MALFORMED, "stamp is not ASCII; send", cost,
                           resource)
    except StampError as exc:
        return _stamp_deny(exc.code, f"{exc.message}; send", cost, resource)
    if not spend:
        return Paid(ok.bits)
    result = state.spent.add_if_absent(ok.digest, ok.expires_at, now)
    spent = local_refusal(result, shared=state.shared_spent, has_id=request.has_request_id)
    if spent is SpendResult.ALREADY_SPENT:
        return _stamp_deny(ErrorCode.HASHCASH_DOUBLE_SPENT, "stamp was already spent; send",
                           cost, resource)
    if spent is SpendResult.FULL:
        return _stamp_deny(ErrorCode.HASHCASH_SPENT_STORE_FULL,
                           "too many unexpired stamps to track; retry later with", cost,
                           resource)
    if not state.shared_spent:
        return Paid(ok.bits)
    seen = result is SpendResult.ALREADY_SPENT
    return Paid(ok.bits, ClusterSpend(ok.digest, ok.expires_at, seen, cost.value))


def _stamp_deny(code: ErrorCode, what: str, cost: Ruled, resource: str) -> Deny:
    """A hashcash denial that always states the bits and resource that would pass."""
    message = (f"{what} a {cost.value}-bit hashcash stamp for resource {resource} "
               f"(set by {cost.rule})")
    return Deny(code, message, cost.rule, "hashcash", None, cost.value)


def authenticate(source: Source, verifier: SourceVerifier) -> Principal | Deny:
    """Stage 2 alone: who sent it (a node forwarding a request proves its source with it
    before forwarding, as the mirror relies on)."""
    if isinstance(source, LocalSource):
        return source.principal
    try:
        principal = verifier.verify(source.eid).principal
    except MercuryError as exc:
        return Deny(source_failure_code(exc),
                    f"source EID does not verify ({exc.message}); send an EID signed by "
                    "its cluster key", "source", "source")
    if source.proof is None or not source.proof.check(principal.cluster, verifier.cluster_key):
        return Deny(ErrorCode.SOURCE_NOT_PROVEN,
                    "the session this request came by was not opened by a node certified "
                    "by the source EID's cluster; an EID names a caller, it does not prove "
                    "one", "source", "source")
    return principal
