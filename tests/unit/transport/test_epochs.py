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


def test_a_flood_of_new_epochs_is_refused_instead_of_evicting_a_validated_callers_mark(
        ) -> None:
    table = RecordTable(max_records=1000, max_per_peer=1000, max_reply_bytes=1 << 20,
                        max_epochs=3, validated={A})
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


def test_one_address_holds_at_most_its_share_of_epochs_and_is_told_when_to_retry() -> None:
    table = RecordTable(max_records=10_000, max_per_peer=10_000, max_reply_bytes=1 << 20,
                        max_epochs=100, max_epochs_per_peer=4)
    admitted = 0
    for n in range(1, 50):
        id_ = (n << EPOCH_SHIFT) + 1
        if table.has_room(FLOOD, id_, now=0.0):
            table.add(_record(FLOOD, id_, expires_at=30.0 + n))
            admitted += 1
    assert admitted == 4
    assert table.retry_after(FLOOD, now=10.0) == 21.0, "its first mark ends at 31 s"
    assert table.has_room(A, (77 << EPOCH_SHIFT) + 1, now=10.0), "others are not affected"
    for n in range(1, 5):  # every record gone (released), the marks still protect
        table.remove(table.by_key[(FLOOD, (n << EPOCH_SHIFT) + 1)])
    assert not table.has_room(FLOOD, (60 << EPOCH_SHIFT) + 1, now=10.0)
    assert table.has_room(FLOOD, (60 << EPOCH_SHIFT) + 1, now=31.0), "its first one ended"


def test_a_full_table_evicts_an_unvalidated_strangers_idle_mark_never_a_validated_one(
        ) -> None:
    validated = {A}
    table = RecordTable(max_records=10_000, max_per_peer=10_000, max_reply_bytes=1 << 20,
                        max_epochs=3, max_epochs_per_peer=4, validated=validated)
    mine = (1 << EPOCH_SHIFT) + 1
    table.add(_record(A, mine, expires_at=100.0))
    assert table.lookup(A, mine + 1, done_below=mine + 1) is NEW  # releases `mine`: its
    assert table.get(A, mine) is None  # mark alone keeps a delayed copy from running again
    busy = ("10.0.0.2", 7000)  # an unvalidated caller with a request still held
    table.add(_record(busy, (2 << EPOCH_SHIFT) + 1, expires_at=100.0))
    idle = ("10.0.0.3", 7000)
    table.add(_record(idle, (3 << EPOCH_SHIFT) + 1, expires_at=100.0))
    assert table.lookup(idle, (3 << EPOCH_SHIFT) + 2, done_below=(3 << EPOCH_SHIFT) + 2) is NEW
    assert table.has_room(FLOOD, (9 << EPOCH_SHIFT) + 1, now=1.0)  # evicts idle's mark
    table.add(_record(FLOOD, (9 << EPOCH_SHIFT) + 1, expires_at=100.0))
    assert table.evicted_epochs == 1
    assert table.lookup(A, mine, done_below=0) is STALE, "the validated mark stays"
    assert table.get(busy, (2 << EPOCH_SHIFT) + 1) is not None
    assert not table.has_room(FLOOD, (10 << EPOCH_SHIFT) + 1, now=1.0), \
        "nothing left that may be evicted: refused, never a protecting mark dropped"


def test_heavy_strangers_cannot_take_the_last_quarter_of_the_record_table() -> None:
    validated = {A}
    table = RecordTable(max_records=400, max_per_peer=100, max_reply_bytes=1 << 20,
                        max_epochs=100, validated=validated)
    heavy = [(f"10.9.9.{n}", 7000) for n in range(4)]
    for n, peer in enumerate(heavy):
        for i in range(100):
            id_ = ((n + 1) << EPOCH_SHIFT) + i
            if table.has_room(peer, id_, now=0.0):
                table.add(_record(peer, id_, expires_at=100.0))
    assert len(table) == 300 + 64, "three fill their share, the fourth stops at 64"
    newcomer = ("10.0.0.9", 7000)
    assert table.has_room(newcomer, (50 << EPOCH_SHIFT) + 1, now=0.0)
    for i in range(36):
        table.add(_record(A, (60 << EPOCH_SHIFT) + i, expires_at=100.0))
    assert len(table) == 400
    assert not table.has_room(A, (60 << EPOCH_SHIFT) + 99, now=0.0), "the total still holds"
