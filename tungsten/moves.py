"""Entities that migrated to another cluster, durably: local name -> (new EID, when).

A node answers requests for a migrated entity with a forwarding record (docs/protocol.md
6.6); the record is signed again from this row at every start, so a migration outlives
restarts. Another process (`mercury-rt entity migrate`) may add rows while the node runs:
`all()` reads inside a write transaction, which always sees the newest commit (a read
snapshot of a store may be older than another process's commit).
"""

from __future__ import annotations

from dataclasses import dataclass

from tungsten.api import StateStore, WriteView
from tungsten.errors import CorruptStateError
from tungsten.node_state import MOVED_SECTION, NODE_ENTITY

MAX_MOVES = 1 << 16


@dataclass(frozen=True, slots=True)
class Move:
    """Entity `local` now lives at `new_eid` (encoded EID), since `issued_at` (Unix s)."""

    local: bytes
    new_eid: bytes
    issued_at: int


class StoredMoves:
    """The migration rows of one node's state store."""

    def __init__(self, store: StateStore) -> None:
        self.store = store

    def record(self, move: Move) -> None:
        """Add or replace the row of `move.local`."""
        self.store.apply(lambda w: w.put(NODE_ENTITY, MOVED_SECTION, (move.local,),
                                         (move.new_eid, move.issued_at)))

    def forget(self, local: bytes) -> bool:
        """Remove the row of `local`; whether there was one."""
        return self.store.apply(lambda w: w.delete(NODE_ENTITY, MOVED_SECTION, (local,)))

    def all(self) -> list[Move]:
        """Every row, in local-name byte order (the newest committed state)."""
        return self.store.apply(_read_all)


def _read_all(view: WriteView) -> list[Move]:
    rows = view.scan(NODE_ENTITY, MOVED_SECTION, limit=MAX_MOVES)
    moves = []
    for key, value in rows:
        if (len(key) != 1 or type(key[0]) is not bytes or len(value) != 2
                or type(value[0]) is not bytes or type(value[1]) is not int):
            raise CorruptStateError(f"migration row {key!r} is not (local,) -> (eid, time)")
        moves.append(Move(key[0], value[0], value[1]))
    return moves
