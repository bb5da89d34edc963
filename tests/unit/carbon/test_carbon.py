"""Endpoint 0 metadata, endpoint maps, the client resolver cache and name pinning."""

from __future__ import annotations

import pytest

from carbon.error_codes import ErrorCode, MercuryError
from carbon.interfaces import EndpointError, InterfaceMap, interface_map_from_value
from carbon.metadata import (
    GET_SPEC,
    LIST_INTERFACES,
    METADATA_SPEC,
    EndpointCache,
    MetadataError,
    answer_metadata,
)
from carbon.names import NamePinMismatchError, NamePins, check_resolved_eid, parse_name
from carbon.principal import Persona, Principal
from carbon.protocol_spec import Interface, SpecError, SpecRegistry, request, spec_from_value
from carbon.symbols import Symbol
from carbon.types import dumps_typed, loads_typed

COUNTER = Interface("/example/counter/v1", ops=[request(1, "add", int, int)])
IMAP = InterfaceMap({1: COUNTER.interface})


def test_list_interfaces_includes_endpoint_zero_and_encodes_positionally() -> None:
    """The listing names endpoint 0 itself; on the wire each entry is [symbol, endpoint]."""
    answer = answer_metadata(LIST_INTERFACES, None, IMAP, SpecRegistry([COUNTER]))
    reply_type = METADATA_SPEC.named("list-interfaces").reply
    wire = dumps_typed(reply_type, answer)
    assert loads_typed(reply_type, wire) == answer
    assert b"interface" not in wire
    assert interface_map_from_value(answer) == IMAP


def test_get_spec_answers_offered_interfaces_only() -> None:
    """get-spec returns a parseable spec for offered interfaces and a typed error otherwise."""
    specs = SpecRegistry([COUNTER])
    value = answer_metadata(GET_SPEC, "/example/counter/v1", IMAP, specs)
    assert spec_from_value(value) == COUNTER
    assert spec_from_value(answer_metadata(GET_SPEC, "/argon/carbon/metadata", IMAP,
                                           specs)) == METADATA_SPEC
    with pytest.raises(MetadataError) as info:
        answer_metadata(GET_SPEC, "/example/other", IMAP, specs)
    assert info.value.code is ErrorCode.UNKNOWN_INTERFACE
    with pytest.raises(MetadataError):
        answer_metadata(GET_SPEC, "NOT A SYMBOL", IMAP, specs)
    with pytest.raises(MetadataError) as info:
        answer_metadata(7, None, IMAP, specs)
    assert info.value.code is ErrorCode.UNKNOWN_OPERATION


def test_interface_map_rejects_endpoint_zero_and_duplicates() -> None:
    """Endpoint 0 is reserved; one interface cannot sit on two endpoints."""
    with pytest.raises(EndpointError):
        InterfaceMap({0: COUNTER.interface})
    with pytest.raises(EndpointError):
        InterfaceMap({1: COUNTER.interface, 2: COUNTER.interface})
    with pytest.raises(EndpointError):
        interface_map_from_value([{"interface": "/a/b", "endpoint": 70000}])


def test_endpoint_cache_resolves_forgets_and_is_bounded() -> None:
    """The client asks endpoint 0 once per EID, then resolves from the cache."""
    cache = EndpointCache(max_entities=2)
    counter = COUNTER.interface
    assert cache.endpoint_for(b"eid-a", counter) is None
    cache.learn(b"eid-a", answer_metadata(LIST_INTERFACES, None, IMAP, SpecRegistry()))
    assert cache.endpoint_for(b"eid-a", counter) == 1
    assert cache.endpoint_for(b"eid-a", Symbol("/argon/carbon/metadata")) == 0
    with pytest.raises(MetadataError):
        cache.endpoint_for(b"eid-a", Symbol("/example/absent"))
    cache.learn(b"eid-b", [])
    cache.learn(b"eid-c", [])
    assert len(cache) == 2
    assert cache.endpoint_for(b"eid-a", counter) is None
    cache.forget(b"eid-b")
    assert len(cache) == 1


def test_name_pins_report_a_changed_answer() -> None:
    """A pinned name that later resolves elsewhere is an error, until unpinned."""
    pins = NamePins()
    alice = parse_name("alice@example-cluster")
    pins.pin(alice, b"eid-1")
    pins.pin(alice, b"eid-1")
    with pytest.raises(NamePinMismatchError) as info:
        pins.pin(alice, b"eid-2")
    assert info.value.code is ErrorCode.NAME_PIN_MISMATCH
    assert pins.pinned(alice) == b"eid-1"
    pins.unpin(alice)
    assert pins.pin(alice, b"eid-2") == b"eid-2"


def test_resolved_eid_must_be_bounded_bytes() -> None:
    """A naming reply that is empty or huge is not accepted."""
    alice = parse_name("alice@example-cluster")
    assert check_resolved_eid(alice, b"x") == b"x"
    for bad in (b"", b"x" * 5000, "text"):
        with pytest.raises(MercuryError):
            check_resolved_eid(alice, bad)


def test_spec_registry_refuses_a_changed_protocol_under_the_same_symbol() -> None:
    """A new protocol version needs a new interface symbol."""
    specs = SpecRegistry([COUNTER])
    specs.add(COUNTER)
    with pytest.raises(SpecError, match="new interface symbol"):
        specs.add(Interface("/example/counter/v1", ops=[request(1, "add", str, int)]))


def test_equal_personas_hash_alike_whatever_the_params_order() -> None:
    """A persona decoded from the wire (canonical key order) equals, and so must find, one a
    developer wrote with another key order, e.g. in a delegation chain's loop check."""
    work = Symbol("/example/personas/work")
    written = Principal(b"\x01c", b"bob", Persona(work, {"team": "ops", "level": 2}))
    decoded = Principal(b"\x01c", b"bob", Persona(work, {"level": 2, "team": "ops"}))
    assert written == decoded and decoded in {written}
    assert Principal(b"\x01c", b"bob", Persona(work, {"level": 3})) not in {written}
