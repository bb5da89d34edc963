"""The byte-exact examples of docs/protocol.md section 3 encode and decode as documented."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mercury_rt.core.transport import TransportConfig
from mercury_rt.core.transport import wire as m

VECTORS = json.loads((Path(__file__).parents[2] / "vectors" / "transport.json").read_text())


def _build(spec: list[object]) -> m.AnyMessage:
    name, *fields = spec
    cls = {"REQUEST": m.Request, "REPLY": m.Reply, "ACK": m.Ack, "FRAG_ACK": m.FragAck}[
        str(name)]
    args = [bytes.fromhex(f) if isinstance(f, str) else f for f in fields]
    if cls in (m.Ack, m.FragAck):
        args[0] = m.Kind(args[0])
    return cls(*args)  # type: ignore[arg-type]


@pytest.mark.parametrize("vector", VECTORS["vectors"], ids=lambda v: v["name"])
def test_documented_vectors_encode_and_decode_exactly(vector: dict[str, object]) -> None:
    message = _build(vector["message"])  # type: ignore[arg-type]
    assert m.encode(message).hex() == vector["hex"]
    decoded = m.decode_datagram(bytes.fromhex(str(vector["hex"])), TransportConfig().limits)
    assert decoded == message


def test_protocol_doc_shows_the_same_bytes() -> None:
    doc = (Path(__file__).parents[3] / "docs" / "protocol.md").read_text()
    assert "89 01 01 1b 1b2c3d4e00000000 19 7530 1b 1b2c3d4e00000000 01 00 00 44 70696e67" in doc
