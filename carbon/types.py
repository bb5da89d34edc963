"""A small declared-type language for operation payloads, and its positional wire form.

Protocol specifications declare the type of each operation's message and reply. Because
both ends know the type statically, the wire form drops what the type already says: a
record travels as a CBOR array of its field values in declared order (no field names),
and the type itself is never sent with the value. Types: int, bytes, str, bool, null,
any, list[T], map[K, V] (K a scalar), optional[T] (T not nullable) and record{fields}.

`encode_value` checks a Python value against a type and produces the wire value;
`decode_value` checks a wire value and rebuilds the Python value (records become dicts).
Both raise PayloadTypeError naming the path of the first mismatch, so a handler never
sees a payload of the wrong shape.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, TypeVar, cast

from carbon import cbor
from carbon.cbor import Value
from carbon.error_codes import ErrorCode, MercuryError

MAX_TYPE_DEPTH = 8
MAX_RECORD_FIELDS = 64
_FIELD_NAME = re.compile(r"[a-z_][a-z0-9_]{0,31}\Z")
_SCALARS = {"int": int, "bytes": bytes, "str": str, "bool": bool}


class TypeDeclarationError(MercuryError):
    """A type declaration that is malformed, ambiguous or too deep."""

    code = ErrorCode.INVALID_TYPE_DECLARATION


class PayloadTypeError(MercuryError):
    """A value that does not match its declared type; the message names where."""

    code = ErrorCode.PAYLOAD_TYPE_MISMATCH


@dataclass(frozen=True, slots=True)
class Prim:
    """A primitive type: int, bytes, str, bool, null or any (any CARBON value)."""

    name: str

    def __str__(self) -> str:
        return self.name


@dataclass(frozen=True, slots=True)
class ListOf:
    """A list whose items all have one type."""

    item: CarbonType

    def __str__(self) -> str:
        return f"list[{self.item}]"


@dataclass(frozen=True, slots=True)
class MapOf:
    """A map from scalar keys to values of one type."""

    key: CarbonType
    value: CarbonType

    def __str__(self) -> str:
        return f"map[{self.key}, {self.value}]"


@dataclass(frozen=True, slots=True)
class OptionalOf:
    """A value of the inner type, or null."""

    inner: CarbonType

    def __str__(self) -> str:
        return f"optional[{self.inner}]"


@dataclass(frozen=True, slots=True)
class Record:
    """Named fields in a fixed order; positional (an array) on the wire."""

    fields: tuple[tuple[str, CarbonType], ...]

    def __str__(self) -> str:
        inner = ", ".join(f"{name}: {kind}" for name, kind in self.fields)
        return f"record{{{inner}}}"


CarbonType = Prim | ListOf | MapOf | OptionalOf | Record

INT = Prim("int")
BYTES = Prim("bytes")
STR = Prim("str")
BOOL = Prim("bool")
NULL = Prim("null")
ANY = Prim("any")
_PRIMS = {p.name: p for p in (INT, BYTES, STR, BOOL, NULL, ANY)}
_PY_SHORTHAND: dict[Any, CarbonType] = {int: INT, bytes: BYTES, str: STR, bool: BOOL,
                                        None: NULL, type(None): NULL}


def as_type(spec: Any) -> CarbonType:
    """Accept a CarbonType or a Python shorthand (int, bytes, str, bool, None)."""
    if isinstance(spec, Prim | ListOf | MapOf | OptionalOf | Record):
        _validate(spec, 0)
        return spec
    try:
        return _PY_SHORTHAND[spec]
    except (KeyError, TypeError):
        raise TypeDeclarationError(
            f"{spec!r} is not a type: use int, bytes, str, bool, None or a carbon.types "
            "constructor (list_of, map_of, optional, record)") from None


def list_of(item: Any) -> ListOf:
    """list[T]."""
    return _checked(ListOf(as_type(item)))


def map_of(key: Any, value: Any) -> MapOf:
    """map[K, V]; K must be int, bytes, str or bool."""
    return _checked(MapOf(as_type(key), as_type(value)))


def optional(inner: Any) -> OptionalOf:
    """optional[T]; T must not itself admit null (null, any, optional)."""
    return _checked(OptionalOf(as_type(inner)))


def record(**fields: Any) -> Record:
    """record{name: T, ...} in keyword order, e.g. `record(n=int, note=optional(str))`."""
    return _checked(Record(tuple((name, as_type(kind)) for name, kind in fields.items())))


_T = TypeVar("_T", Prim, ListOf, MapOf, OptionalOf, Record)


def _checked(kind: _T) -> _T:
    _validate(kind, 0)
    return kind


def _validate(kind: CarbonType, depth: int) -> None:
    if depth > MAX_TYPE_DEPTH:
        raise TypeDeclarationError(f"type nested deeper than {MAX_TYPE_DEPTH} levels")
    match kind:
        case Prim(name):
            if name not in _PRIMS:
                raise TypeDeclarationError(f"unknown primitive type {name!r}")
        case ListOf(item):
            _validate(item, depth + 1)
        case MapOf(_, value):
            _map_key_name(kind)
            _validate(value, depth + 1)
        case OptionalOf(inner):
            if inner in (NULL, ANY) or isinstance(inner, OptionalOf):
                raise TypeDeclarationError(f"optional[{inner}] is ambiguous: {inner} "
                                           "already admits null")
            _validate(inner, depth + 1)
        case Record(fields):
            _validate_fields(fields, depth)


def _map_key_name(kind: MapOf) -> str:
    """The scalar key type's name. Checked at use too: a MapOf built directly (not through
    map_of) must fail, not encode every map as {}."""
    if not (isinstance(kind.key, Prim) and kind.key.name in _SCALARS):
        raise TypeDeclarationError(f"map key type must be int, bytes, str or bool, "
                                   f"not {kind.key}")
    return kind.key.name


def _validate_fields(fields: tuple[tuple[str, CarbonType], ...], depth: int) -> None:
    if len(fields) > MAX_RECORD_FIELDS:
        raise TypeDeclarationError(f"record has more than {MAX_RECORD_FIELDS} fields")
    seen: set[str] = set()
    for name, kind in fields:
        if not isinstance(name, str) or not _FIELD_NAME.match(name):
            raise TypeDeclarationError(f"record field name {name!r} must be 1-32 of a-z 0-9 _ "
                                       "starting with a letter or _")
        if name in seen:
            raise TypeDeclarationError(f"record field {name!r} declared twice")
        seen.add(name)
        _validate(kind, depth + 1)


def encode_value(kind: CarbonType, value: Any, path: str = "$") -> Value:
    """Check `value` against `kind` and return its positional wire value."""
    match kind:
        case Prim(name):
            return _prim(name, value, path)
        case ListOf(item):
            items = _expect(value, (list, tuple), kind, path)
            return [encode_value(item, v, f"{path}[{i}]") for i, v in enumerate(items)]
        case MapOf(_, val):
            entries = _expect(value, (dict,), kind, path)
            key = _map_key_name(kind)
            return {_prim(key, k, f"{path}.<key>"): encode_value(val, v, _key_path(path, k))
                    for k, v in entries.items()}
        case OptionalOf(inner):
            return None if value is None else encode_value(inner, value, path)
        case Record(fields):
            got = _expect(value, (dict,), kind, path)
            return _encode_record(fields, got, path)
        case _:
            return encode_value(as_type(kind), value, path)


def _encode_record(fields: tuple[tuple[str, CarbonType], ...], got: dict[Any, Any],
                   path: str) -> Value:
    names = {name for name, _ in fields}
    extra = [k for k in got if k not in names]
    if extra:
        raise PayloadTypeError(f"{path}: unexpected field {extra[0]!r}")
    out: list[Value] = []
    for name, kind in fields:
        if name not in got and not isinstance(kind, OptionalOf):
            raise PayloadTypeError(f"{path}: missing field {name!r} of type {kind}")
        out.append(encode_value(kind, got.get(name), f"{path}.{name}"))
    return out


def decode_value(kind: CarbonType, wire: Any, path: str = "$") -> Value:
    """Check a wire value against `kind` and rebuild the value (records become dicts)."""
    match kind:
        case Prim(name):
            return _prim(name, wire, path)
        case ListOf(item):
            items = _expect(wire, (list,), kind, path)
            return [decode_value(item, v, f"{path}[{i}]") for i, v in enumerate(items)]
        case MapOf(_, val):
            entries = _expect(wire, (dict,), kind, path)
            key = _map_key_name(kind)
            return {_prim(key, k, f"{path}.<key>"): decode_value(val, v, _key_path(path, k))
                    for k, v in entries.items()}
        case OptionalOf(inner):
            return None if wire is None else decode_value(inner, wire, path)
        case Record(fields):
            items = _expect(wire, (list,), kind, path)
            if len(items) != len(fields):
                raise PayloadTypeError(f"{path}: {kind} needs {len(fields)} positional "
                                       f"values, got {len(items)}")
            return {name: decode_value(k, v, f"{path}.{name}")
                    for (name, k), v in zip(fields, items, strict=True)}
        case _:
            return decode_value(as_type(kind), wire, path)


MAX_KEY_IN_PATH = 40


def _key_path(path: str, key: Any) -> str:
    """The path of a map entry, with the key's repr cut short. Why: every item below the
    entry copies this path, so a megabyte key would make decoding quadratic."""
    shown = repr(key)
    if len(shown) > MAX_KEY_IN_PATH:
        shown = shown[:MAX_KEY_IN_PATH - 3] + "..."
    return f"{path}[{shown}]"


def _prim(name: str, value: Any, path: str) -> Value:
    if name == "any":
        try:
            cbor.dumps(value)
        except cbor.CodecError as exc:
            raise PayloadTypeError(f"{path}: not a CARBON value: {exc.message}") from None
        checked: Value = value
        return checked
    if name == "null":
        if value is not None:
            raise PayloadTypeError(f"{path}: expected null, got {type(value).__name__}")
        return None
    want = _SCALARS[name]
    if type(value) is not want:
        raise PayloadTypeError(f"{path}: expected {name}, got {type(value).__name__}")
    if type(value) is int and not cbor.MIN_INT <= value <= cbor.MAX_INT:
        raise PayloadTypeError(f"{path}: int outside {cbor.MIN_INT}..{cbor.MAX_INT}")
    return cast(Value, value)


def _expect(value: Any, kinds: tuple[type, ...], kind: CarbonType, path: str) -> Any:
    if not isinstance(value, kinds):
        raise PayloadTypeError(f"{path}: expected {kind}, got {type(value).__name__}")
    return value


TypeSpec = CarbonType | type[int] | type[str] | type[bytes] | type[bool] | None
"""A declared type, or its Python shorthand (int, str, bytes, bool, None)."""


def dumps_typed(kind: TypeSpec, value: Any) -> bytes:
    """Wire bytes of a value of a statically known type."""
    return cbor.dumps(encode_value(as_type(kind), value))


def loads_typed(kind: TypeSpec, data: bytes,
                limits: cbor.Limits = cbor.DEFAULT_LIMITS) -> Value:
    """Decode wire bytes strictly, then check and rebuild them as `kind`."""
    return decode_value(as_type(kind), cbor.loads(data, limits))


def type_to_value(kind: CarbonType) -> Value:
    """The declaration's own CARBON form, as published by endpoint 0."""
    match kind:
        case Prim(name):
            return name
        case ListOf(item):
            return ["list", type_to_value(item)]
        case MapOf(key, value):
            return ["map", type_to_value(key), type_to_value(value)]
        case OptionalOf(inner):
            return ["optional", type_to_value(inner)]
        case Record(fields):
            return ["record", [[name, type_to_value(k)] for name, k in fields]]


def type_from_value(value: Any, depth: int = 0) -> CarbonType:
    """Parse a published declaration; raises TypeDeclarationError on anything malformed."""
    if depth > MAX_TYPE_DEPTH:
        raise TypeDeclarationError(f"type nested deeper than {MAX_TYPE_DEPTH} levels")
    if isinstance(value, str):
        if value not in _PRIMS:
            raise TypeDeclarationError(f"unknown primitive type {value!r}")
        return _PRIMS[value]
    if not (isinstance(value, list) and value and isinstance(value[0], str)):
        raise TypeDeclarationError(f"malformed type declaration {value!r:.80}")
    head, args = value[0], value[1:]
    parsed = _parse_compound(head, args, depth)
    _validate(parsed, depth)
    return parsed


def _parse_compound(head: str, args: list[Any], depth: int) -> CarbonType:
    arity = {"list": 1, "map": 2, "optional": 1, "record": 1}
    if arity.get(head) != len(args):
        raise TypeDeclarationError(f"malformed type declaration {head!r} with {len(args)} "
                                   "arguments")
    if head == "list":
        return ListOf(type_from_value(args[0], depth + 1))
    if head == "map":
        return MapOf(type_from_value(args[0], depth + 1), type_from_value(args[1], depth + 1))
    if head == "optional":
        return OptionalOf(type_from_value(args[0], depth + 1))
    fields = args[0]
    if not isinstance(fields, list) or len(fields) > MAX_RECORD_FIELDS:
        raise TypeDeclarationError("record fields must be a list of [name, type] pairs")
    pairs: list[tuple[str, CarbonType]] = []
    for field in fields:
        if not (isinstance(field, list) and len(field) == 2 and isinstance(field[0], str)):
            raise TypeDeclarationError(f"malformed record field {field!r:.80}")
        pairs.append((field[0], type_from_value(field[1], depth + 1)))
    return Record(tuple(pairs))
