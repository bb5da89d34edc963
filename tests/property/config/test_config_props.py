"""Properties of the node config's address codecs and node-list rules, and of the durable
stores against their in-memory references."""

from __future__ import annotations

import contextlib
from ipaddress import IPv4Address, IPv6Address
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from mercury_rt.config import (
    DurableSpentStore,
    PeerNode,
    format_host_port,
    held_store,
    parse_host_port,
)
from mercury_rt.config.checks import _node_list
from mercury_rt.core.gate import MemorySpentStore
from mercury_rt.core.identity import ServerAddress
from mercury_rt.core.node import MemoryHeldStore
from tungsten.memory import MemoryStore

hosts = st.one_of(st.ip_addresses(v=4), st.ip_addresses(v=6))
ports = st.integers(1, 65_535)


@given(hosts, ports)
def test_host_port_round_trips(host: IPv4Address | IPv6Address, port: int) -> None:
    text = format_host_port(str(host), port)
    assert parse_host_port(text) == (str(host), port)
    assert PeerNode(node_id="n", intra=text).intra_address == (str(host), port)


@given(hosts, ports, st.integers(0, 65_535), st.integers(0, 65_535))
def test_public_address_round_trips_through_the_config(
        host: IPv4Address | IPv6Address, port: int, priority: int, weight: int) -> None:
    address = ServerAddress(host, port, priority, weight)
    node = PeerNode(node_id="n", intra="127.0.0.1:1", public=str(address))
    assert node.public_address == address


@given(st.text(max_size=40))
def test_any_address_text_is_accepted_or_a_validation_error(text: str) -> None:
    """Nothing an operator types crashes the loader with anything but a located error."""
    with contextlib.suppress(ValidationError):
        PeerNode(node_id="n", intra=text, public=text)
    with contextlib.suppress(ValueError):
        parse_host_port(text)


@given(st.lists(st.sampled_from(["a", "b", "c", "d"]), min_size=1, max_size=8),
       st.lists(st.integers(1, 4), min_size=8, max_size=8))
def test_each_repeated_id_and_address_is_reported_once(ids: list[str],
                                                       intra_ports: list[int]) -> None:
    nodes = [PeerNode(node_id=node_id, intra=f"127.0.0.1:{intra_ports[i]}")
             for i, node_id in enumerate(ids)]
    config: Any = type("C", (), {"cluster": type("N", (), {"nodes": nodes})})
    findings = list(_node_list(config))
    id_findings = [loc for loc, _ in findings if loc[-1] == "node_id"]
    intra_findings = [loc for loc, _ in findings if loc[-1] == "intra"]
    assert len(id_findings) == len(ids) - len(set(ids))
    used = intra_ports[:len(ids)]
    assert len(intra_findings) == len(used) - len(set(used))


spend_ops = st.lists(st.tuples(st.binary(min_size=1, max_size=3), st.integers(-5, 60),
                               st.integers(0, 60)), max_size=40)


@settings(max_examples=60)
@given(st.integers(1, 6), spend_ops)
def test_durable_spent_store_agrees_with_memory(limit: int,
                                                ops: list[tuple[bytes, int, int]]) -> None:
    """Same answers and size as MemorySpentStore for any sequence (now need not rise)."""
    reference, durable = MemorySpentStore(limit), DurableSpentStore(MemoryStore(), limit)
    for digest, expires_at, now in ops:
        assert durable.add_if_absent(digest, expires_at, now) is \
            reference.add_if_absent(digest, expires_at, now)
        assert len(durable) == len(reference)


held_ops = st.lists(st.tuples(st.sampled_from(["put", "delete", "get"]),
                              st.binary(min_size=1, max_size=2), st.binary(max_size=4)),
                    max_size=30)


@settings(max_examples=60)
@given(held_ops)
def test_durable_held_store_agrees_with_memory(ops: list[tuple[str, bytes, bytes]]) -> None:
    reference, durable = MemoryHeldStore(), held_store(MemoryStore())
    for op, key, record in ops:
        if op == "put":
            reference.put(key, record)
            durable.put(key, record)
        elif op == "delete":
            reference.delete(key)
            durable.delete(key)
        else:
            assert durable.get(key) == reference.get(key)
    assert sorted(durable.items()) == sorted(reference.items())


@pytest.mark.parametrize("text", ["127.0.0.1", "[::1]", "::1:80", "host:80", "1.2.3.4:0",
                                  "1.2.3.4:65536", "1.2.3.4:-1", "[1.2.3.4]:80x"])
def test_bad_host_port_texts_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match=r"."):
        parse_host_port(text)
