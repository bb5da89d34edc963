"""Transit sessions end to end between a caller and a node (issue 11, item 5).

Each test drives the sans-IO initiator and responder directly, datagram by datagram, so
what crosses the network (and what each side counts) is visible.
"""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

import mercury_rt.core.transit.responder as responder_module
from carbon.error_codes import ErrorCode
from mercury_rt.core.transit.algorithms import Kem, TransitError
from mercury_rt.core.transit.certs import TransitCertVerifier
from mercury_rt.core.transit.initiator import (
    Finished,
    InitiatorConfig,
    NeedKey,
    PendingInit,
    PendingMessage,
    Prepared,
    TransitInitiator,
)
from mercury_rt.core.transit.kem import hpke_open
from mercury_rt.core.transit.node_keys import NodeTransitKeys
from mercury_rt.core.transit.responder import Dropped, Opened, ResponderConfig
from mercury_rt.core.transit.wire import (
    INIT,
    SESSION,
    Init,
    InitReply,
    SessionMessage,
    SessionReply,
    decode_answer,
    decode_request,
    encode_init,
    encode_init_reply,
    encode_refusal,
    encode_session,
    encode_session_reply,
)
from tests.identity_support import key
from tests.transit_steps_support import (
    SECRET,
    deliver,
    drive,
    initiator,
    pair_prepared,
    responder,
)
from tests.transit_support import (
    CALLER_ADDR,
    NODE_ADDR,
    NODE_CLUSTER_KEY,
    NODE_HASH,
    NOW,
    call,
    lookup_for,
    pair,
    seeded,
)

FORGER_KEY = key(77)
FORGER_MASTER = key(78)


def flip(data: bytes, index: int) -> bytes:
    """`data` with one bit changed at `index`."""
    return data[:index] + bytes([data[index] ^ 0x01]) + data[index + 1:]


@pytest.mark.parametrize("alg", [1, 2, 3])
def test_each_algorithm_round_trips_and_hides_the_payload(alg: int) -> None:
    node, caller = responder(NOW, 1), initiator(3)
    reply, trace = drive(node, caller, SECRET, NOW, alg)
    assert reply == b"re:" + SECRET
    assert trace.kinds == [2, INIT]
    assert trace.opened == [SECRET]
    assert all(SECRET not in d for d in trace.sent + trace.answers)
    init = decode_request(trace.sent[1])
    assert isinstance(init, Init) and init.algorithm == alg
    assert isinstance(decode_answer(trace.answers[1]), InitReply)


@pytest.mark.parametrize("alg", [1, 2, 3])
def test_later_messages_reuse_the_session_without_hpke(
        alg: int, monkeypatch: pytest.MonkeyPatch) -> None:
    node, caller = responder(NOW, 1), initiator(3)
    drive(node, caller, b"first", NOW, alg)
    opens: list[int] = []
    real_open = hpke_open

    def counting_open(*args: object) -> bytes:
        opens.append(1)
        return real_open(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(responder_module, "hpke_open", counting_open)
    for n in range(5):
        reply, trace = drive(node, caller, SECRET + bytes([n]), NOW + n, alg)
        assert reply == b"re:" + SECRET + bytes([n])
        assert trace.kinds == [SESSION]
        assert all(SECRET not in d for d in trace.sent + trace.answers)
    assert opens == []
    assert node.session_count == 1


def test_sessions_are_per_algorithm() -> None:
    p = pair()
    for alg in (1, 2, 3):
        assert call(p, b"x", alg=alg) == b"re:x"
    assert p.responder.session_count == 3
    assert call(p, b"y", alg=2) == b"re:y"
    assert p.responder.session_count == 3


def test_a_reply_opens_only_for_its_own_request() -> None:
    p = pair()
    call(p, b"establish")
    one, two = pair_prepared(p, b"one", NOW), pair_prepared(p, b"two", NOW)
    reply_one = deliver(p.responder, one.datagram, CALLER_ADDR, NOW)
    reply_two = deliver(p.responder, two.datagram, CALLER_ADDR, NOW)
    for pending, wrong in ((one.pending, reply_two), (two.pending, reply_one)):
        with pytest.raises(TransitError) as err:
            p.initiator.finish(pending, wrong, NOW)
        assert err.value.code is ErrorCode.TRANSIT_OPEN_FAILED
    relabelled = decode_answer(reply_two)
    assert isinstance(relabelled, SessionReply) and isinstance(one.pending, PendingMessage)
    forged = encode_session_reply(SessionReply(one.pending.seq, relabelled.ciphertext))
    with pytest.raises(TransitError) as err:
        p.initiator.finish(one.pending, forged, NOW)
    assert err.value.code is ErrorCode.TRANSIT_OPEN_FAILED
    assert p.initiator.finish(one.pending, reply_one, NOW) == Finished(b"re:one")
    assert p.initiator.finish(two.pending, reply_two, NOW) == Finished(b"re:two")


def test_init_replies_are_bound_to_their_first_datagram() -> None:
    p = pair()
    one, two = pair_prepared(p, b"one", NOW), pair_prepared(p, b"two", NOW)
    assert isinstance(one.pending, PendingInit) and isinstance(two.pending, PendingInit)
    reply_one = deliver(p.responder, one.datagram, CALLER_ADDR, NOW)
    reply_two = deliver(p.responder, two.datagram, CALLER_ADDR, NOW)
    with pytest.raises(TransitError) as err:
        p.initiator.finish(one.pending, reply_two, NOW)
    assert err.value.code is ErrorCode.TRANSIT_OPEN_FAILED
    other = decode_answer(reply_two)
    assert isinstance(other, InitReply)
    spliced = encode_init_reply(InitReply(one.pending.session_id, other.ephemeral,
                                          other.ciphertext))
    with pytest.raises(TransitError):
        p.initiator.finish(one.pending, spliced, NOW)
    assert p.initiator.finish(one.pending, reply_one, NOW) == Finished(b"re:one")


def _no_secret(text: str) -> None:
    assert SECRET.decode() not in text and b"re:".decode() + SECRET.decode() not in text


def test_tampered_or_truncated_first_datagrams_are_dropped_unopened() -> None:
    p = pair()
    step = pair_prepared(p, SECRET, NOW)
    init = decode_request(step.datagram)
    assert isinstance(init, Init)
    variants = [
        encode_init(Init(init.algorithm, init.key_id, init.token, flip(init.sealed, 40))),
        encode_init(Init(init.algorithm, init.key_id, init.token, flip(init.sealed, -1))),
        encode_init(Init(init.algorithm, init.key_id, init.token, init.sealed[:-1])),
        encode_init(Init(init.algorithm, init.key_id, init.token, init.sealed[:31])),
        encode_init(Init(init.algorithm, init.key_id, b"\x00" * 4, init.sealed)),
    ]
    for bad in variants:
        outcome = p.responder.open(bad, CALLER_ADDR, NOW)
        assert isinstance(outcome, Dropped)
        assert outcome.code is ErrorCode.TRANSIT_OPEN_FAILED
        _no_secret(outcome.reason)
    cut = p.responder.open(step.datagram[:-5], CALLER_ADDR, NOW)
    assert isinstance(cut, Dropped) and cut.code is ErrorCode.TRANSIT_MALFORMED
    assert p.responder.session_count == 0
    assert p.responder.counts == {ErrorCode.TRANSIT_OPEN_FAILED: 5,
                                  ErrorCode.TRANSIT_MALFORMED: 1}
    outcome = p.responder.open(step.datagram, CALLER_ADDR, NOW)
    assert isinstance(outcome, Opened) and outcome.payload == SECRET


def test_tampered_session_messages_are_dropped_and_do_not_move_the_window() -> None:
    p = pair()
    call(p, b"establish")
    step = pair_prepared(p, SECRET, NOW)
    message = decode_request(step.datagram)
    assert isinstance(message, SessionMessage)
    variants = [
        encode_session(SessionMessage(message.session_id, message.seq,
                                      flip(message.ciphertext, 0))),
        encode_session(SessionMessage(message.session_id, message.seq,
                                      message.ciphertext[:-1])),
        encode_session(SessionMessage(message.session_id, message.seq + 1,
                                      message.ciphertext)),
        encode_session(SessionMessage(message.session_id, message.seq + 5000,
                                      message.ciphertext)),
    ]
    for bad in variants:
        outcome = p.responder.open(bad, CALLER_ADDR, NOW)
        assert isinstance(outcome, Dropped)
        assert outcome.code is ErrorCode.TRANSIT_OPEN_FAILED
        _no_secret(outcome.reason)
    short = encode_session(SessionMessage(message.session_id, message.seq, b"\x00" * 15))
    outcome = p.responder.open(short, CALLER_ADDR, NOW)
    assert isinstance(outcome, Dropped) and outcome.code is ErrorCode.TRANSIT_MALFORMED
    outcome = p.responder.open(step.datagram, CALLER_ADDR, NOW)
    assert isinstance(outcome, Opened) and outcome.payload == SECRET


@pytest.mark.parametrize("establish", [False, True])
def test_tampered_replies_are_refused_without_leaking(establish: bool) -> None:
    p = pair()
    if establish:
        call(p, b"establish")
    step = pair_prepared(p, b"ask", NOW)
    good = deliver(p.responder, step.datagram, CALLER_ADDR, NOW, lambda _: SECRET)
    decoded = decode_answer(good)
    if isinstance(decoded, InitReply):
        bad = [encode_init_reply(InitReply(decoded.session_id, decoded.ephemeral,
                                           flip(decoded.ciphertext, 3))),
               encode_init_reply(InitReply(decoded.session_id, decoded.ephemeral,
                                           decoded.ciphertext[:-2])),
               encode_init_reply(InitReply(decoded.session_id, flip(decoded.ephemeral, 0),
                                           decoded.ciphertext))]
    else:
        assert isinstance(decoded, SessionReply)
        bad = [encode_session_reply(SessionReply(decoded.seq, flip(decoded.ciphertext, 3))),
               encode_session_reply(SessionReply(decoded.seq, decoded.ciphertext[:-2]))]
    for answer in [*bad, good[:-1]]:
        with pytest.raises(TransitError) as err:
            p.initiator.finish(step.pending, answer, NOW)
        assert err.value.code in (ErrorCode.TRANSIT_OPEN_FAILED, ErrorCode.TRANSIT_MALFORMED)
        _no_secret(err.value.message)
    assert p.initiator.finish(step.pending, good, NOW) == Finished(SECRET)


class FakeNode:
    """Listens at the node's published address; records everything it receives."""

    def __init__(self, keys: NodeTransitKeys) -> None:
        self.node = responder(NOW, 60, keys=keys)
        self.received: list[bytes] = []

    def answer(self, datagram: bytes) -> bytes:
        self.received.append(datagram)
        return deliver(self.node, datagram, CALLER_ADDR, NOW)


@pytest.mark.parametrize("signer, master", [
    (FORGER_KEY, NODE_HASH),
    (FORGER_KEY, b"\x01" + b"\x99" * 32),
])
def test_a_fake_node_with_its_own_key_learns_nothing(signer: Ed25519PrivateKey,
                                                     master: bytes) -> None:
    fake = FakeNode(NodeTransitKeys(signer, master, seeded(61), NOW))
    caller = TransitInitiator(initiator(3).credential, TransitCertVerifier(
        lookup_for({NODE_HASH: NODE_CLUSTER_KEY, master: signer}
                   if master != NODE_HASH else {NODE_HASH: NODE_CLUSTER_KEY})), seeded(3))
    for _ in range(3):
        step = caller.prepare(NODE_ADDR, NODE_HASH, 1, SECRET, NOW)
        assert isinstance(step, NeedKey)
        with pytest.raises(TransitError) as err:
            caller.learn_key(NODE_ADDR, NODE_HASH, fake.answer(step.query), NOW)
        assert err.value.code is ErrorCode.TRANSIT_CERT_INVALID
    assert all(SECRET not in d for d in fake.received)


def test_a_fake_node_cannot_answer_for_the_genuine_key_it_copied() -> None:
    p = pair()
    step = pair_prepared(p, SECRET, NOW)
    fake = FakeNode(NodeTransitKeys(FORGER_KEY, NODE_HASH, seeded(61), NOW))
    refused = fake.answer(step.datagram)
    with pytest.raises(TransitError) as err:
        p.initiator.finish(step.pending, refused, NOW)
    assert err.value.code is ErrorCode.TRANSIT_CERT_INVALID
    assert isinstance(step.pending, PendingInit)
    forged = encode_init_reply(InitReply(step.pending.session_id, b"\x09" * 32,
                                         b"\x00" * 40))
    with pytest.raises(TransitError) as err:
        p.initiator.finish(step.pending, forged, NOW)
    assert err.value.code is ErrorCode.TRANSIT_OPEN_FAILED
    assert SECRET not in step.datagram
    retry = p.initiator.prepare(NODE_ADDR, NODE_HASH, 1, b"next", NOW)
    assert isinstance(retry, Prepared) and isinstance(retry.pending, PendingInit)


def test_a_forged_702_does_not_replace_the_verified_key() -> None:
    p = pair()
    step = pair_prepared(p, b"x", NOW)
    fake = NodeTransitKeys(FORGER_KEY, NODE_HASH, seeded(61), NOW)
    answer = encode_refusal(int(ErrorCode.UNKNOWN_TRANSIT_KEY), "use mine",
                            fake.current(Kem.X25519).cert_bytes)
    with pytest.raises(TransitError) as err:
        p.initiator.finish(step.pending, answer, NOW)
    assert err.value.code is ErrorCode.TRANSIT_CERT_INVALID
    assert call(p, b"still") == b"re:still"
    assert p.responder.counts == {}


def test_after_a_node_restart_the_next_call_re_establishes() -> None:
    node, caller = responder(NOW, 1), initiator(3)
    drive(node, caller, b"before", NOW)
    restarted = responder(NOW + 30, 9)
    reply, trace = drive(restarted, caller, b"after", NOW + 31)
    assert reply == b"re:after"
    assert trace.kinds == [SESSION, INIT, INIT]
    assert trace.refusals == [ErrorCode.UNKNOWN_SESSION, ErrorCode.UNKNOWN_TRANSIT_KEY]
    assert trace.opened == [b"after"]
    reply, trace = drive(restarted, caller, b"later", NOW + 32)
    assert trace.kinds == [SESSION]


def test_rotation_keeps_the_old_key_working_until_it_expires() -> None:
    p = pair()
    call(p, b"a")
    rotated_at = NOW + p.keys.lifetime
    assert p.keys.due(rotated_at)
    p.keys.rotate(rotated_at)
    p.initiator.forget(NODE_ADDR)
    reply, trace = drive(p.responder, p.initiator, b"old key", rotated_at + 1)
    assert reply == b"re:old key" and trace.kinds == [INIT] and trace.refusals == []
    expiry = NOW + p.keys.lifetime + p.keys.grace
    p.initiator.forget(NODE_ADDR)
    late = pair_prepared(p, b"late", expiry - 1)
    outcome = p.responder.open(late.datagram, CALLER_ADDR, expiry)
    assert not isinstance(outcome, Opened)
    assert p.responder.counts == {ErrorCode.UNKNOWN_TRANSIT_KEY: 1}
    p.initiator.forget(NODE_ADDR)
    reply, trace = drive(p.responder, p.initiator, b"new key", expiry)
    assert reply == b"re:new key"
    assert trace.kinds == [2, INIT]


def test_rekey_after_the_time_budget() -> None:
    p = pair()
    p.initiator.config = InitiatorConfig(rekey_after=10.0)
    _, first = drive(p.responder, p.initiator, b"a", NOW)
    _, same = drive(p.responder, p.initiator, b"b", NOW + 9.9)
    _, fresh = drive(p.responder, p.initiator, b"c", NOW + 10)
    assert (first.kinds, same.kinds, fresh.kinds) == ([2, INIT], [SESSION], [INIT])
    assert p.responder.session_count == 2
    assert decode_request(fresh.sent[0]) != decode_request(first.sent[1])


def test_rekey_after_the_message_budget() -> None:
    p = pair()
    p.initiator.config = InitiatorConfig(rekey_messages=3)
    kinds: list[int | None] = []
    for n in range(9):
        _, trace = drive(p.responder, p.initiator, bytes([n]), NOW + n)
        kinds.extend(k for k in trace.kinds if k != 2)
    assert kinds == [INIT, SESSION, SESSION, SESSION] * 2 + [INIT]
    assert p.responder.session_count == 3


def test_sessions_per_peer_are_bounded_and_the_evicted_caller_recovers() -> None:
    node = responder(NOW, 1, ResponderConfig(max_sessions_per_peer=2))
    caller = initiator(3)
    for alg in (1, 2, 3):
        drive(node, caller, b"open", NOW, alg)
    assert node.session_count == 2
    _, trace = drive(node, caller, b"again", NOW + 1, 1)
    assert trace.kinds == [SESSION, INIT]
    assert trace.refusals == [ErrorCode.UNKNOWN_SESSION]
    assert node.session_count == 2
    _, trace = drive(node, caller, b"kept", NOW + 2, 3)
    assert trace.kinds == [SESSION]
    _, trace = drive(node, caller, b"evicted", NOW + 3, 2)
    assert trace.kinds == [SESSION, INIT]


def test_the_peer_bound_evicts_its_least_recently_used_session() -> None:
    node = responder(NOW, 1, ResponderConfig(max_sessions_per_peer=2))
    caller = initiator(3)
    drive(node, caller, b"open", NOW, 1)
    drive(node, caller, b"open", NOW, 2)
    drive(node, caller, b"busy", NOW + 1, 1)
    drive(node, caller, b"open", NOW + 2, 3)
    _, busy = drive(node, caller, b"busy", NOW + 3, 1)
    assert busy.kinds == [SESSION]
    _, idle = drive(node, caller, b"idle", NOW + 4, 2)
    assert idle.refusals == [ErrorCode.UNKNOWN_SESSION]


def test_total_sessions_are_bounded_least_recently_used_first() -> None:
    node = responder(NOW, 1, ResponderConfig(max_sessions=30))
    peers = [(f"127.0.0.{10 + n}", 7000) for n in range(31)]
    callers = [initiator(100 + n) for n in range(31)]
    for n in range(30):
        drive(node, callers[n], b"open", NOW, peer=peers[n])
    _, trace = drive(node, callers[0], b"touch", NOW + 1, peer=peers[0])
    assert trace.kinds == [SESSION]
    reply, _ = drive(node, callers[30], b"newcomer", NOW + 2, peer=peers[30])
    assert reply == b"re:newcomer" and node.session_count == 30
    _, kept = drive(node, callers[0], b"kept", NOW + 3, peer=peers[0])
    assert kept.kinds == [SESSION]
    reply, evicted = drive(node, callers[1], b"evicted", NOW + 4, peer=peers[1])
    assert reply == b"re:evicted"
    assert evicted.refusals[0] is ErrorCode.UNKNOWN_SESSION
    assert evicted.kinds[0] == SESSION and INIT in evicted.kinds


def test_idle_and_old_sessions_are_forgotten() -> None:
    config = ResponderConfig(session_idle=60, session_max_age=100)
    node, caller = responder(NOW, 1, config), initiator(3)
    drive(node, caller, b"a", NOW)
    _, trace = drive(node, caller, b"b", NOW + 59)
    assert trace.kinds == [SESSION]
    _, trace = drive(node, caller, b"c", NOW + 120)
    assert trace.refusals == [ErrorCode.UNKNOWN_SESSION]
    caller.config = InitiatorConfig(rekey_after=1000)
    start = NOW + 120
    for t in (50, 99):
        _, trace = drive(node, caller, b"d", start + t)
        assert trace.kinds == [SESSION]
    _, trace = drive(node, caller, b"e", start + 101)
    assert trace.refusals == [ErrorCode.UNKNOWN_SESSION]


def test_a_reply_is_sealed_once_a_second_would_reuse_its_nonce() -> None:
    p = pair()
    call(p, b"open")
    step = p.initiator.prepare(NODE_ADDR, NODE_HASH, 1, b"again", NOW)
    assert isinstance(step, Prepared)
    opened = p.responder.open(step.datagram, CALLER_ADDR, NOW)
    assert isinstance(opened, Opened)
    p.responder.seal(opened.channel, b"one")
    with pytest.raises(ValueError, match="once"):
        p.responder.seal(opened.channel, b"two")


def test_a_703_for_an_older_session_does_not_drop_the_newer_one() -> None:
    """Two calls in flight: the first still in an old session the node evicted, the second
    already in a new one. The old one's 703 must not throw away the new session (each
    in-flight call would otherwise open yet another)."""
    p = pair()
    call(p, b"first")
    old = p.initiator.prepare(NODE_ADDR, NODE_HASH, 1, b"in old", NOW)
    assert isinstance(old, Prepared) and isinstance(old.pending, PendingMessage)
    p.initiator._sessions.clear()  # the caller opened a new session meanwhile
    call(p, b"opens new")
    assert p.initiator.has_session(NODE_ADDR, 1, NOW)
    refusal = encode_refusal(int(ErrorCode.UNKNOWN_SESSION), "gone")
    p.initiator.finish(old.pending, refusal, NOW)
    assert p.initiator.has_session(NODE_ADDR, 1, NOW)


def test_a_session_is_used_only_for_the_cluster_whose_key_opened_it() -> None:
    """An address listed for two clusters (reused, or a redirect): a session opened with
    cluster X's certified key is never used to call cluster Y there."""
    p = pair()
    call(p, b"to X")
    step = p.initiator.prepare(NODE_ADDR, b"\x01" + bytes(32), 1, b"to Y", NOW)
    assert isinstance(step, NeedKey), "Y's key is fetched and verified, not X's session used"


def test_expired_keys_are_erased_when_they_expire_not_at_the_next_rotation() -> None:
    keys = NodeTransitKeys(key(32), b"\x01" + bytes(32), seeded(5), NOW, lifetime=3600,
                           grace=600)
    first = keys.current(Kem.X25519).cert.key_id
    keys.tick(NOW + 3600)  # rotated: the first key stays until its certificate expires
    assert keys.key(first, NOW + 3601) is not None
    keys.tick(NOW + 4200)
    assert first not in keys._by_id, "erased at expiry"


def test_idle_sessions_are_swept_and_do_not_make_new_callers_pay_a_token() -> None:
    p = pair(config=ResponderConfig(max_sessions=10))
    for n in range(9):
        p.initiator._sessions.clear()
        call(p, f"caller {n}".encode())
    assert p.responder.session_count == 9
    later = NOW + 3600
    p.initiator._sessions.clear()
    call(p, b"an hour later", now=later)
    assert p.responder.session_count == 1
    assert p.responder.counts.get(ErrorCode.RETRY_TOKEN_REQUIRED, 0) == 0
