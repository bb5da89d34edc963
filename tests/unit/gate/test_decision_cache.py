"""The gate's decision cache keeps allows only (issue 13): a peer sending refused requests,
however many and however varied, can neither push another caller's remembered allow out nor
make the cache grow; a caller's new session reuses its allow, and a session that does not
prove the caller's cluster never gets it."""

from __future__ import annotations

from carbon.principal import Principal
from mercury_rt.core.gate import (
    Allow,
    DecisionCache,
    Deny,
    GateRequest,
    GateState,
    MemorySpentStore,
    RemoteSource,
    decide_access,
)
from mercury_rt.core.gate.pipeline import Decision
from policy.access import Target
from policy.load import parse_policy
from tests.gate_support import LOCAL, NOW, PARTNER, STRANGER, CountingVerifier, SessionOf, fake_eid

POLICY = parse_policy(
    "version: 1\nlevels: [public]\ntrusted_clusters:\n  partner:\n"
    f"    master_hash: \"{PARTNER.hex()}\"\n    default_clearance: public\n"
    "    max_clearance: public\n", "p.yaml")
"""The partner cluster is cleared; the stranger's cluster is unknown, so refused by MAC."""
TARGET = Target(b"svc", 1, 1)
FLOOD = 5000


def cache_and_state(entries: int = 4) -> tuple[DecisionCache[Decision], GateState]:
    cache: DecisionCache[Decision] = DecisionCache(lambda _: 0, max_entries=entries)
    return cache, GateState(LOCAL, CountingVerifier(), MemorySpentStore(), decisions=cache)


def remote(who: Principal, cluster: bytes | None = None) -> GateRequest:
    proof = SessionOf(who.cluster if cluster is None else cluster)
    return GateRequest(TARGET, RemoteSource(fake_eid(who), proof), b"")


def test_a_flood_of_refused_requests_neither_evicts_an_allow_nor_grows_the_cache() -> None:
    cache, state = cache_and_state()
    partner = remote(Principal(PARTNER, b"bob"))
    assert isinstance(decide_access(partner, POLICY, state, NOW), Allow)
    assert len(cache) == 1
    for i in range(FLOOD):  # distinct EIDs, distinct sessions: each a new key if kept
        refused = decide_access(remote(Principal(STRANGER, b"m%d" % i)), POLICY, state, NOW)
        assert isinstance(refused, Deny) and refused.stage == "mac"
        assert len(cache) == 1
    size = cache.size_bytes
    assert isinstance(decide_access(partner, POLICY, state, NOW), Allow)
    assert cache.hits == 1 and cache.evictions == 0 and cache.size_bytes == size


def test_a_new_session_of_the_same_caller_reuses_its_allow() -> None:
    cache, state = cache_and_state()
    bob = Principal(PARTNER, b"bob")
    first = decide_access(remote(bob), POLICY, state, NOW)
    for _ in range(3):
        assert decide_access(remote(bob), POLICY, state, NOW) is first
    assert len(cache) == 1 and cache.hits == 3


def test_a_session_not_proving_the_callers_cluster_never_gets_its_allow() -> None:
    cache, state = cache_and_state()
    bob = Principal(PARTNER, b"bob")
    assert isinstance(decide_access(remote(bob), POLICY, state, NOW), Allow)
    forged = decide_access(remote(bob, cluster=STRANGER), POLICY, state, NOW)
    assert isinstance(forged, Deny) and forged.stage == "source"
    assert cache.hits == 0 and cache.invalidations == 1 and len(cache) == 0


def test_the_counters_move() -> None:
    cache, state = cache_and_state(entries=1)
    bob, eve = Principal(PARTNER, b"bob"), Principal(PARTNER, b"eve")
    decide_access(remote(bob), POLICY, state, NOW)
    decide_access(remote(bob), POLICY, state, NOW)
    decide_access(remote(eve), POLICY, state, NOW)  # pushes bob out (one entry)
    cache.clear()
    assert cache.statistics() == {"hits": 1, "misses": 2, "evictions": 1,
                                  "invalidations": 1, "size": 0, "bytes": 0}
