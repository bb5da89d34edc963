"""The store interface both backends satisfy, and the tuple layer they share.

Backends implement a handful of byte-level operations; `TupleReader`/`TupleWriter` turn
them into the section/tuple API that callers use, so LMDB and memory stores cannot drift
apart in encoding or bounds. Reads are snapshots: a view sees one committed state for its
whole life. Writes are all-or-nothing: `writing()` commits on a clean exit and aborts if
the block raises.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Protocol, TypeVar

from carbon.symbols import Symbol
from carbon.tuples import CarbonTuple
from tungsten.keys import (
    decode_stored,
    encode_key,
    encode_value,
    entity_prefix,
    section_prefix,
)

DEFAULT_SCAN_LIMIT = 10_000
_T = TypeVar("_T")


class ReadView(Protocol):
    """A consistent snapshot of entity state."""

    def get(self, entity: bytes, section: Symbol, key: CarbonTuple) -> CarbonTuple | None:
        """The value stored under `key`, or None."""
        ...

    def scan(self, entity: bytes, section: Symbol,
             limit: int = DEFAULT_SCAN_LIMIT) -> list[tuple[CarbonTuple, CarbonTuple]]:
        """Up to `limit` (key, value) pairs of a section, in key-byte order."""
        ...


class WriteView(ReadView, Protocol):
    """A snapshot plus pending writes that commit together."""

    def put(self, entity: bytes, section: Symbol, key: CarbonTuple,
            value: CarbonTuple) -> None:
        """Store `value` under `key`, replacing any previous value."""
        ...

    def delete(self, entity: bytes, section: Symbol, key: CarbonTuple) -> bool:
        """Remove `key`; True if it existed."""
        ...


class Snapshot(ReadView, Protocol):
    """A long-lived read view (e.g. held across a handler's awaits); close it when done."""

    def close(self) -> None:
        """Release the snapshot (idempotent)."""
        ...

    def entity_records(self, entity: bytes, max_bytes: int) -> list[tuple[bytes, bytes]] | None:
        """All of an entity's raw records, or None past `max_bytes` (see TupleReader)."""
        ...


class StateStore(Protocol):
    """A node's entity state: snapshots, atomic writes and a durability barrier."""

    @property
    def commit_seq(self) -> int:
        """How many write transactions have committed since open."""
        ...

    @property
    def durable_seq(self) -> int:
        """Commits up to this sequence number are known to be on stable storage."""
        ...

    def snapshot(self) -> Snapshot:
        """Open a read snapshot; the caller must close it."""
        ...

    def reading(self) -> AbstractContextManager[ReadView]:
        """A snapshot for the duration of a `with` block."""
        ...

    def writing(self) -> AbstractContextManager[WriteView]:
        """A write transaction: commit on clean exit, abort on exception."""
        ...

    def apply(self, body: Callable[[WriteView], _T]) -> _T:
        """Run `body` in a write transaction; retried once if the store had to grow."""
        ...

    def sync(self) -> int:
        """Make every commit so far durable (blocking); returns the durable sequence."""
        ...

    def close(self) -> None:
        """Release the store; further use raises ClosedError."""
        ...


@contextmanager
def reading_snapshot(store: StateStore) -> Iterator[ReadView]:
    """`StateStore.reading()` for every backend: a snapshot closed when the block ends."""
    snap = store.snapshot()
    try:
        yield snap
    finally:
        snap.close()


class TupleReader(ABC):
    """The tuple API over a backend's raw reads."""

    @abstractmethod
    def _get_raw(self, key: bytes) -> bytes | None: ...

    @abstractmethod
    def _scan_raw(self, prefix: bytes, limit: int,
                  max_bytes: int | None = None) -> Iterator[tuple[bytes, bytes]]:
        """Up to `limit` records under `prefix`, in key order; with `max_bytes`, stop after
        the first record that takes keys and values together past it."""

    def get(self, entity: bytes, section: Symbol, key: CarbonTuple) -> CarbonTuple | None:
        """The value stored under `key`, or None."""
        raw = self._get_raw(encode_key(entity, section, key))
        return None if raw is None else decode_stored(raw)

    def scan(self, entity: bytes, section: Symbol,
             limit: int = DEFAULT_SCAN_LIMIT) -> list[tuple[CarbonTuple, CarbonTuple]]:
        """Up to `limit` (key, value) pairs of a section, in key-byte order."""
        prefix = section_prefix(entity, section)
        return [(decode_stored(k[len(prefix):]), decode_stored(v))
                for k, v in self._scan_raw(prefix, limit)]


    def entity_records(self, entity: bytes, max_bytes: int) -> list[tuple[bytes, bytes]] | None:
        """All of `entity`'s records as raw (key after the entity prefix, value) pairs, in
        key order; None if together they exceed `max_bytes` (remote-state images)."""
        prefix = entity_prefix(entity)
        out, total = [], 0
        for key, value in self._scan_raw(prefix, max_bytes, max_bytes):
            total += len(key) + len(value)
            if total > max_bytes:
                return None
            out.append((key[len(prefix):], value))
        return out


class TupleWriter(TupleReader):
    """The tuple API over a backend's raw reads and writes."""

    @abstractmethod
    def _put_raw(self, key: bytes, value: bytes) -> None: ...

    @abstractmethod
    def _delete_raw(self, key: bytes) -> bool: ...

    def put(self, entity: bytes, section: Symbol, key: CarbonTuple,
            value: CarbonTuple) -> None:
        """Store `value` under `key`, replacing any previous value."""
        self._put_raw(encode_key(entity, section, key), encode_value(value))

    def delete(self, entity: bytes, section: Symbol, key: CarbonTuple) -> bool:
        """Remove `key`; True if it existed."""
        return self._delete_raw(encode_key(entity, section, key))
