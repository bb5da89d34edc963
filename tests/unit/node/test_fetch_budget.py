"""Key fetches a forged source EID can cause are budgeted (issue 17 item 13): across all
clusters, per listed address, and an address that failed to supply a cluster's keys is not
asked for them again for a while, so forged requests cannot make a node query third
parties at the forger's rate."""

from __future__ import annotations

import random
from ipaddress import ip_address

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from carbon.error_codes import ErrorCode
from mercury_rt.core.gate import ASSUMED_PROVEN, MemorySpentStore
from mercury_rt.core.identity import MintOptions, ServerAddress, issue_cluster_id, mint_eid
from mercury_rt.core.node import (
    FetchKeys,
    Invoke,
    NodeCore,
    NodeReply,
    NodeRequest,
    Respond,
    decode_reply,
    encode_operation,
)
from mercury_rt.core.node.fetch_budget import (
    ADDRESS_BURST,
    ADDRESS_RATE,
    FETCH_BURST,
    FETCH_RATE,
    NEGATIVE_FOR,
)
from mercury_rt.core.node.server import FETCH_ADDRESSES, FETCH_EVERY
from mercury_rt.core.routing import ClusterView, NodeInfo, Path, RoutingConfig
from tests.membership_node_support import POLICY

T = 1_800_000_000.0
VICTIM = ("198.51.100.7", 7000)
RAN = -1


def _node() -> tuple[NodeCore, bytes]:
    master, key = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    cid = issue_cluster_id(master, key, ())
    view = ClusterView(b"n0", 1, {b"n0": NodeInfo(b"n0", True)}, {b"svc": frozenset({b"n0"})},
                       {})
    core = NodeCore.for_cluster([cid], key, POLICY, view, {b"n0": ("10.0.0.1", 7100)},
                                routing=RoutingConfig(), spent=MemorySpentStore(1000),
                                seal_prefix=random.Random(0).randbytes(4))
    return core, mint_eid(key, cid, b"svc").encode()


def _forged(*addresses: tuple[str, int]) -> bytes:
    """A hashes-only EID of a fresh self-made cluster listing `addresses` (in order)."""
    master, key = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    listed = [ServerAddress(ip_address(h), p, i, 10) for i, (h, p) in enumerate(addresses)]
    cid = issue_cluster_id(master, key, listed)
    return mint_eid(key, cid, b"x", options=MintOptions(full_keys=False)).encode()


def _request(core: NodeCore, target: bytes, source: bytes, now: float) -> FetchKeys | int:
    body = NodeRequest(target, 0, 0, b"", version=1, source=source).body()
    action = core.handle(Path.INTER_CLUSTER, encode_operation(body), source[-8:], now + 5, now,
                         proof=ASSUMED_PROVEN)
    if isinstance(action, FetchKeys):
        return action
    if isinstance(action, Invoke):
        return RAN
    assert isinstance(action, Respond)
    return decode_reply(action.reply).code


def _unique(n: int) -> tuple[tuple[str, int], ...]:
    return tuple((f"203.0.113.{n % 250 + 1}", 7000 + n * 3 + i) for i in range(3))


def test_new_fetches_are_bounded_across_all_clusters() -> None:
    core, svc = _node()
    first = [_request(core, svc, _forged(*_unique(n)), T) for n in range(100)]
    fetches = [a for a in first if isinstance(a, FetchKeys)]
    assert len(fetches) == FETCH_BURST, "a burst, then no more"
    assert all(a == ErrorCode.SOURCE_UNVERIFIED for a in first if not isinstance(a, FetchKeys))
    queries = sum(len(f.addresses) for f in fetches)
    assert queries == FETCH_BURST * FETCH_ADDRESSES, "30 queries for 100 forged requests"
    later = [_request(core, svc, _forged(*_unique(100 + n)), T + 1) for n in range(100)]
    assert sum(isinstance(a, FetchKeys) for a in later) == FETCH_RATE


def test_one_listed_address_gets_few_queries_however_many_clusters_list_it() -> None:
    core, svc = _node()
    asked = 0
    for step in range(600):  # a forged request every 0.1 s for 60 s, each listing VICTIM
        action = _request(core, svc, _forged(VICTIM), T + step / 10)
        if isinstance(action, FetchKeys):
            assert action.addresses == (VICTIM,)
            asked += 1
            core.fetch_finished(action.master_hash)
    assert asked <= ADDRESS_BURST + 60 * ADDRESS_RATE, asked


def test_other_listed_addresses_are_still_asked_when_one_is_spent() -> None:
    core, svc = _node()
    for _ in range(int(ADDRESS_BURST)):
        _request(core, svc, _forged(VICTIM), T)
    action = _request(core, svc, _forged(VICTIM, ("192.0.2.55", 7000)), T)
    assert isinstance(action, FetchKeys) and action.addresses == (("192.0.2.55", 7000),)


def test_a_failed_fetch_is_remembered_per_address_and_cluster() -> None:
    core, svc = _node()
    a1, a2 = ("192.0.2.1", 7000), ("192.0.2.2", 7000)
    eid = _forged(a1, a2)
    action = _request(core, svc, eid, T)
    assert isinstance(action, FetchKeys) and action.addresses == (a1, a2)
    core.fetch_finished(action.master_hash)  # nothing learnt
    assert _request(core, svc, eid, T + FETCH_EVERY + 1) == ErrorCode.SOURCE_UNVERIFIED, \
        "past the per-cluster spacing, but both addresses failed for this cluster"
    other = _request(core, svc, _forged(a1), T + FETCH_EVERY + 1)
    assert isinstance(other, FetchKeys), "the address is not refused for other clusters"
    again = _request(core, svc, eid, T + NEGATIVE_FOR + 1)
    assert isinstance(again, FetchKeys) and again.addresses == (a1, a2)


def test_a_fetch_that_learnt_the_keys_marks_no_address_as_failed() -> None:
    core, svc = _node()
    master, key = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    address = ("192.0.2.9", 7000)
    cid = issue_cluster_id(master, key, [ServerAddress(ip_address(address[0]), 7000, 1, 10)])
    hashes_only = mint_eid(key, cid, b"c", options=MintOptions(full_keys=False)).encode()
    action = _request(core, svc, hashes_only, T)
    assert isinstance(action, FetchKeys)
    assert core.learn_keys(action.master_hash, NodeReply(cluster_id=cid.encode()).encode())
    core.fetch_finished(action.master_hash)
    assert _request(core, svc, hashes_only, T + 1) == RAN
    assert core.fetch_budget.start(cid.master_hash, [address], T + 1, 3) == (address,)
