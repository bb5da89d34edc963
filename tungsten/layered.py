"""A snapshot that reads some sections from the node's own store and the rest from a
replicated image (mirrored entities whose state lives in etcd).

Why two sources: an entity's bindings (interfaces, endpoints, handlers, personas) are
node-local configuration that each node's apps write at start, identical on every mirror;
its handler state is shared by the mirrors and lives in the replicated store. Pure and
synchronous: the shell fetches the image, this only chooses where each read goes.
"""

from __future__ import annotations

from carbon.symbols import Symbol
from carbon.tuples import CarbonTuple
from tungsten.api import DEFAULT_SCAN_LIMIT, Snapshot
from tungsten.errors import StateError
from tungsten.keys import encode_key, encode_value
from tungsten.staged import EntityChanges


def raw_reads(changes: EntityChanges) -> list[tuple[bytes, bool]] | None:
    """What the handler read, as (raw key, seen present) pairs to guard key by key; None
    when it scanned a section (then the whole entity is guarded)."""
    if changes.scans:
        return None
    return [(encode_key(changes.entity, section, key), seen is not None)
            for section, key, seen in changes.reads]


def raw_writes(changes: EntityChanges,
               local_sections: frozenset[Symbol]) -> list[tuple[bytes, bytes | None]]:
    """The change set's writes as raw (key, value or None) pairs for the replicated store.
    A write to a node-local section is refused: it would be invisible to every read."""
    out: list[tuple[bytes, bytes | None]] = []
    for section, key, value in changes.writes:
        if section in local_sections:
            raise StateError(f"a mirrored entity's handler cannot change the node-local "
                             f"section {section} (bindings are set by each node's apps)")
        out.append((encode_key(changes.entity, section, key),
                    None if value is None else encode_value(value)))
    return out


class SplitSnapshot:
    """Reads `local_sections` from `local`, every other section from `shared`: the
    node's cached copy of the replicated records (tungsten/mirror_cache.py), or the
    records etcd sent (`snapshot_of`). Closing closes both."""

    def __init__(self, local: Snapshot, shared: Snapshot,
                 local_sections: frozenset[Symbol]) -> None:
        self._local, self._shared = local, shared
        self._local_sections = local_sections

    def get(self, entity: bytes, section: Symbol, key: CarbonTuple) -> CarbonTuple | None:
        """From the node's store for a node-local section, else from the copy."""
        source = self._local if section in self._local_sections else self._shared
        return source.get(entity, section, key)

    def scan(self, entity: bytes, section: Symbol,
             limit: int = DEFAULT_SCAN_LIMIT) -> list[tuple[CarbonTuple, CarbonTuple]]:
        """As `get`, for a whole section."""
        source = self._local if section in self._local_sections else self._shared
        return source.scan(entity, section, limit)

    def entity_records(self, entity: bytes, max_bytes: int) -> list[tuple[bytes, bytes]] | None:
        """The copy's records of `entity` (its replicated state, as an image holds it)."""
        return self._shared.entity_records(entity, max_bytes)

    def dispatch_version(self) -> int | None:
        """None: the replicated copy can change under the node's own counter, so routes
        through a split view are never cached (as for any state fetched from elsewhere)."""
        return None

    def close(self) -> None:
        """Close both sources."""
        try:
            self._shared.close()
        finally:
            self._local.close()
