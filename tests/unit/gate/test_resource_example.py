"""The hashcash resource example of docs/protocol.md 7.3, parsed from the document and
recomputed by the code (issue 16 item 11): target tag input and value, request digest
over the exact body bytes, and the resource string."""

from __future__ import annotations

import json
from pathlib import Path

from carbon import cbor
from mercury_rt.core.gate.hashcash import request_digest, stamp_resource, target_tag_of
from mercury_rt.core.node import NodeRequest

ROOT = Path(__file__).parents[3]
DOC = (ROOT / "docs" / "protocol.md").read_text()
SECTION = " ".join(DOC[DOC.index("### 7.3 Hashcash stamps"):DOC.index("### 7.4")].split())
EXAMPLE = json.loads((ROOT / "tests" / "vectors" / "identity_example.json").read_text())


def test_the_documented_resource_example_is_what_the_code_computes() -> None:
    master = bytes.fromhex(EXAMPLE["master_hash"])
    eid = bytes.fromhex(EXAMPLE["eid_hashes_only"])
    assert len(master) == 33 and master[0] == 1, "the tagged form of 4.1"
    tag = target_tag_of(master, b"alice", None)
    body = NodeRequest(eid, 1, 2, b"\xf6", version=1, source=eid).body()
    digest = request_digest(body).hex()
    tag_input = cbor.dumps(["mrt1-target", master, b"alice", None]).hex()
    assert f"the tag input is `{tag_input}`" in SECTION
    assert f"and the target tag `{tag}`" in SECTION
    assert f"{len(body)} bytes in all) the request digest is `{digest}`" in SECTION
    assert f"the resource `{stamp_resource(tag, 1, 2, bytes.fromhex(digest))}`" in SECTION
