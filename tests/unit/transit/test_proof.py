"""Who opened a session: PeerProof.check (issue 11, item 1: prove the source).

The proof is taken from a real first datagram as the node receives it, then checked
against what the node knows of the calling cluster's keys.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

import mercury_rt.core.transit.proof as proof_module
from carbon.error_codes import ErrorCode
from mercury_rt.core.transit.node_keys import NodeTransitKeys
from mercury_rt.core.transit.proof import CertCache, NodeCredential, PeerProof
from mercury_rt.core.transit.responder import Dropped, Opened, TransitResponder
from tests.identity_support import key
from tests.transit_steps_support import drive, initiator, prepared, responder
from tests.transit_support import (
    CALLER_ADDR,
    CALLER_CLUSTER_KEY,
    CALLER_HASH,
    NODE_CLUSTER_KEY,
    NODE_HASH,
    NOW,
    credential,
    lookup_for,
    seeded,
)

OTHER_CLUSTER_KEY = key(90)
KNOWS_CALLER = lookup_for({CALLER_HASH: CALLER_CLUSTER_KEY})


def proof_of(cred: NodeCredential | None = None, payload: bytes = b"x",
             seed: int = 3) -> PeerProof:
    """The proof a node holds for a session a caller with `cred` opened."""
    node, caller = responder(NOW, 1), initiator(seed)
    if cred is not None:
        caller.credential = cred
    outcome = node.open(prepared(caller, node, payload, NOW).datagram, CALLER_ADDR, NOW)
    assert isinstance(outcome, Opened)
    return outcome.channel.session.proof


def fresh(proof: PeerProof) -> PeerProof:
    """An unchecked copy."""
    return replace(proof, proven=None)


def test_a_node_of_the_claimed_cluster_is_proven() -> None:
    proof = proof_of()
    assert proof.check(CALLER_HASH, KNOWS_CALLER) is True
    assert proof.proven is True
    assert proof.check(CALLER_HASH, lambda m, h: None) is True


def test_a_claim_for_another_cluster_is_false() -> None:
    proof = proof_of()
    assert proof.check(NODE_HASH, lookup_for({NODE_HASH: CALLER_CLUSTER_KEY})) is False
    assert proof.check(CALLER_HASH, KNOWS_CALLER) is True


def test_a_proof_naming_another_master_hash_is_false() -> None:
    proof = proof_of(credential(master_hash=NODE_HASH))
    assert proof.check(CALLER_HASH, KNOWS_CALLER) is False
    certified_elsewhere = credential(master_hash=NODE_HASH)
    claims_caller = NodeCredential(CALLER_HASH, certified_elsewhere.node_id,
                                   certified_elsewhere.key, certified_elsewhere.cert)
    assert proof_of(claims_caller).check(CALLER_HASH, KNOWS_CALLER) is False


def test_a_node_certificate_of_another_cluster_key_is_false() -> None:
    proof = proof_of(credential(cluster_key=OTHER_CLUSTER_KEY))
    assert proof.check(CALLER_HASH, KNOWS_CALLER) is False
    lies: dict[bytes, Ed25519PrivateKey] = {CALLER_HASH: OTHER_CLUSTER_KEY}
    assert fresh(proof).check(CALLER_HASH, lookup_for(lies)) is True
    genuine_hash_forged_signature = proof_of(credential(cluster_key=OTHER_CLUSTER_KEY))

    def answers_with_genuine(master: bytes, key_hash: bytes) -> Ed25519PublicKey | None:
        return CALLER_CLUSTER_KEY.public_key()

    assert genuine_hash_forged_signature.check(CALLER_HASH, answers_with_genuine) is False
    assert genuine_hash_forged_signature.proven is False


def test_a_signature_over_another_first_datagram_is_false() -> None:
    one, two = proof_of(payload=b"one"), proof_of(payload=b"two", seed=4)
    assert one.message != two.message
    stolen = replace(two, signature=one.signature)
    assert stolen.check(CALLER_HASH, KNOWS_CALLER) is False
    other_node_id = replace(fresh(one), node_id=b"caller-2")
    assert other_node_id.check(CALLER_HASH, KNOWS_CALLER) is False
    assert fresh(one).check(CALLER_HASH, KNOWS_CALLER) is True


def test_a_node_key_not_the_certified_one_is_false() -> None:
    impostor = credential()
    impostor = NodeCredential(impostor.master_hash, impostor.node_id, key(42), impostor.cert)
    assert proof_of(impostor).check(CALLER_HASH, KNOWS_CALLER) is False


def test_garbage_certificates_are_false() -> None:
    proof = proof_of()
    for cert in (b"\x00", b"", proof.node_cert + b"\x00", proof.node_cert[:-1]):
        assert replace(fresh(proof), node_cert=cert).check(CALLER_HASH, KNOWS_CALLER) is False


def test_an_unknown_cluster_key_is_false_and_not_remembered() -> None:
    proof = proof_of()
    assert proof.check(CALLER_HASH, lambda m, h: None) is False
    assert proof.proven is None
    assert proof.check(CALLER_HASH, lookup_for({})) is False
    assert proof.check(CALLER_HASH, KNOWS_CALLER) is True
    assert proof.proven is True


def test_the_intra_cluster_port_checks_the_proof_before_any_session() -> None:
    own = lookup_for({NODE_HASH: NODE_CLUSTER_KEY})
    node = TransitResponder(NodeTransitKeys(NODE_CLUSTER_KEY, NODE_HASH, seeded(1), NOW),
                            NODE_HASH, token_secret=b"t" * 32, boot_ms=0,
                            random_bytes=seeded(2), refuse_in_clear=False,
                            check_at_open=lambda proof: proof.check(NODE_HASH, own))
    member = initiator(3)
    member.credential = credential(NODE_CLUSTER_KEY, NODE_HASH, b"member")
    assert drive(node, member, b"hello", NOW)[0] == b"re:hello"
    for seed, stranger in enumerate((credential(), credential(key(91), NODE_HASH, b"forger"))):
        caller = initiator(10 + seed)
        caller.credential = stranger
        outcome = node.open(prepared(caller, node, b"x", NOW).datagram, CALLER_ADDR, NOW)
        assert isinstance(outcome, Dropped) and outcome.code is ErrorCode.SOURCE_NOT_PROVEN
    assert node.session_count == 1


def test_a_node_certificate_is_checked_once_for_many_sessions(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The certificate half of a proof is cached by the responder (bounded): a second
    session of the same node costs the signature check alone, still per session."""
    checks: list[object] = []
    real = proof_module.verify

    def counting(*args: object) -> bool:
        checks.append(args)
        return real(*args)  # type: ignore[arg-type]

    cache = CertCache()
    first, second = (replace(proof_of(payload=p), proven=None, certs=cache)
                     for p in (b"one", b"two"))
    forged = replace(second, proven=None, signature=bytes(64))
    monkeypatch.setattr(proof_module, "verify", counting)
    assert first.check(CALLER_HASH, KNOWS_CALLER) and second.check(CALLER_HASH, KNOWS_CALLER)
    assert not forged.check(CALLER_HASH, KNOWS_CALLER), "the signature is still checked"
    assert len(checks) == 1
