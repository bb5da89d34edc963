"""The transport's hot-path codecs give the same bytes and decisions as the general path.

`encode_request` / `encode_reply` skip building a message object, and `decode_datagram`
checks REQUEST and REPLY inline (`_fast_decode`) before the per-type schemas. Each must
agree with the general path for every input: the same bytes out, and for any array the
same message or the same refusal.
"""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from carbon.cbor import Limits, dumps_flat
from mercury_rt.core.transport import wire as m

U64 = st.integers(0, 2**64 - 1)
U32 = st.integers(0, 2**32 - 1)
PAYLOAD = st.binary(max_size=300)
# fields near and beyond every range limit, and of the wrong kind
FIELD = st.one_of(st.integers(-3, 300), st.sampled_from([2**32 - 1, 2**32, 2**64 - 1, 2**64]),
                  st.binary(max_size=8), st.text(max_size=4))


@given(st.tuples(U64, U32, U64, st.integers(0, 255), U32, U32, PAYLOAD))
def test_encode_request_is_the_bytes_of_a_request(
        fields: tuple[int, int, int, int, int, int, bytes]) -> None:
    assert m.encode_request(*fields) == m.encode(m.Request(*fields))


@given(U64, U32, PAYLOAD)
def test_encode_reply_is_the_bytes_of_a_reply(id_: int, incarnation: int,
                                              payload: bytes) -> None:
    assert m.encode_reply(id_, incarnation, payload) == m.encode(
        m.Reply(id_, incarnation, payload))


def schema_decode(value: list[Any]) -> m.AnyMessage | None:
    """The general path alone: the per-type schema check (None = refused)."""
    schema = m._SCHEMAS[value[1]]
    fields = value[2:]
    if len(fields) != len(schema.fields) or not all(
            check.valid(field) for check, field in zip(schema.fields, fields, strict=True)):
        return None
    return schema.cls(*fields)  # type: ignore[no-any-return]


@given(st.sampled_from([m.MessageType.REQUEST, m.MessageType.REPLY]),
       st.lists(FIELD, min_size=1, max_size=9), PAYLOAD | FIELD)
def test_the_inline_decode_accepts_exactly_what_the_schema_accepts(
        mtype: int, fields: list[Any], last: Any) -> None:
    value = [m.PROTOCOL_VERSION, int(mtype), *fields, last]
    general = schema_decode(list(value))
    assert m._fast_decode(list(value)) in (None, general)
    try:
        decoded: m.AnyMessage | None = m.decode_datagram(dumps_flat(value), Limits())
    except m.MessageError:
        decoded = None
    assert decoded == general


@given(st.builds(m.Request, U64, U32, U64, st.integers(0, 255), U32, U32, PAYLOAD)
       | st.builds(m.Reply, U64, U32, PAYLOAD))
def test_every_valid_request_and_reply_takes_the_inline_path(
        message: m.Request | m.Reply) -> None:
    value = [m.PROTOCOL_VERSION, int(m._TYPE_OF[type(message)]),
             *(getattr(message, name) for name in message.__slots__)]
    assert m._fast_decode(value) == message == m.decode_datagram(m.encode(message),
                                                                 Limits())
