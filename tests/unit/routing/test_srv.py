"""SRV ordering (RFC 2782) and the prefix-proximity adjustment."""

from __future__ import annotations

import ipaddress
import random
from collections import Counter

import pytest

from mercury_rt.core.routing import ProximityRule, common_prefix_bits, srv_order
from tests.routing_support import addr

ip = ipaddress.ip_address


def test_lowest_priority_first_regardless_of_weight() -> None:
    """A priority-20 node is never tried before any priority-10 node."""
    backup = addr("10.0.0.9", priority=20, weight=1000)
    primaries = [addr(f"10.0.0.{i}", priority=10, weight=1) for i in range(1, 4)]
    for seed in range(50):
        order = srv_order([backup, *primaries], random.Random(seed))
        assert order[-1] == backup
        assert set(order[:3]) == set(primaries)


def test_same_seed_same_order() -> None:
    """Seeded randomness replays: a failing simulation can be rerun exactly."""
    addrs = [addr(f"10.0.0.{i}", weight=i) for i in range(1, 8)]
    assert srv_order(addrs, random.Random(7)) == srv_order(addrs, random.Random(7))


def test_weight_proportional_first_pick() -> None:
    """RFC 2782 draws r in 0..sum inclusive: P(first in list order) = (w+1)/(S+1)."""
    light, heavy = addr("10.0.0.1", weight=1), addr("10.0.0.2", weight=3)
    rng = random.Random(1)
    firsts = Counter(srv_order([light, heavy], rng)[0] for _ in range(4000))
    # Expected heavy share 3/5 = 0.6 (light gets r in {0, 1}); 4000 draws, 5 sigma ~ 0.04.
    assert 0.56 < firsts[heavy] / 4000 < 0.64


def test_zero_weights_rarely_first_but_all_zero_is_uniform() -> None:
    """Weight-0 entries lose to weighted ones almost always; among themselves they share."""
    zero, one = addr("10.0.0.1", weight=0), addr("10.0.0.2", weight=100)
    rng = random.Random(3)
    zero_first = sum(srv_order([zero, one], rng)[0] == zero for _ in range(2000))
    assert zero_first < 2000 * 0.03  # expected 1/101
    zeros = [addr(f"10.0.0.{i}", weight=0) for i in range(1, 4)]
    firsts = Counter(srv_order(zeros, rng)[0] for _ in range(3000))
    assert all(800 < firsts[z] < 1200 for z in zeros)


def test_negative_weight_is_rejected() -> None:
    """A negative weight cannot come from a valid cluster ID; refuse rather than misorder."""
    with pytest.raises(ValueError, match="negative"):
        srv_order([addr("10.0.0.1", weight=-1)], random.Random(0))


@pytest.mark.parametrize(("a", "b", "bits"), [
    ("10.1.2.3", "10.1.2.3", 32),
    ("10.1.2.3", "10.1.2.200", 24),
    ("192.168.0.1", "64.0.0.0", 0),
    ("2001:db8::1", "2001:db8::1", 128),
    ("2001:db8:1::", "2001:db8:2::", 46),
    ("10.0.0.1", "::ffff:10.0.0.1", 0),
])
def test_common_prefix_bits(a: str, b: str, bits: int) -> None:
    """Shared leading bits, and 0 across address families."""
    assert common_prefix_bits(ip(a), ip(b)) == bits


def test_proximity_boosts_near_node_within_its_priority_only() -> None:
    """A node on our /24 is favoured among equals, but never jumps a priority level."""
    near, far = addr("192.0.2.50", weight=10), addr("198.51.100.7", weight=10)
    near_backup = addr("192.0.2.51", priority=20, weight=10)
    rule = ProximityRule(local_addresses=(ip("192.0.2.1"),), weight_factor=8)
    rng = random.Random(5)
    firsts = Counter()
    for _ in range(2000):
        order = srv_order([far, near_backup, near], rng, rule)
        assert order[-1] == near_backup
        firsts[order[0]] += 1
    assert firsts[near] / 2000 > 0.8  # effective weights 80 vs 10


def test_proximity_ipv6_and_weight_zero() -> None:
    """Near weight-0 entries become weight 1 x factor; IPv6 uses its own threshold."""
    rule = ProximityRule(local_addresses=(ip("2001:db8:aa::1"),), ipv6_min_bits=48,
                         weight_factor=4)
    assert rule.effective_weight(addr("2001:db8:aa::9", weight=0)) == 4
    assert rule.effective_weight(addr("2001:db8:bb::9", weight=5)) == 5
    assert rule.effective_weight(addr("192.0.2.1", weight=5)) == 5


def test_proximity_rule_validates() -> None:
    """Nonsense thresholds are a configuration error, said at construction."""
    with pytest.raises(ValueError):
        ProximityRule(local_addresses=(), ipv4_min_bits=33)
    with pytest.raises(ValueError):
        ProximityRule(local_addresses=(), weight_factor=0)








def test_three_weights_first_pick_distribution() -> None:
    """Weights 1, 2, 7 in that list order: first-pick shares (1+1)/11, 2/11, 7/11."""
    a, b, c = addr("10.0.0.1", weight=1), addr("10.0.0.2", weight=2), addr("10.0.0.3", weight=7)
    rng = random.Random(11)
    n = 11_000
    firsts = Counter(srv_order([a, b, c], rng)[0] for _ in range(n))
    for entry, expected in ((a, 2 / 11), (b, 2 / 11), (c, 7 / 11)):
        sigma = (expected * (1 - expected) / n) ** 0.5
        assert abs(firsts[entry] / n - expected) < 5 * sigma
