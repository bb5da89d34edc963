"""A call to an entity on this node skips decoding what it has just encoded: the
request's decoded form (`decoded_plain`) is exactly what decoding its message gives, and
anything it cannot vouch for goes the general way.

For every request, `decoded_plain` is None or equal to
`decode_node_request(encode_operation(body))`, and every plain, in-bounds request takes
the shortcut; refusals (fields out of bounds) always come from the general decode.
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from carbon.error_codes import MercuryError
from carbon.principal import Persona, Principal
from carbon.symbols import Symbol
from mercury_rt.core.connections import ConnectionField, ConnectionForm
from mercury_rt.core.node import NodeRequest, decode_node_request, encode_operation
from mercury_rt.core.node.messages import MAX_DELEGATION, MAX_MESSAGE_ID, decoded_plain

NUMBER = st.one_of(st.integers(0, 2**32 - 1), st.sampled_from([2**32, 2**40, 2**64 - 1]))
SMALL = st.binary(max_size=40)
PERSONA = st.none() | st.builds(Persona, st.just(Symbol("/persona/vip")),
                                st.none() | st.integers(-5, 5))
REQUESTS = st.builds(
    NodeRequest, SMALL, NUMBER, NUMBER, st.binary(max_size=200), NUMBER,
    source=st.none() | SMALL,
    vouched=st.none() | st.builds(Principal, SMALL, SMALL, PERSONA),
    delegation=st.lists(SMALL, max_size=MAX_DELEGATION + 1).map(tuple),
    transit=st.integers(0, 3),
    message_id=st.none() | st.binary(max_size=MAX_MESSAGE_ID + 1),
    connection=st.none() | st.just(ConnectionField(ConnectionForm.USE, b"c" * 8)))


def general(request: NodeRequest) -> object:
    try:
        return decode_node_request(encode_operation(request.body()))
    except MercuryError as exc:
        return exc.code


@given(REQUESTS)
def test_the_shortcut_gives_what_decoding_gives_or_steps_aside(request: NodeRequest) -> None:
    try:
        body = request.body()
    except MercuryError:  # not encodable: such a call fails before any shortcut
        return
    known = decoded_plain(request, body)
    if known is not None:
        assert known == general(request)


@given(st.builds(NodeRequest, SMALL, st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1),
                 st.binary(max_size=200), st.integers(0, 2**32 - 1),
                 vouched=st.builds(Principal, SMALL, SMALL),
                 delegation=st.lists(SMALL, max_size=MAX_DELEGATION).map(tuple),
                 message_id=st.none() | st.binary(min_size=1, max_size=MAX_MESSAGE_ID)))
def test_every_plain_local_request_takes_the_shortcut(request: NodeRequest) -> None:
    known = decoded_plain(request, request.body())
    assert known is not None and known == general(request)
