"""Transit classifications from the policy: pure lookups with the rule that set each value.

The design ("Transit security"): a message to or from an operation is classified at least
at the operation's access classification, higher if the administrator configures it per
operation (`transit`), and never lower than the sending entity's transit floor (its
clearance unless `transit_floor` lowers it). These need only the compiled policy, so they
live beside `policy.access`; which algorithms protect a level is mercury_rt.core.transit's
business (it knows the algorithm registry).
"""

from __future__ import annotations

from policy.access import Ruled, Target, entity_clearance, required_classification
from policy.model import Policy

__all__ = ["entity_clearance", "sender_classification", "transit_floor", "transit_minimum"]


def transit_floor(policy: Policy, entity: bytes) -> Ruled:
    """The lowest transit classification of the entity's messages (requests and replies).

    The entity's clearance by default: an entity cleared for a level may hold information
    of that level, so what it sends is protected at it. `transit_floor` lowers that when
    the administrator trusts the entity not to leak (policy check refuses a raise)."""
    rules = policy.entities.get(entity)
    if rules is not None and rules.transit_floor is not None:
        return Ruled(rules.transit_floor, f"{rules.path}.transit_floor")
    return entity_clearance(policy, entity)


def sender_classification(policy: Policy, entity: bytes,
                          requested: int | None = None) -> Ruled:
    """The classification a local entity's outgoing message gets: its transit floor, or the
    caller's `requested` level for this call when that is higher (a caller may always ask
    for more protection, never for less)."""
    floor = transit_floor(policy, entity)
    if requested is not None and requested > floor.value:
        return Ruled(requested, "requested by the caller for this call")
    return floor


def transit_minimum(policy: Policy, target: Target) -> Ruled:
    """The lowest classification a message to `target` (and its reply) may travel at.

    The highest of: the access classification (policy.access.required_classification),
    every `transit` override on the entity, endpoint and operation, and the target
    entity's transit floor, since the reply travels on the same algorithm and is a message
    from that entity."""
    best = required_classification(policy, target)
    ent = policy.entities.get(target.entity)
    ep = ent.children.get(target.endpoint) if ent else None
    op = ep.children.get(target.operation) if ep else None
    for rules in (ent, ep, op):
        if rules is not None and rules.transit is not None and rules.transit > best.value:
            best = Ruled(rules.transit, f"{rules.path}.transit")
    floor = transit_floor(policy, target.entity)
    return floor if floor.value > best.value else best
