"""Writes tests/vectors/transit_example.json: the worked example of docs/protocol.md 8.10.

Run once (`python -m tests.vectors.make_transit_example`); the first datagram is not
reproducible (HPKE draws its own ephemeral key), so the file fixes one. Everything else
(the plaintext inside, the reply) follows from the fixed keys, and the test recomputes it.
"""

from __future__ import annotations

import json
import pathlib
from collections.abc import Callable

from mercury_rt.core.identity import private_key_from_bytes, public_bytes, tagged_hash
from mercury_rt.core.membership.certs import NodeIdentity
from mercury_rt.core.transit.algorithms import Kem
from mercury_rt.core.transit.certs import TransitCertVerifier, issue_cert
from mercury_rt.core.transit.initiator import Prepared, TransitInitiator
from mercury_rt.core.transit.kem import key_pair_from_seed
from mercury_rt.core.transit.node_keys import NodeTransitKeys
from mercury_rt.core.transit.proof import NodeCredential
from mercury_rt.core.transit.responder import Opened, TransitResponder
from mercury_rt.core.transit.wire import encode_keys

OUT = pathlib.Path(__file__).with_name("transit_example.json")
FIXED = {
    "node_master_seed": "01" * 32, "node_cluster_key_seed": "02" * 32,
    "caller_master_seed": "05" * 32, "caller_cluster_key_seed": "06" * 32,
    "caller_node_id": "caller-1", "caller_node_key_seed": "07" * 32,
    "transit_key_seed": "11" * 32, "algorithm": 2, "not_after": 1_800_004_200,
    "session_id": "a1" * 8, "now": 1_800_000_000.0, "caller_ephemeral_seed": "22" * 32,
    "init_secret": "33" * 32, "node_ephemeral_seed": "44" * 32,
    "payload": "hello from caller-1", "reply": "hello back",
}


def main() -> None:
    f = {k: bytes.fromhex(v) if k.endswith(("seed", "secret", "session_id")) else v
         for k, v in FIXED.items()}
    node_master = private_key_from_bytes(f["node_master_seed"])
    node_cluster = private_key_from_bytes(f["node_cluster_key_seed"])
    node_hash = tagged_hash(public_bytes(node_master))
    pair = key_pair_from_seed(Kem.X25519, f["transit_key_seed"])
    cert = issue_cert(node_cluster, node_hash, Kem.X25519, pair.public, FIXED["not_after"])
    caller_master = private_key_from_bytes(f["caller_master_seed"])
    caller_cluster = private_key_from_bytes(f["caller_cluster_key_seed"])
    caller_hash = tagged_hash(public_bytes(caller_master))
    node_key = private_key_from_bytes(f["caller_node_key_seed"])
    ident = NodeIdentity.issue(FIXED["caller_node_id"].encode(), node_key, caller_cluster,
                               caller_hash)
    randoms = iter([f["session_id"], f["caller_ephemeral_seed"], f["init_secret"]])
    verifier = TransitCertVerifier(lambda m, h: node_cluster.public_key())
    initiator = TransitInitiator(NodeCredential(caller_hash, ident.node_id, node_key,
                                                ident.cert), verifier,
                                 lambda n: next(randoms))
    addr = ("192.0.2.10", 7400)
    initiator.learn_key(addr, node_hash, encode_keys(cert.encode()), FIXED["now"])
    step = initiator.prepare(addr, node_hash, FIXED["algorithm"],
                             FIXED["payload"].encode(), FIXED["now"])
    assert isinstance(step, Prepared)
    keys = NodeTransitKeys(node_cluster, node_hash, _seeds(f["transit_key_seed"]),
                           FIXED["now"])
    responder = TransitResponder(keys, node_hash, token_secret=bytes(32),
                                 boot_ms=int(FIXED["now"] * 1000) - 1000,
                                 random_bytes=_seeds(f["node_ephemeral_seed"]))
    opened = responder.open(step.datagram, ("192.0.2.20", 7500), FIXED["now"])
    assert isinstance(opened, Opened)
    reply = responder.seal(opened.channel, FIXED["reply"].encode())
    OUT.write_text(json.dumps({**FIXED, "transit_cert": cert.encode().hex(),
                               "caller_node_cert": ident.cert.hex(),
                               "init": step.datagram.hex(), "init_reply": reply.hex()},
                              indent=2) + "\n")


def _seeds(first: bytes) -> Callable[[int], bytes]:
    """Random bytes: `first` for the first draw, zeros after (the unused ML-KEM seed)."""
    draws = [first]

    def draw(n: int) -> bytes:
        return draws.pop(0) if draws else bytes(n)
    return draw


if __name__ == "__main__":
    main()
