"""The StateError family: every failure of entity state, with a stable code."""

from __future__ import annotations

from carbon.error_codes import ErrorCode, MercuryError


class StateError(MercuryError):
    """Entity state could not be read or written (the store's own failure)."""

    code = ErrorCode.STATE_FAILURE


class MapFullError(StateError):
    """The LMDB map is full and may not grow further (or not right now)."""

    code = ErrorCode.STATE_MAP_FULL

    def __init__(self, message: str, *, grown: bool = False) -> None:
        super().__init__(message)
        self.grown = grown
        """True when the map has just grown, so retrying the write can succeed."""


class KeyTooLargeError(StateError):
    """An entity, section and key that together exceed the store's key limit."""

    code = ErrorCode.STATE_KEY_TOO_LARGE


class CorruptStateError(StateError):
    """Stored bytes that are not a CARBON tuple: the state was written by something else."""

    code = ErrorCode.STATE_CORRUPT


class ConflictError(StateError):
    """A staged transaction read values another transaction changed before it committed."""

    code = ErrorCode.STATE_CONFLICT


class ClosedError(StateError):
    """Use of a store, snapshot or transaction after it was closed."""

    code = ErrorCode.STATE_CLOSED


class ReadOnlyError(StateError):
    """A write through a read-only view."""

    code = ErrorCode.STATE_READ_ONLY
