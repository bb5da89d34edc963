"""Property: whatever mix of admissions, releases and time a flood of unvalidated
addresses brings, the record table keeps every address within its shares, never evicts a
validated caller's protecting mark nor the mark of a record still held, and never holds
more reply bytes for an address than its bound (protocol.md 3.4)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from mercury_rt.core.transport import (
    EPOCH_SHIFT,
    Kind,
    LookupVerdict,
    Record,
    RecordState,
    RecordTable,
)

PEERS = [(f"10.0.0.{n}", 7000) for n in range(6)]
VALIDATED = {PEERS[0], PEERS[1]}
SHARE, EPOCHS, REPLY_BOUND = 3, 8, 1000

ops = st.lists(st.tuples(st.sampled_from(["add", "add", "add", "release", "release",
                                         "reply", "time"]),
                         st.integers(0, 5), st.integers(1, 3), st.integers(0, 5),
                         st.integers(1, 600)), min_size=30, max_size=120)


@settings(max_examples=300, deadline=None)
@given(ops=ops)
def test_shares_bounds_and_protecting_marks_hold_under_any_flood(
        ops: list[tuple[str, int, int, int, int]]) -> None:
    table = RecordTable(max_records=40, max_per_peer=10, max_reply_bytes=3 * REPLY_BOUND,
                        max_epochs=EPOCHS, max_epochs_per_peer=SHARE, validated=VALIDATED,
                        max_reply_bytes_per_peer=REPLY_BOUND)
    now = 0.0
    protected: dict[tuple[tuple[str, int], int], tuple[int, float]] = {}
    for op, who, epoch_no, low, size in ops:
        peer = PEERS[who]
        id_ = (epoch_no << EPOCH_SHIFT) + 10 + low
        if op == "time":
            now += size / 100  # up to 6 s: records live 20 s, so the table fills
            table.sweep(now)
        elif op == "add":
            if table.get(peer, id_) is None and table.lookup(peer, id_, 0) is \
                    LookupVerdict.NEW and table.has_room(peer, id_, now):
                table.add(Record(peer, id_, Kind.REQUEST, now + 20.0, 10,
                                 RecordState.REPLIED))
        elif op == "release":
            mark = (epoch_no << EPOCH_SHIFT) + 10 + low
            table.lookup(peer, mark, mark)
            epoch = table._epochs.get((peer, epoch_no))
            if epoch is not None and peer in VALIDATED and epoch.done_below > 10 + (
                    epoch_no << EPOCH_SHIFT):
                protected[(peer, epoch_no)] = (epoch.done_below, epoch.keep_until)
        else:
            held = sorted(r for (p, r) in table.by_key if p == peer)
            record = table.get(peer, held[low % len(held)]) if held else None
            if record is not None and not record.reply_bytes and table.reply_fits(peer, size):
                table.charge_reply(record, size)
        for p in PEERS:
            assert table.held_bytes(p) <= REPLY_BOUND
            assert len(table._peer_epochs.get(p, {})) <= SHARE
        assert len(table._epochs) <= EPOCHS and table.reply_bytes <= 3 * REPLY_BOUND
        for (p, rid), record in table.by_key.items():
            if record.expires_at > now:
                assert (p, rid >> EPOCH_SHIFT) in table._epochs, "a held record's mark"
        for (p, n), (_, keep_until) in protected.items():
            if keep_until > now:
                # stale, or a record still held that answers it: never run again
                assert table.lookup(p, (n << EPOCH_SHIFT) + 10, 0) is not LookupVerdict.NEW
