"""How `node drain` and `entity migrate` find the running node of a config: its pid file.

A running node writes `node.pid` in its state directory and holds an exclusive `flock` on
it until it exits; it removes the file and writes `last-exit.json` (its exit status) on the
way out. A pid in a file nobody holds locked is stale (the node was killed): it is never
signalled, since that pid may belong to another process by now. The lock, not the pid,
is the proof of life, so a crash can never make `node drain` signal a stranger.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import click

from mercury_rt.config import keyfiles

PID_FILE = "node.pid"
EXIT_FILE = "last-exit.json"
MAX_EXIT_RECORD = 4096
"""Bytes of last-exit.json read at most (it is a few dozen)."""


@dataclass(frozen=True, slots=True)
class Running:
    """A node holds the pid file's lock."""

    pid: int


@dataclass(frozen=True, slots=True)
class NotRunning:
    """No node of this state directory runs; `reason` says what was found."""

    reason: str


class PidFile:
    """The running node's side: write and lock at start, remove at exit."""

    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / PID_FILE
        self._handle: IO[str] | None = None

    def acquire(self) -> None:
        """Write our pid under an exclusive lock; refuses if another node holds it."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(self.path, "a+", encoding="ascii")  # noqa: SIM115 (held until exit)
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            raise click.ClickException(f"{self.path} is locked: another node runs on this "
                                       "state directory") from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        self._handle = handle
        with contextlib.suppress(FileNotFoundError):
            (self.path.parent / EXIT_FILE).unlink()

    def release(self, status: int | None, drained: bool) -> None:
        """Record how the node ended (its exit status, None if it ended by an error), then
        remove the pid file and drop the lock."""
        record = {"pid": os.getpid(), "status": status, "drained": drained,
                  "at": round(time.time(), 3)}
        exit_file = self.path.parent / EXIT_FILE
        keyfiles.write_public(exit_file, (json.dumps(record) + "\n").encode("ascii"))
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        if self._handle is not None:
            self._handle.close()
            self._handle = None


def find_running(state_dir: Path) -> Running | NotRunning:
    """The node running on `state_dir`, judged by the pid file's lock."""
    path = state_dir / PID_FILE
    try:
        handle = open(path, encoding="ascii")  # noqa: SIM115
    except FileNotFoundError:
        return NotRunning(f"no {path}: the node is not running")
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError:
            text = handle.read().strip()
            if not text.isdigit():
                return NotRunning(f"{path} is locked but holds no pid ({text[:20]!r})")
            return Running(int(text))
        return NotRunning(f"{path} is stale (no process holds it; the node did not exit "
                          "cleanly)")


def last_exit(state_dir: Path) -> dict[str, object] | None:
    """What the last node on `state_dir` wrote when it exited, if anything readable."""
    try:
        value = json.loads(keyfiles.read_regular(state_dir / EXIT_FILE, MAX_EXIT_RECORD))
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None
