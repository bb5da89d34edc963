"""The order in which a client tries a cluster's published server addresses (RFC 2782).

The design publishes a cluster's inter-cluster server nodes "organised by priority and
weighting in the manner of SRV records", and lets a client "adjust the priorities and
weightings a bit if it realises a particular node is particularly close in network terms,
perhaps by having a high number of prefix bits in common". This module is that ordering,
pure and driven by an injected `random.Random`, so a seeded test replays exactly.

RFC 2782 selection, per priority level (lowest first): put the weight-0 entries first (in
a random order, so they share the rare picks fairly), draw r uniformly from 0..sum of
weights inclusive, pick the first entry whose running weight sum is >= r, remove it,
repeat. Weight-0 entries are thus picked only when r == 0, or when only weight-0 entries
remain; an all-zero level comes out in uniformly random order.

Proximity rule (optional, `ProximityRule`): an address is *near* if it shares at least
`ipv4_min_bits` (IPv4) or `ipv6_min_bits` (IPv6) leading bits with any of the local
addresses of the same family. A near entry's effective weight becomes
`max(weight, 1) * weight_factor`; weights of other entries are unchanged. Priorities are
never changed: an operator's priority levels mean primary/backup, and a near backup must
not be preferred over a far primary. Addresses of different families share 0 bits.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

from mercury_rt.core.identity import IPAddress, ServerAddress


@dataclass(frozen=True, slots=True)
class ProximityRule:
    """When a published address counts as near the local node, and how much to favour it."""

    local_addresses: tuple[IPAddress, ...]
    ipv4_min_bits: int = 24
    ipv6_min_bits: int = 48
    weight_factor: int = 4

    def __post_init__(self) -> None:
        if not 0 <= self.ipv4_min_bits <= 32 or not 0 <= self.ipv6_min_bits <= 128:
            raise ValueError("prefix bits must be 0..32 (IPv4) and 0..128 (IPv6)")
        if self.weight_factor < 1:
            raise ValueError("weight_factor must be at least 1")

    def is_near(self, host: IPAddress) -> bool:
        """True if `host` shares enough leading bits with a local address of its family."""
        needed = self.ipv4_min_bits if host.version == 4 else self.ipv6_min_bits
        return any(common_prefix_bits(host, local) >= needed for local in self.local_addresses)

    def effective_weight(self, address: ServerAddress) -> int:
        """The weight used for selection: boosted for near addresses, unchanged otherwise."""
        if self.is_near(address.host):
            return max(address.weight, 1) * self.weight_factor
        return address.weight


def common_prefix_bits(a: IPAddress, b: IPAddress) -> int:
    """Number of leading bits two addresses share; 0 if they are of different families."""
    if a.version != b.version:
        return 0
    width = a.max_prefixlen
    diff = int(a) ^ int(b)
    return width - diff.bit_length()


def srv_order(
    addresses: Sequence[ServerAddress],
    rng: random.Random,
    proximity: ProximityRule | None = None,
) -> list[ServerAddress]:
    """Every address exactly once: priority ascending, weighted-random within a priority."""
    return SrvTable.of(addresses, proximity).order(rng)


@dataclass(frozen=True, slots=True)
class SrvLevel:
    """One priority level: its weight-0 entries, then the others with their effective
    weights, in list order (every entry as `(weight, address)`)."""

    zeros: tuple[tuple[int, ServerAddress], ...]
    weighted: tuple[tuple[int, ServerAddress], ...]
    total: int


@dataclass(frozen=True, slots=True)
class SrvTable:
    """A list's priority levels with their effective weights, worked out once.

    Why: grouping, sorting and the proximity test cost more than the draws, and a caller
    orders the same cluster ID's list on every call. `order` is the only place the draws
    are made, so a kept table gives exactly what a fresh one would for the same `rng`."""

    levels: tuple[SrvLevel, ...]

    @staticmethod
    def of(addresses: Sequence[ServerAddress],
           proximity: ProximityRule | None = None) -> SrvTable:
        """The table of `addresses`; raises ValueError for a negative weight."""
        grouped: dict[int, list[tuple[int, ServerAddress]]] = {}
        for address in addresses:
            grouped.setdefault(address.priority, []).append((_weight(address, proximity),
                                                             address))
        return SrvTable(tuple(_level(grouped[p]) for p in sorted(grouped)))

    def order(self, rng: random.Random) -> list[ServerAddress]:
        """RFC 2782's selection: per level, the weight-0 entries shuffled in front, then
        a weighted draw repeated until the level is exhausted."""
        ordered: list[ServerAddress] = []
        for level in self.levels:
            remaining = [*level.zeros]
            if len(remaining) > 1:  # shuffling fewer draws nothing
                rng.shuffle(remaining)
            remaining += level.weighted
            total = level.total
            while remaining:
                target = rng.randint(0, total)
                running = 0
                for index, (weight, address) in enumerate(remaining):
                    running += weight
                    if running >= target:
                        ordered.append(address)
                        del remaining[index]
                        total -= weight
                        break
        return ordered


def _level(entries: list[tuple[int, ServerAddress]]) -> SrvLevel:
    weighted = tuple(e for e in entries if e[0] != 0)
    return SrvLevel(tuple(e for e in entries if e[0] == 0), weighted,
                    sum(w for w, _ in weighted))


def _weight(address: ServerAddress, proximity: ProximityRule | None) -> int:
    weight = address.weight
    if weight < 0:
        raise ValueError(f"negative SRV weight {weight}")
    return proximity.effective_weight(address) if proximity else weight
