"""Properties of the plaintext rule: only this machine's endpoints may be reached without
TLS, unless the operator allows plaintext."""

from __future__ import annotations

import ipaddress
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from mercury_rt.config.replication import ReplicationConfig, TlsFiles, is_loopback_host


@given(st.ip_addresses())
def test_only_loopback_addresses_are_loopback(address: ipaddress.IPv4Address |
                                              ipaddress.IPv6Address) -> None:
    text = f"[{address}]" if address.version == 6 else str(address)
    assert is_loopback_host(text) is address.is_loopback


@given(st.lists(st.tuples(st.ip_addresses(v=4), st.integers(1, 65_535)), min_size=1,
                max_size=16), st.booleans(), st.booleans())
def test_plaintext_is_refused_exactly_for_endpoints_off_this_machine(
        endpoints: list[tuple[ipaddress.IPv4Address, int]], tls: bool, allow: bool) -> None:
    config = ReplicationConfig(endpoints=[f"{a}:{p}" for a, p in endpoints],
                               tls=TlsFiles(ca_file=Path("ca.pem")) if tls else None,
                               allow_plaintext=allow)
    expected = () if tls or allow else tuple(i for i, (a, _) in enumerate(endpoints)
                                             if not a.is_loopback)
    assert config.plaintext_endpoints() == expected
