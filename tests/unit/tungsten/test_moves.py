"""Stored migrations (tungsten/moves.py): a row written by one process is read by another
that has the store open, and a malformed row is refused rather than misread."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tungsten.errors import CorruptStateError
from tungsten.memory import MemoryStore
from tungsten.moves import Move, StoredMoves
from tungsten.node_state import MOVED_SECTION, NODE_ENTITY
from tungsten.store import LmdbStore

WRITER = """
import sys
from tungsten.moves import Move, StoredMoves
from tungsten.store import LmdbStore
store = LmdbStore(sys.argv[1])
StoredMoves(store).record(Move(b"carol", b"eid", 5))
store.close()
"""


def test_moves_round_trip_and_replace_per_entity() -> None:
    moves = StoredMoves(MemoryStore())
    moves.record(Move(b"carol", b"eid-1", 10))
    moves.record(Move(b"bob", b"eid-2", 11))
    moves.record(Move(b"carol", b"eid-3", 12))
    assert moves.all() == [Move(b"bob", b"eid-2", 11), Move(b"carol", b"eid-3", 12)]
    assert moves.forget(b"bob") and not moves.forget(b"bob")
    assert moves.all() == [Move(b"carol", b"eid-3", 12)]


def test_a_move_written_through_another_handle_is_seen_by_an_open_store(
        tmp_path: Path) -> None:
    """As when `entity migrate` writes while the node runs (the node's own read snapshot
    would be older than the other handle's commit)."""
    node = LmdbStore(tmp_path)
    try:
        with node.reading() as view:
            assert view.get(NODE_ENTITY, MOVED_SECTION, (b"carol",)) is None
        subprocess.run([sys.executable, "-c", WRITER, str(tmp_path)], check=True, timeout=30)
        assert StoredMoves(node).all() == [Move(b"carol", b"eid", 5)]
    finally:
        node.close()


def test_a_malformed_row_is_refused() -> None:
    store = MemoryStore()
    store.apply(lambda w: w.put(NODE_ENTITY, MOVED_SECTION, (b"carol",), ("text", 5)))
    with pytest.raises(CorruptStateError):
        StoredMoves(store).all()
