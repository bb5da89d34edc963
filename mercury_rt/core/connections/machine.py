"""One end's connection as a pure state machine: (state, input) -> (new state, outputs).

Explicit phases, as h11 does: OPENING (the open is on its way), OPEN, REOPENING (the
node serving the far end no longer knows the connection: the opener opens it again under
the same id, docs/protocol.md 5.9), CLOSING and CLOSED. The host (aio/connections.py,
or a simulated one) feeds what happened: the open's answer, a send it wants to make,
each use's answer code as the peer or the network gave it, a close, the clock. It never
raises for anything a peer can cause: an unknown or hostile code is an answer like any
other, and an input a phase does not expect leaves the state as it is with a Refused
output. Only the opener re-establishes (it holds the open's operation and its map); the
served end that meets 440 ends the connection.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import Enum
from typing import assert_never

from carbon.error_codes import ErrorCode
from mercury_rt.core.connections.bucket import Bucket
from mercury_rt.core.connections.wire import NO_RESERVATION, Reservation

VANISHED_CODES = frozenset({ErrorCode.NO_NODE_ANSWERED, ErrorCode.CONTACT_ATTEMPTS_EXHAUSTED,
                            ErrorCode.TIMEOUT, ErrorCode.NO_ANSWER, ErrorCode.NO_LIVE_MIRROR})
"""Answers that say no node of the peer entity could be reached: counted towards
`vanish_after`; anything the peer answered resets the count."""


class Phase(Enum):
    """Where a connection is in its life."""

    OPENING = "opening"
    OPEN = "open"
    REOPENING = "reopening"
    CLOSING = "closing"
    CLOSED = "closed"


@dataclass(frozen=True, slots=True)
class ConnectionSettings:
    """Timing and failure bounds of one end."""

    idle_timeout: float = 300.0
    """Seconds without a send or an answer after which a Tick closes the connection."""
    vanish_after: int = 3
    """Consecutive uses no node of the peer entity answered before it counts as gone."""
    max_reopens: int = 8
    """Re-establishments in a row without a successful use in between (bounds a peer
    that forgets every connection at once)."""


@dataclass(frozen=True, slots=True)
class Counters:
    """Per-connection traffic, for metrics."""

    sent: int = 0
    sent_bytes: int = 0
    answered: int = 0
    answered_bytes: int = 0
    failed: int = 0
    reopened: int = 0
    waited: int = 0


@dataclass(frozen=True, slots=True)
class Connection:
    """One end's view of one connection."""

    connection_id: bytes
    opener: bool
    phase: Phase
    last_used: float
    asked: Reservation = NO_RESERVATION
    granted: Reservation = NO_RESERVATION
    bucket: Bucket | None = None
    misses: int = 0
    reopens: int = 0
    ended: int | None = None
    """Why it closed (an error code), once CLOSED or CLOSING."""
    counters: Counters = Counters()

    @property
    def usable(self) -> bool:
        """Whether sends are accepted (possibly after a re-establishment)."""
        return self.phase in (Phase.OPEN, Phase.REOPENING)


def opening(connection_id: bytes, reservation: Reservation, now: float) -> Connection:
    """The opener's connection while its open is on its way."""
    return Connection(connection_id, True, Phase.OPENING, now, asked=reservation)


def served(connection_id: bytes, granted: Reservation, now: float) -> Connection:
    """The accepting end's connection, open from the start."""
    bucket = None if granted.none else Bucket.full(granted, now)
    return Connection(connection_id, False, Phase.OPEN, now, asked=granted, granted=granted,
                      bucket=bucket)


# ----- inputs ---------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Opened:
    """The open (or a re-establishment) succeeded; the server granted `granted`."""

    granted: Reservation
    now: float


@dataclass(frozen=True, slots=True)
class OpenFailed:
    """The open (or a re-establishment) was refused or not answered."""

    code: int
    now: float


@dataclass(frozen=True, slots=True)
class Send:
    """The host wants to send `size` bytes on the connection."""

    size: int
    now: float


@dataclass(frozen=True, slots=True)
class Answered:
    """A use's outcome: `code` None for success (with `size` reply bytes)."""

    code: int | None
    size: int
    now: float


@dataclass(frozen=True, slots=True)
class Close:
    """This end closes the connection."""

    now: float


@dataclass(frozen=True, slots=True)
class CloseAnswered:
    """The close reached the peer, or could not (either way it is over)."""

    now: float


@dataclass(frozen=True, slots=True)
class PeerClosed:
    """The peer closed the connection."""

    now: float


@dataclass(frozen=True, slots=True)
class Tick:
    """Time passed (idle timeout)."""

    now: float


Input = Opened | OpenFailed | Send | Answered | Close | CloseAnswered | PeerClosed | Tick


# ----- outputs --------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Go:
    """Send now."""


@dataclass(frozen=True, slots=True)
class Wait:
    """The reservation does not allow it yet: feed the same Send again at `until`."""

    until: float


@dataclass(frozen=True, slots=True)
class Reopen:
    """Open again under the same id with the re-established flag, then retry the use."""


@dataclass(frozen=True, slots=True)
class AwaitReopen:
    """A re-establishment is under way: retry the use once it ends."""


@dataclass(frozen=True, slots=True)
class Retry:
    """Send the use again (it was not run: the far end did not know the connection)."""


@dataclass(frozen=True, slots=True)
class SendClose:
    """Tell the peer the connection is closed."""


@dataclass(frozen=True, slots=True)
class Refused:
    """The host's input is refused: `code` says why (444 after a close, 445, 446, ...)."""

    code: int


@dataclass(frozen=True, slots=True)
class ReservationNotKept:
    """A re-established connection was granted less than it asked for."""

    asked: Reservation
    granted: Reservation


@dataclass(frozen=True, slots=True)
class Ended:
    """The connection is over; `code` says why."""

    code: int


Output = Go | Wait | Reopen | AwaitReopen | Retry | SendClose | Refused | ReservationNotKept \
    | Ended
Step = tuple[Connection, tuple[Output, ...]]


def step(conn: Connection, event: Input, settings: ConnectionSettings) -> Step:
    """The connection after `event`, and what the host does about it."""
    if conn.phase is Phase.CLOSED:
        return _after_close(conn, event)
    match event:
        case Opened():
            return _opened(conn, event)
        case OpenFailed():
            if conn.phase in (Phase.OPENING, Phase.REOPENING):
                return _end(conn, event.code)
            return conn, ()
        case Send():
            return _send(conn, event)
        case Answered():
            return _answered(conn, event, settings)
        case Close():
            return _closing(conn, int(ErrorCode.CONNECTION_CLOSED), event.now)
        case CloseAnswered():
            return _end(conn, conn.ended or int(ErrorCode.CONNECTION_CLOSED))
        case PeerClosed():
            return _end(conn, int(ErrorCode.CONNECTION_CLOSED))
        case Tick():
            if conn.phase is Phase.OPEN and event.now - conn.last_used >= settings.idle_timeout:
                return _closing(conn, int(ErrorCode.CONNECTION_IDLE), event.now)
            return conn, ()
        case _:
            assert_never(event)


def _after_close(conn: Connection, event: Input) -> Step:
    if isinstance(event, Send):
        return conn, (Refused(conn.ended or int(ErrorCode.CONNECTION_CLOSED)),)
    return conn, ()


def _opened(conn: Connection, event: Opened) -> Step:
    if conn.phase not in (Phase.OPENING, Phase.REOPENING):
        return conn, ()
    granted = event.granted
    if granted.rate > conn.asked.rate or granted.burst > conn.asked.burst:
        granted = conn.asked  # never more than was asked: a peer cannot make us flood
    outputs: tuple[Output, ...] = ()
    reopened = conn.phase is Phase.REOPENING
    if reopened and granted != conn.asked:
        outputs = (ReservationNotKept(conn.asked, granted),)
    bucket = None if granted.none else Bucket.full(granted, event.now)
    counters = conn.counters
    if reopened:
        counters = replace(counters, reopened=counters.reopened + 1)
    return replace(conn, phase=Phase.OPEN, granted=granted, bucket=bucket,
                   last_used=event.now, counters=counters), outputs


def _send(conn: Connection, event: Send) -> Step:
    if conn.phase is Phase.CLOSING:
        return conn, (Refused(conn.ended or int(ErrorCode.CONNECTION_CLOSED)),)
    if conn.phase in (Phase.OPENING, Phase.REOPENING):
        return conn, (AwaitReopen(),)
    size = max(0, event.size)
    if conn.bucket is not None:
        ready = conn.bucket.ready_at(conn.granted, size, event.now)
        if ready > event.now:
            counters = replace(conn.counters, waited=conn.counters.waited + 1)
            return replace(conn, counters=counters), (Wait(ready),)
        conn = replace(conn, bucket=conn.bucket.spent(conn.granted, size, event.now))
    counters = replace(conn.counters, sent=conn.counters.sent + 1,
                       sent_bytes=conn.counters.sent_bytes + size)
    return replace(conn, last_used=event.now, counters=counters), (Go(),)


def _answered(conn: Connection, event: Answered, settings: ConnectionSettings) -> Step:
    counters = conn.counters
    if event.code is None:
        counters = replace(counters, answered=counters.answered + 1,
                           answered_bytes=counters.answered_bytes + max(0, event.size))
        return replace(conn, misses=0, reopens=0, last_used=event.now,
                       counters=counters), ()
    counters = replace(counters, failed=counters.failed + 1)
    conn = replace(conn, counters=counters)
    if event.code == ErrorCode.CONNECTION_UNKNOWN:
        return _unknown_at_peer(conn, settings)
    if event.code == ErrorCode.CONNECTION_CLOSED:
        return _end(conn, event.code)
    if event.code in VANISHED_CODES:
        misses = conn.misses + 1
        if misses >= settings.vanish_after:
            return _end(replace(conn, misses=misses), int(ErrorCode.CONNECTION_PEER_VANISHED))
        return replace(conn, misses=misses), ()
    return replace(conn, misses=0, last_used=event.now), ()


def _unknown_at_peer(conn: Connection, settings: ConnectionSettings) -> Step:
    """The far end's node does not know the connection (it failed over, or restarted)."""
    if conn.phase is Phase.REOPENING:
        return conn, (AwaitReopen(),)
    if not conn.opener or conn.phase is not Phase.OPEN:
        return _end(conn, int(ErrorCode.CONNECTION_UNKNOWN))
    if conn.reopens >= settings.max_reopens:
        return _end(conn, int(ErrorCode.CONNECTION_UNKNOWN))
    return replace(conn, phase=Phase.REOPENING, reopens=conn.reopens + 1), (Reopen(),)


def _closing(conn: Connection, code: int, now: float) -> Step:
    if conn.phase is Phase.CLOSING:
        return conn, ()
    return replace(conn, phase=Phase.CLOSING, ended=code, last_used=now), (SendClose(),)


def _end(conn: Connection, code: int) -> Step:
    ended = conn.ended if conn.phase is Phase.CLOSING and conn.ended is not None else code
    return replace(conn, phase=Phase.CLOSED, ended=ended, bucket=None), (Ended(ended),)
