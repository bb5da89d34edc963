"""Two clusters' transit ends, with deterministic keys and randomness, for transit tests."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from mercury_rt.core.identity import public_bytes, tagged_hash
from mercury_rt.core.membership.certs import NodeIdentity
from mercury_rt.core.transit.certs import TransitCertVerifier
from mercury_rt.core.transit.initiator import Finished, NeedKey, TransitInitiator
from mercury_rt.core.transit.node_keys import NodeTransitKeys
from mercury_rt.core.transit.proof import NodeCredential
from mercury_rt.core.transit.responder import (
    Answered,
    Opened,
    Plain,
    ResponderConfig,
    TransitResponder,
)
from tests.identity_support import key

NOW = 1_800_000_000.0
CALLER_MASTER, CALLER_CLUSTER_KEY = key(21), key(22)
NODE_MASTER, NODE_CLUSTER_KEY = key(31), key(32)
CALLER_HASH = tagged_hash(public_bytes(CALLER_MASTER))
NODE_HASH = tagged_hash(public_bytes(NODE_MASTER))
NODE_ADDR = ("127.0.0.2", 7400)
CALLER_ADDR = ("127.0.0.3", 7500)


def seeded(seed: int) -> Callable[[int], bytes]:
    """Deterministic random bytes."""
    rng = random.Random(seed)
    return rng.randbytes


def lookup_for(keys: dict[bytes, Ed25519PrivateKey]) -> Callable[[bytes, bytes],
                                                                   Ed25519PublicKey | None]:
    """A cluster-key lookup that knows exactly `keys` (master hash -> cluster key)."""
    def lookup(master_hash: bytes, key_hash: bytes) -> Ed25519PublicKey | None:
        private = keys.get(master_hash)
        if private is None or tagged_hash(public_bytes(private)) != key_hash:
            return None
        return private.public_key()
    return lookup


def credential(cluster_key: Ed25519PrivateKey = CALLER_CLUSTER_KEY,
               master_hash: bytes = CALLER_HASH, node_id: bytes = b"caller-1",
               node_key: Ed25519PrivateKey | None = None) -> NodeCredential:
    """A calling node's credential certified by `cluster_key`."""
    node_key = node_key or key(41)
    ident = NodeIdentity.issue(node_id, node_key, cluster_key, master_hash)
    return NodeCredential(master_hash, node_id, node_key, ident.cert)


@dataclass
class Pair:
    """A caller and a node of two clusters, joined by direct calls (no network)."""

    initiator: TransitInitiator
    responder: TransitResponder
    keys: NodeTransitKeys


def pair(now: float = NOW, config: ResponderConfig | None = None,
         cred: NodeCredential | None = None, seed: int = 1) -> Pair:
    """A fresh caller/node pair; the caller trusts the node's cluster key."""
    keys = NodeTransitKeys(NODE_CLUSTER_KEY, NODE_HASH, seeded(seed), now)
    responder = TransitResponder(keys, NODE_HASH, token_secret=b"t" * 32,
                                 boot_ms=int(now * 1000) - 1000, random_bytes=seeded(seed + 1),
                                 config=config)
    verifier = TransitCertVerifier(lookup_for({NODE_HASH: NODE_CLUSTER_KEY}))
    initiator = TransitInitiator(cred or credential(), verifier, seeded(seed + 2))
    return Pair(initiator, responder, keys)


def node_answer(p: Pair, datagram: bytes, now: float, reply: Callable[[bytes], bytes],
                peer: tuple[str, int] = CALLER_ADDR) -> bytes:
    """What the node sends back for one datagram (b"" for a drop)."""
    outcome = p.responder.open(datagram, peer, now)
    if isinstance(outcome, Opened):
        return p.responder.seal(outcome.channel, reply(outcome.payload))
    if isinstance(outcome, Answered):
        return outcome.reply
    if isinstance(outcome, Plain):
        return reply(outcome.payload)
    return b""


def call(p: Pair, payload: bytes, now: float = NOW, alg: int = 1,
         reply: Callable[[bytes], bytes] = lambda data: b"re:" + data,
         tries: int = 4) -> bytes:
    """One node message through both ends, as the shell drives it; returns the reply."""
    for _ in range(tries):
        step = p.initiator.prepare(NODE_ADDR, NODE_HASH, alg, payload, now)
        if isinstance(step, NeedKey):
            p.initiator.learn_key(NODE_ADDR, NODE_HASH, node_answer(p, step.query, now, reply),
                                  now)
            continue
        result = p.initiator.finish(step.pending, node_answer(p, step.datagram, now, reply),
                                    now)
        if isinstance(result, Finished):
            return result.reply
    raise AssertionError("no reply within the retry budget")
