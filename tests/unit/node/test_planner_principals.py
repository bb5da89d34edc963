"""The principal a caller's node vouches for is kept per caller (issue 13): the same value a
fresh one has, a persona never served from the kept ones, and the kept set bounded."""

from __future__ import annotations

from carbon.principal import Persona, Principal
from carbon.symbols import Symbol
from mercury_rt.core.node.planner import MAX_KNOWN_CLUSTERS
from tests.contact_view_support import planner


def test_the_kept_principal_is_the_fresh_one() -> None:
    made = planner()
    master = made.core.master_hash
    first = made._vouched(b"alice", None)
    assert first == Principal(master, b"alice", None)
    assert made._vouched(b"alice", None) is first
    persona = Persona(Symbol("/acme/admin"))
    assert made._vouched(b"alice", persona) == Principal(master, b"alice", persona)
    assert made._vouched(b"bob", None) == Principal(master, b"bob", None)


def test_the_kept_principals_are_bounded() -> None:
    made = planner()
    for n in range(MAX_KNOWN_CLUSTERS + 5):
        made._vouched(n.to_bytes(4, "big"), None)
    assert len(made._principals) <= MAX_KNOWN_CLUSTERS
