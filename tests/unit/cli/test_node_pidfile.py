"""The pid file `node drain` finds a node by: held locked while the node runs, stale once
no process holds it (a killed node), and an exit record left behind."""

from __future__ import annotations

import os
from pathlib import Path

import click
import pytest

from mercury_rt.cli.node_pidfile import (
    NotRunning,
    PidFile,
    Running,
    find_running,
    last_exit,
)


def test_a_running_node_is_found_and_its_exit_recorded(tmp_path: Path) -> None:
    assert isinstance(find_running(tmp_path), NotRunning)
    pid_file = PidFile(tmp_path)
    pid_file.acquire()
    assert find_running(tmp_path) == Running(os.getpid())
    with pytest.raises(click.ClickException, match="another node"):
        PidFile(tmp_path).acquire()
    pid_file.release(0, drained=True)
    found = find_running(tmp_path)
    assert isinstance(found, NotRunning) and "not running" in found.reason
    record = last_exit(tmp_path)
    assert record is not None and record["pid"] == os.getpid() and record["drained"] is True


def test_a_pid_file_nobody_holds_is_stale_and_never_signalled(tmp_path: Path) -> None:
    (tmp_path / "node.pid").write_text(f"{os.getpid()}\n")
    found = find_running(tmp_path)
    assert isinstance(found, NotRunning) and "stale" in found.reason
