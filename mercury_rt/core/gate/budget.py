"""How many signature checks strangers may make a node do (docs/protocol.md 7.1, issue 17
item 1).

A verified EID is cached and a session's proof is checked once, so a caller seen before
costs nothing. A fresh EID (of a self-made cluster, or an altered copy of a real one) or a
new session's proof costs Ed25519 verifications (~100 us each), its sender only the bytes.
So every request from outside this cluster that would cost signature checks is charged
for them (`cost`, in checks) to token buckets before any is done: its sending address's,
its source cluster's, and, unless that cluster is one the node trusts or called (its key
ring holds it apart: a stranger whose keys verified is still a stranger), one shared by
every stranger. When a bucket cannot pay, the node checks nothing and demands a hashcash
stamp of `demand_bits` instead (600, or 601 for a smaller stamp, with the bits); a request
paying at least that much is checked without being charged: its sender did ~2^bits hashes
for our few hundred microseconds. Callers whose EID and session are cached are never
charged, so they are served first whatever strangers send. The clock is the caller's.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass
from typing import TypeVar

K = TypeVar("K", bound=Hashable)


@dataclass(frozen=True, slots=True)
class BudgetSettings:
    """Rates in signature checks per second; bursts in checks (a bucket starts full)."""

    rate: float = 1000.0
    """All strangers (clusters neither trusted by the policy nor called) together."""
    burst: float = 2000.0
    address_rate: float = 50.0
    """One sending address (IP and port), whichever clusters it names."""
    address_burst: float = 100.0
    cluster_rate: float = 50.0
    """One source cluster (by master hash), from whichever addresses."""
    cluster_burst: float = 100.0
    demand_bits: int = 16
    """The stamp asked for instead, when a bucket is empty (~65,000 SHA-1s to mint)."""
    tracked: int = 4096
    """Addresses and clusters with a bucket of their own; the least recently charged go
    first (one that comes back starts full: the shared bucket still bounds strangers),
    and a bucket that refilled is dropped when a new one is made (it holds nothing)."""


class TokenBucket:
    """A token bucket over the caller's clock (a clock going back refills nothing); the
    node's key-fetch budget uses it too."""

    __slots__ = ("burst", "last", "rate", "tokens")

    def __init__(self, rate: float, burst: float, now: float) -> None:
        self.rate, self.burst, self.tokens, self.last = rate, burst, burst, now

    def has(self, cost: float, now: float) -> bool:
        """Refill for the time passed; whether `cost` tokens are there now."""
        self.tokens = min(self.burst, self.tokens + max(0.0, now - self.last) * self.rate)
        self.last = max(self.last, now)
        return self.tokens >= cost

    def take(self, cost: float = 1.0) -> None:
        """Spend `cost` tokens (after `has` said they are there)."""
        self.tokens -= cost


class SignatureBudget:
    """Whether a request may cost `cost` signature checks now, and charging it."""

    def __init__(self, settings: BudgetSettings = BudgetSettings(), now: float = 0.0) -> None:
        self.settings = settings
        self._shared = TokenBucket(settings.rate, settings.burst, now)
        self._addresses: OrderedDict[Hashable, TokenBucket] = OrderedDict()
        self._clusters: OrderedDict[bytes, TokenBucket] = OrderedDict()
        self.charged = 0
        """Signature checks paid for from the buckets."""
        self.demanded = 0
        """Requests answered with a stamp demand instead of being checked."""

    def statistics(self) -> dict[str, int]:
        """Counters for metrics, and how many addresses and clusters hold a bucket."""
        return {"charged": self.charged, "demanded": self.demanded,
                "addresses": len(self._addresses), "clusters": len(self._clusters)}

    def allows(self, address: Hashable | None, cluster: bytes, known: bool, cost: int,
               now: float) -> bool:
        """Whether every bucket concerned holds `cost` (charges nothing)."""
        return all(bucket.has(cost, now) for bucket in self._buckets(address, cluster, known,
                                                                      now))

    def charge(self, address: Hashable | None, cluster: bytes, known: bool, cost: int,
               now: float) -> None:
        """Take `cost` from every bucket concerned (after `allows`)."""
        for bucket in self._buckets(address, cluster, known, now):
            bucket.take(cost)
        self.charged += cost

    def _buckets(self, address: Hashable | None, cluster: bytes, known: bool,
                 now: float) -> list[TokenBucket]:
        settings = self.settings
        buckets = [] if known else [self._shared]
        if address is not None:
            buckets.append(_tracked(self._addresses, address, settings.address_rate,
                                    settings.address_burst, settings.tracked, now))
        if cluster:
            buckets.append(_tracked(self._clusters, cluster, settings.cluster_rate,
                                    settings.cluster_burst, settings.tracked, now))
        return buckets


def _tracked(table: OrderedDict[K, TokenBucket], key: K, rate: float, burst: float,
                          bound: int, now: float) -> TokenBucket:
    bucket = table.get(key)
    if bucket is None:
        for _ in range(2):  # a full bucket is one that was never charged: forget it
            oldest = next(iter(table.values()), None)
            if oldest is None or not oldest.has(int(burst), now):
                break
            table.popitem(last=False)
        bucket = table[key] = TokenBucket(rate, burst, now)
        if len(table) > bound:
            table.popitem(last=False)
    else:
        table.move_to_end(key)
    return bucket
