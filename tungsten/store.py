"""LmdbStore: entity state in one LMDB environment per node. The only `lmdb` importer.

Durability without one fsync per request: by default the environment is opened with
sync off, so a commit costs microseconds and survives a process crash (kill -9) whole,
because LMDB's copy-on-write pages and double meta page never expose a half-written
transaction. `sync()` is the group-commit barrier: one fsync makes every commit so far
durable, and callers acknowledge a write only after a barrier covering its sequence
number. `durable_commits=True` instead fsyncs inside every commit (slow, simple).

Map growth: py-lmdb invalidates every open transaction when the map is resized, so the
map grows only while no snapshot is open. Early: after commits, when the map is over 3/4
used and no snapshot is open, it doubles (up to `max_map_size`). Late: a write that finds
the map full grows it at once if it can (`apply()` then retries the write); if snapshots
are open it marks growth pending and fails with MapFullError, new snapshots are refused
(MapFullError, retry) until the open ones close, and the last close grows the map. All of
this happens under the store's lock, which every snapshot operation also takes.

Other processes on the same directory (the CLI's tools) commit without this process
knowing: a shared read transaction is replaced when LMDB reports a newer commit, asked at
most every FOREIGN_COMMIT_CHECK seconds, so their changes show within that bound.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import lmdb

from carbon.error_codes import MercuryError
from tungsten.api import (
    ReadView,
    StateStore,
    TupleReader,
    TupleWriter,
    WriteView,
    reading_snapshot,
)
from tungsten.errors import ClosedError, MapFullError, StateError
from tungsten.keys import (
    DISPATCH_VERSION_KEY,
    META_PREFIX,
    decode_key,
    decode_stored,
    version_of,
)

_T = TypeVar("_T")
_GROWTH_CHECK_EVERY = 64
FOREIGN_COMMIT_CHECK = 0.1
"""Seconds between checks for commits by other processes: their changes show in this
process's snapshots within this long (or at its own next commit, if sooner)."""


@dataclass(frozen=True, slots=True)
class LmdbOptions:
    """Operator-tunable settings (see docs/operator-guide.md, "Entity state")."""

    map_size: int = 1 << 30
    max_map_size: int = 64 << 30
    durable_commits: bool = False
    max_readers: int = 512


@dataclass(frozen=True, slots=True)
class StateReport:
    """What `verify()` found; `problems` lists at most a few bad records."""

    records: int
    entities: int
    problems: tuple[str, ...]
    map_size: int

    @property
    def ok(self) -> bool:
        """True when every record parsed."""
        return not self.problems


def _record_problem(key: bytes, value: bytes) -> str | None:
    """Why a raw record is not (entity, section, tuple) -> tuple (or one of the store's
    own records), or None if it is."""
    try:
        if key.startswith(META_PREFIX):
            if key != DISPATCH_VERSION_KEY:
                return "unknown store record"
            version_of(value)
            return None
        decode_key(key)
        decode_stored(value)
    except MercuryError as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


def _wrap(exc: lmdb.Error, what: str) -> StateError:
    if isinstance(exc, lmdb.MapFullError):
        return MapFullError(f"{what}: state map is full")
    return StateError(f"{what}: LMDB error {type(exc).__name__}: {exc}")


@dataclass(slots=True)
class _SharedRead:
    """A read transaction and how many snapshots use it; `seq` is the commit it shows,
    `dispatch_version` the dispatch version it shows once read (a read transaction
    never changes, so one read serves every snapshot sharing it)."""

    txn: Any
    seq: int
    users: int = 0
    dispatch_version: int | None = None


class _LmdbSnapshot(TupleReader):
    """A handle on a shared read transaction; every call takes the store lock."""

    def __init__(self, store: LmdbStore, shared: _SharedRead) -> None:
        self._store = store
        self._shared: _SharedRead | None = shared

    def _live(self) -> Any:
        if self._shared is None:
            raise ClosedError("snapshot used after close")
        return self._shared.txn

    def _get_raw(self, key: bytes) -> bytes | None:
        shared = self._shared
        if shared is None:
            raise ClosedError("snapshot used after close")
        with self._store.lock:
            try:
                value: bytes | None = shared.txn.get(key)
            except lmdb.Error as exc:
                raise _wrap(exc, "read") from None
        return value

    def _scan_raw(self, prefix: bytes, limit: int,
                  max_bytes: int | None = None) -> Iterator[tuple[bytes, bytes]]:
        with self._store.lock:
            return iter(_scan(self._live(), prefix, limit, max_bytes))

    def dispatch_version(self) -> int | None:
        """Read once per shared read transaction (see _SharedRead)."""
        shared = self._shared
        if shared is None:
            raise ClosedError("snapshot used after close")
        if shared.dispatch_version is None:
            shared.dispatch_version = version_of(self._get_raw(DISPATCH_VERSION_KEY))
        return shared.dispatch_version

    def close(self) -> None:
        if self._shared is not None:
            shared, self._shared = self._shared, None
            self._store.release_read(shared)


class _LmdbWriter(TupleWriter):
    def __init__(self, txn: Any) -> None:
        self._txn = txn

    def _get_raw(self, key: bytes) -> bytes | None:
        value: bytes | None = self._txn.get(key)
        return value

    def _scan_raw(self, prefix: bytes, limit: int,
                  max_bytes: int | None = None) -> Iterator[tuple[bytes, bytes]]:
        return iter(_scan(self._txn, prefix, limit, max_bytes))

    def _put_raw(self, key: bytes, value: bytes) -> None:
        self._txn.put(key, value)

    def _delete_raw(self, key: bytes) -> bool:
        return bool(self._txn.delete(key))


def _scan(txn: Any, prefix: bytes, limit: int,
          max_bytes: int | None = None) -> list[tuple[bytes, bytes]]:
    out: list[tuple[bytes, bytes]] = []
    total, most = 0, max_bytes if max_bytes is not None else -1
    try:
        with txn.cursor() as cursor:
            if not cursor.set_range(prefix):
                return out
            for key, value in cursor:
                if not key.startswith(prefix) or len(out) >= limit:
                    break
                out.append((key, value))
                total += len(key) + len(value)
                if 0 <= most < total:
                    break
    except lmdb.Error as exc:
        raise _wrap(exc, "scan") from None
    return out


class LmdbStore:
    """StateStore on LMDB. Open one per node; see the module docstring for durability."""

    def __init__(self, path: str | os.PathLike[str], options: LmdbOptions | None = None, *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.options = options or LmdbOptions()
        self.lock = threading.RLock()
        self._clock = clock
        self._next_foreign_check = 0.0
        self._shared: _SharedRead | None = None
        self._grow_pending = False
        self._open_snapshots = 0
        self._commit_seq = 0
        self._durable_seq = 0
        os.makedirs(path, exist_ok=True)
        try:
            self._env: Any = lmdb.open(
                os.fspath(path), map_size=self.options.map_size, subdir=True,
                sync=self.options.durable_commits, metasync=True, lock=True,
                readahead=False, meminit=False, max_readers=self.options.max_readers,
                max_dbs=0)
            self._env.reader_check()  # clear reader slots of killed processes
        except lmdb.Error as exc:
            raise _wrap(exc, f"opening state at {path}") from None
        self._closed = False

    @property
    def commit_seq(self) -> int:
        """How many write transactions have committed since open."""
        return self._commit_seq

    @property
    def durable_seq(self) -> int:
        """Commits known to be on stable storage."""
        return self._commit_seq if self.options.durable_commits else self._durable_seq

    @property
    def map_size(self) -> int:
        """The current map size in bytes."""
        return int(self._env.info()["map_size"])

    def _check_open(self) -> None:
        if self._closed:
            raise ClosedError("state store used after close")

    def snapshot(self) -> _LmdbSnapshot:
        """A snapshot; shares the newest read transaction while no commit has happened since.

        Why share: opening a read transaction costs about twice a get, and between commits
        every snapshot would see the same state anyway. A shared transaction is aborted
        when its last user closes it.
        """
        self._check_open()
        with self.lock:
            if self._grow_pending:
                raise MapFullError("state map is growing once current reads finish; retry")
            shared = self._shared
            if shared is None or shared.seq != self._commit_seq or self._foreign_commit(shared):
                try:
                    txn = self._env.begin(write=False, buffers=False)
                except lmdb.Error as exc:
                    raise _wrap(exc, "opening a snapshot") from None
                self._drop_idle_shared()
                shared = _SharedRead(txn, self._commit_seq)
                self._shared = shared
            shared.users += 1
            self._open_snapshots += 1
        return _LmdbSnapshot(self, shared)

    def _foreign_commit(self, shared: _SharedRead) -> bool:
        """Whether another process committed since `shared` began, asked at most every
        FOREIGN_COMMIT_CHECK seconds (lock held). Why: a tool on the same directory (the
        CLI binding names or handlers) commits without this process's count moving, and
        a shared read kept between our own commits would never show its change; asking
        LMDB on every snapshot costs more than a get, so staleness is bounded instead."""
        now = self._clock()
        if now < self._next_foreign_check:
            return False
        self._next_foreign_check = now + FOREIGN_COMMIT_CHECK
        try:
            return bool(self._env.info()["last_txnid"] != shared.txn.id())
        except lmdb.Error as exc:
            raise _wrap(exc, "checking for other writers") from None

    def release_read(self, shared: _SharedRead) -> None:
        """Drop one user of a read transaction; abort it when nobody uses it any more."""
        with self.lock:
            self._open_snapshots -= 1
            shared.users -= 1
            if shared.users == 0 and (shared is not self._shared or self._closed):
                shared.txn.abort()
                if shared is self._shared:
                    self._shared = None
            if self._grow_pending and self._open_snapshots == 0 and not self._closed:
                self._grow_now()

    def _drop_idle_shared(self) -> None:
        """Abort the shared read transaction if unused, so it pins no outdated pages."""
        if self._shared is not None and self._shared.users == 0:
            self._shared.txn.abort()
        self._shared = None

    @property
    def open_snapshots(self) -> int:
        """Snapshots not yet closed (a leak shows here)."""
        return self._open_snapshots

    def reading(self) -> AbstractContextManager[ReadView]:
        """A snapshot for the duration of a `with` block."""
        return reading_snapshot(self)

    @contextmanager
    def writing(self) -> Iterator[WriteView]:
        """One LMDB write transaction: commit on clean exit, abort if the block raises.

        Do not hold it across an `await`: LMDB allows one writer per environment.
        """
        self._check_open()
        txn = self._begin_write()
        try:
            yield _LmdbWriter(txn)
            txn.commit()
        except lmdb.MapFullError:
            txn.abort()
            raise self._on_map_full() from None
        except lmdb.Error as exc:
            txn.abort()
            raise _wrap(exc, "write") from None
        except BaseException:
            txn.abort()
            raise
        with self.lock:
            self._commit_seq += 1
            if self._shared is not None and self._shared.users == 0:
                self._drop_idle_shared()
            if self._commit_seq % _GROWTH_CHECK_EVERY == 0 and self._open_snapshots == 0:
                self._grow_early()

    def _begin_write(self) -> Any:
        try:
            return self._env.begin(write=True)
        except lmdb.Error as exc:
            raise _wrap(exc, "starting a write") from None

    def apply(self, body: Callable[[WriteView], _T]) -> _T:
        """Run `body` in a write transaction, retrying once if the map had to grow."""
        try:
            with self.writing() as txn:
                return body(txn)
        except MapFullError as exc:
            if not exc.grown:
                raise
        with self.writing() as txn:
            return body(txn)

    def _on_map_full(self) -> MapFullError:
        """A write found the map full: grow now if possible, else mark growth pending."""
        with self.lock:
            if self.map_size >= self.options.max_map_size:
                return MapFullError(f"state map is full at max_map_size={self.map_size} "
                                    "bytes; raise the state max_map_size setting")
            if self._open_snapshots:
                self._grow_pending = True
                return MapFullError("state map is full; it grows once current reads finish; "
                                    "retry")
            return self._grow_now()

    def _grow_early(self) -> None:
        """Grow before the map is full, while nothing is reading (lock held)."""
        info, stat = self._env.info(), self._env.stat()
        used = (info["last_pgno"] + 1) * stat["psize"]
        if used * 4 > info["map_size"] * 3 and info["map_size"] < self.options.max_map_size:
            self._grow_now()

    def _grow_now(self) -> MapFullError:
        """Double the map (lock held, no snapshot open); the error a failed write reports."""
        self._grow_pending = False
        current = self.map_size
        target = min(current * 2, self.options.max_map_size)
        self._drop_idle_shared()  # resizing invalidates every transaction
        try:
            self._env.set_mapsize(target)
        except lmdb.Error as exc:
            return MapFullError(f"state map is full and could not grow: {exc}")
        return MapFullError(f"state map grew from {current} to {target} bytes; retry the write",
                            grown=True)

    def verify(self, max_reported: int = 10) -> StateReport:
        """Walk every record and check that keys parse and values are CARBON tuples.

        Why: after an operating-system crash with sync off, this tells the operator whether
        the state is sound before the node serves from it.
        """
        self._check_open()
        records = 0
        entities: set[bytes] = set()
        bad: list[str] = []
        with self.lock:
            try:
                with self._env.begin(write=False) as txn, txn.cursor() as cursor:
                    for key, value in cursor:
                        own = key.startswith(META_PREFIX)
                        records += 0 if own else 1
                        problem = _record_problem(key, value)
                        if problem is None:
                            if not own:
                                entities.add(key[1:1 + key[0]])
                        elif len(bad) < max_reported:
                            bad.append(f"{key[:48].hex()}: {problem}")
            except lmdb.Error as exc:
                raise _wrap(exc, "verifying state") from None
        return StateReport(records, len(entities), tuple(bad), self.map_size)

    def sync(self) -> int:
        """Group-commit barrier: one fsync covering every commit so far (blocking)."""
        self._check_open()
        target = self._commit_seq
        try:
            self._env.sync(True)
        except lmdb.Error as exc:
            raise _wrap(exc, "syncing state to disk") from None
        self._durable_seq = max(self._durable_seq, target)
        return self._durable_seq

    def close(self) -> None:
        """Sync and close the environment; further use raises ClosedError."""
        if self._closed:
            return
        with self.lock:
            self._closed = True
            self._drop_idle_shared()
            self._env.sync(True)
            self._env.close()


def _conforms(store: LmdbStore) -> StateStore:
    """Static check (mypy): LmdbStore satisfies the StateStore protocol."""
    return store
