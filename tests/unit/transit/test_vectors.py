"""docs/protocol.md 8.10, checked line by line with `cryptography` and `cbor2` directly.

Nothing here goes through mercury_rt's transit code: this is what an independent peer
built from the document would compute, so the document is precise enough to interoperate.
"""

from __future__ import annotations

import hashlib
import json
import pathlib
import re

import cbor2
from cryptography.hazmat.primitives import hashes, hpke
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

ROOT = pathlib.Path(__file__).resolve().parents[3]
VECTOR = json.loads((ROOT / "tests/vectors/transit_example.json").read_text())
DOC = (ROOT / "docs/protocol.md").read_text()


def seed(name: str) -> bytes:
    return bytes.fromhex(VECTOR[name])


def x25519_public(private_seed: bytes) -> bytes:
    return X25519PrivateKey.from_private_bytes(private_seed).public_key().public_bytes_raw()


def ed_public(private_seed: bytes) -> bytes:
    return Ed25519PrivateKey.from_private_bytes(private_seed).public_key().public_bytes_raw()


def tagged(data: bytes) -> bytes:
    return b"\x01" + hashlib.sha256(data).digest()


def flat(items: list[object]) -> bytes:
    return cbor2.dumps(items, canonical=True)


def doc_block(after: str) -> bytes:
    """The hex of the first code block following `after` in section 8.10."""
    section = DOC[DOC.index("### 8.10 Worked example"):]
    block = re.search(r"```\n([0-9a-f\n]+)```", section[section.index(after):])
    assert block is not None, f"no hex block after {after!r}"
    return bytes.fromhex(block.group(1).replace("\n", ""))


def test_the_documented_datagrams_are_the_vector_files() -> None:
    assert doc_block("The INIT (420 bytes") == bytes.fromhex(VECTOR["init"])
    assert doc_block("Its INIT_REPLY (73 bytes)") == bytes.fromhex(VECTOR["init_reply"])
    assert len(bytes.fromhex(VECTOR["init"])) == 420
    assert len(bytes.fromhex(VECTOR["init_reply"])) == 73


def test_the_transit_certificate_is_as_8_4_says() -> None:
    cert = cbor2.loads(bytes.fromhex(VECTOR["transit_cert"]))
    fmt, key_hash, kem, public, not_after, signature = cert
    master_hash = tagged(ed_public(seed("node_master_seed")))
    assert (fmt, kem, not_after) == (1, 0x0020, VECTOR["not_after"])
    assert key_hash == tagged(ed_public(seed("node_cluster_key_seed")))
    assert public == x25519_public(seed("transit_key_seed"))
    signed = b"mercury-rt/1 transit-cert\x00" + cbor2.dumps(
        [master_hash, kem, public, not_after], canonical=True)
    cluster = Ed25519PrivateKey.from_private_bytes(seed("node_cluster_key_seed"))
    cluster.public_key().verify(signature, signed)


def open_init() -> tuple[list[object], bytes, list[object]]:
    """(INIT fields, header, inner fields) by 8.5, with the transit private key."""
    fields = cbor2.loads(bytes.fromhex(VECTOR["init"]))
    kind, algorithm, key_id, token, sealed = fields
    assert (kind, algorithm, token) == (7, 2, b"")
    assert key_id == hashlib.sha256(x25519_public(seed("transit_key_seed"))).digest()[:8]
    header = flat([7, algorithm, key_id, token])
    suite = hpke.Suite(hpke.KEM.X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.AES_256_GCM)
    private = X25519PrivateKey.from_private_bytes(seed("transit_key_seed"))
    inner = cbor2.loads(suite.decrypt(sealed, private, info=header))
    return fields, header, inner


def test_the_init_opens_to_the_documented_fields_and_proof() -> None:
    _, header, inner = open_init()
    session_id, ts, e_c, init_secret, master, node_id, node_cert, signature, payload = inner
    assert session_id == seed("session_id") and ts == 1_800_000_000_000
    assert e_c == x25519_public(seed("caller_ephemeral_seed"))
    assert init_secret == seed("init_secret")
    assert master == tagged(ed_public(seed("caller_master_seed")))
    assert node_id == b"caller-1" and payload == b"hello from caller-1"
    assert node_cert == bytes.fromhex(VECTOR["caller_node_cert"])
    cert = cbor2.loads(node_cert)
    assert cert[2] == ed_public(seed("caller_node_key_seed"))
    cluster = Ed25519PrivateKey.from_private_bytes(seed("caller_cluster_key_seed"))
    cluster.public_key().verify(cert[3], b"mercury-rt/1 node-cert\x00" + cbor2.dumps(
        [master, node_id, cert[2]], canonical=True))
    proof = b"mercury-rt/1 transit proof\x00" + hashlib.sha256(
        flat([header, session_id, ts, e_c, init_secret])).digest()
    node_key = Ed25519PrivateKey.from_private_bytes(seed("caller_node_key_seed"))
    node_key.public_key().verify(signature, proof)


def test_the_init_reply_follows_from_the_key_schedule() -> None:
    _, header, inner = open_init()
    session_id, ts, e_c, init_secret = inner[0], inner[1], inner[2], inner[3]
    e_n = X25519PrivateKey.from_private_bytes(seed("node_ephemeral_seed"))
    e_n_public = e_n.public_key().public_bytes_raw()
    shared = e_n.exchange(X25519PublicKey.from_public_bytes(e_c))  # type: ignore[arg-type]
    transcript = hashlib.sha256(flat([header, session_id, ts, e_c, e_n_public])).digest()
    okm = HKDF(hashes.SHA256(), 64, transcript,
               b"mercury-rt/1 transit session keys").derive(init_secret + shared)  # type: ignore[operator]
    to_caller = okm[32:]
    sealed = AESGCM(to_caller).encrypt(b"s2c\x00" + bytes(8), b"hello back",
                                       flat([8, session_id, e_n_public]))
    assert flat([8, session_id, e_n_public, sealed]) == bytes.fromhex(VECTOR["init_reply"])
