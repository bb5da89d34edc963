"""SRV ordering over random address lists: a permutation, priorities in order, prefix bits sane."""

from __future__ import annotations

import ipaddress
import random
from collections import Counter

from hypothesis import given
from hypothesis import strategies as st

from mercury_rt.core.routing import ProximityRule, common_prefix_bits, srv_order
from tests.routing_support import FakeServerAddress

hosts = st.one_of(
    st.integers(0, 2**32 - 1).map(ipaddress.IPv4Address),
    st.integers(0, 2**128 - 1).map(ipaddress.IPv6Address),
)


addresses = st.builds(FakeServerAddress, hosts, st.integers(1, 65535), st.integers(0, 5),
                      st.integers(0, 50))


@given(st.lists(addresses, max_size=20), st.integers(0, 2**32), st.booleans(), hosts)
def test_order_is_a_permutation_with_nondecreasing_priority(
        addrs: list[FakeServerAddress], seed: int, use_rule: bool,
        local: ipaddress.IPv4Address) -> None:
    """Every address appears exactly once and priorities never go down."""
    rule = ProximityRule(local_addresses=(local,)) if use_rule else None
    order = srv_order(addrs, random.Random(seed), rule)
    assert Counter(order) == Counter(addrs)
    assert [a.priority for a in order] == sorted(a.priority for a in order)


@given(hosts, hosts)
def test_prefix_bits_symmetric_and_bounded(a: ipaddress.IPv4Address,
                                           b: ipaddress.IPv4Address) -> None:
    """Prefix length is symmetric, within the family width, and full only for equal hosts."""
    bits = common_prefix_bits(a, b)
    assert bits == common_prefix_bits(b, a)
    assert 0 <= bits <= a.max_prefixlen
    assert (bits == a.max_prefixlen) == (a == b)
