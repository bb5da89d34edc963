"""Plain data (as parsed from YAML or JSON) to values of a declared type, and back.

A person calling an operation from a terminal writes its payload as YAML or JSON, which
has no bytes, no non-text map keys and no records, and has floats and dates CARBON lacks.
`from_plain` turns such a parsed document into the value the operation's declared type
describes (ready for `carbon.types.dumps_typed`), refusing anything else with the path
of the first mismatch (`$.items[2].qty: expected int, got str`). `to_plain` is its
inverse, for printing a reply: every value of a type comes back from `from_plain`
unchanged (the property tests check that round trip).

Conventions, the same both ways:
- bytes are text with a prefix: `hex:0a0b`, `base64:CgsM` or `utf8:any text`
  (printed as `hex:`); a prefix-less string is refused, so no text is silently taken
  for bytes;
- a record is a mapping of its field names; an optional field may be left out;
- a map whose key type is int, bool or bytes takes its keys as YAML keys of that type
  or as text (JSON keys are always text): `"7"`, `"true"`, `"hex:07"`;
- `any` takes whatever CARBON can carry (int, str, bool, null, lists, text-keyed maps).

Pure and self-contained (no YAML, no I/O): the CLI parses the text, a typed client can
reuse the conversion. Work is bounded by MAX_ITEMS, so a YAML document whose aliases
make it exponentially large is refused instead of walked.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from typing import Any

from carbon.error_codes import ErrorCode
from carbon.types import (
    ANY,
    BOOL,
    BYTES,
    INT,
    NULL,
    STR,
    CarbonType,
    ListOf,
    MapOf,
    OptionalOf,
    PayloadTypeError,
    Prim,
    Record,
    encode_value,
)

MAX_ITEMS = 100_000
"""Values (scalars and containers) one conversion visits at most."""
BYTES_PREFIXES = ("hex:", "base64:", "utf8:")


class PlainInputError(PayloadTypeError):
    """A plain value that is not one of the declared type; the message starts with its path."""

    code = ErrorCode.PAYLOAD_TYPE_MISMATCH


def from_plain(kind: CarbonType, plain: Any) -> Any:
    """The value of `kind` that `plain` (parsed YAML/JSON) writes; PlainInputError if none."""
    budget = _Budget()
    value = _from(kind, plain, "$", budget)
    try:
        encode_value(kind, value)
    except PayloadTypeError as exc:  # e.g. an int beyond CBOR's range
        raise PlainInputError(exc.message) from None
    return value


def to_plain(kind: CarbonType, value: Any) -> Any:
    """The plain (JSON-ready) form of a value of `kind`: bytes as `hex:` text, map keys
    that are not text as text. `from_plain(kind, to_plain(kind, v)) == v`."""
    match kind:
        case Prim("bytes"):
            return "hex:" + bytes(value).hex()
        case Prim("any"):
            return _any_to_plain(value)
        case Prim():
            return value
        case ListOf(item):
            return [to_plain(item, v) for v in value]
        case MapOf(key, val):
            return {_key_to_plain(key, k): to_plain(val, v) for k, v in value.items()}
        case OptionalOf(inner):
            return None if value is None else to_plain(inner, value)
        case Record(fields):
            return {name: to_plain(k, value.get(name)) for name, k in fields}


class _Budget:
    """Counts visited values; refuses the conversion past MAX_ITEMS."""

    def __init__(self) -> None:
        self.left = MAX_ITEMS

    def spend(self, path: str) -> None:
        self.left -= 1
        if self.left < 0:
            raise PlainInputError(f"{path}: payload has more than {MAX_ITEMS} values")


def _from(kind: CarbonType, plain: Any, path: str, budget: _Budget) -> Any:
    budget.spend(path)
    match kind:
        case Prim(name):
            return _PRIM_READERS[name](plain, path, budget)
        case ListOf(item):
            if not isinstance(plain, list):
                raise _mismatch(kind, plain, path)
            return [_from(item, v, f"{path}[{i}]", budget) for i, v in enumerate(plain)]
        case MapOf(key, val):
            return _map(kind, key, val, plain, path, budget)
        case OptionalOf(inner):
            return None if plain is None else _from(inner, plain, path, budget)
        case Record(fields):
            return _record(kind, fields, plain, path, budget)


def _map(kind: MapOf, key: CarbonType, val: CarbonType, plain: Any, path: str,
         budget: _Budget) -> dict[Any, Any]:
    if not isinstance(plain, dict):
        raise _mismatch(kind, plain, path)
    out: dict[Any, Any] = {}
    for k, v in plain.items():
        read = _key_from_plain(key, k, path)
        if read in out:
            raise PlainInputError(f"{path}: keys {_shown(k)} and another both mean "
                                  f"{_shown(read)}")
        out[read] = _from(val, v, _entry(path, k), budget)
    return out


def _record(kind: Record, fields: tuple[tuple[str, CarbonType], ...], plain: Any, path: str,
            budget: _Budget) -> dict[str, Any]:
    if not isinstance(plain, dict):
        raise _mismatch(kind, plain, path)
    names = [name for name, _ in fields]
    for key in plain:
        if key not in names:
            raise PlainInputError(f"{path}: unexpected field {key!r} (fields: "
                                  f"{', '.join(names) or 'none'})")
    out: dict[str, Any] = {}
    for name, field_kind in fields:
        if name in plain:
            out[name] = _from(field_kind, plain[name], f"{path}.{name}", budget)
        elif isinstance(field_kind, OptionalOf):
            out[name] = None  # as decode_value rebuilds it
        else:
            raise PlainInputError(f"{path}: missing field {name!r} of type {field_kind}")
    return out


def _scalar(want: type, name: str) -> Callable[[Any, str, _Budget], Any]:
    def read(plain: Any, path: str, _: _Budget) -> Any:
        if type(plain) is not want:
            hint = " (quote text that YAML reads as another type)" \
                if want is str and _is_scalar(plain) else ""
            raise PlainInputError(f"{path}: expected {name}, got {_kind_of(plain)}{hint}")
        return plain
    return read


def _null(plain: Any, path: str, _: _Budget) -> None:
    if plain is not None:
        raise PlainInputError(f"{path}: expected null, got {_kind_of(plain)}")


def _bytes(plain: Any, path: str, _: _Budget) -> bytes:
    if not isinstance(plain, str) or not plain.startswith(BYTES_PREFIXES):
        raise PlainInputError(f"{path}: expected bytes, written as text starting with "
                              f"hex:, base64: or utf8:; got {_kind_of(plain)}")
    prefix, body = plain.split(":", 1)
    try:
        if prefix == "hex":
            return bytes.fromhex(body)
        if prefix == "base64":
            return base64.b64decode(body, validate=True)
    except (ValueError, binascii.Error):
        raise PlainInputError(f"{path}: not valid {prefix} bytes") from None
    return body.encode()


def _any(plain: Any, path: str, budget: _Budget) -> Any:
    """Any CARBON value, checked item by item (floats, dates and the like are refused)."""
    if plain is None or type(plain) in (int, str, bool):
        return plain
    if isinstance(plain, list):
        return [_any(v, f"{path}[{i}]", _spent(budget, path)) for i, v in enumerate(plain)]
    if isinstance(plain, dict):
        return {_any(k, f"{path}.<key>", _spent(budget, path)):
                _any(v, _entry(path, k), _spent(budget, path)) for k, v in plain.items()}
    raise PlainInputError(f"{path}: expected a CARBON value (int, str, bool, null, list, "
                          f"map), got {_kind_of(plain)}")


def _spent(budget: _Budget, path: str) -> _Budget:
    budget.spend(path)
    return budget


_PRIM_READERS: dict[str, Callable[[Any, str, _Budget], Any]] = {
    INT.name: _scalar(int, "int"), STR.name: _scalar(str, "str"),
    BOOL.name: _scalar(bool, "bool"), NULL.name: _null, BYTES.name: _bytes, ANY.name: _any}


def _key_from_plain(key: CarbonType, plain: Any, path: str) -> Any:
    where = f"{path}.<key {_shown(plain)}>"
    if key == STR or not isinstance(plain, str):
        return _PRIM_READERS[_prim_name(key)](plain, where, _Budget())
    if key == INT:
        try:
            return int(plain, 10)
        except ValueError:
            raise PlainInputError(f"{where}: expected an int key, got text") from None
    if key == BOOL:
        if plain not in ("true", "false"):
            raise PlainInputError(f"{where}: expected a bool key (true or false)")
        return plain == "true"
    return _bytes(plain, where, _Budget())


def _key_to_plain(key: CarbonType, value: Any) -> str:
    if key == BYTES:
        return "hex:" + bytes(value).hex()
    if key == BOOL:
        return "true" if value else "false"
    return str(value)


def _any_to_plain(value: Any) -> Any:
    """`any` values print as they are; bytes inside them (which YAML/JSON cannot write)
    print as `hex:` text, which reads back as text: `any` has no declared bytes."""
    if isinstance(value, bytes):
        return "hex:" + value.hex()
    if isinstance(value, list):
        return [_any_to_plain(v) for v in value]
    if isinstance(value, dict):
        return {_any_to_plain(k): _any_to_plain(v) for k, v in value.items()}
    return value


def _prim_name(kind: CarbonType) -> str:
    assert isinstance(kind, Prim)
    return kind.name


def _mismatch(kind: CarbonType, plain: Any, path: str) -> PlainInputError:
    return PlainInputError(f"{path}: expected {kind}, got {_kind_of(plain)}")


def _is_scalar(plain: Any) -> bool:
    return plain is None or type(plain) in (int, bool, float)


def _kind_of(plain: Any) -> str:
    names = {dict: "mapping", list: "list", str: "str", int: "int", bool: "bool",
             float: "float", type(None): "null"}
    return names.get(type(plain), type(plain).__name__)


MAX_KEY_SHOWN = 40


def _shown(key: Any) -> str:
    shown = repr(key)
    return shown if len(shown) <= MAX_KEY_SHOWN else shown[:MAX_KEY_SHOWN - 3] + "..."


def _entry(path: str, key: Any) -> str:
    return f"{path}[{_shown(key)}]"
