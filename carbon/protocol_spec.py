"""Protocol specifications: what an interface offers, operation by operation.

An interface is named by an IRON symbol; its specification lists operations, each with a
small wire number, a name, a kind (MESSAGE: a one-way sink; REQUEST: produces a reply;
CONNECTION: a request whose success yields a connection handle) and the declared types of
its message and reply. A specification never changes once published: a new protocol
version is a new interface symbol, so caches keyed by symbol never go stale.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from carbon.cbor import Value
from carbon.error_codes import ErrorCode, MercuryError
from carbon.symbols import Symbol, SymbolError
from carbon.types import (
    NULL,
    CarbonType,
    TypeDeclarationError,
    as_type,
    type_from_value,
    type_to_value,
)

MAX_OPERATIONS = 256
MAX_OPERATION_NUMBER = 0xFFFF
MAX_NAME_LENGTH = 64


class SpecError(MercuryError):
    """A protocol specification that is malformed or inconsistent."""

    code = ErrorCode.INVALID_PROTOCOL_SPEC


class OperationKind(IntEnum):
    """The three kinds of operation, as IRIDIUM request types."""

    MESSAGE = 1
    REQUEST = 2
    CONNECTION = 3


@dataclass(frozen=True, slots=True)
class Operation:
    """One operation of an interface. A MESSAGE operation's reply type is always null."""

    number: int
    name: str
    kind: OperationKind
    message: CarbonType
    reply: CarbonType = NULL

    def __post_init__(self) -> None:
        if type(self.number) is not int or not 0 <= self.number <= MAX_OPERATION_NUMBER:
            raise SpecError(f"operation number {self.number!r} must be 0-{MAX_OPERATION_NUMBER}")
        if not isinstance(self.name, str) or not 0 < len(self.name) <= MAX_NAME_LENGTH:
            raise SpecError(f"operation name {self.name!r} must be 1-{MAX_NAME_LENGTH} characters")
        if self.kind is OperationKind.MESSAGE and self.reply != NULL:
            raise SpecError(f"message operation {self.name!r} cannot declare a reply type")


def request(number: int, name: str, message: Any, reply: Any) -> Operation:
    """A request operation: `request(1, "add", record(n=int), int)`."""
    return Operation(number, name, OperationKind.REQUEST, as_type(message), as_type(reply))


def message(number: int, name: str, payload: Any) -> Operation:
    """A one-way message sink: `message(2, "reset", None)`."""
    return Operation(number, name, OperationKind.MESSAGE, as_type(payload), NULL)


def connection(number: int, name: str, payload: Any, reply: Any) -> Operation:
    """A connection-establishing operation; its reply accompanies the handle."""
    return Operation(number, name, OperationKind.CONNECTION, as_type(payload), as_type(reply))


@dataclass(frozen=True, slots=True)
class ProtocolSpec:
    """An interface symbol and its operations, unique by number and by name."""

    interface: Symbol
    operations: tuple[Operation, ...]

    def __post_init__(self) -> None:
        if len(self.operations) > MAX_OPERATIONS:
            raise SpecError(f"{self.interface}: more than {MAX_OPERATIONS} operations")
        numbers = [op.number for op in self.operations]
        names = [op.name for op in self.operations]
        if len(set(numbers)) != len(numbers):
            raise SpecError(f"{self.interface}: two operations share a number")
        if len(set(names)) != len(names):
            raise SpecError(f"{self.interface}: two operations share a name")

    def operation(self, number: int) -> Operation | None:
        """The operation with this wire number, or None."""
        for op in self.operations:
            if op.number == number:
                return op
        return None

    def named(self, name: str) -> Operation:
        """The operation with this name; raises SpecError if there is none."""
        for op in self.operations:
            if op.name == name:
                return op
        raise SpecError(f"{self.interface} has no operation named {name!r}")

    def __iter__(self) -> Iterator[Operation]:
        return iter(self.operations)


def Interface(symbol: str | Symbol, ops: Iterable[Operation]) -> ProtocolSpec:  # noqa: N802
    """Declare an interface: `Interface("/example/counter/v1", ops=[request(...), ...])`."""
    try:
        name = symbol if isinstance(symbol, Symbol) else Symbol(symbol)
    except SymbolError as exc:
        raise SpecError(f"interface name: {exc.message}") from None
    return ProtocolSpec(name, tuple(ops))


def spec_to_value(spec: ProtocolSpec) -> Value:
    """The published form: [symbol, [[number, name, kind, message type, reply type], ...]]."""
    return [spec.interface.text,
            [[op.number, op.name, int(op.kind), type_to_value(op.message),
              type_to_value(op.reply)] for op in spec.operations]]


def spec_from_value(value: Any) -> ProtocolSpec:
    """Parse a published specification; raises SpecError on anything malformed."""
    if not (isinstance(value, list) and len(value) == 2 and isinstance(value[1], list)):
        raise SpecError("a protocol spec must be [symbol, [operations...]]")
    if len(value[1]) > MAX_OPERATIONS:
        raise SpecError(f"more than {MAX_OPERATIONS} operations")
    if not isinstance(value[0], str):
        raise SpecError("interface symbol must be text")
    try:
        return Interface(value[0], tuple(_operation_from_value(item) for item in value[1]))
    except TypeDeclarationError as exc:
        raise SpecError(f"operation type: {exc.message}") from None


_KIND_VALUES = frozenset(k.value for k in OperationKind)


def _operation_from_value(item: Any) -> Operation:
    if not (isinstance(item, list) and len(item) == 5):
        raise SpecError("an operation must be [number, name, kind, message, reply]")
    number, name, kind, msg, reply = item
    if type(kind) is not int or kind not in _KIND_VALUES:
        raise SpecError(f"unknown operation kind {kind!r}")
    return Operation(number, name, OperationKind(kind), type_from_value(msg),
                     type_from_value(reply))


class SpecRegistry:
    """The node's interface specifications by symbol (why in memory: specs come with code)."""

    def __init__(self, specs: Iterable[ProtocolSpec] = ()) -> None:
        self._specs: dict[Symbol, ProtocolSpec] = {}
        for spec in specs:
            self.add(spec)

    def add(self, spec: ProtocolSpec) -> None:
        """Register a spec; the same symbol with a different spec is refused (new symbol!)."""
        known = self._specs.get(spec.interface)
        if known is not None and known != spec:
            raise SpecError(f"{spec.interface} is already declared differently; a changed "
                            "protocol needs a new interface symbol")
        self._specs[spec.interface] = spec

    def get(self, interface: Symbol) -> ProtocolSpec | None:
        """The spec for a symbol, or None when this node does not know it."""
        return self._specs.get(interface)

    def __contains__(self, interface: object) -> bool:
        return interface in self._specs
