"""Delegation certificates: "this entity may act for me until T", signed by my cluster key.

A certificate is the canonical CBOR array `[delegate, delegator_eid, expires, signature]`;
`delegate` is `[cluster, local, persona]` with persona null or `[class, params]`. The
signature is Ed25519 by the delegator's cluster key over the canonical CBOR of
`["mercury-rt/delegation/v1", delegate, delegator_eid, expires]` (docs/protocol.md §7).
A chain runs from the originator to the final acted-for entity. Cheap checks (count,
shape, expiry) come before any signature verification; each link is checked before its
delegator EID is verified (a link names the principal the previous delegator proved).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from carbon import cbor
from carbon.error_codes import ErrorCode, MercuryError
from carbon.principal import Persona, Principal
from carbon.symbols import Symbol, SymbolError
from mercury_rt.core.gate.source import SourceVerifier
from mercury_rt.core.identity import SIGNATURE_SIZE, verify_raw

DOMAIN = "mercury-rt/delegation/v1"
MAX_CERT_BYTES = 4096
MAX_CLUSTER_HASH = 65
MAX_LOCAL_PART = 1024
_LIMITS = cbor.Limits(max_bytes=MAX_CERT_BYTES, max_depth=8, max_items=256)


class DelegationError(MercuryError):
    """A chain that does not grant what it claims; the code says which check failed."""

    code = ErrorCode.DELEGATION_MALFORMED


@dataclass(frozen=True, slots=True)
class Certificate:
    """`delegate` may act for the entity of `delegator_eid` until `expires` (Unix seconds)."""

    delegate: Principal
    delegator_eid: bytes
    expires: int
    signature: bytes


@dataclass(frozen=True, slots=True)
class Chain:
    """A verified chain: who really sent it, and everyone it passed through, in order."""

    originator: Principal
    principals: tuple[Principal, ...]

    @property
    def acting_as(self) -> Principal:
        """The final acted-for entity (the originator if the chain is empty)."""
        return self.principals[-1] if self.principals else self.originator


def encode_principal(who: Principal) -> cbor.Value:
    """`[cluster, local, persona]` with persona null or `[class symbol text, params]`."""
    persona = None if who.persona is None else [who.persona.cls.text, who.persona.params]
    return [who.cluster, who.local, persona]


def decode_principal(value: cbor.Value) -> Principal:
    """Inverse of encode_principal. Raises DelegationError."""
    if not (isinstance(value, list) and len(value) == 3 and isinstance(value[0], bytes)
            and 2 <= len(value[0]) <= MAX_CLUSTER_HASH and isinstance(value[1], bytes)
            and len(value[1]) <= MAX_LOCAL_PART):
        raise DelegationError(f"delegate must be [cluster hash (2-{MAX_CLUSTER_HASH} bytes), "
                              f"local part (at most {MAX_LOCAL_PART} bytes), persona]")
    persona = value[2]
    if persona is None:
        return Principal(value[0], value[1])
    if not (isinstance(persona, list) and len(persona) == 2 and isinstance(persona[0], str)):
        raise DelegationError("persona must be null or [class symbol, params]")
    try:
        return Principal(value[0], value[1], Persona(Symbol(persona[0]), persona[1]))
    except SymbolError as exc:
        raise DelegationError(f"persona class: {exc.message}") from None


def signed_bytes(delegate: Principal, delegator_eid: bytes, expires: int) -> bytes:
    """The exact bytes the delegator's cluster key signs."""
    return cbor.dumps([DOMAIN, encode_principal(delegate), delegator_eid, expires])


def issue_certificate(delegate: Principal, delegator_eid: bytes, expires: int,
                      cluster_key: Ed25519PrivateKey) -> bytes:
    """Sign and encode a certificate (delegator side)."""
    sig = cluster_key.sign(signed_bytes(delegate, delegator_eid, expires))
    return cbor.dumps([encode_principal(delegate), delegator_eid, expires, sig])


def decode_certificate(data: bytes) -> Certificate:
    """Parse one certificate from the wire. Raises DelegationError, nothing else."""
    try:
        value = cbor.loads(data, _LIMITS)
    except cbor.CodecError as exc:
        raise DelegationError(f"certificate is not canonical CBOR: {exc.message}") from None
    if not (isinstance(value, list) and len(value) == 4 and isinstance(value[1], bytes)
            and isinstance(value[2], int) and not isinstance(value[2], bool)
            and isinstance(value[3], bytes) and len(value[3]) == SIGNATURE_SIZE):
        raise DelegationError("certificate must be [delegate, delegator EID, expires, "
                              f"{SIGNATURE_SIZE}-byte signature]")
    return Certificate(decode_principal(value[0]), value[1], value[2], value[3])


class SignatureCache:
    """Signatures already verified, by (signed bytes, key): a bounded FIFO set.

    An Ed25519 verification costs ~120 µs; a client repeating one certificate on every
    request should pay it once. Entries are exact (bytes, key) pairs, so a hit proves
    the same signature over the same bytes under the same key verified before.
    """

    def __init__(self, limit: int = 10_000) -> None:
        self.limit = limit
        self._seen: dict[bytes, None] = {}

    def __contains__(self, key: bytes) -> bool:
        return key in self._seen

    def add(self, key: bytes) -> None:
        """Remember a verified signature, forgetting the oldest beyond the bound."""
        if len(self._seen) >= self.limit:
            del self._seen[next(iter(self._seen))]
        self._seen[key] = None


def verify_chain(originator: Principal, certs: tuple[bytes, ...], verifier: SourceVerifier,
                 now: float, max_chain: int, *,
                 cache: SignatureCache | None = None) -> Chain:
    """Check a chain from `originator`; raises DelegationError naming the failed check."""
    if len(certs) > max_chain:
        raise DelegationError(f"{len(certs)} certificates; this cluster accepts at most "
                              f"{max_chain}", ErrorCode.DELEGATION_TOO_LONG)
    parsed = [decode_certificate(c) for c in certs]
    for i, cert in enumerate(parsed):
        if cert.expires <= now:
            raise DelegationError(f"certificate {i} expired at {cert.expires}; ask the "
                                  "delegator for a new one", ErrorCode.DELEGATION_EXPIRED)
    current, seen, path = originator, {originator}, []
    for i, cert in enumerate(parsed):
        if cert.delegate != current:
            raise DelegationError(f"certificate {i} delegates to {cert.delegate.short()}, "
                                  f"not to {current.short()}", ErrorCode.DELEGATION_BROKEN)
        current = _verify_link(i, cert, verifier, cache)
        if current in seen:
            raise DelegationError(f"certificate {i} returns to {current.short()}",
                                  ErrorCode.DELEGATION_LOOP)
        seen.add(current)
        path.append(current)
    return Chain(originator, tuple(path))


def _verify_link(i: int, cert: Certificate, verifier: SourceVerifier,
                 cache: SignatureCache | None) -> Principal:
    try:
        source = verifier.verify(cert.delegator_eid)
    except MercuryError as exc:
        raise DelegationError(f"certificate {i}: delegator EID does not verify: {exc.message}",
                              ErrorCode.DELEGATION_UNVERIFIED_DELEGATOR) from None
    data = signed_bytes(cert.delegate, cert.delegator_eid, cert.expires)
    key = source.cluster_key.public_bytes_raw()
    memo = hashlib.sha256(key + cert.signature + data).digest()
    if cache is not None and memo in cache:
        return source.principal
    if not verify_raw(source.cluster_key, data, cert.signature):
        raise DelegationError(f"certificate {i}: signature is not by the delegator's cluster "
                              "key", ErrorCode.DELEGATION_BAD_SIGNATURE)
    if cache is not None:
        cache.add(memo)
    return source.principal
