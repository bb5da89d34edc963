"""How many key fetches a node starts, and to whom (docs/protocol.md 6.9, "Key fetch").

A request whose source EID the node cannot verify for lack of keys makes the node ask the
addresses that EID lists. The EID is the caller's to choose, so without bounds a forger
makes the node send queries to third parties of its choice: a few datagrams per forged
request. Besides the per-cluster spacing (NodeCore, FETCH_EVERY), this bounds new fetches
across all clusters (a token bucket, FETCH_RATE per second, bursts of FETCH_BURST), the
queries any one listed address gets (ADDRESS_BURST, then one per 1 / ADDRESS_RATE
seconds), and remembers an address that failed to supply a cluster's keys: it is not asked
for that cluster again for NEGATIVE_FOR seconds. A fetch with no address left to ask is
not started (the request is answered 620 at once; a retry may find budget again).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable

from mercury_rt.core.gate.budget import TokenBucket
from mercury_rt.core.transport import Addr

FETCH_RATE = 5.0
FETCH_BURST = 10.0
ADDRESS_RATE = 0.2
ADDRESS_BURST = 3.0
NEGATIVE_FOR = 300.0
MAX_TRACKED = 4096
"""Addresses and (address, cluster) failures remembered; the oldest go first."""



class FetchBudget:
    """Which of the listed addresses a new key fetch may ask now, charging for them."""

    def __init__(self, now: float = 0.0) -> None:
        self._global = TokenBucket(FETCH_RATE, FETCH_BURST, now)
        self._addresses: OrderedDict[Addr, TokenBucket] = OrderedDict()
        self._failed: OrderedDict[tuple[Addr, bytes], float] = OrderedDict()
        """(address, master hash) -> until when that address is not asked for it."""
        self.refused = 0

    def start(self, master_hash: bytes, listed: Iterable[Addr], now: float,
              count: int) -> tuple[Addr, ...]:
        """Up to `count` of `listed` (in order) to ask for `master_hash`; () if none may be
        asked or the global rate is spent. What is returned has been charged."""
        chosen: list[Addr] = []
        for address in listed:
            if len(chosen) == count:
                break
            if address not in chosen and self._may_ask(address, master_hash, now):
                chosen.append(address)
        if not chosen or not self._global.has(1, now):
            self.refused += 1
            return ()
        self._global.take()
        for address in chosen:
            self._addresses[address].take()
        return tuple(chosen)

    def failed(self, master_hash: bytes, addresses: Iterable[Addr], started: float) -> None:
        """A fetch begun at `started` ended without the keys: do not ask these again."""
        for address in addresses:
            key = (address, master_hash)
            self._failed.pop(key, None)
            self._failed[key] = started + NEGATIVE_FOR
            if len(self._failed) > MAX_TRACKED:
                self._failed.popitem(last=False)

    def _may_ask(self, address: Addr, master_hash: bytes, now: float) -> bool:
        until = self._failed.get((address, master_hash))
        if until is not None and now < until:
            return False
        bucket = self._addresses.get(address)
        if bucket is None:
            bucket = self._addresses[address] = TokenBucket(ADDRESS_RATE, ADDRESS_BURST, now)
            if len(self._addresses) > MAX_TRACKED:
                self._addresses.popitem(last=False)
        else:
            self._addresses.move_to_end(address)
        return bucket.has(1, now)
