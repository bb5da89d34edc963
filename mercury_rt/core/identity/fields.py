"""Typed field readers for decoded CBOR: every shape error names the field at fault.

Decoders of hostile input call these instead of trusting `isinstance` ad hoc, so a
wrong type, a truncated key or an oversized list always becomes an IdentityError with a
code that says which (BAD_FIELD_LENGTH for truncation, FIELD_TOO_LARGE for oversize).
"""

from __future__ import annotations

from carbon.cbor import Value
from carbon.error_codes import ErrorCode
from mercury_rt.core.identity.errors import IdentityError

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
    _check_length(len(value), what, "is", "bytes", size, max_size, min_size)
    return value


def expect_list(value: Value, what: str, *, length: int | None = None,
                max_length: int = 64, min_length: int = 0) -> list[Value]:
    """A list with exactly `length` items, or min_length..max_length items."""
    if type(value) is not list:
        raise IdentityError(f"{what} must be an array, not {type(value).__name__}")
    _check_length(len(value), what, "has", "items", length, max_length, min_length)
    return value


def _check_length(count: int, what: str, verb: str, unit: str, exact: int | None,
                  most: int, least: int) -> None:
    """The one length rule of byte strings and arrays; the message reads
    "<what> <verb> <count> <unit>; ..." and the code says truncation or oversize."""
    if exact is not None and count != exact:
        raise IdentityError(f"{what} {verb} {count} {unit}; expected {exact}",
                            ErrorCode.BAD_FIELD_LENGTH)
    if count > most:
        raise IdentityError(f"{what} {verb} {count} {unit}; at most {most} allowed",
                            ErrorCode.FIELD_TOO_LARGE)
    if count < least:
        raise IdentityError(f"{what} {verb} {count} {unit}; at least {least} needed",
                            ErrorCode.BAD_FIELD_LENGTH)
