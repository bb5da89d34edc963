"""Properties of the connection rules: peer input never raises anything but a coded
error, the state machine behaves over (state x input), the reservation holds, and the
served table keeps its bounds."""

from __future__ import annotations

import contextlib

from hypothesis import given, settings
from hypothesis import strategies as st

from carbon import cbor
from carbon.error_codes import ErrorCode, MercuryError
from mercury_rt.core.connections import (
    ID_BYTES,
    Answered,
    Close,
    CloseAnswered,
    ConnectionField,
    ConnectionForm,
    ConnectionLimits,
    ConnectionSettings,
    Ended,
    Go,
    Input,
    Opened,
    OpenFailed,
    OpenReply,
    PeerClosed,
    Phase,
    Reservation,
    Send,
    ServedConnections,
    Tick,
    decode_field,
    decode_open_reply,
    opening,
    served,
    step,
)
from mercury_rt.core.node import decode_node_request, encode_operation

values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**64, 2**64 - 1) | st.binary(max_size=20)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=7) | st.dictionaries(
        st.integers(0, 10), inner, max_size=4), max_leaves=30)
cids = st.binary(min_size=ID_BYTES, max_size=ID_BYTES)
symbols = st.sampled_from(["/a/b/v1", "/test/talk/v1", "/x"])
offers = st.lists(st.tuples(st.integers(1, 0xFFFF), symbols), max_size=16).map(
    lambda items: tuple(sorted({e: s for e, s in items}.items())))
reservations = st.builds(Reservation, st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1))
fields = st.one_of(
    st.builds(ConnectionField, st.just(ConnectionForm.OPEN), cids, offers, st.booleans(),
              reservations),
    st.builds(ConnectionField, st.sampled_from([ConnectionForm.USE, ConnectionForm.CLOSE]),
              cids))


@given(values)
def test_any_key_10_a_peer_sends_decodes_or_is_a_coded_refusal(value: object) -> None:
    try:
        field = decode_field(value)
    except MercuryError as exc:
        assert exc.code == ErrorCode.WRONG_TYPE
        return
    assert len(field.connection_id) == ID_BYTES


@given(fields)
def test_every_field_round_trips(field: ConnectionField) -> None:
    assert decode_field(cbor.loads(cbor.dumps(field.to_value()))) == field


@given(st.binary(max_size=200) | values.map(cbor.dumps))
def test_any_open_reply_decodes_or_is_a_coded_refusal(data: bytes) -> None:
    with contextlib.suppress(MercuryError):
        decode_open_reply(data)


@given(st.binary(max_size=50), offers, reservations)
def test_open_replies_round_trip(reply: bytes, offered: tuple[tuple[int, str], ...],
                                 granted: Reservation) -> None:
    answer = OpenReply(reply, offered, granted)
    assert decode_open_reply(answer.encode()) == answer


codes = st.one_of(st.none(), st.sampled_from([int(c) for c in ErrorCode]),
                  st.integers(0, 2**32))
times = st.floats(0, 1e4, allow_nan=False)


def inputs(now: float) -> st.SearchStrategy[Input]:
    return st.one_of(
        st.builds(Opened, reservations, st.just(now)),
        st.builds(OpenFailed, st.integers(0, 2**32), st.just(now)),
        st.builds(Send, st.integers(-5, 10**6), st.just(now)),
        st.builds(Answered, codes, st.integers(-5, 10**6), st.just(now)),
        st.builds(Close, st.just(now)), st.builds(CloseAnswered, st.just(now)),
        st.builds(PeerClosed, st.just(now)), st.builds(Tick, st.just(now)))


@settings(max_examples=300)
@given(st.booleans(), reservations, st.lists(st.tuples(st.floats(0, 50), st.data()),
                                              max_size=40))
def test_the_machine_never_raises_and_closed_is_final(opener: bool, reservation: Reservation,
                                                      moves: list[tuple[float, st.DataObject]]
                                                      ) -> None:
    now = 0.0
    conn = opening(b"i" * 16, reservation, now) if opener else served(b"i" * 16,
                                                                    reservation, now)
    config = ConnectionSettings(idle_timeout=30.0, vanish_after=3, max_reopens=2)
    for gap, data in moves:
        now += gap
        event = data.draw(inputs(now))
        before = conn
        conn, outputs = step(conn, event, config)
        if before.phase is Phase.CLOSED:
            assert conn.phase is Phase.CLOSED and not any(isinstance(o, Ended) for o in outputs)
        if any(isinstance(o, Go) for o in outputs):
            assert before.phase is Phase.OPEN and isinstance(event, Send)
        if any(isinstance(o, Ended) for o in outputs):
            assert conn.phase is Phase.CLOSED and conn.ended is not None
        assert conn.granted.rate <= max(conn.asked.rate, 0)
        assert conn.connection_id == b"i" * 16
        counters = conn.counters
        assert min(counters.sent, counters.answered, counters.failed, counters.reopened,
                   counters.sent_bytes, counters.answered_bytes) >= 0


@settings(max_examples=200)
@given(st.integers(1, 10**6), st.integers(1, 10**6),
       st.lists(st.tuples(st.floats(0, 2), st.integers(0, 3 * 10**6)), max_size=60))
def test_the_sender_never_exceeds_its_reservation(rate: int, burst: int,
                                                  sends: list[tuple[float, int]]) -> None:
    reservation = Reservation(rate, burst)
    config = ConnectionSettings(idle_timeout=1e9)
    conn, _ = step(opening(b"r" * 16, reservation, 0.0), Opened(reservation, 0.0), config)
    now, sent, largest = 0.0, 0, 0
    for gap, size in sends:
        now += gap
        conn, outputs = step(conn, Send(size, now), config)
        if any(isinstance(o, Go) for o in outputs):
            sent += size
            largest = max(largest, size)
    assert sent <= burst + rate * now + largest + 1e-6


MOVES = ["admit", "release", "idle", "touch", "opened", "open_failed"]


@settings(max_examples=200)
@given(st.lists(st.tuples(st.sampled_from(MOVES),
                          st.integers(0, 3), st.integers(0, 5), st.integers(0, 3),
                          st.integers(0, 50)), max_size=80))
def test_the_served_table_keeps_its_bounds(moves: list[tuple[str, int, int, int, int]]) -> None:
    limits = ConnectionLimits(total=6, per_entity=3, per_peer=2, idle_timeout=20.0,
                              reservable=100)
    table = ServedConnections(limits)
    now = 0.0
    for what, entity, cid, peer, amount in moves:
        now += 1.0
        e, c, p = bytes([entity]), bytes([cid]) * 16, (b"c", bytes([peer]))
        if what == "admit":
            granted = table.admit(e, c, p, Reservation(amount, amount), now)
            assert isinstance(granted, ErrorCode) or granted.rate <= amount
        elif what == "release":
            table.release(e, c)
        elif what == "touch":
            table.touch(e, c, p, now)
        elif what == "opened":
            table.opened(e, c)
        elif what == "open_failed":
            table.open_failed(e, c)
        else:
            table.idle(now)
        assert len(table) <= limits.total
        assert 0 <= table.reserved <= limits.reservable
        per_entity = {}
        per_peer = {}
        for (ent, _), served_one in table._served.items():
            per_entity[ent] = per_entity.get(ent, 0) + 1
            per_peer[served_one.peer] = per_peer.get(served_one.peer, 0) + 1
        assert all(n <= limits.per_entity for n in per_entity.values())
        assert all(n <= limits.per_peer for n in per_peer.values())


@given(values, st.booleans())
def test_a_request_body_with_any_key_10_decodes_or_is_refused_with_a_code(
        value: object, one_way: bool) -> None:
    body: dict[int, object] = {0: b"t", 1: 1, 2: 1, 3: b"", 4: 0, 6: [b"c", b"a", None, None],
                               10: value}
    if one_way:
        body[9] = b"m"
    try:
        decoded = decode_node_request(encode_operation(cbor.dumps(body)))  # type: ignore[arg-type]
    except MercuryError as exc:
        assert exc.code == ErrorCode.WRONG_TYPE
        return
    request = decoded.request  # type: ignore[union-attr]
    assert request.connection is not None
    assert not (one_way and request.connection.form is ConnectionForm.OPEN)


def test_only_the_peer_s_uses_keep_a_served_connection_from_going_idle() -> None:
    table = ServedConnections(ConnectionLimits(idle_timeout=20.0))
    peer, stranger = (b"c", b"dave"), (b"c", b"mallory")
    assert not isinstance(table.admit(b"e", b"x" * 16, peer, Reservation(0, 0), 0.0), ErrorCode)
    assert not table.touch(b"e", b"x" * 16, stranger, 15.0)
    assert table.idle(25.0), "a stranger's replayed uses kept it alive"


def test_a_failed_re_open_keeps_an_established_connection_counted() -> None:
    table = ServedConnections(ConnectionLimits(per_peer=1))
    peer = (b"c", b"dave")
    first, second = b"x" * 16, b"y" * 16
    assert not isinstance(table.admit(b"e", first, peer, Reservation(0, 0), 0.0), ErrorCode)
    table.opened(b"e", first)
    assert not isinstance(table.admit(b"e", first, peer, Reservation(0, 0), 1.0), ErrorCode)
    assert not table.open_failed(b"e", first), "a failing re-open released the connection"
    assert table.admit(b"e", second, peer, Reservation(0, 0), 2.0) \
        is ErrorCode.TOO_MANY_PEER_CONNECTIONS


def test_a_refused_first_open_frees_its_place() -> None:
    table = ServedConnections(ConnectionLimits(per_peer=1))
    peer = (b"c", b"dave")
    assert not isinstance(table.admit(b"e", b"x" * 16, peer, Reservation(0, 0), 0.0), ErrorCode)
    assert table.open_failed(b"e", b"x" * 16)
    assert not isinstance(table.admit(b"e", b"y" * 16, peer, Reservation(0, 0), 1.0), ErrorCode)
