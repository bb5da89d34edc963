"""The server's per-sender marks (done_below epochs) are bounded without ever dropping one
that still protects a released request from running twice."""

from __future__ import annotations

from mercury_rt.core.transport import (
    EPOCH_SHIFT,
    Kind,
    LookupVerdict,
    Record,
    RecordState,
    RecordTable,
)

A, FLOOD = ("10.0.0.1", 7000), ("10.6.6.6", 7000)
NEW, STALE = LookupVerdict.NEW, LookupVerdict.STALE


def _record(peer: tuple[str, int], id_: int, expires_at: float) -> Record:
    return Record(peer, id_, Kind.REQUEST, expires_at, 10, RecordState.REPLIED)


def test_a_flood_of_new_epochs_is_refused_instead_of_evicting_a_protecting_mark() -> None:
    table = RecordTable(max_records=1000, max_per_peer=1000, max_reply_bytes=1 << 20,
                        max_epochs=3)
    first = (1 << EPOCH_SHIFT) + 5
    table.add(_record(A, first, expires_at=100.0))
    assert table.lookup(A, first + 1, done_below=first + 1) is NEW  # releases `first`
    assert table.get(A, first) is None
    for n in range(2, 10):  # a spoofed flood, each datagram a fresh sender epoch
        id_ = (n << EPOCH_SHIFT) + 1
        if table.has_room(FLOOD, id_, now=1.0):
            table.add(_record(FLOOD, id_, expires_at=50.0))
    assert table.lookup(A, first, done_below=0) is STALE, "the delayed copy is still stale"
    assert not table.has_room(FLOOD, (42 << EPOCH_SHIFT) + 1, now=2.0)
    assert table.has_room(A, first + 1, now=2.0), "a known epoch always has room"
    # The flood's windows are over: their epochs go (A's, at the front, would shield
    # them from the front-first sweep; a full table scans), A's stays.
    assert table.has_room(FLOOD, (42 << EPOCH_SHIFT) + 1, now=60.0)
    assert table.lookup(A, first, done_below=0) is STALE
    table.sweep(now=101.0)
    assert table.lookup(A, first, done_below=0) is NEW  # past its window: none can come


def test_lookups_that_are_never_admitted_cost_no_memory() -> None:
    table = RecordTable(max_records=10, max_per_peer=10, max_reply_bytes=1024, max_epochs=2)
    for n in range(1000):
        assert table.lookup(FLOOD, (n << EPOCH_SHIFT) + 1, done_below=0) is NEW
    assert table.has_room(A, (7 << EPOCH_SHIFT) + 1, now=0.0)
    stale = (9 << EPOCH_SHIFT) + 1
    assert table.lookup(A, stale, done_below=stale + 1) is STALE, "a copy below its own mark"
