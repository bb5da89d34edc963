"""Held one-way messages, durably: message id -> record bytes in the node's state store.

Structurally the `mercury_rt.core.held.HeldStore` protocol (get/put/delete/items); tungsten
may not import mercury_rt, so the match is checked by a test instead of an import. Every
call is its own transaction, so a crash leaves each record either old or new, never torn.
"""

from __future__ import annotations

from collections.abc import Iterator

from tungsten.api import StateStore
from tungsten.errors import CorruptStateError, StateError
from tungsten.node_state import HELD_SECTION, NODE_ENTITY

DEFAULT_MAX_ITEMS = 1 << 20


class LmdbHeldStore:
    """HeldStore over a StateStore (LMDB in production; MemoryStore works too)."""

    def __init__(self, store: StateStore, max_items: int = DEFAULT_MAX_ITEMS) -> None:
        self.store = store
        self.max_items = max_items

    def get(self, message_id: bytes) -> bytes | None:
        """The stored record of `message_id`, or None."""
        with self.store.reading() as view:
            found = view.get(NODE_ENTITY, HELD_SECTION, (message_id,))
        return None if found is None else _record(found)

    def put(self, message_id: bytes, record: bytes) -> None:
        """Store (or replace) the record of `message_id`."""
        self.store.apply(lambda w: w.put(NODE_ENTITY, HELD_SECTION, (message_id,), (record,)))

    def delete(self, message_id: bytes) -> None:
        """Forget `message_id` (no error if absent)."""
        self.store.apply(lambda w: w.delete(NODE_ENTITY, HELD_SECTION, (message_id,)))

    def items(self) -> Iterator[tuple[bytes, bytes]]:
        """Every (message id, record), from one snapshot, in id-byte order.

        Refuses (StateError) rather than silently truncating past `max_items`: a queue that
        lost records on restart would break exactly-once delivery.
        """
        with self.store.reading() as view:
            rows = view.scan(NODE_ENTITY, HELD_SECTION, limit=self.max_items + 1)
        if len(rows) > self.max_items:
            raise StateError(f"more than {self.max_items} held records; raise max_items")
        return iter([(_message_id(key), _record(value)) for key, value in rows])


def _message_id(key: tuple[object, ...]) -> bytes:
    if len(key) != 1 or type(key[0]) is not bytes:
        raise CorruptStateError(f"held-message key {key!r} is not (message id bytes,)")
    return key[0]


def _record(value: tuple[object, ...]) -> bytes:
    if len(value) != 1 or type(value[0]) is not bytes:
        raise CorruptStateError("held-message value is not (record bytes,)")
    return value[0]
