"""docs/protocol.md 6.7.2's membership seal, recomputed from the text with `cryptography`
(issue 16 item 18: the nonce's byte order, where the counter starts)."""

from __future__ import annotations

import pathlib

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from mercury_rt.core.identity import private_key_from_bytes
from mercury_rt.core.node.seal import IntraSeal, derive_intra_key

DOC = (pathlib.Path(__file__).resolve().parents[3] / "docs/protocol.md").read_text()


def test_the_seal_is_the_documented_hkdf_key_nonce_and_aad() -> None:
    raw = bytes(range(32))
    key = HKDF(hashes.SHA256(), 32, salt=None,
               info=b"mercury-rt/1 intra-cluster seal").derive(raw)
    assert derive_intra_key(private_key_from_bytes(raw)) == key
    seal = IntraSeal(key, b"\xde\xad\xbe\xef")
    first, second = seal.seal(b"heartbeat"), seal.seal(b"heartbeat")
    assert first[:12] == b"\xde\xad\xbe\xef" + (1).to_bytes(8, "big")
    assert second[:12] == b"\xde\xad\xbe\xef" + (2).to_bytes(8, "big")
    assert ChaCha20Poly1305(key).decrypt(first[:12], first[12:],
                                         b"mercury-rt/1 intra") == b"heartbeat"
    section = DOC[DOC.index("#### 6.7.2"):DOC.index("#### 6.7.3")]
    for text in ('info = "mercury-rt/1 intra-cluster seal"', 'aad = "mercury-rt/1 intra"',
                 "64-bit big-endian counter", "starting at 1", "from any source address",
                 "counted, never sent"):
        assert text in section
