"""One end's connection machine: re-establishment, a vanished peer, idle close, the
reservation it enforces and reports."""

from __future__ import annotations

from dataclasses import replace

import pytest

from carbon.error_codes import ErrorCode
from mercury_rt.core.connections import (
    Answered,
    AwaitReopen,
    Close,
    CloseAnswered,
    Connection,
    ConnectionSettings,
    Ended,
    Go,
    Input,
    Opened,
    OpenFailed,
    PeerClosed,
    Phase,
    Refused,
    Reopen,
    Reservation,
    ReservationNotKept,
    Send,
    SendClose,
    Tick,
    Wait,
    opening,
    served,
    step,
)

SETTINGS = ConnectionSettings(idle_timeout=10.0, vanish_after=3, max_reopens=2)
ASKED = Reservation(1000, 500)
UNKNOWN = int(ErrorCode.CONNECTION_UNKNOWN)


def _open() -> Connection:
    conn, _ = step(opening(b"i" * 16, ASKED, 0.0), Opened(ASKED, 0.0), SETTINGS)
    return conn


def test_the_opener_reopens_once_for_many_uses_and_reports_a_smaller_reservation() -> None:
    conn = _open()
    conn, out = step(conn, Answered(UNKNOWN, 0, 1.0), SETTINGS)
    assert out == (Reopen(),) and conn.phase is Phase.REOPENING
    conn, out = step(conn, Answered(UNKNOWN, 0, 1.0), SETTINGS)
    assert out == (AwaitReopen(),), "a second use waits for the same re-establishment"
    assert step(conn, Send(10, 1.0), SETTINGS)[1] == (AwaitReopen(),)
    smaller = Reservation(100, 50)
    conn, out = step(conn, Opened(smaller, 2.0), SETTINGS)
    assert out == (ReservationNotKept(ASKED, smaller),) and conn.phase is Phase.OPEN
    assert conn.counters.reopened == 1 and conn.granted == smaller


def test_a_server_end_meeting_440_ends_and_reopens_are_bounded() -> None:
    conn = served(b"s" * 16, Reservation(), 0.0)
    conn, out = step(conn, Answered(UNKNOWN, 0, 1.0), SETTINGS)
    assert out == (Ended(UNKNOWN),) and conn.phase is Phase.CLOSED
    conn = _open()
    for _ in range(2):
        conn, out = step(conn, Answered(UNKNOWN, 0, 1.0), SETTINGS)
        conn, _ = step(conn, Opened(ASKED, 1.0), SETTINGS)
    conn, out = step(conn, Answered(UNKNOWN, 0, 1.0), SETTINGS)
    assert out == (Ended(UNKNOWN),), "a peer forgetting every time is not followed forever"


def test_three_unanswered_uses_mean_the_peer_vanished() -> None:
    conn = _open()
    for _n in range(3):
        conn, out = step(conn, Answered(int(ErrorCode.NO_NODE_ANSWERED), 0, 1.0),
                         SETTINGS)
    assert out == (Ended(int(ErrorCode.CONNECTION_PEER_VANISHED)),)
    assert step(conn, Send(1, 2.0), SETTINGS)[1] == (
        Refused(int(ErrorCode.CONNECTION_PEER_VANISHED)),)


def test_idle_connections_close_and_closed_ones_refuse() -> None:
    conn = _open()
    conn, out = step(conn, Tick(5.0), SETTINGS)
    assert out == ()
    conn, out = step(conn, Tick(10.0), SETTINGS)
    assert out == (SendClose(),) and conn.phase is Phase.CLOSING
    conn, out = step(conn, CloseAnswered(10.5), SETTINGS)
    assert out == (Ended(int(ErrorCode.CONNECTION_IDLE)),)
    conn = _open()
    conn, out = step(conn, Close(1.0), SETTINGS)
    assert out == (SendClose(),)
    assert step(conn, Send(1, 1.0), SETTINGS)[1] == (Refused(int(ErrorCode.CONNECTION_CLOSED)),)


def test_the_reservation_makes_the_sender_wait() -> None:
    conn = _open()
    conn, out = step(conn, Send(500, 0.0), SETTINGS)
    assert out == (Go(),)
    conn, out = step(conn, Send(500, 0.0), SETTINGS)
    assert out == (Wait(0.5),), "the burst is spent: 500 B more at 1000 B/s"
    conn, out = step(conn, Send(500, 0.5), SETTINGS)
    assert out == (Go(),) and conn.counters.waited == 1


def _in(phase: Phase, opener: bool = True) -> Connection:
    conn = replace(opening(b"p" * 16, Reservation(), 0.0), opener=opener, phase=phase)
    return replace(conn, ended=int(ErrorCode.CONNECTION_CLOSED)) \
        if phase in (Phase.CLOSING, Phase.CLOSED) else conn


TABLE = [  # (phase, input, next phase): docs/protocol.md 5.9, the state machine table
    (Phase.OPENING, Opened(Reservation(), 1.0), Phase.OPEN),
    (Phase.OPENING, OpenFailed(443, 1.0), Phase.CLOSED),
    (Phase.REOPENING, OpenFailed(500, 1.0), Phase.CLOSED),
    (Phase.REOPENING, Opened(Reservation(), 1.0), Phase.OPEN),
    (Phase.OPEN, Send(10, 1.0), Phase.OPEN),
    (Phase.OPENING, Send(10, 1.0), Phase.OPENING),
    (Phase.REOPENING, Send(10, 1.0), Phase.REOPENING),
    (Phase.OPEN, Answered(UNKNOWN, 0, 1.0), Phase.REOPENING),
    (Phase.OPEN, Answered(int(ErrorCode.CONNECTION_CLOSED), 0, 1.0), Phase.CLOSED),
    (Phase.OPEN, Answered(None, 5, 1.0), Phase.OPEN),
    (Phase.OPEN, Answered(999_999, 0, 1.0), Phase.OPEN),
    (Phase.OPEN, Tick(100.0), Phase.CLOSING),
    (Phase.OPEN, Close(1.0), Phase.CLOSING),
    (Phase.OPENING, Close(1.0), Phase.CLOSING),
    (Phase.REOPENING, Close(1.0), Phase.CLOSING),
    (Phase.CLOSING, CloseAnswered(1.0), Phase.CLOSED),
    (Phase.OPEN, PeerClosed(1.0), Phase.CLOSED),
    (Phase.CLOSING, PeerClosed(1.0), Phase.CLOSED),
    (Phase.CLOSED, Send(10, 1.0), Phase.CLOSED),
    (Phase.CLOSED, Opened(Reservation(), 1.0), Phase.CLOSED),
    (Phase.OPEN, Opened(Reservation(), 1.0), Phase.OPEN),
    (Phase.CLOSING, Send(10, 1.0), Phase.CLOSING),
]


@pytest.mark.parametrize(("phase", "event", "after"), TABLE)
def test_the_documented_transitions(phase: Phase, event: Input, after: Phase) -> None:
    assert step(_in(phase), event, SETTINGS)[0].phase is after


def test_a_server_end_meets_440_by_ending() -> None:
    assert step(_in(Phase.OPEN, opener=False), Answered(UNKNOWN, 0, 1.0),
                SETTINGS)[0].phase is Phase.CLOSED
