"""Staged transactions are serializable: concurrent transfers never create or lose value."""

from __future__ import annotations

import tempfile
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from carbon.symbols import Symbol
from tungsten.api import StateStore
from tungsten.errors import ConflictError
from tungsten.memory import MemoryStore
from tungsten.staged import StagedState
from tungsten.store import LmdbOptions, LmdbStore

S = Symbol("/test/accounts")
ACCOUNTS = ["a", "b", "c"]
transfer = st.tuples(st.sampled_from(ACCOUNTS), st.sampled_from(ACCOUNTS),
                     st.integers(1, 50))
# A schedule: each transfer starts (takes its snapshot) at one step and commits at a later one.
schedules = st.lists(st.tuples(transfer, st.integers(0, 5), st.integers(0, 5)),
                     min_size=1, max_size=8)


def _balance(store: StateStore) -> dict[str, int]:
    with store.reading() as view:
        return {k[0]: v[0] for k, v in view.scan(b"bank", S)}


def _run_schedule(store: StateStore, schedule: list[tuple[tuple[str, str, int], int, int]]
                  ) -> int:
    with store.writing() as txn:
        for name in ACCOUNTS:
            txn.put(b"bank", S, (name,), (100,))
    open_txns: dict[int, tuple[StagedState, object]] = {}
    committed = 0
    events = sorted([(start, 0, i) for i, (_, start, _) in enumerate(schedule)]
                    + [(max(start, end), 1, i) for i, (_, start, end) in enumerate(schedule)])
    for _, is_commit, i in events:
        (src, dst, amount), _, _ = schedule[i]
        if not is_commit:
            snap = store.snapshot()
            staged = StagedState(snap)
            (have,) = staged.get(b"bank", S, (src,)) or (0,)
            staged.put(b"bank", S, (src,), (int(have) - amount,))
            (other,) = staged.get(b"bank", S, (dst,)) or (0,)
            staged.put(b"bank", S, (dst,), (int(other) + amount,))
            open_txns[i] = (staged, snap)
            continue
        staged, snap = open_txns.pop(i)
        try:
            staged.commit(store)
            committed += 1
        except ConflictError:
            pass
        snap.close()
    return committed


@settings(max_examples=60, deadline=None)
@given(schedules)
def test_interleaved_transfers_preserve_the_total_on_lmdb(schedule: list[Any]) -> None:
    """On LMDB, optimistic validation rejects every lost update."""
    with tempfile.TemporaryDirectory() as tmp:
        store = LmdbStore(tmp, LmdbOptions(map_size=4 << 20))
        try:
            committed = _run_schedule(store, schedule)
            assert sum(_balance(store).values()) == 300
            assert committed >= 1
        finally:
            store.close()


@settings(max_examples=60, deadline=None)
@given(schedules)
def test_interleaved_transfers_preserve_the_total_in_memory(schedule: list[Any]) -> None:
    """The in-memory store gives the same guarantee."""
    store = MemoryStore()
    _run_schedule(store, schedule)
    assert sum(_balance(store).values()) == 300
