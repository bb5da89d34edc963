"""TODO face.
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
    show_hash,
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
    "show_hash",
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
