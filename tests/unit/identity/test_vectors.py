"""The worked example of docs/protocol.md section 4.11, reproduced byte for byte."""

from __future__ import annotations

import json
from pathlib import Path

from mercury_rt.core.identity import (
    ClusterId,
    EidVerifier,
    Level,
    MintOptions,
    ServerAddress,
    eid_from_text,
    eid_to_text,
    issue_cluster_id,
    mint_eid,
    private_key_from_bytes,
    public_bytes,
)

EXAMPLE = json.loads((Path(__file__).parents[2] / "vectors" / "identity_example.json")
                     .read_text())


def test_worked_example_matches_the_document() -> None:
    """Minting from the documented keys gives the documented bytes and text."""
    master = private_key_from_bytes(bytes.fromhex(EXAMPLE["master_private"]))
    cluster = private_key_from_bytes(bytes.fromhex(EXAMPLE["cluster_private"]))
    cid = issue_cluster_id(master, cluster, [ServerAddress.parse(EXAMPLE["address"])])
    eid = mint_eid(cluster, cid, EXAMPLE["local"].encode(),
                   options=MintOptions(full_keys=False, include_hints=False))
    assert public_bytes(master).hex() == EXAMPLE["master_public"]
    assert cid.master_hash.hex() == EXAMPLE["master_hash"]
    assert cid.cluster_key_hash.hex() == EXAMPLE["cluster_key_hash"]
    assert cid.encode().hex() == EXAMPLE["cluster_id"]
    assert eid.encode().hex() == EXAMPLE["eid_hashes_only"]
    assert eid_to_text(eid) == EXAMPLE["eid_text"]


def test_worked_example_verifies_after_keys_are_supplied() -> None:
    """The documented EID is unverifiable alone and fully verified with the keys."""
    data = eid_from_text(EXAMPLE["eid_text"])
    verifier = EidVerifier()
    assert verifier.verify(data).level is Level.UNVERIFIABLE_UNTIL_KEYS_FETCHED
    cid = ClusterId.decode(bytes.fromhex(EXAMPLE["cluster_id"]))
    assert cid.cert is not None and cid.cluster_key.key is not None
    verifier.add_keys(bytes.fromhex(EXAMPLE["master_public"]), cid.cluster_key.key, 1, cid.cert)
    result = verifier.verify(data)
    assert result.level is Level.MASTER_MATCHES_HASH
    assert result.principal.local == b"alice"
