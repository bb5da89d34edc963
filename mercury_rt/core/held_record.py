"""A held one-way message as a record: states, fields, and its durable encoding.

Split from held.py so the queue logic stays short. Times are integer milliseconds of wall
clock (Unix epoch): held messages survive a restart, and a monotonic clock restarts with
the machine. carbon.cbor carries no floats, so integers are also what gets stored.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import Enum
from typing import TypeVar

from carbon import cbor
from carbon.error_codes import ErrorCode, MercuryError

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
