"""Entity state held on another node: the image a handler runs against, and the changes
it sends back (remote-state routing, docs/protocol.md 6.10).

An image is every record of one entity, read in one snapshot on the node that holds the
state, bounded in size so that neither side can be made to move unbounded data. The
running node wraps it in a read-only snapshot; its handler stages writes as usual, and
the resulting EntityChanges go back to be re-checked and applied in one write
transaction. Both travel as plain CBOR values whose keys and values are the stored
(canonical) tuple bytes, so decoding re-validates everything a peer sends.
"""

from __future__ import annotations

from typing import Any

from carbon.cbor import Value
from carbon.error_codes import ErrorCode
from carbon.symbols import Symbol, SymbolError
from carbon.tuples import CarbonTuple, encode_tuple
from tungsten.api import Snapshot
from tungsten.errors import StateError
from tungsten.keys import MAX_ENTITY_BYTES, decode_key, decode_stored, entity_prefix
from tungsten.snapshot import snapshot_of
from tungsten.staged import MAX_CHECKS, MAX_STAGED_WRITES, EntityChanges, Entry, ScanEntry

MAX_IMAGE_BYTES = 1 << 20
"""Largest entity state (keys and values) that remote-state routing moves; larger
entities must be served by a node that mirrors them (forward or redirect)."""
_E = "remote state"


class RemoteStateError(StateError):
    """An image or change set from a peer that does not follow docs/protocol.md 6.10."""

    code = ErrorCode.BAD_REMOTE_STATE


class ImageTooLargeError(StateError):
    """The entity's state exceeds MAX_IMAGE_BYTES, so it cannot be run remotely."""

    code = ErrorCode.STATE_TOO_LARGE_FOR_REMOTE


def read_image(view: Snapshot, entity: bytes) -> list[list[bytes]]:
    """The entity's records as the wire value `[[key, value], ...]` (key without the
    entity prefix); ImageTooLargeError past MAX_IMAGE_BYTES."""
    records = view.entity_records(entity, MAX_IMAGE_BYTES)
    if records is None:
        raise ImageTooLargeError(f"the entity's state exceeds {MAX_IMAGE_BYTES} bytes, the "
                                 "remote-state limit; route it with forward or redirect")
    return [[key, value] for key, value in records]


def image_snapshot(entity: bytes, value: Value) -> Snapshot:
    """A read-only snapshot over a fetched image; every record is checked first."""
    if not isinstance(entity, bytes) or not 0 < len(entity) <= MAX_ENTITY_BYTES:
        raise RemoteStateError(f"{_E}: entity must be 1-{MAX_ENTITY_BYTES} bytes")
    if not isinstance(value, list):
        raise RemoteStateError(f"{_E}: an image is a list of [key, value] pairs")
    prefix = entity_prefix(entity)
    records: dict[bytes, bytes] = {}
    size = 0
    for item in value:
        if not (isinstance(item, list) and len(item) == 2 and type(item[0]) is bytes
                and type(item[1]) is bytes):
            raise RemoteStateError(f"{_E}: an image record is [key bytes, value bytes]")
        size += len(item[0]) + len(item[1])
        if size > MAX_IMAGE_BYTES:
            raise RemoteStateError(f"{_E}: image over {MAX_IMAGE_BYTES} bytes")
        key = prefix + item[0]
        if key in records:
            raise RemoteStateError(f"{_E}: image repeats a record key")
        try:
            decode_key(key)
            decode_stored(item[1])
        except StateError as exc:
            raise RemoteStateError(f"{_E}: image record: {exc.message}") from None
        records[key] = item[1]
    return snapshot_of(records)


def changes_to_value(changes: EntityChanges) -> list[Any]:
    """`[reads, scans, writes]`: reads and writes are `[section, key, value|null]`, scans
    `[section, limit, [[key, value], ...]]`; keys and values are canonical tuple bytes."""
    return [[_entry(e) for e in changes.reads],
            [[s.text, limit, [[encode_tuple(k), encode_tuple(v)] for k, v in seen]]
             for s, limit, seen in changes.scans],
            [_entry(e) for e in changes.writes]]


def changes_from_value(entity: bytes, value: Value) -> EntityChanges:
    """Inverse of changes_to_value, bounded; raises RemoteStateError."""
    if not (isinstance(value, list) and len(value) == 3
            and all(isinstance(part, list) for part in value)):
        raise RemoteStateError(f"{_E}: changes are [reads, scans, writes]")
    reads, scans, writes = value
    assert isinstance(reads, list) and isinstance(scans, list) and isinstance(writes, list)
    if len(reads) + len(scans) > MAX_CHECKS or len(writes) > MAX_STAGED_WRITES:
        raise RemoteStateError(f"{_E}: at most {MAX_CHECKS} checks and "
                               f"{MAX_STAGED_WRITES} writes")
    return EntityChanges(entity, tuple(_entry_from(r) for r in reads),
                         tuple(_scan_from(s) for s in scans),
                         tuple(_entry_from(w) for w in writes))


def _entry(entry: Entry) -> list[Any]:
    section, key, value = entry
    return [section.text, encode_tuple(key), None if value is None else encode_tuple(value)]


def _entry_from(item: Value) -> Entry:
    if not (isinstance(item, list) and len(item) == 3 and type(item[1]) is bytes
            and (item[2] is None or type(item[2]) is bytes)):
        raise RemoteStateError(f"{_E}: a read or write is [section, key, value|null]")
    value = None if item[2] is None else _tuple(item[2])
    return _section(item[0]), _tuple(item[1]), value


def _scan_from(item: Value) -> ScanEntry:
    if not (isinstance(item, list) and len(item) == 3 and type(item[1]) is int
            and item[1] >= 0 and isinstance(item[2], list)):
        raise RemoteStateError(f"{_E}: a scan is [section, limit, [[key, value], ...]]")
    seen: list[tuple[CarbonTuple, CarbonTuple]] = []
    for pair in item[2]:
        if not (isinstance(pair, list) and len(pair) == 2 and type(pair[0]) is bytes
                and type(pair[1]) is bytes):
            raise RemoteStateError(f"{_E}: a scanned record is [key, value]")
        seen.append((_tuple(pair[0]), _tuple(pair[1])))
    return _section(item[0]), item[1], tuple(seen)


def _section(text: Value) -> Symbol:
    if not isinstance(text, str):
        raise RemoteStateError(f"{_E}: a section is a symbol's text")
    try:
        return Symbol(text)
    except SymbolError as exc:
        raise RemoteStateError(f"{_E}: section {text!r}: {exc.message}") from None


def _tuple(data: bytes) -> CarbonTuple:
    try:
        return decode_stored(data)
    except StateError as exc:
        raise RemoteStateError(f"{_E}: {exc.message}") from None

