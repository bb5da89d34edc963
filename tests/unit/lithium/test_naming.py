"""Names resolve through the naming interface; clients pin what they resolved."""

from __future__ import annotations

import asyncio

import pytest

from carbon.error_codes import ErrorCode
from carbon.names import NAMING_SPEC, NamePinMismatchError, NamePins, parse_name
from carbon.principal import Principal
from carbon.protocol_spec import OperationKind, SpecRegistry
from carbon.types import BYTES, STR, dumps_typed, loads_typed
from lithium import HandlerRegistry, IncomingCall, Invoker, Reply
from lithium.naming import attach_naming, register_naming, remove_name, set_name
from tungsten.memory import MemoryStore

NAMER = b"naming"


def _resolve(store: MemoryStore, specs: SpecRegistry, registry: HandlerRegistry,
             text: str) -> Reply:
    invoker = Invoker(store, registry, specs)
    call = IncomingCall(NAMER, 1, 1, OperationKind.REQUEST, dumps_typed(STR, text),
                        Principal(b"\x01c", b"client"))
    try:
        return asyncio.run(invoker.invoke(call))
    finally:
        invoker.close()


def test_resolve_known_unknown_and_invalid_names() -> None:
    """A known name gives its EID; unknown and malformed names get their own codes."""
    store, specs, registry = MemoryStore(), SpecRegistry(), HandlerRegistry()
    register_naming(registry)
    with store.writing() as txn:
        attach_naming(txn, NAMER, endpoint=1, specs=specs)
        set_name(txn, NAMER, "alice@example-cluster", b"eid-of-alice")
    ok = _resolve(store, specs, registry, "alice@example-cluster")
    assert ok.payload is not None and loads_typed(BYTES, ok.payload) == b"eid-of-alice"
    assert NAMING_SPEC.named("resolve").reply == BYTES
    missing = _resolve(store, specs, registry, "bob@example-cluster")
    assert missing.code is ErrorCode.NAME_NOT_FOUND
    assert "bob@example-cluster" in missing.message
    assert _resolve(store, specs, registry, "Not A Name").code is ErrorCode.INVALID_NAME
    with store.writing() as txn:
        assert remove_name(txn, NAMER, "alice@example-cluster")
    gone = _resolve(store, specs, registry, "alice@example-cluster")
    assert gone.code is ErrorCode.NAME_NOT_FOUND


def test_client_pins_then_reports_a_changed_resolution() -> None:
    """The second, different answer for a pinned name is reported, not used."""
    pins = NamePins()
    alice = parse_name("alice@example-cluster")
    pins.pin(alice, b"eid-1")
    with pytest.raises(NamePinMismatchError):
        pins.pin(alice, b"eid-forged")
