"""Cluster-ID versions on etcd (issue 12 item 3, the etcd part): the live signed cluster ID
under one key, replaced only by compare-and-swap, watched by every node.

Why CAS: two nodes that both see a node die would otherwise each sign "version v+1" with
different contents. A node reads the current signed cluster ID and its etcd key version,
builds v+1 from it, and publishes only if nobody published in between (`publish` returns
False: re-read and decide, core/node/publication.py). Every node learns the live version
by watching the same key. The value is the signed cluster-ID bytes; this module does not
interpret them (the node verifies them before adopting anything).
"""

from __future__ import annotations

from dataclasses import dataclass

from tungsten.etcd_store import EtcdState, EtcdWatch, read_range

CLUSTER_ID_KEY = b"cluster-id"


@dataclass(frozen=True, slots=True)
class Published:
    """The live signed cluster ID and the etcd version a CAS must name to replace it."""

    signed: bytes
    revision: int
    """The key's etcd version (how many times it was put since it was created)."""


class EtcdVersionStore:
    """Published cluster-ID versions on the cluster's etcd (the `replication:` section's
    prefix; without etcd, config/published.py records them in a file)."""

    def __init__(self, etcd: EtcdState) -> None:
        self._etcd = etcd

    async def read(self) -> tuple[Published | None, int]:
        """The live signed cluster ID and the etcd revision of the read (watch after it)."""
        found = await read_range(self._etcd, CLUSTER_ID_KEY)
        entry = found.entries[0] if found.entries else None
        return (None if entry is None else Published(entry.value, entry.version),
                found.revision)

    async def current(self) -> Published | None:
        """The live signed cluster ID."""
        return (await self.read())[0]

    async def publish(self, signed: bytes, after: Published | None) -> bool:
        """Compare-and-swap on the key's etcd version."""
        return await self._etcd.put_if_version(CLUSTER_ID_KEY, signed,
                                               0 if after is None else after.revision)

    def watch(self, start_revision: int) -> EtcdWatch:
        """Every change of the key from `start_revision` on."""
        return EtcdWatch(self._etcd, CLUSTER_ID_KEY, start_revision)


def after_put(after: Published | None, signed: bytes) -> Published:
    """What etcd holds once `signed` replaced `after` by CAS."""
    return Published(signed, (0 if after is None else after.revision) + 1)
