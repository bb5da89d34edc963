"""Replays at the four times of issue 11 (item 6): the node is handed the payload once.

A captured request is replayed immediately (from its own and from another source
address), an hour later, after the node restarts, and to another node of the same
cluster (same cluster key, its own transit keys). For a session's first datagram and
for a later message in the session. Every delivery goes through `open`; the test counts
how often the payload came out as `Opened`.
"""

from __future__ import annotations

import pytest

from carbon.error_codes import ErrorCode
from mercury_rt.core.transit.algorithms import Kem, TransitError
from mercury_rt.core.transit.exchange import SecureExchange, Send
from mercury_rt.core.transit.initiator import Finished, InitiatorConfig
from mercury_rt.core.transit.replay import WINDOW, ReplayWindow
from mercury_rt.core.transit.responder import (
    Answered,
    Dropped,
    Opened,
    ResponderConfig,
    TransitResponder,
)
from mercury_rt.core.transit.wire import (
    MAX_SEQ,
    Init,
    SessionMessage,
    TransitRefusal,
    decode_answer,
    decode_request,
    encode_refusal,
    encode_session,
)
from tests.transit_steps_support import SECRET, deliver, drive, initiator, prepared, responder
from tests.transit_support import CALLER_ADDR, NODE_ADDR, NODE_HASH, NOW

ELSEWHERE = ("127.0.0.99", 40000)
HOUR = 3600.0


def opened_count(node: TransitResponder, datagram: bytes, peer: tuple[str, int],
                 now: float) -> int:
    """1 if this delivery handed the payload to the node, else 0 (and it was refused)."""
    outcome = node.open(datagram, peer, now)
    if isinstance(outcome, Opened):
        assert outcome.payload == SECRET
        node.seal(outcome.channel, b"done")
        return 1
    assert isinstance(outcome, Answered | Dropped)
    return 0


def replays(node: TransitResponder, datagram: bytes, sent_at: float) -> list[tuple[str, int]]:
    """Deliver the capture at the four times; (when, opened) per delivery."""
    later = node
    restarted = responder(sent_at + 10, 50)
    sibling = responder(sent_at - 100, 70)
    return [
        ("original", opened_count(node, datagram, CALLER_ADDR, sent_at)),
        ("immediately", opened_count(node, datagram, CALLER_ADDR, sent_at)),
        ("another address", opened_count(node, datagram, ELSEWHERE, sent_at + 0.5)),
        ("an hour later", opened_count(later, datagram, ELSEWHERE, sent_at + HOUR)),
        ("after restart", opened_count(restarted, datagram, CALLER_ADDR, sent_at + 11)),
        ("another node", opened_count(sibling, datagram, ELSEWHERE, sent_at + 1)),
    ]


def test_a_replayed_first_datagram_opens_once() -> None:
    node, caller = responder(NOW, 1), initiator(3)
    step = prepared(caller, node, SECRET, NOW)
    results = replays(node, step.datagram, NOW)
    assert [n for _, n in results] == [1, 0, 0, 0, 0, 0]
    assert node.counts[ErrorCode.REPLAYED] == 2
    assert node.counts[ErrorCode.STALE_FIRST_DATAGRAM] == 1


def test_a_replayed_session_message_opens_once() -> None:
    node, caller = responder(NOW, 1), initiator(3)
    drive(node, caller, b"establish", NOW)
    step = prepared(caller, node, SECRET, NOW + 1)
    results = replays(node, step.datagram, NOW + 1)
    assert [n for _, n in results] == [1, 0, 0, 0, 0, 0]
    assert node.counts[ErrorCode.REPLAYED] == 2


def test_a_restarted_node_that_kept_its_keys_still_refuses_old_first_datagrams() -> None:
    node, caller = responder(NOW, 1), initiator(3)
    step = prepared(caller, node, SECRET, NOW)
    assert opened_count(node, step.datagram, CALLER_ADDR, NOW) == 1
    reborn = responder(NOW + 5, 1, keys=node.keys, boot_ms=int((NOW + 5) * 1000))
    assert opened_count(reborn, step.datagram, CALLER_ADDR, NOW + 6) == 0
    assert reborn.counts == {ErrorCode.STALE_FIRST_DATAGRAM: 1}


@pytest.mark.parametrize("config", [ResponderConfig(), ResponderConfig(max_sessions_per_peer=1)])
def test_a_first_datagram_replayed_at_the_edge_of_the_clock_window_opens_once(
        config: ResponderConfig) -> None:
    node, caller = responder(NOW, 1, config), initiator(3)
    step = prepared(caller, node, SECRET, NOW)
    assert opened_count(node, step.datagram, CALLER_ADDR, NOW) == 1
    edge = NOW + config.clock_window_ms / 1000
    drive(node, initiator(5), b"another caller", edge)
    total = sum(opened_count(node, step.datagram, ELSEWHERE, t)
                for t in (edge - 0.001, edge, edge + 0.001))
    assert total == 0


def test_the_record_of_first_datagrams_is_bounded() -> None:
    node = responder(NOW, 1, ResponderConfig(max_seen_inits=3))
    for n in range(3):
        drive(node, initiator(10 + n), b"x", NOW)
    step = prepared(initiator(20), node, SECRET, NOW)
    outcome = node.open(step.datagram, CALLER_ADDR, NOW)
    assert not isinstance(outcome, Opened)
    assert node.counts == {ErrorCode.SESSION_LIMIT: 1}
    assert opened_count(node, step.datagram, CALLER_ADDR, NOW + 61) == 0
    fresh = prepared(initiator(21), node, SECRET, NOW + 61)
    assert opened_count(node, fresh.datagram, CALLER_ADDR, NOW + 61) == 1


def test_a_reused_message_number_is_refused() -> None:
    node, caller = responder(NOW, 1), initiator(3)
    drive(node, caller, b"establish", NOW)
    first = prepared(caller, node, b"first", NOW)
    message = decode_request(first.datagram)
    assert isinstance(message, SessionMessage)
    assert isinstance(node.open(first.datagram, CALLER_ADDR, NOW), Opened)
    session = first.pending.session  # type: ignore[union-attr]
    session.next_seq = message.seq
    again = prepared(caller, node, SECRET, NOW)
    reused = decode_request(again.datagram)
    assert isinstance(reused, SessionMessage) and reused.seq == message.seq
    outcome = node.open(again.datagram, CALLER_ADDR, NOW)
    assert isinstance(outcome, Dropped) and outcome.code is ErrorCode.REPLAYED
    zero = encode_session(SessionMessage(message.session_id, 0, message.ciphertext))
    outcome = node.open(zero, CALLER_ADDR, NOW)
    assert isinstance(outcome, Dropped) and outcome.code is ErrorCode.REPLAYED


def test_reordered_messages_open_and_old_ones_beyond_the_window_do_not() -> None:
    node, caller = responder(NOW, 1), initiator(3)
    drive(node, caller, b"establish", NOW)
    steps = [prepared(caller, node, bytes([n]), NOW) for n in range(3)]
    for step in reversed(steps):
        assert isinstance(node.open(step.datagram, CALLER_ADDR, NOW), Opened)
    stale = prepared(caller, node, b"stale", NOW)
    session = stale.pending.session  # type: ignore[union-attr]
    session.next_seq += 2048
    ahead = prepared(caller, node, b"ahead", NOW)
    assert isinstance(node.open(ahead.datagram, CALLER_ADDR, NOW), Opened)
    outcome = node.open(stale.datagram, CALLER_ADDR, NOW)
    assert isinstance(outcome, Dropped) and outcome.code is ErrorCode.REPLAYED


def test_replayed_replies_do_not_answer_a_later_request() -> None:
    node, caller = responder(NOW, 1), initiator(3)
    drive(node, caller, b"establish", NOW)
    old = prepared(caller, node, b"old", NOW)
    old_reply = deliver(node, old.datagram, CALLER_ADDR, NOW)
    new = prepared(caller, node, b"new", NOW)
    with pytest.raises(TransitError) as err:
        caller.finish(new.pending, old_reply, NOW)
    assert err.value.code is ErrorCode.TRANSIT_OPEN_FAILED


def _forged(code: ErrorCode, node: TransitResponder) -> bytes:
    """An unauthenticated refusal anyone on the path can write (the cert is public)."""
    extras: dict[ErrorCode, bytes | int] = {
        ErrorCode.UNKNOWN_TRANSIT_KEY: node.keys.current(Kem.X25519).cert_bytes,
        ErrorCode.STALE_FIRST_DATAGRAM: int(NOW * 1000),
        ErrorCode.RETRY_TOKEN_REQUIRED: b"x" * 20,
        ErrorCode.UNKNOWN_SESSION: b"",
    }
    return encode_refusal(int(code), "forged", extras[code])


@pytest.mark.parametrize("code", [ErrorCode.UNKNOWN_TRANSIT_KEY,
                                  ErrorCode.STALE_FIRST_DATAGRAM,
                                  ErrorCode.RETRY_TOKEN_REQUIRED])
def test_a_forged_refusal_after_the_node_ran_a_first_datagram_does_not_run_it_again(
        code: ErrorCode) -> None:
    node, caller = responder(NOW, 1), initiator(3)
    exchange = SecureExchange(caller, NODE_ADDR, NODE_HASH, 1, SECRET)
    step = exchange.start(NOW)
    opened = 0
    while isinstance(step, Send):
        outcome = node.open(step.datagram, CALLER_ADDR, NOW)
        if isinstance(outcome, Opened):
            opened += 1
            node.seal(outcome.channel, b"lost on the way back")
            step = exchange.answered(_forged(code, node), NOW)
        else:
            step = exchange.answered(deliver(node, step.datagram, CALLER_ADDR, NOW), NOW)
    assert opened == 1


@pytest.mark.parametrize("code", [ErrorCode.UNKNOWN_TRANSIT_KEY,
                                  ErrorCode.STALE_FIRST_DATAGRAM,
                                  ErrorCode.RETRY_TOKEN_REQUIRED])
def test_a_session_message_is_never_resent_for_a_first_datagram_refusal(
        code: ErrorCode) -> None:
    node, caller = responder(NOW, 1), initiator(3)
    drive(node, caller, b"establish", NOW)
    step = prepared(caller, node, SECRET, NOW)
    assert isinstance(node.open(step.datagram, CALLER_ADDR, NOW), Opened)
    with pytest.raises(TransitError):
        caller.finish(step.pending, _forged(code, node), NOW)


def test_a_first_datagram_refused_as_ahead_of_the_clock_stays_refused_when_it_is_due() -> None:
    node = responder(NOW, 1, ResponderConfig(max_sessions_per_peer=1))
    caller = initiator(3)
    ahead = prepared(caller, node, SECRET, NOW + 75)
    answer = deliver(node, ahead.datagram, CALLER_ADDR, NOW)
    assert caller.finish(ahead.pending, answer, NOW + 75) != Finished(b"re:" + SECRET)
    retry = prepared(caller, node, SECRET, NOW + 75)
    assert opened_count(node, retry.datagram, CALLER_ADDR, NOW) == 1
    drive(node, caller, b"evicts the session", NOW + 1, alg=2)
    assert node.session_count == 1
    drive(node, initiator(5), b"purges the record", NOW + 61)
    for later in (NOW + 15, NOW + 61, NOW + 100, NOW + 135):
        assert opened_count(node, ahead.datagram, ELSEWHERE, later) == 0


def test_the_record_of_datagrams_ahead_of_the_clock_is_bounded() -> None:
    node = responder(NOW, 1, ResponderConfig(max_ahead_inits=1))
    first = prepared(initiator(3), node, SECRET, NOW + 75)
    assert refusal_code(node, first.datagram, NOW) is ErrorCode.STALE_FIRST_DATAGRAM
    second = prepared(initiator(4), node, SECRET, NOW + 75)
    assert refusal_code(node, second.datagram, NOW) is ErrorCode.SESSION_LIMIT
    assert refusal_code(node, second.datagram, NOW + 136) is ErrorCode.STALE_FIRST_DATAGRAM
    assert opened_count(node, first.datagram, CALLER_ADDR, NOW + 100) == 0


def refusal_code(node: TransitResponder, datagram: bytes, now: float) -> ErrorCode:
    """The code the node refuses `datagram` with."""
    outcome = node.open(datagram, CALLER_ADDR, now)
    assert isinstance(outcome, Answered)
    refusal = decode_answer(outcome.reply)
    assert isinstance(refusal, TransitRefusal)
    return ErrorCode(refusal.code)


def test_an_authenticated_jump_to_a_huge_message_number_costs_no_memory() -> None:
    node, caller = responder(NOW, 1), initiator(3)
    caller.config = InitiatorConfig(rekey_messages=MAX_SEQ)
    drive(node, caller, b"establish", NOW)
    early = prepared(caller, node, b"early", NOW)
    assert isinstance(node.open(early.datagram, CALLER_ADDR, NOW), Opened)
    session = early.pending.session  # type: ignore[union-attr]
    for jump in (2**40, MAX_SEQ - 1):
        session.next_seq = jump
        far = prepared(caller, node, b"far", NOW)
        sent = decode_request(far.datagram)
        assert isinstance(sent, SessionMessage) and sent.seq == jump
        assert isinstance(node.open(far.datagram, CALLER_ADDR, NOW), Opened)
        outcome = node.open(far.datagram, CALLER_ADDR, NOW)
        assert isinstance(outcome, Dropped) and outcome.code is ErrorCode.REPLAYED
    assert not isinstance(node.open(early.datagram, CALLER_ADDR, NOW), Opened)
    last = prepared(caller, node, b"last", NOW)
    assert isinstance(node.open(last.datagram, CALLER_ADDR, NOW), Opened)


def test_the_replay_window_survives_any_jump() -> None:
    window = ReplayWindow()
    for number in (0, 5, 2**62, 2**62 - 1, 2**62 - WINDOW + 1):
        assert window.fresh(number)
        window.accept(number)
    assert not window.fresh(2**62 - WINDOW) and not window.fresh(5)
    assert window.fresh(2**62 - 2) and not window.fresh(2**62 - 1)


def test_a_retry_after_a_forged_refusal_stays_a_first_datagram_when_a_session_opened_meanwhile(
) -> None:
    """Found in review: the retry's session id was kept per address, so when another call
    opened a session meanwhile, the retry went inside that session and ran again."""
    node, caller = responder(NOW, 1), initiator(3)
    exchange = SecureExchange(caller, NODE_ADDR, NODE_HASH, 1, SECRET)
    step = exchange.start(NOW)
    while isinstance(step, Send) and not isinstance(
            outcome := node.open(step.datagram, CALLER_ADDR, NOW), Opened):
        step = exchange.answered(deliver(node, step.datagram, CALLER_ADDR, NOW), NOW)
    assert isinstance(step, Send) and isinstance(outcome, Opened)
    node.seal(outcome.channel, b"lost on the way back")
    drive(node, caller, b"another call opens a session", NOW)
    step = exchange.answered(_forged(ErrorCode.STALE_FIRST_DATAGRAM, node), NOW)
    assert isinstance(step, Send)
    assert isinstance(decode_request(step.datagram), Init)
    assert not isinstance(node.open(step.datagram, CALLER_ADDR, NOW), Opened)
