"""The transit messages' strict decoding, and how the node answers odd ones (8.2, 8.4).

Peer bytes never raise anything but TransitError out of the codecs, and never anything
at all out of `TransitResponder.open`: they become a coded answer or a counted drop.
"""

from __future__ import annotations

import pytest

from carbon.cbor import dumps_flat
from carbon.error_codes import ErrorCode
from mercury_rt.core.transit.algorithms import (
    MAX_ALGORITHM_LIST,
    TransitError,
    algorithm,
    decode_algorithm_list,
)
from mercury_rt.core.transit.initiator import NeedKey
from mercury_rt.core.transit.responder import Answered, Dropped, Plain, TransitResponder
from mercury_rt.core.transit.wire import (
    INIT,
    KEY_QUERY,
    KEYS,
    MAX_DETAIL,
    MAX_MESSAGE,
    MAX_PADDING,
    MAX_SEQ,
    SESSION,
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
from tests.transit_steps_support import deliver, drive, initiator, prepared, responder
from tests.transit_support import CALLER_ADDR, NODE_ADDR, NODE_HASH, NOW, seeded

INIT_EXAMPLE = Init(1, b"k" * 8, b"t" * 20, b"sealed")
INNER_EXAMPLE = InitInner(b"s" * 8, 1_800_000_000_000, b"e" * 32, b"i" * 32, NODE_HASH,
                          b"node-1", b"cert", b"g" * 64, b"payload")


def refusal_of(outcome: object) -> TransitRefusal:
    """The refusal an outcome answers with."""
    assert isinstance(outcome, Answered)
    decoded = decode_answer(outcome.reply)
    assert isinstance(decoded, TransitRefusal)
    return decoded


def test_every_form_round_trips() -> None:
    assert decode_request(encode_key_query(NODE_HASH, 32, 7)) == KeyQuery(NODE_HASH, 32, 7)
    assert decode_request(encode_init(INIT_EXAMPLE)) == INIT_EXAMPLE
    message = SessionMessage(b"s" * 8, 5, b"c" * 16)
    assert decode_request(encode_session(message)) == message
    assert decode_inner(encode_inner(INNER_EXAMPLE)) == INNER_EXAMPLE
    reply = InitReply(b"s" * 8, b"e" * 32, b"c" * 16)
    assert decode_answer(encode_init_reply(reply)) == reply
    assert decode_answer(encode_session_reply(SessionReply(5, b"c" * 16))) == \
        SessionReply(5, b"c" * 16)
    assert decode_answer(encode_refusal(703, "gone")) == TransitRefusal(703, "gone", b"")
    assert decode_answer(encode_refusal(705, "clock", 12345)) == \
        TransitRefusal(705, "clock", 12345)
    assert decode_answer(encode_keys(b"cert")) == KeysAnswer(b"cert")
    assert message_type(encode_init(INIT_EXAMPLE)) == INIT
    assert message_type(encode_session(message)) == SESSION
    assert message_type(encode_keys(b"c")) == KEYS


@pytest.mark.parametrize("data", [
    encode_init(INIT_EXAMPLE) + b"\x00",
    encode_init(INIT_EXAMPLE)[:-1],
    b"",
    b"\x80",
    b"\xa0",
    dumps_flat(["x", 1]),
    dumps_flat([INIT, "1", b"k" * 8, b"", b"s"]),
    dumps_flat([INIT, -1, b"k" * 8, b"", b"s"]),
    dumps_flat([INIT, 0x10000, b"k" * 8, b"", b"s"]),
    dumps_flat([INIT, 1, b"k" * 7, b"", b"s"]),
    dumps_flat([INIT, 1, b"k" * 9, b"", b"s"]),
    dumps_flat([INIT, 1, b"k" * 8, b"t" * 21, b"s"]),
    dumps_flat([INIT, 1, b"k" * 8, b"", b""]),
    dumps_flat([INIT, 1, b"k" * 8, b""]),
    dumps_flat([INIT, 1, b"k" * 8, b"", b"s", b"extra"]),
    dumps_flat([SESSION, b"s" * 8, MAX_SEQ + 1, b"c" * 16]),
    dumps_flat([SESSION, b"s" * 8, 1, b"c" * 15]),
    dumps_flat([SESSION, b"s" * 7, 1, b"c" * 16]),
    dumps_flat([KEY_QUERY, NODE_HASH, 32, bytes(MAX_PADDING + 1)]),
    dumps_flat([KEY_QUERY, b"h", 32, b""]),
    dumps_flat([KEY_QUERY, NODE_HASH, 32, "pad"]),
    dumps_flat([KEYS, b"cert"]),
    bytes([0x85, INIT, 0x01, 0x48]) + b"k" * 8 + b"\x40\x5a\xff\xff\xff\xff",
    b"\x85\x07\x01\x5f\x41\x00\xff",
    b"\x82\x09\x82\x01\x02",
])
def test_malformed_requests_are_transit_errors(data: bytes) -> None:
    with pytest.raises(TransitError) as err:
        decode_request(data)
    assert err.value.code is ErrorCode.TRANSIT_MALFORMED


def test_an_oversize_message_is_refused_before_decoding() -> None:
    huge = dumps_flat([SESSION, b"s" * 8, 1, bytes(MAX_MESSAGE)])
    with pytest.raises(TransitError):
        decode_request(huge)
    node = responder(NOW, 1)
    outcome = node.open(huge, CALLER_ADDR, NOW)
    assert isinstance(outcome, Dropped) and outcome.code is ErrorCode.TRANSIT_MALFORMED


@pytest.mark.parametrize("data", [
    encode_refusal(703, "x") + b"\x00",
    dumps_flat([12, 703, "x" * (MAX_DETAIL + 1), b""]),
    dumps_flat([12, 703, b"bytes detail", b""]),
    dumps_flat([12, -3, "x", b""]),
    dumps_flat([12, 702, "x", bytes(1501)]),
    dumps_flat([12, 705, "x", -5]),
    dumps_flat([8, b"s" * 8, b"e" * 31, b"c" * 16]),
    dumps_flat([8, b"s" * 8, b"e" * 32, b"c" * 15]),
    dumps_flat([10, b"1", b"c" * 16]),
    dumps_flat([13, b""]),
    dumps_flat([13, bytes(1501)]),
    dumps_flat([INIT, 1, b"k" * 8, b"", b"s"]),
    dumps_flat([9]),
])
def test_malformed_answers_are_transit_errors(data: bytes) -> None:
    with pytest.raises(TransitError):
        decode_answer(data)


def test_refusal_details_are_cut_to_the_bound() -> None:
    decoded = decode_answer(encode_refusal(703, "x" * 1000))
    assert isinstance(decoded, TransitRefusal) and decoded.detail == "x" * MAX_DETAIL


@pytest.mark.parametrize("change", [
    {0: b"s" * 7}, {1: -1}, {1: 2**63 + 1}, {2: b"e" * 31}, {3: b"i" * 33}, {4: b"h"},
    {5: b""}, {6: bytes(513)}, {7: b"g" * 63}, {8: "text"},
])
def test_malformed_first_datagram_plaintexts_are_transit_errors(change: dict[int, object]
                                                                ) -> None:
    items: list[object] = [b"s" * 8, 1, b"e" * 32, b"i" * 32, NODE_HASH, b"n", b"c",
                           b"g" * 64, b"p"]
    decode_inner(dumps_flat(items))  # type: ignore[arg-type]
    for index, value in change.items():
        items[index] = value
    with pytest.raises(TransitError):
        decode_inner(dumps_flat(items))  # type: ignore[arg-type]
    with pytest.raises(TransitError):
        decode_inner(dumps_flat(items[:8]))  # type: ignore[arg-type]


def test_algorithm_lists_are_bounded_before_they_are_read() -> None:
    assert decode_algorithm_list([3, 1, 999], "list") == (3, 1, 999)
    with pytest.raises(TransitError) as err:
        decode_algorithm_list(list(range(5000)), "list")
    assert err.value.code is ErrorCode.TOO_LARGE
    with pytest.raises(TransitError) as err:
        decode_algorithm_list([object()] * (MAX_ALGORITHM_LIST + 1), "list")
    assert err.value.code is ErrorCode.TOO_LARGE
    for bad in ([1, 1], [1, "2"], [True], [-1], [0x10000], (1, 2), {1: 2}, 1):
        with pytest.raises(TransitError) as err:
            decode_algorithm_list(bad, "list")
        assert err.value.code is ErrorCode.TRANSIT_MALFORMED


def test_an_unknown_algorithm_is_708_on_both_sides() -> None:
    with pytest.raises(TransitError) as err:
        algorithm(99)
    assert err.value.code is ErrorCode.UNKNOWN_ALGORITHM
    with pytest.raises(TransitError) as err:
        initiator(3).prepare(NODE_ADDR, NODE_HASH, 99, b"x", NOW)
    assert err.value.code is ErrorCode.UNKNOWN_ALGORITHM
    node = responder(NOW, 1)
    step = prepared(initiator(3), node, b"x", NOW)
    init = decode_request(step.datagram)
    assert isinstance(init, Init)
    unknown = encode_init(Init(99, init.key_id, init.token, init.sealed))
    assert refusal_of(node.open(unknown, CALLER_ADDR, NOW)).code == ErrorCode.UNKNOWN_ALGORITHM
    assert node.session_count == 0


def test_a_key_query_for_an_unknown_kem_or_another_cluster_is_refused() -> None:
    node = responder(NOW, 1)
    unknown = node.open(encode_key_query(NODE_HASH, 0x0010, 600), CALLER_ADDR, NOW)
    assert refusal_of(unknown).code == ErrorCode.UNKNOWN_ALGORITHM
    other = node.open(encode_key_query(b"\x01" + b"\x55" * 32, 0x20, 600), CALLER_ADDR, NOW)
    assert refusal_of(other).code == ErrorCode.UNKNOWN_ENTITY


@pytest.mark.parametrize("alg", [1, 2, 3])
def test_the_padded_key_query_is_answered_within_three_times_its_size(alg: int) -> None:
    node, caller = responder(NOW, 1), initiator(3)
    step = caller.prepare(NODE_ADDR, NODE_HASH, alg, b"x", NOW)
    assert isinstance(step, NeedKey)
    answer = deliver(node, step.query, CALLER_ADDR, NOW)
    assert isinstance(decode_answer(answer), KeysAnswer)
    assert len(answer) <= 3 * len(step.query)
    query = decode_request(step.query)
    assert isinstance(query, KeyQuery)
    for padding in range(query.padding + 1):
        shorter = encode_key_query(query.master_hash, query.kem, padding)
        outcome = node.open(shorter, CALLER_ADDR, NOW)
        assert isinstance(outcome, Answered)
        if 3 * len(shorter) >= len(answer):
            assert outcome.reply == answer
        else:
            refused = refusal_of(outcome)
            assert refused.code == ErrorCode.TRANSIT_MALFORMED and "pad" in refused.detail
    unpadded = node.open(encode_key_query(query.master_hash, query.kem, 0), CALLER_ADDR, NOW)
    assert refusal_of(unpadded).code == ErrorCode.TRANSIT_MALFORMED


def test_the_node_answers_node_messages_outside_a_session_per_port() -> None:
    public = responder(NOW, 1)
    assert refusal_of(public.open(b"\x82\x03\x01", CALLER_ADDR, NOW)).code == \
        ErrorCode.TRANSIT_REQUIRED
    assert refusal_of(public.open(b"garbage", CALLER_ADDR, NOW)).code == \
        ErrorCode.TRANSIT_REQUIRED
    assert isinstance(public.open(b"\x82\x01\x40", CALLER_ADDR, NOW), Plain)
    intra = TransitResponder(public.keys, NODE_HASH, token_secret=b"t" * 32, boot_ms=0,
                             random_bytes=seeded(2), refuse_in_clear=False)
    outcome = intra.open(b"\x82\x03\x01", CALLER_ADDR, NOW)
    assert isinstance(outcome, Dropped) and outcome.code is ErrorCode.TRANSIT_REQUIRED


def test_a_malformed_transit_request_is_a_counted_drop() -> None:
    node = responder(NOW, 1)
    for data in (b"\x84\x09\x01\x02\x03", b"\x85\x07" + b"\xff" * 30, b"\x83\x02\x40\x40"):
        outcome = node.open(data, CALLER_ADDR, NOW)
        assert isinstance(outcome, Dropped) and outcome.code is ErrorCode.TRANSIT_MALFORMED
    assert node.counts == {ErrorCode.TRANSIT_MALFORMED: 3}
    drive(node, initiator(3), b"still works", NOW)


@pytest.mark.parametrize("payload", [
    encode_init(Init(3, b"k" * 8, b"", b"s")),
    encode_init(Init(1, b"k" * 8, b"", b"s" * 40)),
    encode_init(Init(99, b"k" * 8, b"", b"s")),
    encode_key_query(b"\x01\x02", 0x20, 0),
    encode_key_query(NODE_HASH, 0x10, 0),
    b"\x82\x03\x01",
    b"\x81\x05",
    b"\x84\x09" + bytes(6),
    encode_session(SessionMessage(b"s" * 8, 1, b"c" * 16)),
])
def test_no_transit_answer_exceeds_three_times_what_it_answers(payload: bytes) -> None:
    node = responder(NOW, 1)
    outcome = node.open(payload, CALLER_ADDR, NOW)
    if isinstance(outcome, Answered):
        assert len(outcome.reply) <= 3 * len(payload)
        assert isinstance(decode_answer(outcome.reply), TransitRefusal)
    else:
        assert isinstance(outcome, Dropped)


def test_an_honest_first_datagram_gets_its_whole_702() -> None:
    node = responder(NOW, 1)
    for alg in (1, 3):
        step = prepared(initiator(3), node, b"", NOW, alg)
        init = decode_request(step.datagram)
        assert isinstance(init, Init)
        stale = encode_init(Init(init.algorithm, b"\x00" * 8, init.token, init.sealed))
        refusal = refusal_of(node.open(stale, CALLER_ADDR, NOW))
        assert refusal.code == ErrorCode.UNKNOWN_TRANSIT_KEY and refusal.extra
