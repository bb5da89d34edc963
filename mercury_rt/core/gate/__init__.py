"""The security gate: nothing reaches a handler unless every check passes, in a fixed order.

Everything that decides whether a request may run lives here or in policy/access.py:
- pipeline.py: the order. `evaluate` checks hashcash first (a bad stamp costs microseconds,
  a signature check ~120), then `decide_access` runs source authentication, the delegation
  chain (the request then acts as its final entity), MAC, DAC. Every peer fault becomes a
  `Deny` with its code and the rule that decided; nothing a peer sends makes it raise.
- policy/access.py (package `policy`): the MAC and DAC decisions themselves (clearance
  against classification, ACLs and bypass) and the stamp cost of an operation
  (`mac_decision`, `dac_decision`, `required_bits`); the gate orders them.
- hashcash.py: where stamps are checked: the v1 format, the resource binding a stamp to
  one request, exact leading-zero bits, expiry and clock skew; also the payments slot and
  minting.
- budget.py: how many signature checks requests from outside the cluster may cost, per
  sending address, per source cluster and for all strangers; beyond it the node demands a
  stamp before checking anything.
- spent.py: a stamp is spent once; it is remembered until it would expire anyway, and at
  the bound new stamps are refused rather than old ones forgotten. With replication the
  gate's Allow also names the stamp the shell must spend cluster-wide (ClusterSpend), and
  `cluster_spend_admits` says whether that spend lets the request through.
- source.py: who sent a request: the principal vouched for by the intra-cluster path, or a
  remote EID proven to its master key (`EidSourceVerifier`, which notes the clusters whose
  keys are missing) whose request came in a session that a node certified by that EID's
  cluster opened (`SessionProof`): an EID is an address, not a credential.
- decisions.py: the allows of requests that pay and delegate nothing (never a refusal,
  which a peer could flood), remembered by exactly what they depend on (source as sent,
  target operation, the source cluster's key generation and the request's session proving
  it; bound to the policy, ACL source and cluster), bounded, with explicit invalidation: a
  repeat costs a lookup, not the source check and MAC/DAC.
- delegation.py: delegation certificates and chains: cheap checks (count, shape, expiry)
  before any signature, each link before its delegator's EID, verified signatures cached.

This package does not know the network or the clock (`now` is passed in), does not fetch
keys (the node does, for the clusters source.py notes) and never logs: the shell audits
each decision (mercury_rt.aio.audit).
"""

from mercury_rt.core.gate.budget import BudgetSettings, SignatureBudget
from mercury_rt.core.gate.decisions import DecisionCache
from mercury_rt.core.gate.delegation import (
    DelegationError,
    SignatureCache,
    decode_certificate,
    decode_principal,
    encode_principal,
    issue_certificate,
    verify_chain,
)
from mercury_rt.core.gate.hashcash import (
    MAX_PAYMENTS,
    PaymentStamp,
    StampError,
    TargetTags,
    check_stamp,
    decode_payments,
    encode_payments,
    hashcash_payment,
    leading_zero_bits,
    mint_stamp,
    parse_stamp,
    request_digest,
    stamp_resource,
    stamp_time,
    target_tag,
)
from mercury_rt.core.gate.pipeline import (
    Allow,
    Decision,
    Deny,
    GateRequest,
    GateState,
    Paid,
    authenticate,
    decide_access,
    evaluate,
    pay,
)
from mercury_rt.core.gate.source import (
    ASSUMED_PROVEN,
    EidSourceVerifier,
    LocalSource,
    RemoteSource,
    SessionProof,
    Source,
    SourceError,
    VerifiedSource,
    source_failure_code,
)
from mercury_rt.core.gate.spent import (
    ClusterSpend,
    MemorySpentStore,
    SpendResult,
    SpentStampStore,
    cluster_spend_admits,
    local_refusal,
)

__all__ = [
    "ASSUMED_PROVEN",
    "MAX_PAYMENTS",
    "Allow",
    "BudgetSettings",
    "ClusterSpend",
    "Decision",
    "DecisionCache",
    "DelegationError",
    "Deny",
    "EidSourceVerifier",
    "GateRequest",
    "GateState",
    "LocalSource",
    "MemorySpentStore",
    "Paid",
    "PaymentStamp",
    "RemoteSource",
    "SessionProof",
    "SignatureBudget",
    "SignatureCache",
    "Source",
    "SourceError",
    "SpendResult",
    "SpentStampStore",
    "StampError",
    "TargetTags",
    "VerifiedSource",
    "authenticate",
    "check_stamp",
    "cluster_spend_admits",
    "decide_access",
    "decode_certificate",
    "decode_payments",
    "decode_principal",
    "encode_payments",
    "encode_principal",
    "evaluate",
    "hashcash_payment",
    "issue_certificate",
    "leading_zero_bits",
    "local_refusal",
    "mint_stamp",
    "parse_stamp",
    "pay",
    "request_digest",
    "source_failure_code",
    "stamp_resource",
    "stamp_time",
    "target_tag",
    "verify_chain",
]
