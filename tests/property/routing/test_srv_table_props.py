"""A kept `SrvTable` orders exactly as RFC 2782's selection over the list afresh: the same
addresses and the same random draws, call after call (issue 13's cached contact order)."""

from __future__ import annotations

import ipaddress
import random

from hypothesis import given
from hypothesis import strategies as st

from mercury_rt.core.routing import ProximityRule, SrvTable, srv_order
from tests.routing_support import FakeServerAddress

hosts = st.one_of(st.integers(0, 2**32 - 1).map(ipaddress.IPv4Address),
                  st.integers(0, 2**128 - 1).map(ipaddress.IPv6Address))
addresses = st.builds(FakeServerAddress, hosts, st.integers(1, 65535), st.integers(0, 3),
                      st.sampled_from([0, 0, 1, 5, 10, 50]))


def rfc2782_order(addrs: list[FakeServerAddress], rng: random.Random,
                  rule: ProximityRule | None) -> list[FakeServerAddress]:
    """The selection as the RFC words it, worked out from scratch on every call (the
    reference: group by priority, weight-0 entries shuffled first, then draw r in
    0..sum and take the first entry whose running sum reaches r)."""
    ordered: list[FakeServerAddress] = []
    for priority in sorted({a.priority for a in addrs}):
        level = [((rule.effective_weight(a) if rule else a.weight), a)
                 for a in addrs if a.priority == priority]
        zeros = [item for item in level if item[0] == 0]
        rng.shuffle(zeros)
        remaining = zeros + [item for item in level if item[0] != 0]
        while remaining:
            target = rng.randint(0, sum(w for w, _ in remaining))
            running = 0
            for index, (weight, address) in enumerate(remaining):
                running += weight
                if running >= target:
                    ordered.append(address)
                    del remaining[index]
                    break
    return ordered


@given(st.lists(addresses, max_size=12), st.integers(0, 2**32), st.booleans(), hosts,
       st.integers(1, 6))
def test_a_kept_table_orders_as_the_rfc_selection_afresh(
        addrs: list[FakeServerAddress], seed: int, use_rule: bool,
        local: ipaddress.IPv4Address, calls: int) -> None:
    """Reusing one table for `calls` orders gives each order the fresh selection gives
    with an equally seeded generator, and leaves the generator in the same state."""
    rule = ProximityRule(local_addresses=(local,)) if use_rule else None
    table = SrvTable.of(addrs, rule)
    kept, fresh = random.Random(seed), random.Random(seed)
    for _ in range(calls):
        assert table.order(kept) == rfc2782_order(addrs, fresh, rule)
        assert kept.getstate() == fresh.getstate()
    assert srv_order(addrs, kept, rule) == rfc2782_order(addrs, fresh, rule)
