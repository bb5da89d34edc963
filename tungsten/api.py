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
    DISPATCH_SECTIONS,
    DISPATCH_VERSION_KEY,
    decode_stored,
    encode_key,
    encode_value,
    entity_prefix,
    section_prefix,
    version_of,
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

    def dispatch_version(self) -> int | None:
        """Which dispatch state this snapshot shows (see TupleReader), or None."""
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

    def dispatch_version(self) -> int | None:
        """The counter every change to a dispatch section bumps in its own transaction, as
        this view sees it; None when the view cannot tell (an entity image fetched from
        another node holds no such counter). Two views of one store with the same number
        show the same dispatch sections, whichever process wrote them, so a route cached
        under one number holds for every view that reports it."""
        return None

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
    """The tuple API over a backend's raw reads and writes. A write transaction that
    changes a dispatch section also bumps the dispatch version, once, in itself."""

    _dispatch_bumped = False

    @abstractmethod
    def _put_raw(self, key: bytes, value: bytes) -> None: ...

    @abstractmethod
    def _delete_raw(self, key: bytes) -> bool: ...

    def put(self, entity: bytes, section: Symbol, key: CarbonTuple,
            value: CarbonTuple) -> None:
        """Store `value` under `key`, replacing any previous value."""
        raw_key, raw_value = encode_key(entity, section, key), encode_value(value)
        if section.text in DISPATCH_SECTIONS:
            self._bump_dispatch_version()
        self._put_raw(raw_key, raw_value)

    def delete(self, entity: bytes, section: Symbol, key: CarbonTuple) -> bool:
        """Remove `key`; True if it existed."""
        raw_key = encode_key(entity, section, key)
        if section.text in DISPATCH_SECTIONS:
            self._bump_dispatch_version()
        return self._delete_raw(raw_key)

    def dispatch_version(self) -> int | None:
        """The dispatch version including this transaction's own bump."""
        return version_of(self._get_raw(DISPATCH_VERSION_KEY))

    def _bump_dispatch_version(self) -> None:
        """Why once per transaction: a reader only needs to know that something changed,
        and a transaction that rebinds many tuples should cost one extra write."""
        if not self._dispatch_bumped:
            self._dispatch_bumped = True
            current = version_of(self._get_raw(DISPATCH_VERSION_KEY))
            self._put_raw(DISPATCH_VERSION_KEY, encode_value((current + 1,)))
