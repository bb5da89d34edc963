"""Properties of the transit codecs (docs/protocol.md 8.2).

(1) Every form round-trips through its encoder and decoder. (2) Any byte string, and any
mutation of a valid message, either decodes or raises TransitError: nothing else escapes
`decode_request`, `decode_answer`, `decode_inner` or `TransitCert.decode`, and the node's
`open` never raises at all.
"""

from __future__ import annotations

import contextlib

from hypothesis import given
from hypothesis import strategies as st

from mercury_rt.core.transit.algorithms import TransitError, decode_algorithm_list
from mercury_rt.core.transit.certs import TransitCert
from mercury_rt.core.transit.responder import Answered
from mercury_rt.core.transit.wire import (
    MAX_DETAIL,
    MAX_SEQ,
    Init,
    InitInner,
    InitReply,
    KeyQuery,
    KeysAnswer,
    SessionMessage,
    SessionReply,
    TransitRefusal,
    decode_answer,
    decode_inner,
    decode_request,
    encode_init,
    encode_init_reply,
    encode_inner,
    encode_key_query,
    encode_keys,
    encode_refusal,
    encode_session,
    encode_session_reply,
    message_type,
)
from tests.transit_steps_support import responder
from tests.transit_support import CALLER_ADDR, NOW


def sized(low: int, high: int) -> st.SearchStrategy[bytes]:
    return st.binary(min_size=low, max_size=high)


u16 = st.integers(0, 0xFFFF)
seqs = st.integers(0, MAX_SEQ)
key_queries = st.builds(KeyQuery, sized(2, 65), u16, st.integers(0, 2048))
inits = st.builds(Init, u16, sized(8, 8), sized(0, 20), sized(1, 300))
sessions = st.builds(SessionMessage, sized(8, 8), seqs, sized(16, 300))
inners = st.builds(InitInner, sized(8, 8), st.integers(0, 2**63), sized(32, 32),
                   sized(32, 32), sized(2, 65), sized(1, 64), sized(1, 512), sized(64, 64),
                   sized(0, 300))
init_replies = st.builds(InitReply, sized(8, 8), sized(32, 32), sized(16, 300))
session_replies = st.builds(SessionReply, seqs, sized(16, 300))
refusals = st.builds(TransitRefusal, u16, st.text(max_size=MAX_DETAIL),
                     st.one_of(sized(0, 1500), st.integers(0, 2**63)))
keys_answers = st.builds(KeysAnswer, sized(1, 1500))


@given(key_queries)
def test_key_queries_round_trip(query: KeyQuery) -> None:
    assert decode_request(encode_key_query(query.master_hash, query.kem, query.padding)) == \
        query


@given(inits)
def test_inits_round_trip(init: Init) -> None:
    data = encode_init(init)
    assert decode_request(data) == init and message_type(data) == 7


@given(sessions)
def test_session_messages_round_trip(message: SessionMessage) -> None:
    assert decode_request(encode_session(message)) == message


@given(inners)
def test_first_datagram_plaintexts_round_trip(inner: InitInner) -> None:
    assert decode_inner(encode_inner(inner)) == inner


@given(init_replies)
def test_init_replies_round_trip(reply: InitReply) -> None:
    assert decode_answer(encode_init_reply(reply)) == reply


@given(session_replies)
def test_session_replies_round_trip(reply: SessionReply) -> None:
    assert decode_answer(encode_session_reply(reply)) == reply


@given(refusals)
def test_refusals_round_trip(refusal: TransitRefusal) -> None:
    assert decode_answer(encode_refusal(refusal.code, refusal.detail, refusal.extra)) == \
        refusal


@given(keys_answers)
def test_keys_answers_round_trip(answer: KeysAnswer) -> None:
    assert decode_answer(encode_keys(answer.cert)) == answer


def _decodes_or_transit_error(data: bytes) -> None:
    for decode in (decode_request, decode_answer, decode_inner, TransitCert.decode):
        with contextlib.suppress(TransitError):
            decode(data)


@given(st.binary(max_size=400))
def test_any_bytes_decode_or_raise_transit_error(data: bytes) -> None:
    _decodes_or_transit_error(data)


valid_messages = st.one_of(
    key_queries.map(lambda q: encode_key_query(q.master_hash, q.kem, q.padding)),
    inits.map(encode_init), sessions.map(encode_session), inners.map(encode_inner),
    init_replies.map(encode_init_reply), session_replies.map(encode_session_reply),
    refusals.map(lambda r: encode_refusal(r.code, r.detail, r.extra)),
    keys_answers.map(lambda a: encode_keys(a.cert)))


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    """A valid message with bytes changed, cut, or added."""
    data = bytearray(draw(valid_messages))
    for _ in range(draw(st.integers(1, 4))):
        how = draw(st.sampled_from(["flip", "cut", "insert"]))
        at = draw(st.integers(0, len(data)))
        if how == "flip" and at < len(data):
            data[at] = draw(st.integers(0, 255))
        elif how == "cut":
            del data[at:at + draw(st.integers(1, 8))]
        else:
            data[at:at] = draw(st.binary(min_size=1, max_size=8))
    return bytes(data)


@given(mutated())
def test_mutated_messages_decode_or_raise_transit_error(data: bytes) -> None:
    _decodes_or_transit_error(data)


@given(st.one_of(mutated(), st.binary(max_size=200)))
def test_the_node_never_raises_on_peer_bytes(data: bytes) -> None:
    node = responder(NOW, 1)
    node.open(data, CALLER_ADDR, NOW)
    node.open(data, CALLER_ADDR, NOW + 0.5)


@given(st.one_of(st.lists(st.integers(-5, 70_000), max_size=40),
                 st.lists(st.one_of(st.integers(), st.text(), st.none()), max_size=40),
                 st.integers(), st.text()))
def test_algorithm_lists_are_a_tuple_of_distinct_ids_or_a_transit_error(value: object) -> None:
    try:
        ids = decode_algorithm_list(value, "list")
    except TransitError:
        return
    assert isinstance(value, list) and list(ids) == value
    assert len(set(ids)) == len(ids) <= 32 and all(0 <= i <= 0xFFFF for i in ids)


@given(st.one_of(mutated(), st.binary(max_size=200)))
def test_no_answer_exceeds_three_times_the_payload(data: bytes) -> None:
    outcome = responder(NOW, 1).open(data, CALLER_ADDR, NOW)
    if isinstance(outcome, Answered):
        assert len(outcome.reply) <= 3 * len(data)
