"""The worked example of docs/protocol.md section 4.11, reproduced byte for byte."""

from __future__ import annotations

import json
import re
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


DOC = (Path(__file__).parents[3] / "docs" / "protocol.md").read_text()
WORKED = DOC[DOC.index("### 4.11 Worked example"):DOC.index("## 5. Entities")]


def _block_after(marker: str) -> str:
    """The first fenced block after `marker` in section 4.11."""
    return WORKED[WORKED.index(marker):].split("```")[1]


def _listing_pattern(block: str) -> re.Pattern[str]:
    """The hex column of an annotated listing (text before a double space), with each
    `a…b` elision standing for any hex digits between a and b."""
    parts = []
    for line in block.strip("\n").splitlines():
        column = re.split(r"\s{2,}", line.strip())[0]
        for token in column.split():
            head, _, tail = token.partition("…")
            parts.append(re.escape(head) + ("[0-9a-f]*" + re.escape(tail) if _ else ""))
    return re.compile("".join(parts))


def test_the_documents_hex_blocks_and_listings_are_the_real_bytes() -> None:
    """protocol.md 4.11 as printed (issue 16 item 10): the full hex block is the EID,
    byte for byte; each annotated listing matches its bytes; the stated lengths hold."""
    eid, cid = EXAMPLE["eid_hashes_only"], EXAMPLE["cluster_id"]
    assert "".join(_block_after("Full hex:").split()) == eid
    assert _block_after("Text form:").strip() == EXAMPLE["eid_text"]
    assert _listing_pattern(_block_after("Hashes-only EID for")).fullmatch(eid)
    assert _listing_pattern(_block_after("Standalone cluster ID")).fullmatch(cid)
    assert f"Hashes-only EID for `alice` without optional parts ({len(eid) // 2} bytes)" \
        in WORKED
    assert f"Standalone cluster ID, version 1 ({len(cid) // 2} bytes)" in WORKED
