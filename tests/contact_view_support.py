"""Cluster S with several listed nodes and a second version listing others, for the
caller-side contact-view tests (the order a caller tries a cluster's nodes in)."""

from __future__ import annotations

import random
from ipaddress import ip_address

from mercury_rt.core.identity import (
    ClusterId,
    EndpointKey,
    ServerAddress,
    change_addresses,
    endpoint_key,
    issue_cluster_id,
    mint_eid,
)
from mercury_rt.core.node import CallPlanner
from mercury_rt.core.routing import Contact, ContactAction, Failed, NoAnswer, ProximityRule
from mercury_rt.core.transport import Addr
from tests.forgery_support import S_KEY, S_MASTER, caller_planner

LISTED = (ServerAddress(ip_address("10.2.0.1"), 7000, 1, 10),
          ServerAddress(ip_address("10.2.0.2"), 7000, 1, 30),
          ServerAddress(ip_address("10.2.0.3"), 7001, 1, 0),
          ServerAddress(ip_address("10.2.1.4"), 7000, 2, 5))
V1 = issue_cluster_id(S_MASTER, S_KEY, list(LISTED))
V2 = change_addresses(V1, S_KEY, [*LISTED[1:], ServerAddress(ip_address("10.2.1.9"), 7002,
                                                              2, 20)])
ALL_ADDRS: tuple[Addr, ...] = tuple(dict.fromkeys(
    (str(a.host), a.port) for a in (*V1.addresses, *V2.addresses)))
NEAR = ProximityRule(local_addresses=(ip_address("10.2.1.1"),))
TARGET = mint_eid(S_KEY, V1, b"svc")


def planner(proximity: ProximityRule | None = None) -> CallPlanner:
    """Cluster C's planner, holding S's first version."""
    made = caller_planner()
    made.proximity = proximity
    made.learn(V1)
    return made


def drained(contact: Contact) -> list[ContactAction]:
    """Every action of a contact whose every address stays silent: its whole order and
    how it gives up."""
    actions = list(contact.start())
    while not isinstance(actions[-1], Failed):
        actions += contact.handle(NoAnswer())
    return actions


def fresh_contact(made: CallPlanner, cluster_id: ClusterId, rng: random.Random,
                  now: float) -> Contact:
    """The general path: a contact working out the order and the suspects from scratch."""
    def silent(a: ServerAddress) -> bool:
        until = made.suspects.get((str(a.host), a.port))
        return until is not None and until > now

    try_last: frozenset[EndpointKey] = frozenset(
        endpoint_key(a) for a in cluster_id.addresses if silent(a))
    return Contact(cluster_id, rng, lambda held, new: False,
                   proximity=made.proximity, try_last=try_last)
