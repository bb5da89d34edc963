"""Who sent a request: the vouched local principal, or a remote EID to verify.

Identity (EID parsing, signature chains, key caches) is built elsewhere; the gate depends
on it only through `SourceVerifier`, so it can be tested with fakes and so a verification
is a call it can count and skip.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from carbon.error_codes import ErrorCode, MercuryError
from carbon.principal import Principal


class SourceError(MercuryError):
    """An EID that does not verify (bad signature, unknown cluster key, malformed)."""

    code = ErrorCode.SOURCE_UNVERIFIED


@dataclass(frozen=True, slots=True)
class VerifiedSource:
    """A verified EID's access-control identity and its cluster's public key."""

    principal: Principal
    cluster_key: Ed25519PublicKey


class SourceVerifier(Protocol):
    """Verifies an EID's signature chain; raises a MercuryError (e.g. SourceError) if bad."""

    def verify(self, eid: bytes) -> VerifiedSource:
        """The identity the EID proves; implementations cache verified EIDs."""
        ...


@dataclass(frozen=True, slots=True)
class LocalSource:
    """A same-cluster request: the originator as vouched for by the intra-cluster path."""

    principal: Principal


@dataclass(frozen=True, slots=True)
class RemoteSource:
    """A request from another cluster: the source EID it carries, not yet verified."""

    eid: bytes


Source = LocalSource | RemoteSource
