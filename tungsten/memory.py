"""An in-memory StateStore with LMDB's semantics, for the pure core and simulations.

Committed state is an immutable dict per version: a commit builds the next version and
swaps it in, so open snapshots keep seeing the version they started with (snapshot
isolation, as LMDB gives). Commits cost O(size of state); that is fine for simulated
networks and tests, not for production state (use LmdbStore).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from types import MappingProxyType
from typing import TypeVar

from tungsten.api import (
    ReadView,
    StateStore,
    TupleWriter,
    WriteView,
    reading_snapshot,
)
from tungsten.errors import ClosedError
from tungsten.keys import DISPATCH_VERSION_KEY, version_of
from tungsten.snapshot import MappingSnapshot, take

_T = TypeVar("_T")


class _MemoryWriter(TupleWriter):
    def __init__(self, base: Mapping[bytes, bytes]) -> None:
        self._base = base
        self.pending: dict[bytes, bytes | None] = {}

    def _get_raw(self, key: bytes) -> bytes | None:
        if key in self.pending:
            return self.pending[key]
        return self._base.get(key)

    def _scan_raw(self, prefix: bytes, limit: int,
                  max_bytes: int | None = None) -> Iterator[tuple[bytes, bytes]]:
        keys = {k for k in self._base if k.startswith(prefix)}
        keys |= {k for k in self.pending if k.startswith(prefix)}
        return take(((k, self._get_raw(k)) for k in sorted(keys)), limit, max_bytes)

    def _put_raw(self, key: bytes, value: bytes) -> None:
        self.pending[key] = value

    def _delete_raw(self, key: bytes) -> bool:
        existed = self._get_raw(key) is not None
        self.pending[key] = None
        return existed


class _MemorySnapshot(MappingSnapshot):
    """A committed version of the memory store; it knows its dispatch version."""

    def dispatch_version(self) -> int | None:
        """As LmdbStore's: the counter stored with the version, 0 before any bump."""
        return version_of(self._get_raw(DISPATCH_VERSION_KEY))


class MemoryStore:
    """StateStore in memory; `sync()` is trivially a barrier (nothing to flush)."""

    def __init__(self) -> None:
        self._data: Mapping[bytes, bytes] = MappingProxyType({})
        self._write_lock = threading.Lock()
        self._commit_seq = 0
        self._durable_seq = 0
        self._closed = False

    @property
    def commit_seq(self) -> int:
        """How many write transactions have committed."""
        return self._commit_seq

    @property
    def durable_seq(self) -> int:
        """Commits covered by the last `sync()`."""
        return self._durable_seq

    def _check_open(self) -> None:
        if self._closed:
            raise ClosedError("state store used after close")

    def snapshot(self) -> MappingSnapshot:
        """A snapshot of the current committed version."""
        self._check_open()
        return _MemorySnapshot(self._data)

    def reading(self) -> AbstractContextManager[ReadView]:
        """A snapshot for the duration of a `with` block."""
        return reading_snapshot(self)

    @contextmanager
    def writing(self) -> Iterator[WriteView]:
        """Buffer writes; apply them all at once on a clean exit."""
        self._check_open()
        with self._write_lock:
            writer = _MemoryWriter(self._data)
            yield writer
            if writer.pending:
                new = dict(self._data)
                for key, value in writer.pending.items():
                    if value is None:
                        new.pop(key, None)
                    else:
                        new[key] = value
                self._data = MappingProxyType(new)
            self._commit_seq += 1

    def apply(self, body: Callable[[WriteView], _T]) -> _T:
        """Run `body` in a write transaction (memory never fills, so no retry)."""
        with self.writing() as txn:
            return body(txn)

    def sync(self) -> int:
        """Mark everything committed as durable."""
        self._check_open()
        self._durable_seq = self._commit_seq
        return self._durable_seq

    def close(self) -> None:
        """Further use raises ClosedError."""
        self._closed = True


def _conforms(store: MemoryStore) -> StateStore:
    """Static check (mypy): MemoryStore satisfies the StateStore protocol."""
    return store
