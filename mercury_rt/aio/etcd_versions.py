"""Cluster-ID versions published with compare-and-swap on etcd (issue 12 item 3, the
etcd part): a protocol the membership publisher can plug into.

Why CAS: two nodes that both see a node die would otherwise each sign "version v+1" with
different contents. Here a node reads the current signed cluster ID and its etcd key
version, builds v+1 from it, and publishes only if nobody published in between
(`publish` returns False: re-read and rebuild). Every node learns the live version by
reading (or watching) the same key. The value is the signed cluster-ID bytes as the
cluster directory stores them; this module does not interpret them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from tungsten.etcd_store import EtcdState

CLUSTER_ID_KEY = b"cluster-id"


@dataclass(frozen=True, slots=True)
class Published:
    """The live signed cluster ID and the etcd version a CAS must name to replace it."""

    signed: bytes
    revision: int


class VersionStore(Protocol):
    """Where published cluster-ID versions live (etcd here; the "versions" helper's file
    store without etcd can offer the same two calls)."""

    async def current(self) -> Published | None:
        """The live version, or None if none was published yet."""
        ...

    async def publish(self, signed: bytes, after: Published | None) -> bool:
        """Publish `signed` if `after` is still the live one (None: nothing published);
        False if another node published first."""
        ...


class EtcdVersionStore:
    """VersionStore on the cluster's etcd (the `replication:` section's prefix)."""

    def __init__(self, etcd: EtcdState) -> None:
        self._etcd = etcd

    async def current(self) -> Published | None:
        """The live signed cluster ID."""
        found = await self._etcd.get(CLUSTER_ID_KEY)
        return None if found is None else Published(found[0], found[1])

    async def publish(self, signed: bytes, after: Published | None) -> bool:
        """Compare-and-swap on the key's etcd version."""
        return await self._etcd.put_if_version(CLUSTER_ID_KEY, signed,
                                               0 if after is None else after.revision)
