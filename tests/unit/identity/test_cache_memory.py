"""A node caches every EID it verified; the EIDs of one cluster all embed the same cluster
ID, so the cache keeps one decoded copy of it, not one per EID (issue 17 item 11: under
1 KB per cached EID, the EID bytes the cache keys on included)."""

from __future__ import annotations

import gc
import sys
import tracemalloc

from mercury_rt.core.identity import Eid, EidVerifier, mint_eid
from tests.forgery_support import C_CID, C_KEY, S_CID, S_KEY

COUNT = 500


def test_eids_of_one_cluster_share_its_cluster_id_and_still_verify_as_themselves() -> None:
    verifier = EidVerifier()
    a, b = (mint_eid(C_KEY, C_CID, name).encode() for name in (b"alice", b"bob"))
    other = mint_eid(S_KEY, S_CID, b"svc").encode()
    for data in (a, b, other):
        assert verifier.verify(data).fully_verified
    cached_a, cached_b = verifier.cached(a), verifier.cached(b)
    assert cached_a is not None and cached_b is not None
    assert cached_a.eid.cluster_id is cached_b.eid.cluster_id
    assert cached_a.eid == Eid.decode(a) and cached_b.eid == Eid.decode(b)
    assert cached_b.principal == Eid.decode(b).principal()
    assert verifier.verify(other).eid == Eid.decode(other)
    assert verifier.verify(other).principal.cluster == S_CID.master_hash


def test_a_cached_eid_of_a_known_cluster_costs_under_1_kb() -> None:
    verifier = EidVerifier()
    verifier.add_cluster_id(C_CID)
    eids = [mint_eid(C_KEY, C_CID, b"user-%d" % i).encode() for i in range(COUNT)]
    gc.collect()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        for data in eids:
            assert verifier.verify(data).fully_verified
        gc.collect()
        per_eid = (tracemalloc.get_traced_memory()[0] - base) / COUNT
    finally:
        tracemalloc.stop()
    assert per_eid + sys.getsizeof(eids[0]) < 1024, per_eid
