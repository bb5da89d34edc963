"""Typed field readers for decoded CBOR: every shape error names the field at fault.

Decoders of hostile input call these instead of trusting `isinstance` ad hoc, so a
wrong type, a truncated key or an oversized list always becomes an IdentityError with a
code that says which (BAD_FIELD_LENGTH for truncation, FIELD_TOO_LARGE for oversize).
"""

from __future__ import annotations

from carbon.cbor import Value
from carbon.error_codes import ErrorCode
from mercury_rt.core.identity_errors import IdentityError

U32_MAX = 2**32 - 1
U16_MAX = 2**16 - 1


def expect_int(value: Value, what: str, low: int = 0, high: int = U32_MAX) -> int:
    """An int in [low, high]; bool is not an int here."""
    if type(value) is not int:
        raise IdentityError(f"{what} must be an integer, not {type(value).__name__}")
    if not low <= value <= high:
        code = ErrorCode.FIELD_TOO_LARGE if value > high else ErrorCode.IDENTITY_MALFORMED
        raise IdentityError(f"{what} is {value}; must be {low}..{high}", code)
    return value


def expect_bytes(value: Value, what: str, *, size: int | None = None,
                 max_size: int = 1024, min_size: int = 0) -> bytes:
    """A byte string of exactly `size` bytes, or of min_size..max_size bytes."""
    if type(value) is not bytes:
        raise IdentityError(f"{what} must be a byte string, not {type(value).__name__}")
    if size is not None and len(value) != size:
        raise IdentityError(f"{what} is {len(value)} bytes; expected {size}",
                            ErrorCode.BAD_FIELD_LENGTH)
    if len(value) > max_size:
        raise IdentityError(f"{what} is {len(value)} bytes; at most {max_size} allowed",
                            ErrorCode.FIELD_TOO_LARGE)
    if len(value) < min_size:
        raise IdentityError(f"{what} is {len(value)} bytes; at least {min_size} needed",
                            ErrorCode.BAD_FIELD_LENGTH)
    return value


def expect_list(value: Value, what: str, *, length: int | None = None,
                max_length: int = 64, min_length: int = 0) -> list[Value]:
    """A list with exactly `length` items, or min_length..max_length items."""
    if type(value) is not list:
        raise IdentityError(f"{what} must be an array, not {type(value).__name__}")
    if length is not None and len(value) != length:
        raise IdentityError(f"{what} has {len(value)} items; expected {length}",
                            ErrorCode.BAD_FIELD_LENGTH)
    if len(value) > max_length:
        raise IdentityError(f"{what} has {len(value)} items; at most {max_length} allowed",
                            ErrorCode.FIELD_TOO_LARGE)
    if len(value) < min_length:
        raise IdentityError(f"{what} has {len(value)} items; at least {min_length} needed",
                            ErrorCode.BAD_FIELD_LENGTH)
    return value
