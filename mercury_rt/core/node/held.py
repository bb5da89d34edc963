"""Held one-way messages: kept by the sending node when no node of the target answers.

Related-systems requirement: an asynchronous message to an entity whose nodes are all
unreachable is stored by the sending side, delivered once when one is back, and the sender
can see what is pending. This is the queue model; the shell sends, the queue decides when.

Exactly once: every attempt carries the same message id, so a receiver that was reached
but whose acknowledgement was lost deduplicates the repeat (a node remembers the ids it ran
in `NodeCore.delivered`). A record turns DELIVERED only on an acknowledgement. A restart
finds attempts that were in flight and makes them due again; the receiver's dedup absorbs
the repeat.

States: PENDING -> DELIVERED | EXPIRED | REFUSED (the target's node answered with a final
error; retrying cannot help). One exception, on purpose: a late acknowledgement of an
EXPIRED message turns it DELIVERED, because an acknowledgement is proof the receiver has
it, and the sender's status must be true.

Retry schedule: after n failed sends (the original send that led to holding counts as the
first), the next attempt waits min(max_delay, initial_delay * factor ** (n - 1)) *
(1 - jitter * u), u from the injected rng in [0, 1). A message expires when its next
attempt would fall at or after its expiry time (created + ttl).

The shell must report an outcome (acknowledged or attempt_failed) for every message poll()
hands out; the transport always ends an exchange with a reply or a timeout.

Times in a record are integer milliseconds of wall
clock (Unix epoch): held messages survive a restart, and a monotonic clock restarts with
the machine. carbon.cbor carries no floats, so integers are also what gets stored.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, replace
from enum import Enum
from typing import Protocol, TypeVar

from carbon import cbor
from carbon.error_codes import ErrorCode, MercuryError

__all__ = ["RETRY_HELD", "UNREACHABLE", "HeldError", "HeldMessage", "HeldQueue",
           "HeldState", "HeldStore", "MemoryHeldStore", "RetryPolicy", "settle_attempt",
           "should_hold"]


class HeldStore(Protocol):
    """Durable key -> record bytes; the LMDB-backed store implements the same four calls."""

    def get(self, message_id: bytes) -> bytes | None: ...

    def put(self, message_id: bytes, record: bytes) -> None: ...

    def delete(self, message_id: bytes) -> None: ...

    def items(self) -> Iterator[tuple[bytes, bytes]]: ...


class MemoryHeldStore:
    """In-memory HeldStore; holds bytes, so tests exercise the same encoding as LMDB."""

    def __init__(self) -> None:
        self.data: dict[bytes, bytes] = {}

    def get(self, message_id: bytes) -> bytes | None:
        return self.data.get(message_id)

    def put(self, message_id: bytes, record: bytes) -> None:
        self.data[message_id] = record

    def delete(self, message_id: bytes) -> None:
        self.data.pop(message_id, None)

    def items(self) -> Iterator[tuple[bytes, bytes]]:
        return iter(list(self.data.items()))


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Backoff, lifetime and bounds for held messages (seconds and counts)."""

    initial_delay: float = 1.0
    factor: float = 2.0
    max_delay: float = 300.0
    jitter: float = 0.2
    ttl: float = 7 * 24 * 3600.0
    max_messages: int = 10_000
    max_payload: int = 65_536
    max_batch: int = 64

    def __post_init__(self) -> None:
        if not (0 < self.initial_delay <= self.max_delay and self.factor >= 1
                and 0 <= self.jitter < 1 and self.ttl > 0):
            raise ValueError("need 0 < initial_delay <= max_delay, factor >= 1, "
                             "0 <= jitter < 1, ttl > 0")
        if min(self.max_messages, self.max_payload, self.max_batch) < 1:
            raise ValueError("max_messages, max_payload and max_batch must be >= 1")

    def delay_ms(self, failures: int, rng: random.Random) -> int:
        """Wait before the next attempt after `failures` failed ones (>= 1 ms)."""
        base = min(self.max_delay, self.initial_delay * self.factor ** max(failures - 1, 0))
        return max(1, round(base * (1 - self.jitter * rng.random()) * 1000))


def _ms(now: float) -> int:
    return round(now * 1000)


class HeldQueue:
    """The sending node's held messages: hold, poll for due sends, record outcomes, query."""

    def __init__(self, store: HeldStore, policy: RetryPolicy | None = None) -> None:
        self.policy = policy or RetryPolicy()
        self._store = store
        self._records: dict[bytes, HeldMessage] = {}
        self.corrupt_ids: list[bytes] = []
        for message_id, data in store.items():
            try:
                self._records[message_id] = decode_held(data)
            except HeldError:
                self.corrupt_ids.append(message_id)  # kept in the store for the operator

    def hold(self, message_id: bytes, sender: bytes, target: bytes, payload: bytes, *,
             now: float, rng: random.Random) -> HeldMessage:
        """Keep a message whose target did not answer; a repeat of the same id is a no-op."""
        existing = self._records.get(message_id)
        if existing is not None:
            if existing.same_message(sender, target, payload):
                return existing
            raise HeldError("a different message is already held under this id",
                            ErrorCode.HELD_MESSAGE_CONFLICT)
        if len(payload) > self.policy.max_payload:
            raise HeldError(f"message of {len(payload)} bytes exceeds the "
                            f"{self.policy.max_payload}-byte limit for held messages",
                            ErrorCode.HELD_MESSAGE_TOO_LARGE)
        if self.pending_count() >= self.policy.max_messages:
            raise HeldError(f"{self.policy.max_messages} messages already held; "
                            "try later", ErrorCode.HELD_QUEUE_FULL)
        created = _ms(now)
        record = HeldMessage(message_id, sender, target, payload, created,
                             created + round(self.policy.ttl * 1000),
                             next_attempt_ms=created + self.policy.delay_ms(1, rng))
        self._save(record)
        return record

    def poll(self, now: float, *, all_due: bool = False) -> tuple[list[HeldMessage],
                                                                   list[HeldMessage]]:
        """(due to send now, newly expired). Sends are marked in flight until an outcome.
        With `all_due`, every pending message is due whatever its backoff (a draining node
        makes one last attempt for each before it exits)."""
        now_ms = _ms(now)
        due: list[HeldMessage] = []
        expired: list[HeldMessage] = []
        for record in sorted(self._pending(), key=lambda r: r.next_attempt_ms):
            if record.in_flight:
                continue
            if record.expires_ms <= now_ms:
                expired.append(self._finish(record, HeldState.EXPIRED, now_ms))
            elif (all_due or record.next_attempt_ms <= now_ms) \
                    and len(due) < self.policy.max_batch:
                due.append(self._save(record.with_changes(
                    in_flight=True, attempts=record.attempts + 1)))
        return due, expired

    def attempt_failed(self, message_id: bytes, now: float, rng: random.Random) -> HeldMessage:
        """No node answered this attempt: schedule the next, or expire if out of time."""
        record = self._get(message_id)
        if record.state is not HeldState.PENDING:
            return record  # an outcome after the fact changes nothing
        now_ms = _ms(now)
        next_ms = now_ms + self.policy.delay_ms(record.attempts + 1, rng)
        if next_ms >= record.expires_ms:
            return self._finish(record, HeldState.EXPIRED, now_ms)
        return self._save(record.with_changes(in_flight=False, next_attempt_ms=next_ms))

    def acknowledged(self, message_id: bytes, now: float) -> HeldMessage:
        """The receiver confirmed it has the message: DELIVERED (idempotent)."""
        record = self._get(message_id)
        if record.state is HeldState.DELIVERED:
            return record
        return self._finish(record, HeldState.DELIVERED, _ms(now))

    def refused(self, message_id: bytes, now: float) -> HeldMessage:
        """The target's node answered with a final refusal: REFUSED (retrying cannot help)."""
        record = self._get(message_id)
        if record.state is not HeldState.PENDING:
            return record
        return self._finish(record, HeldState.REFUSED, _ms(now))

    def recover(self) -> int:
        """After a restart, attempts that were in flight are due again; returns how many."""
        stuck = [r for r in self._pending() if r.in_flight]
        for record in stuck:
            self._save(record.with_changes(in_flight=False))
        return len(stuck)

    def status(self, message_id: bytes) -> HeldMessage:
        """The sender's view of one message."""
        return self._get(message_id)

    def for_sender(self, sender: bytes) -> list[HeldMessage]:
        """All held messages of one sending entity, oldest first."""
        return sorted((r for r in self._records.values() if r.sender == sender),
                      key=lambda r: (r.created_ms, r.message_id))

    def next_wakeup(self) -> float | None:
        """When poll() next has something to do (seconds), or None if nothing is waiting."""
        times = [min(r.next_attempt_ms, r.expires_ms) for r in self._pending()
                 if not r.in_flight]
        return min(times) / 1000 if times else None

    def purge_finished(self, now: float, keep_for: float) -> int:
        """Forget finished (not PENDING) records older than keep_for seconds; returns how many."""
        cutoff = _ms(now - keep_for)
        old = [r for r in self._records.values()
               if r.finished_ms is not None and r.finished_ms <= cutoff]
        for record in old:
            del self._records[record.message_id]
            self._store.delete(record.message_id)
        return len(old)

    def pending_count(self) -> int:
        """Messages still waiting for delivery."""
        return sum(1 for _ in self._pending())

    def _pending(self) -> Iterator[HeldMessage]:
        return (r for r in list(self._records.values()) if r.state is HeldState.PENDING)

    def _get(self, message_id: bytes) -> HeldMessage:
        record = self._records.get(message_id)
        if record is None:
            raise HeldError(f"no held message with id {message_id[:32].hex()}",
                            ErrorCode.HELD_MESSAGE_UNKNOWN)
        return record

    def _finish(self, record: HeldMessage, state: HeldState, now_ms: int) -> HeldMessage:
        return self._save(record.with_changes(state=state, in_flight=False, finished_ms=now_ms))

    def _save(self, record: HeldMessage) -> HeldMessage:
        self._store.put(record.message_id, record.encode())
        self._records[record.message_id] = record
        return record


RECORD_FORMAT = 1
T = TypeVar("T")


class HeldError(MercuryError):
    """A held-message operation that cannot be done (unknown id, full, conflicting, bad)."""

    code = ErrorCode.HELD_MESSAGE_UNKNOWN


class HeldState(Enum):
    """PENDING until acknowledged (DELIVERED), out of time (EXPIRED), or answered with a
    final refusal by the target's node (REFUSED: access denied, unknown entity...)."""

    PENDING = "pending"
    DELIVERED = "delivered"
    EXPIRED = "expired"
    REFUSED = "refused"


@dataclass(frozen=True, slots=True)
class HeldMessage:
    """One held message and its delivery bookkeeping; what the sender's status query shows."""

    message_id: bytes
    sender: bytes
    target: bytes
    payload: bytes
    created_ms: int
    expires_ms: int
    state: HeldState = HeldState.PENDING
    attempts: int = 0
    next_attempt_ms: int = 0
    in_flight: bool = False
    finished_ms: int | None = None

    def same_message(self, sender: bytes, target: bytes, payload: bytes) -> bool:
        """True if a second hold() with this id is a harmless repeat, not a conflict."""
        return (self.sender, self.target, self.payload) == (sender, target, payload)

    def with_changes(self, **changes: object) -> HeldMessage:
        """A copy with some fields changed (records are immutable)."""
        return replace(self, **changes)  # type: ignore[arg-type]

    def encode(self) -> bytes:
        """Durable form: canonical CBOR map with small integer keys."""
        return cbor.dumps({
            0: RECORD_FORMAT, 1: self.message_id, 2: self.sender, 3: self.target,
            4: self.payload, 5: self.created_ms, 6: self.expires_ms, 7: self.state.value,
            8: self.attempts, 9: self.next_attempt_ms, 10: self.in_flight,
            11: self.finished_ms,
        })


def decode_held(data: bytes) -> HeldMessage:
    """Parse a stored record; raises HeldError(HELD_RECORD_CORRUPT) on anything odd."""
    try:
        value = cbor.loads(data)
        if not isinstance(value, dict) or set(value) != set(range(12)) \
                or value[0] != RECORD_FORMAT:
            raise ValueError("unexpected keys or format")
        record = HeldMessage(
            message_id=_typed(value[1], bytes), sender=_typed(value[2], bytes),
            target=_typed(value[3], bytes), payload=_typed(value[4], bytes),
            created_ms=_typed(value[5], int), expires_ms=_typed(value[6], int),
            state=HeldState(value[7]), attempts=_typed(value[8], int),
            next_attempt_ms=_typed(value[9], int), in_flight=_typed(value[10], bool),
            finished_ms=None if value[11] is None else _typed(value[11], int),
        )
    except (MercuryError, ValueError, TypeError) as exc:
        raise HeldError(f"stored held-message record is corrupt: {exc}",
                        ErrorCode.HELD_RECORD_CORRUPT) from None
    return record


def _typed(value: object, kind: type[T]) -> T:
    if type(value) is not kind:
        raise TypeError(f"expected {kind.__name__}, got {type(value).__name__}")
    assert isinstance(value, kind)
    return value


UNREACHABLE = frozenset({ErrorCode.NO_NODE_ANSWERED, ErrorCode.CONTACT_ATTEMPTS_EXHAUSTED,
                         ErrorCode.NO_ANSWER, ErrorCode.NO_LIVE_MIRROR, ErrorCode.TIMEOUT,
                         ErrorCode.NODE_DRAINING})
"""Failures that mean no node of the target took the call (a one-way message is held)."""
RETRY_HELD = UNREACHABLE | {ErrorCode.REQUEST_LOST, ErrorCode.OVERLOADED}
"""Outcomes after which a held message is tried again: unreachable, a restarted node that
cannot tell whether it ran, or a node that ran nothing and asked for a retry (the
receiving node drops repeats by message id)."""


def should_hold(code: int) -> bool:
    """Whether a one-way message that failed with `code` is held for later delivery."""
    return code in RETRY_HELD


def settle_attempt(queue: HeldQueue, message_id: bytes, code: int | None, now: float,
                   rng: random.Random) -> HeldMessage:
    """Apply one delivery attempt of a held message: delivered (code None), tried again
    later (a RETRY_HELD code), or refused for good (any other code)."""
    if code is None:
        return queue.acknowledged(message_id, now)
    if code in RETRY_HELD:
        return queue.attempt_failed(message_id, now, rng)
    return queue.refused(message_id, now)
