"""Sealing membership messages on the intra-cluster path (docs/protocol.md 6.7.2).

Heartbeats and announcements are signed, but who is in the cluster is nobody else's
business: every node holds the cluster key, so the nodes derive one symmetric key from it
(HKDF-SHA256) and seal each membership message with ChaCha20-Poly1305. (Node messages
between nodes travel in transit sessions instead, core/transit, which also authenticate
the sending node and refuse replays.) Nonces are a random 4-byte per-incarnation prefix (given
by the shell from os.urandom) plus a 64-bit counter: unique without any randomness in
the core. A key rotation changes the derived key: nodes holding different cluster keys
cannot open each other's intra-cluster traffic, so a rotation is rolled out to every node
together (docs/operator-guide.md, "Rotate the cluster key").
"""

from __future__ import annotations

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

from carbon.error_codes import ErrorCode, MercuryError

_INFO = b"mercury-rt/1 intra-cluster seal"
_AAD = b"mercury-rt/1 intra"
NONCE_SIZE = 12
TAG_SIZE = 16


class SealError(MercuryError):
    """An intra-cluster payload that is not sealed by a node of this cluster."""

    code = ErrorCode.INTRA_SEAL_INVALID


def derive_intra_key(cluster_key: Ed25519PrivateKey) -> bytes:
    """The 32-byte intra-cluster key every node of the cluster derives alike."""
    raw = cluster_key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    return HKDF(hashes.SHA256(), 32, salt=None, info=_INFO).derive(raw)


class IntraSeal:
    """Seal and open intra-cluster payloads."""

    def __init__(self, key: bytes, nonce_prefix: bytes) -> None:
        if len(nonce_prefix) != 4:
            raise ValueError("nonce prefix must be 4 bytes")
        self._aead = ChaCha20Poly1305(key)
        self._prefix = nonce_prefix
        self._counter = 0

    def seal(self, payload: bytes) -> bytes:
        """nonce || ciphertext-and-tag."""
        self._counter += 1
        nonce = self._prefix + self._counter.to_bytes(8, "big")
        return nonce + self._aead.encrypt(nonce, payload, _AAD)

    def open(self, sealed: bytes) -> bytes:
        """The payload, or SealError if it was not sealed with this cluster's key."""
        if len(sealed) < NONCE_SIZE + TAG_SIZE:
            raise SealError("intra-cluster payload too short to be sealed")
        nonce, body = sealed[:NONCE_SIZE], sealed[NONCE_SIZE:]
        try:
            return self._aead.decrypt(nonce, body, _AAD)
        except InvalidTag:
            raise SealError("intra-cluster payload failed authentication: not from a node "
                            "of this cluster, or altered in transit") from None
