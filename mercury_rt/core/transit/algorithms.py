"""The transit algorithm registry: what each numeric algorithm id means on the wire.

An id names one key establishment (an HPKE KEM, RFC 9180), one key derivation (HKDF) and
one AEAD. Ids are what clusters exchange when they state a classification to each other
(design, "Between clusters"): numbers are opaque between clusters, algorithm ids are not.
`cost` orders algorithms for the sender's "least expensive option"; it is a rank, not a
unit. Ids are stable forever once published in docs/protocol.md section 8.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import IntEnum

from carbon.error_codes import ErrorCode, MercuryError

MAX_ALGORITHM_LIST = 32
"""A peer's algorithm list longer than this is refused before it is read further."""


class TransitError(MercuryError):
    """A transit-security fault with its wire code (700-799)."""

    code = ErrorCode.TRANSIT_MALFORMED


class AlgorithmId(IntEnum):
    """Registered transit algorithm ids."""

    X25519_CHACHA20 = 1
    X25519_AES256GCM = 2
    MLKEM768_X25519_CHACHA20 = 3


class Aead(IntEnum):
    """The session AEAD of an algorithm."""

    CHACHA20_POLY1305 = 1
    AES_256_GCM = 2


class Kem(IntEnum):
    """The key establishment of an algorithm, by its HPKE KEM id (RFC 9180 / IANA)."""

    X25519 = 0x0020
    MLKEM768_X25519 = 0x647A


@dataclass(frozen=True, slots=True)
class TransitAlgorithm:
    """One registered algorithm: its KEM, its AEAD and its relative cost."""

    id: int
    name: str
    kem: Kem
    aead: Aead
    cost: int
    public_key_size: int
    enc_size: int


REGISTRY: Mapping[int, TransitAlgorithm] = {
    AlgorithmId.X25519_AES256GCM: TransitAlgorithm(
        2, "X25519-HKDF-SHA256-AES-256-GCM", Kem.X25519, Aead.AES_256_GCM, 10, 32, 32),
    AlgorithmId.X25519_CHACHA20: TransitAlgorithm(
        1, "X25519-HKDF-SHA256-ChaCha20-Poly1305", Kem.X25519, Aead.CHACHA20_POLY1305, 11,
        32, 32),
    AlgorithmId.MLKEM768_X25519_CHACHA20: TransitAlgorithm(
        3, "MLKEM768-X25519-HKDF-SHA256-ChaCha20-Poly1305", Kem.MLKEM768_X25519,
        Aead.CHACHA20_POLY1305, 40, 1216, 1120),
}
ALL_ALGORITHMS: frozenset[int] = frozenset(REGISTRY)


def algorithm(algorithm_id: int) -> TransitAlgorithm:
    """The registered algorithm, or TransitError 708 for an id this version does not know."""
    found = REGISTRY.get(algorithm_id)
    if found is None:
        raise TransitError(f"transit algorithm {algorithm_id} is not registered (known: "
                           f"{sorted(REGISTRY)})", ErrorCode.UNKNOWN_ALGORITHM)
    return found


def cheapest(ids: Iterable[int]) -> int | None:
    """The registered id of lowest cost among `ids` (ties: lower id), None if none is known."""
    known = [REGISTRY[i] for i in ids if i in REGISTRY]
    if not known:
        return None
    return min(known, key=lambda a: (a.cost, a.id)).id


def by_cost(ids: Iterable[int]) -> tuple[int, ...]:
    """The registered ids among `ids`, cheapest first (unknown ids dropped)."""
    known = sorted({REGISTRY[i] for i in ids if i in REGISTRY}, key=lambda a: (a.cost, a.id))
    return tuple(a.id for a in known)


def transit_code(number: int) -> ErrorCode:
    """The ErrorCode a peer's number names; 715 for one this version does not know."""
    try:
        return ErrorCode(number)
    except ValueError:
        return ErrorCode.TRANSIT_MALFORMED


def decode_algorithm_list(value: object, what: str) -> tuple[int, ...]:
    """A peer's list of algorithm ids, bounded before anything else is read.

    Unknown ids are kept (a newer peer may name algorithms this version lacks; they simply
    never match); repeats, non-integers and lists over MAX_ALGORITHM_LIST are refused."""
    if type(value) is not list:
        raise TransitError(f"{what} must be an array of algorithm ids")
    if len(value) > MAX_ALGORITHM_LIST:
        raise TransitError(f"{what} has {len(value)} ids; at most {MAX_ALGORITHM_LIST}",
                           ErrorCode.TOO_LARGE)
    ids: list[int] = []
    for item in value:
        if type(item) is not int or not 0 <= item <= 0xFFFF:
            raise TransitError(f"{what}: algorithm ids are integers 0-65535")
        if item in ids:
            raise TransitError(f"{what}: algorithm {item} appears twice")
        ids.append(item)
    return tuple(ids)
