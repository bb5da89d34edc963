"""Transit certificates: a node's key-establishment key, certified by its cluster key.

A caller encrypts a session's first datagram to a node's transit key, so it must know the
key belongs to the cluster it calls: the cluster key (itself certified by the master key
the caller's EID names) signs `[master hash, kem, public key, not_after]`. A certificate
is not bound to one node: any node of the cluster may present it, and the cluster's keys
are what a caller trusts. Wire form (canonical CBOR, docs/protocol.md 8.3):
`[1, cluster key hash, kem, public key, not_after, signature]`.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from carbon import cbor
from carbon.cbor import CodecError, Limits
from carbon.error_codes import ErrorCode
from mercury_rt.core.identity import (
    SIGNATURE_SIZE,
    Purpose,
    public_bytes,
    sign,
    tagged_hash,
    verify,
)
from mercury_rt.core.transit.algorithms import Kem, TransitError
from mercury_rt.core.transit.kem import PublicKem, load_public

CERT_FORMAT = 1
KEY_ID_SIZE = 8
MAX_CERT_SIZE = 1500
MAX_VERIFIED = 4096
_LIMITS = Limits(max_bytes=MAX_CERT_SIZE, max_depth=2, max_items=8)


def key_id(public: bytes) -> bytes:
    """The 8-byte name of a transit public key: the start of its SHA-256."""
    return hashlib.sha256(public).digest()[:KEY_ID_SIZE]


@dataclass(frozen=True, slots=True)
class TransitCert:
    """A decoded transit certificate."""

    cluster_key_hash: bytes
    kem: Kem
    public: bytes
    not_after: int
    signature: bytes

    @property
    def key_id(self) -> bytes:
        """The key's name in first datagrams."""
        return key_id(self.public)

    def encode(self) -> bytes:
        """Canonical wire form."""
        return cbor.dumps([CERT_FORMAT, self.cluster_key_hash, int(self.kem), self.public,
                           self.not_after, self.signature])

    @classmethod
    def decode(cls, data: bytes) -> TransitCert:
        """Strict decode; TransitError 711 for anything but a well-formed certificate."""
        try:
            value = cbor.loads(data, _LIMITS)
        except CodecError as exc:
            raise TransitError(f"transit certificate: {exc.message}",
                               ErrorCode.TRANSIT_CERT_INVALID) from None
        if (type(value) is not list or len(value) != 6 or value[0] != CERT_FORMAT
                or type(value[1]) is not bytes or not 2 <= len(value[1]) <= 65
                or type(value[2]) is not int or value[2] not in {int(k) for k in Kem}
                or type(value[3]) is not bytes or type(value[4]) is not int
                or not 0 <= value[4] < 2**63
                or type(value[5]) is not bytes or len(value[5]) != SIGNATURE_SIZE):
            raise TransitError("transit certificate must be [1, cluster key hash, kem, public "
                               "key, not_after, 64-byte signature]",
                               ErrorCode.TRANSIT_CERT_INVALID)
        kem = Kem(value[2])
        load_public(kem, value[3])
        return cls(value[1], kem, value[3], value[4], value[5])


def cert_message(master_hash: bytes, kem: Kem, public: bytes, not_after: int) -> bytes:
    """What the cluster key signs."""
    return cbor.dumps([master_hash, int(kem), public, not_after])


def issue_cert(cluster_key: Ed25519PrivateKey, master_hash: bytes, kem: Kem, public: bytes,
               not_after: int) -> TransitCert:
    """A certificate for `public` as a transit key of cluster `master_hash`."""
    signature = sign(cluster_key, Purpose.TRANSIT_CERT,
                     cert_message(master_hash, kem, public, not_after))
    return TransitCert(tagged_hash(public_bytes(cluster_key)), kem, public, not_after,
                       signature)


ClusterKeyLookup = Callable[[bytes, bytes], Ed25519PublicKey | None]
"""(master hash, cluster key hash) -> that cluster key if it is verified to the master."""


@dataclass(frozen=True, slots=True)
class VerifiedTransitKey:
    """A transit key proven to belong to a cluster, ready to encrypt to."""

    master_hash: bytes
    kem: Kem
    key_id: bytes
    public: PublicKem
    not_after: int


class TransitCertVerifier:
    """Checks certificates against verified cluster keys; caches what verified (bounded)."""

    def __init__(self, cluster_key: ClusterKeyLookup, limit: int = MAX_VERIFIED) -> None:
        self._cluster_key = cluster_key
        self._verified: OrderedDict[tuple[bytes, bytes], VerifiedTransitKey] = OrderedDict()
        self._limit = limit

    def verify(self, master_hash: bytes, data: bytes, now: float) -> VerifiedTransitKey:
        """The key `data` certifies for `master_hash`; TransitError 711 otherwise."""
        cached = self._verified.get((master_hash, data))
        if cached is None:
            cached = self._check(master_hash, data)
            self._verified[(master_hash, data)] = cached
            if len(self._verified) > self._limit:
                self._verified.popitem(last=False)
        if cached.not_after <= now:
            raise TransitError("transit certificate has expired",
                               ErrorCode.TRANSIT_CERT_INVALID)
        return cached

    def _check(self, master_hash: bytes, data: bytes) -> VerifiedTransitKey:
        cert = TransitCert.decode(data)
        signer = self._cluster_key(master_hash, cert.cluster_key_hash)
        if signer is None:
            raise TransitError("transit certificate is signed by a key not verified for the "
                               "called cluster", ErrorCode.TRANSIT_CERT_INVALID)
        message = cert_message(master_hash, cert.kem, cert.public, cert.not_after)
        if not verify(signer, Purpose.TRANSIT_CERT, message, cert.signature):
            raise TransitError("transit certificate signature does not verify for the called "
                               "cluster", ErrorCode.TRANSIT_CERT_INVALID)
        return VerifiedTransitKey(master_hash, cert.kem, cert.key_id,
                                  load_public(cert.kem, cert.public), cert.not_after)
