"""Stateless retry tokens under load, and the clock retry (issue 11, items 9 and 10).

Under load a first datagram without a valid token costs the node no HPKE open: it is
answered 713 with a token bound to the source address, valid for the current and the
next period. A 705 carries the node's clock so the caller retries once in its window.
"""

from __future__ import annotations

import pytest

import mercury_rt.core.transit.responder as responder_module
from carbon.error_codes import ErrorCode
from mercury_rt.core.transit.algorithms import TransitError
from mercury_rt.core.transit.exchange import MAX_ROUNDS, Done, Failed, SecureExchange, Send
from mercury_rt.core.transit.initiator import Finished, Retry
from mercury_rt.core.transit.kem import hpke_open
from mercury_rt.core.transit.responder import (
    Answered,
    Dropped,
    Opened,
    ResponderConfig,
    TransitResponder,
)
from mercury_rt.core.transit.wire import (
    TOKEN_SIZE,
    Init,
    TransitRefusal,
    decode_answer,
    decode_request,
    encode_init,
    encode_refusal,
)
from tests.transit_steps_support import (
    SECRET,
    deliver,
    drive,
    initiator,
    prepared,
    responder,
)
from tests.transit_support import CALLER_ADDR, NODE_ADDR, NODE_HASH, NOW

LOADED = ResponderConfig(init_rate=0, token_period=60)
ELSEWHERE = ("127.0.0.99", 40000)


@pytest.fixture
def hpke_opens(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the node's HPKE opens."""
    opens: list[int] = []
    real = hpke_open

    def counting(*args: object) -> bytes:
        opens.append(1)
        return real(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(responder_module, "hpke_open", counting)
    return opens


def token_refusal(outcome: object) -> bytes:
    """The token of a 713 answer."""
    assert isinstance(outcome, Answered)
    refusal = decode_answer(outcome.reply)
    assert isinstance(refusal, TransitRefusal)
    assert refusal.code == ErrorCode.RETRY_TOKEN_REQUIRED
    assert isinstance(refusal.extra, bytes) and len(refusal.extra) == TOKEN_SIZE
    return refusal.extra


def with_sealed(datagram: bytes, sealed: bytes, token: bytes | None = None) -> bytes:
    init = decode_request(datagram)
    assert isinstance(init, Init)
    return encode_init(Init(init.algorithm, init.key_id,
                            init.token if token is None else token, sealed))


def test_under_load_a_first_datagram_without_a_token_costs_no_hpke_open(
        hpke_opens: list[int]) -> None:
    node, caller = responder(NOW, 1, LOADED), initiator(3)
    step = prepared(caller, node, SECRET, NOW)
    garbage = with_sealed(step.datagram, b"\x00" * 200)
    for datagram in (garbage, step.datagram):
        token_refusal(node.open(datagram, CALLER_ADDR, NOW))
    assert hpke_opens == []
    assert node.session_count == 0
    assert node.counts == {ErrorCode.RETRY_TOKEN_REQUIRED: 2}
    token = token_refusal(node.open(garbage, CALLER_ADDR, NOW))
    dropped = node.open(with_sealed(step.datagram, b"\x00" * 200, token), CALLER_ADDR, NOW)
    assert isinstance(dropped, Dropped) and dropped.code is ErrorCode.TRANSIT_OPEN_FAILED
    assert hpke_opens == [1]


def test_the_caller_retries_with_the_token_and_succeeds() -> None:
    node, caller = responder(NOW, 1, LOADED), initiator(3)
    reply, trace = drive(node, caller, SECRET, NOW)
    assert reply == b"re:" + SECRET
    assert trace.refusals == [ErrorCode.RETRY_TOKEN_REQUIRED]
    assert trace.opened == [SECRET]
    assert node.session_count == 1
    _, trace = drive(node, caller, b"next", NOW)
    assert trace.refusals == []


def test_first_datagrams_within_the_rate_need_no_token() -> None:
    node = responder(NOW, 1, ResponderConfig(init_rate=2))
    traces = [drive(node, initiator(10 + n), b"x", NOW + 0.1 * n)[1] for n in range(3)]
    assert [t.refusals for t in traces] == [[], [], [ErrorCode.RETRY_TOKEN_REQUIRED]]
    _, later = drive(node, initiator(20), b"x", NOW + 1)
    assert later.refusals == []


def test_a_nearly_full_session_table_asks_for_tokens() -> None:
    node = responder(NOW, 1, ResponderConfig(max_sessions=10))
    for n in range(9):
        assert drive(node, initiator(10 + n), b"x", NOW, peer=(f"127.0.0.{20 + n}", 1))[1]\
            .refusals == []
    _, trace = drive(node, initiator(30), b"x", NOW, peer=("127.0.0.40", 1))
    assert trace.refusals == [ErrorCode.RETRY_TOKEN_REQUIRED]


def _token_for(node: TransitResponder, peer: tuple[str, int], now: float) -> bytes:
    step = prepared(initiator(7), node, b"probe", now)
    return token_refusal(node.open(step.datagram, peer, now))


def _with_token(node: TransitResponder, token: bytes, now: float) -> bytes:
    """A genuine first datagram carrying `token` (given to the caller as a 713 would)."""
    caller = initiator(8)
    step = prepared(caller, node, SECRET, now)
    refusal = encode_refusal(int(ErrorCode.RETRY_TOKEN_REQUIRED), "token", token)
    assert isinstance(caller.finish(step.pending, refusal, now), Retry)
    again = prepared(caller, node, SECRET, now)
    init = decode_request(again.datagram)
    assert isinstance(init, Init) and init.token == token
    return again.datagram


def test_a_token_is_bound_to_the_address_it_was_sent_to() -> None:
    node = responder(NOW, 1, LOADED)
    token = _token_for(node, CALLER_ADDR, NOW)
    datagram = _with_token(node, token, NOW)
    token_refusal(node.open(datagram, ELSEWHERE, NOW))
    token_refusal(node.open(datagram, (CALLER_ADDR[0], CALLER_ADDR[1] + 1), NOW))
    assert isinstance(node.open(datagram, CALLER_ADDR, NOW), Opened)


@pytest.mark.parametrize("age, accepted", [(0, True), (59, True), (60, True), (119, True),
                                           (120, False), (600, False)])
def test_a_token_expires_after_two_periods(age: float, accepted: bool) -> None:
    start = NOW - NOW % 60
    node = responder(start, 1, LOADED)
    token = _token_for(node, CALLER_ADDR, start)
    datagram = _with_token(node, token, start + age)
    outcome = node.open(datagram, CALLER_ADDR, start + age)
    assert isinstance(outcome, Opened) is accepted


def test_a_forged_token_is_refused() -> None:
    node = responder(NOW, 1, LOADED)
    token = _token_for(node, CALLER_ADDR, NOW)
    for forged in (bytes(TOKEN_SIZE), token[:4] + bytes(16), token[:-1] + b"\x00",
                   (int.from_bytes(token[:4], "big") + 1).to_bytes(4, "big") + token[4:]):
        token_refusal(node.open(_with_token(node, forged, NOW), CALLER_ADDR, NOW))


@pytest.mark.parametrize("skew", [-120.0, -61.0, 61.0, 3600.0])
def test_a_stale_timestamp_makes_the_caller_retry_once_with_the_node_clock(skew: float) -> None:
    node, caller = responder(NOW, 1), initiator(3)
    caller_now = NOW + skew
    step = prepared(caller, node, SECRET, caller_now)
    answer = deliver(node, step.datagram, CALLER_ADDR, NOW)
    refusal = decode_answer(answer)
    assert isinstance(refusal, TransitRefusal)
    assert refusal.code == ErrorCode.STALE_FIRST_DATAGRAM and refusal.extra == int(NOW * 1000)
    assert SECRET.decode() not in refusal.detail
    assert isinstance(caller.finish(step.pending, answer, caller_now), Retry)
    again = prepared(caller, node, SECRET, caller_now + 0.01)
    answer = deliver(node, again.datagram, CALLER_ADDR, NOW + 0.01)
    assert caller.finish(again.pending, answer, caller_now + 0.01) == \
        Finished(b"re:" + SECRET)
    assert node.counts == {ErrorCode.STALE_FIRST_DATAGRAM: 1}


def test_a_timestamp_before_the_node_started_is_stale() -> None:
    node = responder(NOW, 1, boot_ms=int(NOW * 1000))
    step = prepared(initiator(3), node, SECRET, NOW - 1)
    outcome = node.open(step.datagram, CALLER_ADDR, NOW)
    assert not isinstance(outcome, Opened)
    assert node.counts == {ErrorCode.STALE_FIRST_DATAGRAM: 1}


def test_forged_retry_answers_cannot_keep_a_caller_looping() -> None:
    node, caller = responder(NOW, 1), initiator(3)
    drive(node, caller, b"key", NOW)
    caller.forget(NODE_ADDR)
    exchange = SecureExchange(caller, NODE_ADDR, NODE_HASH, 1, SECRET)
    step = exchange.start(NOW)
    forged = [encode_refusal(int(ErrorCode.STALE_FIRST_DATAGRAM), "clock", 5),
              encode_refusal(int(ErrorCode.RETRY_TOKEN_REQUIRED), "token", b"x" * 20)]
    sent = 0
    while isinstance(step, Send):
        sent += 1
        assert SECRET not in step.datagram
        step = exchange.answered(forged[sent % 2], NOW)
    assert isinstance(step, Failed) and sent == MAX_ROUNDS
    exchange = SecureExchange(caller, NODE_ADDR, NODE_HASH, 1, b"recovers")
    step = exchange.start(NOW)
    while isinstance(step, Send):
        step = exchange.answered(deliver(node, step.datagram, CALLER_ADDR, NOW), NOW)
    assert step == Done(b"re:recovers")


@pytest.mark.parametrize("code, extra", [
    (ErrorCode.STALE_FIRST_DATAGRAM, 2**63),
    (ErrorCode.STALE_FIRST_DATAGRAM, 2**62),
    (ErrorCode.RETRY_TOKEN_REQUIRED, b"x" * 1000),
    (ErrorCode.RETRY_TOKEN_REQUIRED, b""),
])
def test_a_forged_retry_answer_cannot_make_later_first_datagrams_undeliverable(
        code: ErrorCode, extra: bytes | int) -> None:
    node, caller = responder(NOW, 1), initiator(3)
    drive(node, caller, b"key", NOW)
    caller.forget(NODE_ADDR)
    step = prepared(caller, node, b"x", NOW)
    with pytest.raises(TransitError) as err:
        caller.finish(step.pending, encode_refusal(int(code), "forged", extra), NOW)
    assert err.value.code is code
    for n in range(3):
        caller.forget(NODE_ADDR)
        reply, trace = drive(node, caller, b"later %d" % n, NOW + 1 + n)
        assert reply == b"re:later %d" % n and trace.refusals == []


def test_a_restarted_loaded_node_and_a_fast_clock_still_complete_one_exchange() -> None:
    node, caller = responder(NOW, 1), initiator(3)
    drive(node, caller, b"before", NOW)
    restarted = responder(NOW + 10, 9, LOADED)
    exchange = SecureExchange(caller, NODE_ADDR, NODE_HASH, 1, SECRET)
    fast = NOW + 10 + 75
    step = exchange.start(fast)
    while isinstance(step, Send):
        step = exchange.answered(deliver(restarted, step.datagram, CALLER_ADDR, NOW + 10), fast)
    assert step == Done(b"re:" + SECRET)
    assert restarted.counts == {ErrorCode.UNKNOWN_SESSION: 1, ErrorCode.UNKNOWN_TRANSIT_KEY: 1,
                                ErrorCode.RETRY_TOKEN_REQUIRED: 1,
                                ErrorCode.STALE_FIRST_DATAGRAM: 1}
