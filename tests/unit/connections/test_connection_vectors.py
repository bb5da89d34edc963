"""The byte-exact connection example of docs/protocol.md 5.9 (tests/vectors)."""

from __future__ import annotations

import json
from pathlib import Path

from carbon import cbor
from carbon.principal import Principal
from mercury_rt.core.connections import (
    ConnectionField,
    ConnectionForm,
    OpenReply,
    Reservation,
    decode_field,
    decode_open_reply,
)
from mercury_rt.core.node import NodeRequest, decode_node_request, encode_operation

VECTORS = json.loads((Path(__file__).parents[2] / "vectors" / "connection_example.json")
                     .read_text())
CID = bytes.fromhex(VECTORS["connection_id"])
OPEN = ConnectionField(ConnectionForm.OPEN, CID, ((1, "/test/hear/v1"),), False,
                       Reservation(65536, 16384))


def _hex(value: object) -> str:
    return cbor.dumps(value).hex()  # type: ignore[arg-type]


def test_the_three_forms_of_key_10_encode_as_documented() -> None:
    assert _hex(OPEN.to_value()) == VECTORS["open_field"]
    assert _hex(ConnectionField(ConnectionForm.USE, CID).to_value()) == VECTORS["use_field"]
    assert _hex(ConnectionField(ConnectionForm.CLOSE, CID).to_value()) == \
        VECTORS["close_field"]
    for name in ("open_field", "use_field", "close_field"):
        field = decode_field(cbor.loads(bytes.fromhex(VECTORS[name])))
        assert field.connection_id == CID
    assert decode_field(cbor.loads(bytes.fromhex(VECTORS["open_field"]))) == OPEN


def test_the_open_request_and_its_reply_are_byte_exact() -> None:
    request = NodeRequest(b"carol-eid", 2, 1, cbor.dumps("alice"), 1,
                          vouched=Principal(b"\x01" * 3, b"alice"), connection=OPEN)
    assert request.body().hex() == VECTORS["open_body"]
    assert encode_operation(request.body()).hex() == VECTORS["open_request"]
    decoded = decode_node_request(bytes.fromhex(VECTORS["open_request"]))
    assert decoded.request == request  # type: ignore[union-attr]
    reply = OpenReply(cbor.dumps("welcome alice"), ((1, "/test/talk/v1"),),
                      Reservation(65536, 16384))
    assert reply.encode().hex() == VECTORS["open_reply_payload"]
    assert decode_open_reply(bytes.fromhex(VECTORS["open_reply_payload"])) == reply
