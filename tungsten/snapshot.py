"""A read-only snapshot over raw records held in a mapping.

Shared by the in-memory store and by remote-state images. It lives apart from
`tungsten.memory` because the node core reads images through it, and the store module
takes a thread lock (the core imports no threading).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from tungsten.api import Snapshot, TupleReader
from tungsten.errors import ClosedError


class MappingSnapshot(TupleReader):
    """A read-only snapshot over a mapping of raw records."""

    def __init__(self, data: Mapping[bytes, bytes]) -> None:
        self._data: Mapping[bytes, bytes] | None = data

    def _live(self) -> Mapping[bytes, bytes]:
        if self._data is None:
            raise ClosedError("snapshot used after close")
        return self._data

    def _get_raw(self, key: bytes) -> bytes | None:
        return self._live().get(key)

    def _scan_raw(self, prefix: bytes, limit: int,
                  max_bytes: int | None = None) -> Iterator[tuple[bytes, bytes]]:
        data = self._live()
        keys = sorted(k for k in data if k.startswith(prefix))
        return take_records(((k, data[k]) for k in keys), limit, max_bytes)

    def close(self) -> None:
        self._data = None


def take_records(records: Iterator[tuple[bytes, bytes | None]], limit: int,
                 max_bytes: int | None) -> Iterator[tuple[bytes, bytes]]:
    """Up to `limit` present records (none for `limit` <= 0, as LMDB's cursor scan),
    stopping after the record that takes the running size past `max_bytes`."""
    taken = total = 0
    for key, value in records:
        if taken >= limit:
            return
        if value is None:
            continue
        yield key, value
        taken += 1
        total += len(key) + len(value)
        if max_bytes is not None and total > max_bytes:
            return


def snapshot_of(records: Mapping[bytes, bytes]) -> Snapshot:
    """A read-only snapshot over raw records (e.g. an entity image fetched from the node
    that holds its state); nothing is copied, so the caller must not change `records`."""
    return MappingSnapshot(records)
