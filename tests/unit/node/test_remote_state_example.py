"""The remote-state example of docs/protocol.md 6.10, parsed from the document and
recomputed by the code (issue 16 item 17): one-byte length prefixes, and keys and values
as byte strings holding canonical tuple encodings."""

from __future__ import annotations

from pathlib import Path

from carbon import cbor
from carbon.symbols import Symbol
from carbon.tuples import encode_tuple
from mercury_rt.core.node import decode_image, encode_state_commit, encode_state_fetch
from tungsten.memory import MemoryStore
from tungsten.remote import read_image
from tungsten.staged import EntityChanges

DOC = (Path(__file__).parents[3] / "docs" / "protocol.md").read_text()
SECTION = DOC[DOC.index("### 6.10 Remote state"):DOC.index("## 7. Security gate")]
RAN = Symbol("/demo/echo/ran")


def _documented(label: str) -> bytes:
    block = SECTION[SECTION.index("fetch request"):].split("```")[0]
    line = next(x for x in block.splitlines() if x.startswith(label))
    return bytes.fromhex(line[len(label):].strip())


def test_the_documented_fetch_image_and_commit_are_the_real_bytes() -> None:
    store = MemoryStore()
    with store.writing() as txn:
        txn.put(b"dave", RAN, ("hi",), ("r1",))
    with store.reading() as view:
        image = cbor.dumps(read_image(view, b"dave"))
    assert _documented("fetch request") == encode_state_fetch(b"dave")
    assert _documented("image (key 5)") == image
    key, value = cbor.loads(image)[0]  # type: ignore[index, misc]
    assert key == bytes([len(RAN.text)]) + RAN.text.encode() + encode_tuple(("hi",))
    assert value == encode_tuple(("r1",))
    assert decode_image(b"dave", image).get(b"dave", RAN, ("hi",)) == ("r1",)
    changes = EntityChanges(b"dave", ((RAN, ("hi",), ("r1",)),), (),
                            ((RAN, ("yo",), ("r2",)),))
    assert _documented("commit request") == encode_state_commit(changes)
