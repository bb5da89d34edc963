"""A genuine target cluster S, a forger, and the forged cluster IDs and EIDs of issue 11's
hijack ("take a genuine EID of cluster S, replace its cluster ID with one that claims S's
master hash at a higher version but carries the forger's own cluster key and address,
self-sign it"), shared by the caller-side verification tests.

Keys are fixed (no randomness), so every test and every hypothesis example sees the same
cluster S, the same forger and the same caller cluster C.
"""

from __future__ import annotations

import random
from dataclasses import replace
from ipaddress import ip_address

from carbon.types import dumps_typed
from mercury_rt.core.identity import (
    ClusterId,
    Eid,
    KeyRef,
    MintOptions,
    Purpose,
    ServerAddress,
    issue_cluster_id,
    mint_eid,
    private_key_from_bytes,
    public_bytes,
    sign,
)
from mercury_rt.core.node import CallPlanner, CallRequest, NodeCore
from mercury_rt.core.routing import NodeInfo
from tests.membership_node_support import make_core

S_MASTER = private_key_from_bytes(b"\x51" * 32)
S_KEY = private_key_from_bytes(b"\x52" * 32)
FORGER_KEY = private_key_from_bytes(b"\x66" * 32)
C_MASTER = private_key_from_bytes(b"\x41" * 32)
C_KEY = private_key_from_bytes(b"\x42" * 32)

S_HOST, FORGER_HOST, C_HOST = "10.2.0.1", "10.9.0.66", "10.1.0.1"
S_ADDRESS = ServerAddress(ip_address(S_HOST), 7000, 10, 10)
FORGER_ADDRESS = ServerAddress(ip_address(FORGER_HOST), 7000, 1, 10)
C_ADDRESS = ServerAddress(ip_address(C_HOST), 7000, 10, 10)

S_CID = issue_cluster_id(S_MASTER, S_KEY, [S_ADDRESS])
C_CID = issue_cluster_id(C_MASTER, C_KEY, [C_ADDRESS])
HASHES_ONLY = MintOptions(full_keys=False, include_hints=False)


def genuine_eid(local: bytes = b"svc", *, full_keys: bool = True,
                cluster_id: ClusterId = S_CID) -> Eid:
    """An EID of cluster S, as S's nodes issue it."""
    options = MintOptions() if full_keys else HASHES_ONLY
    return mint_eid(S_KEY, cluster_id, local, options=options)


def forged_cluster_id(version: int, *, master_inline: bool = True,
                      with_cert: bool = False,
                      addresses: tuple[ServerAddress, ...] = (FORGER_ADDRESS,),
                      of: ClusterId = S_CID) -> ClusterId:
    """`of`'s master (S's by default; its public key inline, or only its hash) at `version`,
    but the forger's cluster key and address, self-signed; `with_cert` adds a
    "certificate" the forger signed itself (it cannot sign with that master key)."""
    master = of.master if master_inline else of.master.hashed()
    unsigned = ClusterId(master, version, KeyRef.of_key(public_bytes(FORGER_KEY)), version,
                         None, addresses, None)
    cert = sign(FORGER_KEY, Purpose.CLUSTER_KEY_CERT, unsigned.cert_message()) \
        if with_cert else None
    unsigned = replace(unsigned, cert=cert)
    return replace(unsigned, signature=sign(FORGER_KEY, Purpose.CLUSTER_ID,
                                            unsigned.core_message()))


def forged_eid(cluster_id: ClusterId, local: bytes = b"svc",
               cluster_key_inline: bool = True) -> Eid:
    """An EID embedding `cluster_id`, signed by the forger's cluster key."""
    embedded = cluster_id if cluster_key_inline else replace(
        cluster_id, cluster_key=cluster_id.cluster_key.hashed())
    unsigned = Eid(embedded, local, None, None, None, signature=bytes(64))
    return replace(unsigned, signature=sign(FORGER_KEY, Purpose.EID, unsigned.signed_message()))


FORGERIES = {
    "master-key-inline-no-cert": {"master_inline": True, "with_cert": False},
    "master-key-inline-self-signed-cert": {"master_inline": True, "with_cert": True},
    "master-hash-only-no-cert": {"master_inline": False, "with_cert": False},
}
"""The ways a forger can present S's master with its own cluster key."""


def caller_core() -> NodeCore:
    """The calling node's core: the only node of cluster C, knowing nothing of S."""
    node = b"c1"
    return make_core(node, C_CID, C_KEY, {node: NodeInfo(node, True, C_ADDRESS)},
                     {node: (C_HOST, 7001)})


def caller_planner(core: NodeCore | None = None) -> CallPlanner:
    """A planner for cluster C's node; its callers are named by full-keys EIDs."""
    core = core or caller_core()
    return CallPlanner(core, random.Random(0), answer_timeout=0.5,
                       caller_eid=lambda local: mint_eid(C_KEY, C_CID, local).encode())


def echo(target: Eid, text: str = "hello") -> CallRequest:
    """A call of the demo echo (endpoint 1, operation 1) on `target` from C's alice."""
    return CallRequest(target, 1, 1, dumps_typed(str, text), b"alice", b"key-" + text.encode())


