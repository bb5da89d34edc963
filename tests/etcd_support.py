"""A 3-member etcd on 127.0.92.x for one test module, stopped by PID, data dirs deleted.

The `etcd` binary comes from the Debian `etcd-server` package, which test.sh installs when
it is missing; the replication tests then run in CI (they fail, not skip, without it
unless MERCURY_NO_APT says the machine may not install packages).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from mercury_rt.etcd_dev import Member, leader_index, start_cluster, stop_cluster_members
from tungsten.etcd_store import EtcdSettings

__all__ = ["EtcdCluster", "etcd_cluster", "leader_index"]


class EtcdCluster:
    """The running members and settings a node or adapter uses to reach them."""

    def __init__(self, members: list[Member]) -> None:
        self.members = members

    def settings(self, prefix: bytes = b"t/", timeout: float = 5.0) -> EtcdSettings:
        """Adapter settings for all members under `prefix`."""
        return EtcdSettings(tuple((m.host, m.client_port) for m in self.members),
                            prefix=prefix, timeout=timeout, attempt_timeout=1.0)


def test_hosts(default: tuple[str, ...] = ("127.0.92.1", "127.0.92.2", "127.0.92.3"),
               ) -> tuple[str, ...]:
    """The members' loopback hosts: MERCURY_TEST_ETCD_HOSTS (comma-separated) if set, so
    runs side by side on one machine need not share addresses; else `default`."""
    given = os.environ.get("MERCURY_TEST_ETCD_HOSTS", "")
    return tuple(h.strip() for h in given.split(",") if h.strip()) or default


def require_etcd() -> None:
    """Skip only where packages may not be installed; elsewhere a missing etcd fails."""
    if shutil.which("etcd") is None:
        if os.environ.get("MERCURY_NO_APT"):
            pytest.skip("etcd not installed and MERCURY_NO_APT set")
        pytest.fail("etcd is not installed: run test.sh, which installs etcd-server")


@pytest.fixture(scope="module")
def etcd_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EtcdCluster]:
    """Three fresh members for the module; stopped and deleted afterwards."""
    require_etcd()
    directory: Path = tmp_path_factory.mktemp("etcd")
    members = start_cluster(directory, test_hosts())
    try:
        yield EtcdCluster(members)
    finally:
        stop_cluster_members(members)
        shutil.rmtree(directory, ignore_errors=True)
