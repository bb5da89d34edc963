"""kill -9 in the middle of write transactions never leaves state half-written."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
from pathlib import Path

from carbon.symbols import Symbol
from tungsten.store import LmdbStore

SECTION = Symbol("/test/crash")
KEYS = 40
ROUNDS = 120
CHILD = Path(__file__).with_name("crash_child.py")


def _check_consistent(path: Path, acknowledged: int) -> int:
    """Every record carries the same transaction number, and no acknowledged commit is lost."""
    store = LmdbStore(path)
    try:
        with store.reading() as view:
            found = view.get(b"e", SECTION, ("n",))
            if found is None:
                assert acknowledged == 0
                assert view.scan(b"e", SECTION) == []
                return 0
            n = found[0]
            assert isinstance(n, int)
            rows = view.scan(b"e", SECTION)
            assert len(rows) == KEYS + 1
            assert all(value[0] == n for _, value in rows)
            assert n >= acknowledged
            return n
    finally:
        store.close()


def _read(proc: subprocess.Popen[bytes]) -> str:
    assert proc.stdout is not None
    line = proc.stdout.readline().decode().strip()
    assert line, "fork server died"
    return line


def test_writer_killed_mid_transaction_leaves_consistent_state(tmp_path: Path) -> None:
    """120 writers SIGKILLed at random points: each reopen sees whole transactions only."""
    rng = random.Random(4)
    proc = subprocess.Popen([sys.executable, str(CHILD)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE)
    assert proc.stdin is not None
    acknowledged = 0
    mid_transaction_kills = 0
    try:
        for round_no in range(ROUNDS):
            proc.stdin.write(f"{tmp_path} {round_no}\n".encode())
            proc.stdin.flush()
            pid, ready = None, False
            while pid is None or not ready:
                line = _read(proc)
                if line.startswith("pid "):
                    pid = int(line[4:])
                elif line == "ready":
                    ready = True
            commits = rng.randrange(0, 6)
            for _ in range(commits):
                assert _read(proc) == "c"
            os.kill(pid, signal.SIGKILL)
            while (line := _read(proc)) != "reaped":
                assert line == "c"
                commits += 1
            before = acknowledged
            acknowledged = _check_consistent(tmp_path, before + commits)
            mid_transaction_kills += acknowledged == before + commits
    finally:
        proc.stdin.close()
        proc.wait(timeout=10)
    assert acknowledged > 0
    assert mid_transaction_kills > ROUNDS // 2
