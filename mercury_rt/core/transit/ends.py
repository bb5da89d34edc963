"""One node's transit ends, built alike by every host: keys, a responder per port, the
initiator.

The intra-cluster responder admits only sessions opened by certified nodes of this
cluster (checked when the session opens) and answers nothing sent outside a session; the
inter-cluster one leaves the proof to the gate, which checks it against each request's
source EID, and refuses node messages in clear with 701. Randomness and the clock are
the host's (os.urandom and time.time in the node, a seeded generator in the simulator).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from mercury_rt.core.membership import NodeIdentity
from mercury_rt.core.transit.certs import ClusterKeyLookup, TransitCertVerifier
from mercury_rt.core.transit.initiator import TransitInitiator
from mercury_rt.core.transit.node_keys import NodeTransitKeys
from mercury_rt.core.transit.proof import NodeCredential, PeerProof
from mercury_rt.core.transit.responder import TransitResponder


@dataclass(frozen=True, slots=True)
class TransitEnds:
    """A node's transit keys, its responder per port and its initiator."""

    keys: NodeTransitKeys
    inter: TransitResponder
    intra: TransitResponder
    initiator: TransitInitiator


def build_transit_ends(cluster_key: Ed25519PrivateKey, master_hash: bytes,
                       cluster_keys: ClusterKeyLookup, identity: NodeIdentity,
                       random_bytes: Callable[[int], bytes], now: float) -> TransitEnds:
    """The ends of a node of cluster `master_hash` that started at wall-clock `now`;
    `cluster_keys` yields cluster keys verified to their master key (the node's ring)."""
    keys = NodeTransitKeys(cluster_key, master_hash, random_bytes, now)

    def own_cluster(proof: PeerProof) -> bool:
        return proof.check(master_hash, cluster_keys)

    boot_ms = int(now * 1000)
    inter = TransitResponder(keys, master_hash, token_secret=random_bytes(32),
                             boot_ms=boot_ms, random_bytes=random_bytes)
    intra = TransitResponder(keys, master_hash, token_secret=random_bytes(32),
                             boot_ms=boot_ms, random_bytes=random_bytes,
                             check_at_open=own_cluster, refuse_in_clear=False)
    credential = NodeCredential(master_hash, identity.node_id, identity.key, identity.cert)
    initiator = TransitInitiator(credential, TransitCertVerifier(cluster_keys), random_bytes)
    return TransitEnds(keys, inter, intra, initiator)
