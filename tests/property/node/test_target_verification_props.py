"""Property: whatever a peer makes of a genuine cluster ID or EID of cluster S (random byte
mutations, S's cluster key swapped for the forger's, the forger's own forgeries), the
caller never stores a cluster ID that does not verify to S's master hash.

Every entry the planner holds must be one of S's genuine versions (same signed core:
master hash, version, cluster key hash, key version, addresses) with S's genuine
certificate or none; and a key fetch answered with anything else teaches it nothing.
"""

from __future__ import annotations

import contextlib

from hypothesis import given
from hypothesis import strategies as st

from carbon.error_codes import MercuryError
from mercury_rt.core.identity import ClusterId, Eid, change_addresses, public_bytes
from mercury_rt.core.node import CallPlanner, FetchTargetKeys, NodeReply
from tests.forgery_support import (
    FORGER_ADDRESS,
    FORGER_KEY,
    S_ADDRESS,
    S_CID,
    S_KEY,
    caller_planner,
    forged_cluster_id,
    forged_eid,
    genuine_eid,
)

S_V2 = change_addresses(S_CID, S_KEY, (S_ADDRESS, FORGER_ADDRESS))
GENUINE_CORES = {S_CID.core_message(), S_V2.core_message()}
S_PUBLIC, FORGER_PUBLIC = public_bytes(S_KEY), public_bytes(FORGER_KEY)

BASES = {
    "cluster ID v1": S_CID.encode(),
    "cluster ID v2": S_V2.encode(),
    "EID full keys": genuine_eid().encode(),
    "EID hashes only": genuine_eid(full_keys=False).encode(),
    "EID v2 full keys": genuine_eid(cluster_id=S_V2).encode(),
    "forged EID": forged_eid(forged_cluster_id(9, with_cert=True)).encode(),
    "forged cluster ID": forged_cluster_id(9, with_cert=True).encode(),
}

mutation = st.one_of(
    st.tuples(st.just("flip"), st.integers(0, 4096), st.integers(1, 255)),
    st.tuples(st.just("delete"), st.integers(0, 4096), st.integers(1, 8)),
    st.tuples(st.just("insert"), st.integers(0, 4096), st.binary(min_size=1, max_size=4)),
    st.tuples(st.just("truncate"), st.integers(0, 4096), st.just(0)),
    st.tuples(st.just("swap key"), st.just(0), st.just(0)),
)


def mutate(data: bytes, steps: list[tuple[str, int, object]]) -> bytes:
    """Apply byte-level edits; "swap key" puts the forger's cluster key where S's was."""
    for kind, at, arg in steps:
        i = at % (len(data) + 1)
        if kind == "flip" and data:
            i %= len(data)
            assert isinstance(arg, int)
            data = data[:i] + bytes([data[i] ^ arg]) + data[i + 1:]
        elif kind == "delete":
            assert isinstance(arg, int)
            data = data[:i] + data[i + arg:]
        elif kind == "insert":
            assert isinstance(arg, bytes)
            data = data[:i] + arg + data[i:]
        elif kind == "truncate":
            data = data[:i]
        elif kind == "swap key":
            data = data.replace(S_PUBLIC, FORGER_PUBLIC)
    return data


def assert_only_genuine(planner: CallPlanner) -> None:
    for master, held in planner.known.items():
        assert master == held.master_hash == S_CID.master_hash
        assert held.core_message() in GENUINE_CORES, held
        assert held.cert in (None, S_CID.cert)


def feed(planner: CallPlanner, data: bytes, fetch_answer: bytes) -> None:
    """Hand the bytes to the planner as a peer would: as a standalone cluster ID (a bundled
    or fetched one) and as a target EID (its call routed, keys fetched if asked)."""
    with contextlib.suppress(MercuryError):
        planner.learn(ClusterId.decode(data))
    try:
        target = Eid.decode(data)
    except MercuryError:
        return
    try:
        route = planner.route(target, b"key")
        if isinstance(route, FetchTargetKeys):
            planner.learn_keys(route, fetch_answer)
            planner.route(target, b"key", fetch_allowed=False)
    except MercuryError:
        pass


@given(base=st.sampled_from(sorted(BASES)), steps=st.lists(mutation, max_size=4),
       knows_s=st.booleans(), answer=st.sampled_from(["genuine", "mutated", "forged"]))
def test_learn_never_stores_what_does_not_verify_to_the_master_hash(
        base: str, steps: list[tuple[str, int, object]], knows_s: bool, answer: str) -> None:
    planner = caller_planner()
    if knows_s:
        planner.learn(S_CID)
    data = mutate(BASES[base], steps)
    fetched = {"genuine": S_CID.encode(), "mutated": mutate(S_CID.encode(), steps),
               "forged": forged_cluster_id(1, with_cert=True).encode()}[answer]
    feed(planner, data, NodeReply(cluster_id=fetched).encode())
    assert_only_genuine(planner)
    provable = base != "EID hashes only" or knows_s or answer != "forged"
    if not steps and not base.startswith("forged") and provable:
        assert S_CID.master_hash in planner.known  # unaltered and provable: adopted
    ring = planner.core.verifier.ring
    assert ring.certified(S_CID.master_hash, forged_cluster_id(1).cluster_key_hash) is None
