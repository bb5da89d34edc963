"""Ed25519 keys, domain-separated signing and algorithm-tagged hashes.

Three things are signed in the identity layer: a cluster key by the master (a
certificate), a cluster-ID version by the cluster key, and an EID by the cluster key.
Membership adds a fourth: a node key certified by the cluster key (membership/certs.py).
Each signature covers a fixed ASCII domain prefix followed by canonical CBOR, so a
signature made for one purpose can never verify as another (e.g. an EID signature
replayed as a cluster-ID signature), even if the CBOR bodies happened to collide.

Every hash on the wire starts with a byte naming its algorithm, as the design requires,
so the hash function can be replaced later without ambiguity. Version 1 defines only
SHA-256 (0x01); any other byte is rejected with its own error (UNKNOWN_HASH_ALGORITHM)
rather than being mistaken for a truncated hash.
"""

from __future__ import annotations

import hashlib
from enum import Enum, IntEnum

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from carbon.error_codes import ErrorCode
from mercury_rt.core.identity.errors import IdentityError

PUBLIC_KEY_SIZE = 32
PRIVATE_KEY_SIZE = 32
SIGNATURE_SIZE = 64
SHOWN_HASH_DIGITS = 16
"""Hex digits of a hash that messages show: enough to tell clusters and keys apart."""


class Purpose(Enum):
    """What a signature is for; the value is the domain-separation prefix."""

    CLUSTER_KEY_CERT = b"mercury-rt/1 cluster-key-cert\x00"
    CLUSTER_ID = b"mercury-rt/1 cluster-id\x00"
    EID = b"mercury-rt/1 eid\x00"
    NODE_CERT = b"mercury-rt/1 node-cert\x00"
    TRANSIT_CERT = b"mercury-rt/1 transit-cert\x00"


def private_key_from_bytes(raw: bytes) -> Ed25519PrivateKey:
    """An Ed25519 private key from its 32 raw bytes (e.g. a SLIP-0010 derivation)."""
    if len(raw) != PRIVATE_KEY_SIZE:
        raise IdentityError(f"private key is {len(raw)} bytes; Ed25519 needs 32",
                            ErrorCode.BAD_FIELD_LENGTH)
    return Ed25519PrivateKey.from_private_bytes(raw)


def private_bytes(key: Ed25519PrivateKey) -> bytes:
    """The 32 raw private bytes (for key files only)."""
    return key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                             serialization.NoEncryption())


def public_bytes(key: Ed25519PrivateKey | Ed25519PublicKey) -> bytes:
    """The 32 raw public-key bytes that go on the wire."""
    public = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    return public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def load_public_key(raw: bytes, what: str = "public key") -> Ed25519PublicKey:
    """Parse 32 raw bytes as an Ed25519 public key, with a typed error otherwise."""
    if len(raw) != PUBLIC_KEY_SIZE:
        raise IdentityError(f"{what} is {len(raw)} bytes; an Ed25519 key is 32",
                            ErrorCode.BAD_FIELD_LENGTH)
    try:
        return Ed25519PublicKey.from_public_bytes(raw)
    except ValueError:
        raise IdentityError(f"{what} is not a valid Ed25519 point",
                            ErrorCode.BAD_PUBLIC_KEY) from None


def sign(key: Ed25519PrivateKey, purpose: Purpose, message: bytes) -> bytes:
    """Sign `message` for `purpose` (the domain prefix is prepended here)."""
    return key.sign(purpose.value + message)


def verify(key: Ed25519PublicKey, purpose: Purpose, message: bytes, signature: bytes) -> bool:
    """Whether `signature` is `key`'s signature of `message` for `purpose`."""
    return verify_raw(key, purpose.value + message, signature)


def verify_raw(key: Ed25519PublicKey, message: bytes, signature: bytes) -> bool:
    """Whether `signature` is `key`'s signature of exactly `message`: for formats that carry
    their domain tag inside the message (heartbeats, delegation certificates)."""
    if len(signature) != SIGNATURE_SIZE:
        return False
    try:
        key.verify(signature, message)
    except InvalidSignature:
        return False
    return True


class HashAlgorithm(IntEnum):
    """The leading byte of a tagged hash."""

    SHA256 = 0x01


DIGEST_SIZES: dict[HashAlgorithm, int] = {HashAlgorithm.SHA256: 32}
DEFAULT_ALGORITHM = HashAlgorithm.SHA256


def tagged_hash(data: bytes, algorithm: HashAlgorithm = DEFAULT_ALGORITHM) -> bytes:
    """The algorithm byte followed by the digest of `data`."""
    if algorithm is not HashAlgorithm.SHA256:
        raise IdentityError(f"hash algorithm {algorithm!r} is not implemented",
                            ErrorCode.UNKNOWN_HASH_ALGORITHM)
    return bytes((algorithm,)) + hashlib.sha256(data).digest()


def show_hash(value: bytes) -> str:
    """The start of a hash in hex, for error messages and logs."""
    return value.hex()[:SHOWN_HASH_DIGITS]


def check_tagged_hash(value: bytes, what: str = "hash") -> HashAlgorithm:
    """Validate a tagged hash's algorithm byte and length; return its algorithm."""
    if not value:
        raise IdentityError(f"{what} is empty; expected an algorithm byte and a digest",
                            ErrorCode.BAD_FIELD_LENGTH)
    try:
        algorithm = HashAlgorithm(value[0])
    except ValueError:
        raise IdentityError(
            f"{what} uses unknown hash algorithm byte 0x{value[0]:02x} "
            f"(known: {', '.join(f'0x{a:02x}={a.name}' for a in HashAlgorithm)})",
            ErrorCode.UNKNOWN_HASH_ALGORITHM) from None
    expected = 1 + DIGEST_SIZES[algorithm]
    if len(value) != expected:
        raise IdentityError(f"{what} is {len(value)} bytes; {algorithm.name} needs {expected}",
                            ErrorCode.BAD_FIELD_LENGTH)
    return algorithm
