"""Algorithm-tagged hashes: every hash on the wire starts with a byte naming its algorithm.

The design requires the prefix so the hash function can be replaced later without
ambiguity. Version 1 defines only SHA-256 (0x01); any other byte is rejected with its own
error (UNKNOWN_HASH_ALGORITHM) rather than being mistaken for a truncated hash.
"""

from __future__ import annotations

import hashlib
from enum import IntEnum

from carbon.error_codes import ErrorCode
from mercury_rt.core.identity_errors import IdentityError


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
