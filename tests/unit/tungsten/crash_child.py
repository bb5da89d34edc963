"""Fork server for the kill -9 test: forks writers on request so each costs ~1 ms, not a
Python start-up. Protocol on stdin/stdout: "<dir> <seed>" -> "pid N", "ready", "c" per
commit, then "reaped" after the parent has killed the writer."""

from __future__ import annotations

import os
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

from carbon.symbols import Symbol
from tungsten.store import LmdbOptions, LmdbStore

SECTION = Symbol("/test/crash")
KEYS = 40


def _writer(path: str, seed: int) -> None:
    rng = random.Random(seed)
    store = LmdbStore(path, LmdbOptions(map_size=1 << 20, max_map_size=1 << 26))
    os.write(1, b"ready\n")
    with store.reading() as view:
        found = view.get(b"e", SECTION, ("n",))
    n = 0 if found is None else int(found[0])  # type: ignore[arg-type]
    while True:
        n += 1
        with store.writing() as txn:
            for i in range(KEYS):
                txn.put(b"e", SECTION, (i,), (n, b"x" * rng.randrange(0, 2000)))
            txn.put(b"e", SECTION, ("n",), (n,))
        os.write(1, b"c\n")


def main() -> None:
    for line in sys.stdin:
        path, seed = line.split()
        pid = os.fork()
        if pid == 0:
            try:
                _writer(path, int(seed))
            finally:
                os._exit(1)
        os.write(1, f"pid {pid}\n".encode())
        os.waitpid(pid, 0)
        os.write(1, b"reaped\n")


if __name__ == "__main__":
    main()
