"""The operator's tools and etcd: with a `replication:` section in a --node config, the
live cluster-ID version is the one in etcd, and a version the tools issue is published
there by compare-and-swap (mercury_rt.aio.etcd_versions).

etcd's value is only a candidate, verified under the cluster's keys like a node's record
(core/identity/live.py): a forged one is named and ignored. A tool reads it once, numbers
its new version above every verified version seen, and CASes on the key version it read;
if another version was published in between, the tool writes nothing and fails with
CLUSTER_ID_PUBLISHED_MEANWHILE (466): run it again on the new live version.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from carbon.error_codes import ErrorCode, MercuryError
from mercury_rt.aio.etcd_versions import CLUSTER_ID_KEY, EtcdVersionStore, Published
from mercury_rt.config.etcd_tls import replication_settings
from mercury_rt.config.load import load_node_config
from mercury_rt.core.identity import ClusterId
from mercury_rt.core.identity.live import Candidate, Ignored
from tungsten.etcd_store import EtcdSettings, EtcdState

_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class EtcdLive:
    """What etcd held when the tool read it."""

    settings: EtcdSettings
    published: Published | None
    """The value and key version a CAS names (None: no version published there yet)."""

    @property
    def source(self) -> str:
        """How the operator sees where the value came from."""
        where = ",".join(f"{h}:{p}" for h, p in self.settings.endpoints)
        return f"etcd {where} key {(self.settings.prefix + CLUSTER_ID_KEY).decode()}"

    def candidate(self) -> tuple[tuple[Candidate, ...], tuple[Ignored, ...]]:
        """etcd's value as a candidate to verify, or why it is not one."""
        if self.published is None:
            return (), ()
        try:
            return (Candidate(self.source, ClusterId.decode(self.published.signed)),), ()
        except MercuryError as exc:
            return (), (Ignored(self.source, exc.code, exc.message),)


def etcd_settings(nodes: tuple[Path, ...]) -> EtcdSettings | None:
    """The first --node config's `replication:` settings, if any has one."""
    for node in nodes:
        replication = load_node_config(node).replication
        if replication is not None:
            return replication_settings(replication)
    return None


def _with_store(settings: EtcdSettings,
                work: Callable[[EtcdVersionStore], Awaitable[_T]]) -> _T:
    async def run() -> _T:
        etcd = EtcdState(settings)
        try:
            return await work(EtcdVersionStore(etcd))
        finally:
            await etcd.close()

    return asyncio.run(run())


def read_live(settings: EtcdSettings) -> EtcdLive:
    """etcd's cluster-ID value now (REPLICATION_UNAVAILABLE if etcd does not answer)."""
    return EtcdLive(settings, _with_store(settings, lambda store: store.current()))


def publish(live: EtcdLive, new: ClusterId) -> None:
    """Put `new` if etcd still holds what `live` read; else 466 and nothing written."""
    if _with_store(live.settings, lambda store: store.publish(new.encode(), live.published)):
        return
    now = read_live(live.settings)
    shown = "nothing" if now.published is None else _version(now.published)
    raise MercuryError(
        f"another cluster-ID version was published on etcd ({shown}) after this tool read "
        f"{'nothing' if live.published is None else _version(live.published)}; version "
        f"{new.version} was not published and nothing was written: run the command again",
        ErrorCode.CLUSTER_ID_PUBLISHED_MEANWHILE)


def _version(published: Published) -> str:
    try:
        return f"version {ClusterId.decode(published.signed).version}"
    except MercuryError:
        return "a value that is not a cluster ID"
