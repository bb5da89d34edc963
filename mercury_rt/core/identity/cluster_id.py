"""Cluster IDs: who a cluster is (its master key hash), which key it signs with now, and
where its inter-cluster server nodes are.

Wire form (canonical CBOR array, see docs/protocol.md section 4):
  [master KeyRef, version, cluster KeyRef, key_version, cert|null, [address...], sig|null]
A KeyRef is a byte string whose first byte says what follows: 0x00 = the 32-byte Ed25519
public key itself; otherwise a hash-algorithm byte (0x01 = SHA-256) and the digest. The
cluster's identity is always the SHA-256 tagged hash of the master key (`master_hash`),
whichever form is carried, so full-key and hashes-only copies name the same cluster.

`cert` is the master's signature over (master hash, cluster key hash, key_version), where
key_version is the version that introduced the cluster key; `sig` is the cluster key's
signature over the form-independent core (master hash, version, cluster key hash,
key_version, addresses). Both therefore verify the same on either form, once keys are known.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from carbon import cbor
from carbon.cbor import Value
from carbon.error_codes import ErrorCode
from mercury_rt.core.identity.addresses import ServerAddress
from mercury_rt.core.identity.errors import IdentityError, KeysUnavailableError
from mercury_rt.core.identity.fields import U32_MAX, expect_bytes, expect_int, expect_list
from mercury_rt.core.identity.keys import (
    DEFAULT_ALGORITHM,
    PUBLIC_KEY_SIZE,
    SIGNATURE_SIZE,
    check_tagged_hash,
    tagged_hash,
)

KEY_INLINE = 0x00
MAX_ADDRESSES = 32
CLUSTER_ID_FIELDS = 7

FORM_MASTER_KEY = 1
FORM_CLUSTER_KEY = 2
FORM_CERT = 4
FORM_SIGNATURE = 8
FORM_FULL = FORM_MASTER_KEY | FORM_CLUSTER_KEY | FORM_CERT | FORM_SIGNATURE


@dataclass(frozen=True, slots=True)
class KeyRef:
    """A public key or only its hash; `hash` (SHA-256, tagged) is always known."""

    hash: bytes
    key: bytes | None = None

    def __post_init__(self) -> None:
        check_tagged_hash(self.hash, "key hash")
        if self.key is not None and len(self.key) != PUBLIC_KEY_SIZE:
            raise IdentityError(f"public key is {len(self.key)} bytes; expected 32",
                                ErrorCode.BAD_FIELD_LENGTH)

    @classmethod
    def of_key(cls, key: bytes) -> KeyRef:
        """A full-key reference; the hash is computed here."""
        if len(key) != PUBLIC_KEY_SIZE:
            raise IdentityError(f"public key is {len(key)} bytes; expected 32",
                                ErrorCode.BAD_FIELD_LENGTH)
        return cls(tagged_hash(key), key)

    def encode(self) -> bytes:
        """0x00 + key when the key is present, else the tagged hash."""
        return bytes((KEY_INLINE,)) + self.key if self.key is not None else self.hash

    @classmethod
    def decode(cls, value: Value, what: str) -> KeyRef:
        """Decode a KeyRef field; unknown first bytes are unknown hash algorithms."""
        raw = expect_bytes(value, what, max_size=64, min_size=1)
        if raw[0] == KEY_INLINE:
            return cls.of_key(expect_bytes(raw[1:], f"{what} (inline key)", size=PUBLIC_KEY_SIZE))
        if check_tagged_hash(raw, what) is not DEFAULT_ALGORITHM:
            raise IdentityError(f"{what} must use SHA-256 (0x01) in format 1",
                                ErrorCode.UNKNOWN_HASH_ALGORITHM)
        return cls(raw)

    def hashed(self) -> KeyRef:
        """The hash-only form of this reference."""
        return KeyRef(self.hash)


@dataclass(frozen=True, slots=True)
class ClusterId:
    """One version of a cluster's identity, keys and server list."""

    master: KeyRef
    version: int
    cluster_key: KeyRef
    key_version: int
    cert: bytes | None
    addresses: tuple[ServerAddress, ...]
    signature: bytes | None

    def __post_init__(self) -> None:
        if not 0 <= self.key_version <= self.version <= U32_MAX:
            raise IdentityError(f"key version {self.key_version} must be <= cluster-ID version "
                                f"{self.version} <= {U32_MAX}")
        for name in ("cert", "signature"):
            value = getattr(self, name)
            if value is not None and len(value) != SIGNATURE_SIZE:
                raise IdentityError(f"cluster-ID {name} is {len(value)} bytes; expected "
                                    f"{SIGNATURE_SIZE}", ErrorCode.BAD_FIELD_LENGTH)
        if len(self.addresses) > MAX_ADDRESSES:
            raise IdentityError(f"{len(self.addresses)} server addresses; at most "
                                f"{MAX_ADDRESSES}", ErrorCode.FIELD_TOO_LARGE)

    @property
    def master_hash(self) -> bytes:
        """The cluster's identity: tagged SHA-256 of the master public key."""
        return self.master.hash

    @property
    def cluster_key_hash(self) -> bytes:
        """Tagged SHA-256 of the cluster public key."""
        return self.cluster_key.hash

    @property
    def form(self) -> int:
        """Bit set of the optional/full parts carried (FORM_* constants)."""
        return ((FORM_MASTER_KEY if self.master.key is not None else 0)
                | (FORM_CLUSTER_KEY if self.cluster_key.key is not None else 0)
                | (FORM_CERT if self.cert is not None else 0)
                | (FORM_SIGNATURE if self.signature is not None else 0))

    def core_message(self) -> bytes:
        """What the cluster key signs: everything but keys, cert and signature, in hash form."""
        return cbor.dumps([self.master_hash, self.version, self.cluster_key_hash,
                           self.key_version, [a.to_value() for a in self.addresses]])

    def cert_message(self) -> bytes:
        """What the master signs to certify the cluster key."""
        return cert_message(self.master_hash, self.cluster_key_hash, self.key_version)

    def project(self, form: int) -> ClusterId:
        """This cluster ID carrying exactly the parts in `form` (KEYS_UNAVAILABLE if missing)."""
        missing = form & ~self.form
        if missing:
            raise KeysUnavailableError(f"cannot produce form {form:#x}: parts {missing:#x} "
                                       "are not known for this cluster ID")
        return replace(
            self,
            master=self.master if form & FORM_MASTER_KEY else self.master.hashed(),
            cluster_key=self.cluster_key if form & FORM_CLUSTER_KEY else self.cluster_key.hashed(),
            cert=self.cert if form & FORM_CERT else None,
            signature=self.signature if form & FORM_SIGNATURE else None)

    def to_value(self) -> list[Value]:
        """The CBOR array (see module docstring)."""
        return [self.master.encode(), self.version, self.cluster_key.encode(), self.key_version,
                self.cert, [a.to_value() for a in self.addresses], self.signature]

    def encode(self) -> bytes:
        """Canonical CBOR bytes."""
        return cbor.dumps(self.to_value())

    @classmethod
    def from_value(cls, value: Value) -> ClusterId:
        """Decode the array form, checking every field's type, length and bound."""
        items = expect_list(value, "cluster ID", length=CLUSTER_ID_FIELDS)
        addresses = expect_list(items[5], "server address list", max_length=MAX_ADDRESSES)
        return cls(
            master=KeyRef.decode(items[0], "master key"),
            version=expect_int(items[1], "cluster-ID version"),
            cluster_key=KeyRef.decode(items[2], "cluster key"),
            key_version=expect_int(items[3], "cluster key version"),
            cert=_optional_signature(items[4], "master certificate"),
            addresses=tuple(ServerAddress.from_value(a) for a in addresses),
            signature=_optional_signature(items[6], "cluster-ID signature"))

    @classmethod
    def decode(cls, data: bytes) -> ClusterId:
        """Strictly decode standalone cluster-ID bytes."""
        return cls.from_value(cbor.loads(data, IDENTITY_LIMITS))


def cert_message(master_hash: bytes, cluster_key_hash: bytes, key_version: int) -> bytes:
    """The bytes a master certificate covers (domain prefix added by keys.sign)."""
    return cbor.dumps([master_hash, cluster_key_hash, key_version])


def _optional_signature(value: Value, what: str) -> bytes | None:
    return None if value is None else expect_bytes(value, what, size=SIGNATURE_SIZE)


IDENTITY_LIMITS = cbor.Limits(max_bytes=16 * 1024, max_depth=12, max_items=2048)
