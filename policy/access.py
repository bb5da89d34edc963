"""Mandatory and discretionary access decisions: pure functions with typed, named results.

MAC: the clearance needed is the highest of the entity's, endpoint's and operation's
classifications; a local caller's clearance is looked up, a remote caller's is its entry
(or its cluster's default) capped by the cluster's maximum. DAC: operation, endpoint and
entity ACLs in that order; listed bypass entities skip ACLs (never MAC). Each result names
the policy key that decided it, so `policy explain` and the audit log can point at it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

from carbon.error_codes import ErrorCode
from carbon.principal import Principal
from policy.model import Acl, NewEntityRule, Policy, RemoteCluster, Rules


@dataclass(frozen=True, slots=True)
class Target:
    """An operation on an endpoint of a local entity."""

    entity: bytes
    endpoint: int
    operation: int

    def text(self) -> str:
        """`entity/endpoint/operation`, as operators write it."""
        return f"{self.entity.decode('utf-8', 'replace')}/{self.endpoint}/{self.operation}"


@dataclass(frozen=True, slots=True)
class Ruled:
    """A looked-up value and the policy key it came from."""

    value: int
    rule: str


@dataclass(frozen=True, slots=True)
class Granted:
    """Access passes this check; `rule` says why."""

    rule: str


@dataclass(frozen=True, slots=True)
class Refused:
    """Access fails this check: a stable code, what would pass, and the deciding key."""

    code: ErrorCode
    message: str
    rule: str


@dataclass(frozen=True, slots=True)
class TargetAcls:
    """The three ACLs that apply to a target, most specific first; None = no list."""

    operation: Acl | None
    endpoint: Acl | None
    entity: Acl | None


class AclSource(Protocol):
    """Where ACLs come from: the policy file today, entity state (TUNGSTEN) later."""

    def acls_for(self, target: Target) -> TargetAcls:
        """The operation, endpoint and entity ACLs of `target`."""
        ...


@dataclass(frozen=True, slots=True)
class PolicyAcls:
    """ACLs as written in the policy file."""

    policy: Policy

    def acls_for(self, target: Target) -> TargetAcls:
        """The ACLs the policy sets on `target`'s operation, endpoint and entity."""
        ent, ep, op = _rules_chain(self.policy, target)
        return TargetAcls(op.acl if op else None, ep.acl if ep else None,
                          ent.acl if ent else None)


def _rules_chain(policy: Policy, target: Target) -> tuple[Rules | None, Rules | None,
                                                          Rules | None]:
    ent = policy.entities.get(target.entity)
    ep = ent.children.get(target.endpoint) if ent else None
    op = ep.children.get(target.operation) if ep else None
    return ent, ep, op


_NO_COST = Ruled(0, "no hashcash cost")


def required_bits(policy: Policy, target: Target) -> Ruled:
    """The hashcash cost: the highest of the entity's, endpoint's and operation's."""
    best: Rules | None = None
    for rules in _rules_chain(policy, target):
        if rules is not None and rules.hashcash_bits > (best.hashcash_bits if best else 0):
            best = rules
    return _NO_COST if best is None else Ruled(best.hashcash_bits, f"{best.path}.hashcash_bits")


Setter = Rules | NewEntityRule
"""The policy entry a classification or clearance was taken from (its `path` names it)."""


def _classification(policy: Policy, target: Target) -> tuple[int, Setter | None]:
    """The clearance needed and the entry that set it (None: none did, the highest level):
    the one lookup both `required_classification` and `mac_passes` read."""
    ent, ep, op = _rules_chain(policy, target)
    best: tuple[int, Setter | None]
    if ent is not None and ent.classification is not None:
        best = (ent.classification, ent)
    else:
        rule = policy.new_entity_rule(target.entity)
        best = (rule.classification, rule) if rule is not None \
            else (len(policy.levels) - 1, None)
    for rules in (ep, op):
        if rules is not None and rules.classification is not None \
                and rules.classification > best[0]:
            best = (rules.classification, rules)
    return best


def required_classification(policy: Policy, target: Target) -> Ruled:
    """The clearance needed: the highest of the three classifications (unset = lowest)."""
    value, setter = _classification(policy, target)
    return Ruled(value, "no classification or new_entities rule: highest level"
                 if setter is None else f"{setter.path}.classification")


def _entity_clearance(policy: Policy, entity: bytes) -> tuple[int, Setter | None]:
    rules = policy.entities.get(entity)
    if rules is not None and rules.clearance is not None:
        return rules.clearance, rules
    rule = policy.new_entity_rule(entity)
    return (rule.clearance, rule) if rule is not None else (0, None)


def entity_clearance(policy: Policy, entity: bytes) -> Ruled:
    """A local entity's clearance: its own, else its new_entities rule's, else the lowest
    (MAC for a local caller and the transit floor resolve it alike)."""
    value, setter = _entity_clearance(policy, entity)
    return Ruled(value, "no clearance or new_entities rule: lowest level"
                 if setter is None else f"{setter.path}.clearance")


RemoteFrom = Literal["unknown_cluster", "listed", "default", "capped", "unlisted"]
"""Where a remote caller's clearance came from (`caller_clearance` names the key)."""


def _remote_clearance(policy: Policy, who: Principal) -> tuple[int | None, RemoteFrom,
                                                                 RemoteCluster | None]:
    """A remote caller's clearance (None: refused), how it was found, and its cluster's
    entry: the one lookup both `caller_clearance` and `mac_passes` read."""
    cluster = policy.clusters.get(who.cluster)
    if cluster is None:
        return policy.unknown_cluster_clearance, "unknown_cluster", None
    listed = cluster.entities.get(who.local)
    how: RemoteFrom = "listed" if listed is not None else "default"
    found = listed if listed is not None else cluster.default_clearance
    if found is None:
        return None, "unlisted", cluster
    if found > cluster.max_clearance:
        return cluster.max_clearance, "capped", cluster
    return found, how, cluster


def caller_clearance(policy: Policy, who: Principal, local_cluster: bytes) -> Ruled | Refused:
    """The caller's clearance, or a refusal if its cluster is neither local nor known."""
    if who.cluster == local_cluster:
        return entity_clearance(policy, who.local)
    value, how, cluster = _remote_clearance(policy, who)
    if cluster is None:
        if value is None:
            return Refused(ErrorCode.MAC_UNKNOWN_CLUSTER,
                           f"cluster {who.cluster.hex()} is not in trusted_clusters and "
                           "unknown_cluster_clearance is not set", "trusted_clusters")
        return Ruled(value, "unknown_cluster_clearance")
    base = f"trusted_clusters.{cluster.alias}"
    if value is None:
        return Refused(ErrorCode.MAC_UNKNOWN_CLUSTER,
                       f"{who.short()} is not listed under {base}.entities and the cluster "
                       "has no default_clearance", f"{base}.entities")
    key = {"listed": f"entities.{who.local.decode('utf-8', 'replace')}",
           "default": "default_clearance"}.get(how, "max_clearance")
    return Ruled(value, f"{base}.{key}")


def _clearance_rank(policy: Policy, who: Principal, local_cluster: bytes) -> int | None:
    """`caller_clearance(...).value`, None where it refuses."""
    if who.cluster == local_cluster:
        return _entity_clearance(policy, who.local)[0]
    return _remote_clearance(policy, who)[0]


def mac_decision(policy: Policy, who: Principal, target: Target,
                 local_cluster: bytes) -> Granted | Refused:
    """Mandatory access control for `who` on `target`."""
    needed = required_classification(policy, target)
    has = caller_clearance(policy, who, local_cluster)
    if isinstance(has, Refused):
        return has
    if has.value >= needed.value:
        return Granted(f"mac: clearance {policy.level_name(has.value)} ({has.rule}) >= "
                       f"{policy.level_name(needed.value)} ({needed.rule})")
    return Refused(ErrorCode.MAC_INSUFFICIENT_CLEARANCE,
                   f"{target.text()} needs clearance {policy.level_name(needed.value)!r} "
                   f"(set by {needed.rule}); {who.short()} has "
                   f"{policy.level_name(has.value)!r} (from {has.rule})", needed.rule)


def mac_passes(policy: Policy, who: Principal, target: Target, local_cluster: bytes) -> bool:
    """Whether `mac_decision` grants, from the same lookups (`_classification`,
    `_entity_clearance`, `_remote_clearance`) without naming the keys (the gate asks for
    the explanation only when it refuses or is audited)."""
    has = _clearance_rank(policy, who, local_cluster)
    return has is not None and has >= _classification(policy, target)[0]


def _refusing_acl(acls: TargetAcls, who: Principal, local_cluster: bytes) -> Acl | None:
    """The first ACL present that does not permit `who` (operation, endpoint, entity)."""
    for acl in (acls.operation, acls.endpoint, acls.entity):
        if acl is not None and not acl.permits(who, local_cluster):
            return acl
    return None


def dac_passes(policy: Policy, acls: TargetAcls, who: Principal, local_cluster: bytes) -> bool:
    """Whether `dac_decision` grants, from the same checks without naming the keys."""
    return is_bypass(policy, who, local_cluster) is not None \
        or _refusing_acl(acls, who, local_cluster) is None


def is_bypass(policy: Policy, who: Principal, local_cluster: bytes) -> str | None:
    """The acl_bypass entry naming `who`, if any."""
    for i, ref in enumerate(policy.acl_bypass):
        if ref.matches(who, local_cluster):
            return f"acl_bypass[{i}]"
    return None


def dac_decision(policy: Policy, acls: TargetAcls, who: Principal, target: Target,
                 local_cluster: bytes) -> Granted | Refused:
    """Discretionary access control: every ACL present must permit `who`, unless bypassed."""
    bypass = is_bypass(policy, who, local_cluster)
    if bypass is not None:
        return Granted(f"dac: {bypass} bypasses ACLs")
    refusing = _refusing_acl(acls, who, local_cluster)
    if refusing is not None:
        return _acl_refusal(refusing, who, target)
    passed = [acl.rule for acl in (acls.operation, acls.endpoint, acls.entity)
              if acl is not None]
    return Granted(f"dac: passes {', '.join(passed)}" if passed else "dac: no ACL set")


def _acl_refusal(acl: Acl, who: Principal, target: Target) -> Refused:
    if acl.allow:
        names = ", ".join(ref.text for ref in acl.entries[:8]) or "nobody"
        return Refused(ErrorCode.DAC_NOT_ON_ALLOW_LIST,
                       f"{who.short()} is not on the allow list {acl.rule} for {target.text()} "
                       f"(allowed: {names})", acl.rule)
    return Refused(ErrorCode.DAC_ON_DENY_LIST,
                   f"{who.short()} is on the deny list {acl.rule} for {target.text()}",
                   acl.rule)
