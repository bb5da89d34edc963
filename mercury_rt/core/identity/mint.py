"""Issuing cluster IDs and minting EIDs (the only code that signs identity objects).

Cluster-ID lifecycle, as the design requires:
  * new cluster:      version 1, key version 1, master certifies the cluster key.
  * rotate key:       needs the master; version+1; the new key's key version = new version.
  * change addresses: needs only the current cluster key (the master may stay offline);
                      version+1; same key, same certificate.
Every issued cluster ID is fully populated (keys, certificate, signature); EIDs embed a
projection of it chosen by the mint options or the cluster-wide defaults.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from carbon.cbor import CodecError
from carbon.error_codes import ErrorCode
from carbon.principal import Persona
from mercury_rt.core.identity.addresses import ServerAddress
from mercury_rt.core.identity.cluster_id import (
    FORM_CERT,
    FORM_CLUSTER_KEY,
    FORM_MASTER_KEY,
    FORM_SIGNATURE,
    ClusterId,
    KeyRef,
)
from mercury_rt.core.identity.eid import AcceptedAlgorithm, Eid, OperationHint, check_optional_parts
from mercury_rt.core.identity.errors import IdentityError
from mercury_rt.core.identity.keys import SIGNATURE_SIZE, Purpose, public_bytes, sign


def issue_cluster_id(master: Ed25519PrivateKey, cluster_key: Ed25519PrivateKey,
                     addresses: Sequence[ServerAddress], version: int = 1,
                     key_version: int | None = None) -> ClusterId:
    """A fully signed cluster ID whose cluster key is certified by `master`."""
    key_version = version if key_version is None else key_version
    unsigned = ClusterId(KeyRef.of_key(public_bytes(master)), version,
                         KeyRef.of_key(public_bytes(cluster_key)), key_version, None,
                         tuple(addresses), None)
    cert = sign(master, Purpose.CLUSTER_KEY_CERT, unsigned.cert_message())
    return _sign_version(replace(unsigned, cert=cert), cluster_key)


def rotate_cluster_key(current: ClusterId, master: Ed25519PrivateKey,
                       new_cluster_key: Ed25519PrivateKey) -> ClusterId:
    """The next version with a new cluster key, certified by the master."""
    _require_key(current.master, master, "master key", ErrorCode.MASTER_MISMATCH)
    if public_bytes(new_cluster_key) == current.cluster_key.key:
        raise IdentityError("the new cluster key is the current one; rotation needs a new key",
                            ErrorCode.KEY_VERSION_CONFLICT)
    version = current.version + 1
    return issue_cluster_id(master, new_cluster_key, current.addresses, version, version)


def change_addresses(current: ClusterId, cluster_key: Ed25519PrivateKey,
                     addresses: Sequence[ServerAddress]) -> ClusterId:
    """The next version with a new server list, signed by the current cluster key only."""
    _require_key(current.cluster_key, cluster_key, "cluster key", ErrorCode.CLUSTER_KEY_MISMATCH)
    if current.cert is None:
        raise IdentityError("current cluster ID lacks its master certificate; cannot publish "
                            "a new version from it", ErrorCode.CLUSTER_ID_UNSIGNED)
    unsigned = replace(current, version=current.version + 1, addresses=tuple(addresses),
                       signature=None)
    return _sign_version(unsigned, cluster_key)


def _sign_version(unsigned: ClusterId, cluster_key: Ed25519PrivateKey) -> ClusterId:
    return replace(unsigned, signature=sign(cluster_key, Purpose.CLUSTER_ID,
                                            unsigned.core_message()))


def _require_key(ref: KeyRef, key: Ed25519PrivateKey, what: str, code: ErrorCode) -> None:
    if KeyRef.of_key(public_bytes(key)).hash != ref.hash:
        raise IdentityError(f"the {what} given is not this cluster ID's {what}", code)


@dataclass(frozen=True, slots=True)
class MintDefaults:
    """Cluster-wide choices used when the entity asking for its EID does not say."""

    full_keys: bool = True
    include_cert: bool = True
    include_hints: bool = True
    include_cluster_signature: bool = False
    hints: tuple[OperationHint, ...] | None = None
    algorithms: tuple[AcceptedAlgorithm, ...] | None = None


@dataclass(frozen=True, slots=True)
class MintOptions:
    """Per-request choices; None means "use the cluster default"."""

    full_keys: bool | None = None
    include_cert: bool | None = None
    include_hints: bool | None = None
    include_cluster_signature: bool | None = None


def _pick(choice: bool | None, default: bool) -> bool:
    return default if choice is None else choice


def embedded_form(options: MintOptions, defaults: MintDefaults) -> int:
    """Which cluster-ID parts go into the EID (FORM_* bits)."""
    full = _pick(options.full_keys, defaults.full_keys)
    cert = _pick(options.include_cert, defaults.include_cert and full)
    sig = _pick(options.include_cluster_signature, defaults.include_cluster_signature)
    return ((FORM_MASTER_KEY | FORM_CLUSTER_KEY if full else 0)
            | (FORM_CERT if cert else 0) | (FORM_SIGNATURE if sig else 0))


def mint_eid(cluster_key: Ed25519PrivateKey, cluster_id: ClusterId, local: bytes, *,
             persona: Persona | None = None,
             hints: Sequence[OperationHint] | None = None,
             algorithms: Sequence[AcceptedAlgorithm] | None = None,
             options: MintOptions = MintOptions(),
             defaults: MintDefaults = MintDefaults()) -> Eid:
    """Sign an EID for `local` under `cluster_id` (which must be this key's current ID)."""
    _require_key(cluster_id.cluster_key, cluster_key, "cluster key", ErrorCode.CLUSTER_KEY_MISMATCH)
    with_hints = _pick(options.include_hints, defaults.include_hints)
    chosen_hints = tuple(hints) if hints is not None else defaults.hints
    chosen_algorithms = tuple(algorithms) if algorithms is not None else defaults.algorithms
    if not with_hints:
        chosen_hints = chosen_algorithms = None
    check_optional_parts(local, chosen_hints, chosen_algorithms)
    embedded = cluster_id.project(embedded_form(options, defaults))
    unsigned = Eid(embedded, bytes(local), persona, chosen_hints, chosen_algorithms,
                   signature=bytes(SIGNATURE_SIZE))
    eid = replace(unsigned, signature=sign(cluster_key, Purpose.EID, unsigned.signed_message()))
    _check_decodable(eid)
    return eid


def _check_decodable(eid: Eid) -> None:
    """Refuse to issue an EID that peers' strict decoders would reject (e.g. persona
    parameters over the size limit, integers beyond 64 bits, nesting too deep)."""
    try:
        Eid.decode(eid.encode())
    except (IdentityError, CodecError) as exc:
        raise IdentityError(f"cannot mint this EID: {exc.message}", exc.code) from None
