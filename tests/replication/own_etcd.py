"""A module's own 3-member etcd on a loopback range the caller names, for tests that kill
members (the shared fixture's cluster is left alone). Stopped by PID, data deleted."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

from mercury_rt.etcd_dev import (
    Member,
    start_cluster,
    start_member,
    stop_cluster_members,
    wait_ready,
)
from tests.etcd_support import EtcdCluster, require_etcd


def own_cluster(directory: Path, hosts: tuple[str, str, str]) -> Iterator[EtcdCluster]:
    """Body of a module fixture: three fresh members on `hosts`."""
    require_etcd()
    members = start_cluster(directory, hosts)
    try:
        yield EtcdCluster(members)
    finally:
        stop_cluster_members(members)
        shutil.rmtree(directory, ignore_errors=True)


def all_running(cluster: EtcdCluster, logs: Path) -> EtcdCluster:
    """Restart any member a test before killed (it rejoins from its data dir)."""
    for member in cluster.members:
        if member.pid <= 0:
            start_member(member, cluster.members, logs / f"{member.name}.log")
    wait_ready(cluster.members)
    return cluster


def member_at(cluster: EtcdCluster, endpoint: tuple[str, int] | None) -> Member:
    """The member serving `endpoint`."""
    assert endpoint is not None
    return next(m for m in cluster.members if (m.host, m.client_port) == endpoint)


def etcdctl(cluster: EtcdCluster, *args: str) -> str:
    """Run etcdctl against the live members; its output."""
    endpoints = ",".join(m.client_url for m in cluster.members if m.pid > 0)
    done = subprocess.run(["etcdctl", "--endpoints", endpoints, *args], capture_output=True,
                          env={**os.environ, "ETCDCTL_API": "3"}, check=True, timeout=20)
    return done.stdout.decode()
