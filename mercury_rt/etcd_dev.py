"""A local 3-member etcd for development and tests: start, stop by PID, delete data dirs.

Why here and not in tests only: `mercury-rt etcd dev-cluster start|stop DIR` gives a
developer the same cluster the tests use. Members listen on 127.0.x.y (never
127.0.0.1:2379, which a packaged etcd service may own); the PIDs and client endpoints are
written to DIR/members.json so `stop` ends exactly the processes `start` began.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from mercury_rt.config import keyfiles

STATE_FILE = "members.json"
MAX_STATE_FILE = 64 * 1024
"""Bytes of members.json read at most (three members' records are a few hundred)."""
START_TIMEOUT = 20.0


@dataclass
class Member:
    """One etcd member process."""

    name: str
    host: str
    client_port: int
    peer_port: int
    data_dir: Path
    pid: int = 0
    token: str = ""
    """The cluster's initial token (a restart with the same data dir rejoins with it)."""

    @property
    def client_url(self) -> str:
        """Where clients connect."""
        return f"http://{self.host}:{self.client_port}"


def _free_port(host: str) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def plan_members(directory: Path, hosts: tuple[str, ...]) -> list[Member]:
    """Members on `hosts`, each with free client and peer ports and a data dir."""
    return [Member(f"m{i + 1}", host, _free_port(host), _free_port(host),
                   directory / f"m{i + 1}") for i, host in enumerate(hosts)]


def member_command(member: Member, members: list[Member], token: str) -> list[str]:
    """The etcd command line for one member of `members`."""
    cluster = ",".join(f"{m.name}=http://{m.host}:{m.peer_port}" for m in members)
    peer = f"http://{member.host}:{member.peer_port}"
    return ["etcd", "--name", member.name, "--data-dir", str(member.data_dir),
            "--listen-client-urls", member.client_url,
            "--advertise-client-urls", member.client_url,
            "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
            "--initial-cluster", cluster, "--initial-cluster-state", "new",
            "--initial-cluster-token", token, "--logger", "zap", "--log-level", "error",
            "--heartbeat-interval", "50", "--election-timeout", "500"]


def start_member(member: Member, members: list[Member], log: Path) -> None:
    """Start (or restart, same data dir) one member; records its PID."""
    with open(log, "ab") as out:
        proc = subprocess.Popen(member_command(member, members, member.token), stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
    member.pid = proc.pid


def wait_ready(members: list[Member], timeout: float = START_TIMEOUT) -> None:
    """Until every member answers `etcdctl endpoint health` (bounded)."""
    deadline = time.monotonic() + timeout
    endpoints = ",".join(m.client_url for m in members)
    while True:
        done = subprocess.run(["etcdctl", "--endpoints", endpoints, "endpoint", "health",
                               "--command-timeout=1s"], capture_output=True,
                              env={**os.environ, "ETCDCTL_API": "3"}, check=False)
        if done.returncode == 0:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"etcd members not healthy after {timeout} s: "
                               f"{done.stdout.decode()}{done.stderr.decode()}")
        time.sleep(0.1)


def stop_member(member: Member, sig: int = signal.SIGTERM, timeout: float = 10.0) -> None:
    """Signal one member by PID and reap it (SIGKILL if it outlives `timeout`)."""
    if member.pid <= 0:
        return
    try:
        os.kill(member.pid, sig)
    except ProcessLookupError:
        member.pid = 0
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            done, _ = os.waitpid(member.pid, os.WNOHANG)
        except ChildProcessError:  # not our child (started by another process): poll it
            done = member.pid if not _alive(member.pid) else 0
        if done:
            member.pid = 0
            return
        time.sleep(0.02)
    os.kill(member.pid, signal.SIGKILL)
    stop_member(member, signal.SIGKILL, timeout)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def start_cluster(directory: Path, hosts: tuple[str, ...] = ("127.0.91.1", "127.0.91.2",
                                                           "127.0.91.3")) -> list[Member]:
    """Start a fresh cluster in `directory`, wait until healthy, record it; returns members."""
    directory.mkdir(parents=True, exist_ok=True)
    members = plan_members(directory, hosts)
    token = f"mercury-dev-{os.getpid()}-{time.time_ns()}"
    for member in members:
        member.token = token
        start_member(member, members, directory / f"{member.name}.log")
    try:
        wait_ready(members)
    except TimeoutError:
        stop_cluster_members(members)
        raise
    keyfiles.write_public(directory / STATE_FILE, json.dumps(
        [{"name": m.name, "host": m.host, "client_port": m.client_port,
          "peer_port": m.peer_port, "pid": m.pid} for m in members]).encode())
    return members


def stop_cluster_members(members: list[Member]) -> None:
    """Stop every member by PID and delete its data dir."""
    for member in members:
        stop_member(member)
        shutil.rmtree(member.data_dir, ignore_errors=True)


def stop_cluster(directory: Path) -> int:
    """Stop the cluster `start_cluster` recorded in `directory`; how many were stopped."""
    state = directory / STATE_FILE
    records = json.loads(keyfiles.read_regular(state, MAX_STATE_FILE))
    members = [Member(r["name"], r["host"], r["client_port"], r["peer_port"],
                      directory / r["name"], r["pid"]) for r in records]
    stop_cluster_members(members)
    state.unlink()
    return len(members)


def leader_index(members: list[Member]) -> int | None:
    """Which of the live `members` is the raft leader now (None if none answers as it)."""
    live = [(i, m) for i, m in enumerate(members) if m.pid > 0]
    done = subprocess.run(["etcdctl", "--endpoints", ",".join(m.client_url for _, m in live),
                           "endpoint", "status", "-w", "json", "--command-timeout=1s"],
                          capture_output=True, env={**os.environ, "ETCDCTL_API": "3"},
                          check=False)
    try:
        statuses = json.loads(done.stdout or b"[]")
    except json.JSONDecodeError:
        return None
    for status in statuses:
        body = status.get("Status", {})
        if body.get("header", {}).get("member_id") == body.get("leader"):
            for i, m in live:
                if status.get("Endpoint") == m.client_url:
                    return i
    return None
