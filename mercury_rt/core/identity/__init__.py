"""Identity: who a cluster or an entity is, and the proof that says so (pure, no clock).

Everything that decides whether an identity object is genuine lives here:
- cluster_id.py: the cluster ID. Its master key hash is the cluster's identity; it carries
  a version, the cluster key with the master's certificate, and the server address list,
  in full or hash-only forms that verify the same.
- addresses.py: where a cluster is reached: `Endpoint` (host, UDP port) and the SRV-style
  `ServerAddress` a cluster ID lists; endpoints compare by host and port only.
- eid.py: the EID, an entity's signed address; only (master hash, local part, persona)
  name the entity (`Eid.principal`), the rest is proof and hints.
- keys.py: Ed25519 keys, domain-separated signatures (`Purpose`: a signature made for one
  purpose never verifies as another) and algorithm-tagged hashes.
- keyring.py: the key ring, holding only keys that verified (bounded per cluster and
  overall); standalone cluster-ID verification, rotated-out key detection, and whether one
  cluster ID supersedes another.
- mint.py: the only code that signs identity objects: new cluster IDs, key rotation (needs
  the master), address changes (the cluster key alone), EIDs.
- live.py: which cluster-ID version is live among the trusted history and versions nodes
  recorded (each verified first), and the number the next version takes.
- seed.py: seed phrases (BIP39) and the SLIP-0010 derivation of master and cluster keys.
- verification.py: EID verification levels, and the result cache bounded by entries and
  bytes, valid only while the ring's knowledge of that cluster is unchanged.
- text.py: the `meid1`/`mcid1` text forms with their checksum, and readable dumps;
  storage.py: the storage form that keeps each cluster ID once per version.
- errors.py: the exception family, codes 300-399; fields.py: typed readers of decoded CBOR.

This package does not know where a request goes (routing imports identity, never the
reverse), what a policy allows (gate, policy), or where keys are kept on disk
(mercury_rt.config.keyfiles).
"""

from mercury_rt.core.identity.addresses import (
    Endpoint,
    EndpointKey,
    IPAddress,
    ServerAddress,
    endpoint_key,
    format_endpoint,
)
from mercury_rt.core.identity.cluster_id import (
    FORM_FULL,
    FORM_MASTER_KEY,
    ClusterId,
    KeyRef,
)
from mercury_rt.core.identity.eid import (
    AcceptedAlgorithm,
    Eid,
    OperationHint,
)
from mercury_rt.core.identity.errors import (
    EidTextError,
    IdentityError,
    KeyFileError,
    KeysUnavailableError,
    SeedPhraseError,
)
from mercury_rt.core.identity.keyring import (
    KeyRing,
    check_supersedes,
    supersedes,
    verify_cluster_id,
)
from mercury_rt.core.identity.keys import (
    PUBLIC_KEY_SIZE,
    SIGNATURE_SIZE,
    Purpose,
    load_public_key,
    private_bytes,
    private_key_from_bytes,
    public_bytes,
    sign,
    tagged_hash,
    verify,
    verify_raw,
)
from mercury_rt.core.identity.mint import (
    MintDefaults,
    MintOptions,
    change_addresses,
    issue_cluster_id,
    mint_eid,
    rotate_cluster_key,
)
from mercury_rt.core.identity.seed import (
    MasterSecret,
    bip39_seed,
    master_from_phrase,
    new_phrase,
    normalize_phrase,
    slip10_ed25519,
)
from mercury_rt.core.identity.storage import (
    rebuild_eid,
    strip_cluster_id,
)
from mercury_rt.core.identity.text import (
    cluster_id_from_text,
    cluster_id_to_text,
    dump_cluster_id,
    dump_eid,
    eid_from_text,
    eid_to_text,
)
from mercury_rt.core.identity.verification import (
    EidVerifier,
    Level,
    signed_message_of,
)

__all__ = [
    "FORM_FULL",
    "FORM_MASTER_KEY",
    "PUBLIC_KEY_SIZE",
    "SIGNATURE_SIZE",
    "AcceptedAlgorithm",
    "ClusterId",
    "Eid",
    "EidTextError",
    "EidVerifier",
    "Endpoint",
    "EndpointKey",
    "IPAddress",
    "IdentityError",
    "KeyFileError",
    "KeyRef",
    "KeyRing",
    "KeysUnavailableError",
    "Level",
    "MasterSecret",
    "MintDefaults",
    "MintOptions",
    "OperationHint",
    "Purpose",
    "SeedPhraseError",
    "ServerAddress",
    "bip39_seed",
    "change_addresses",
    "check_supersedes",
    "cluster_id_from_text",
    "cluster_id_to_text",
    "dump_cluster_id",
    "dump_eid",
    "eid_from_text",
    "eid_to_text",
    "endpoint_key",
    "format_endpoint",
    "issue_cluster_id",
    "load_public_key",
    "master_from_phrase",
    "mint_eid",
    "new_phrase",
    "normalize_phrase",
    "private_bytes",
    "private_key_from_bytes",
    "public_bytes",
    "rebuild_eid",
    "rotate_cluster_key",
    "sign",
    "signed_message_of",
    "slip10_ed25519",
    "strip_cluster_id",
    "supersedes",
    "tagged_hash",
    "verify",
    "verify_cluster_id",
    "verify_raw",
]
