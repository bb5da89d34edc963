"""Benchmark: the node's durable stores and config loading.

Run: /work/main/.venv/bin/python bench/bench_nodecfg.py [--n 20000]
Measures, in a temporary LMDB environment (default options: sync off, group commit):
  - spent stamps: add_if_absent/s (one write transaction each), memory store for comparison,
    and with expiries due so every add also purges one old entry;
  - held messages: put/s and items() of N records;
  - load_node_config of the three-node example (ms per load, cluster dir included).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from click.testing import CliRunner

from mercury_rt.cli.main import cli
from mercury_rt.config import DurableSpentStore, held_store, load_node_config
from mercury_rt.core.gate import MemorySpentStore
from tungsten.store import LmdbStore

ROOT = Path(__file__).resolve().parent.parent


def rate(n: int, body: Callable[[int], object]) -> float:
    start = time.perf_counter()
    for i in range(n):
        body(i)
    return n / (time.perf_counter() - start)


def show(label: str, per_second: float) -> None:
    print(f"{label:<27}{per_second:>10,.0f} /s")


def bench_spent(tmp: Path, n: int) -> None:
    store, store2 = LmdbStore(tmp / "spent"), LmdbStore(tmp / "spent2")
    durable = DurableSpentStore(store, limit=10 * n)
    digests = [os.urandom(32) for _ in range(2 * n)]
    memory = MemorySpentStore(limit=10 * n)
    never = 10**9
    show("spent add (memory):", rate(n, lambda i: memory.add_if_absent(digests[i], never, 0)))
    show("spent add (LMDB):", rate(n, lambda i: durable.add_if_absent(digests[i], never, 0)))
    show("spent replay refused:", rate(n, lambda i: durable.add_if_absent(digests[i], never, 1)))
    expiring = DurableSpentStore(store2, limit=10 * n)
    for i in range(n):
        expiring.add_if_absent(digests[i], i, 0)
    show("spent add + purge one:",
         rate(n, lambda i: expiring.add_if_absent(digests[n + i], never, i)))
    store.close()
    store2.close()


def bench_held(tmp: Path, n: int) -> None:
    store = LmdbStore(tmp / "held")
    held = held_store(store)
    record = b"r" * 200
    show("held put (200 B):", rate(n, lambda i: held.put(i.to_bytes(16, "big"), record)))
    start = time.perf_counter()
    count = sum(1 for _ in held.items())
    print(f"held items() of {count:,}:  {(time.perf_counter() - start) * 1000:>10.1f} ms")
    store.close()


def bench_config(tmp: Path) -> None:
    conf = tmp / "conf"
    shutil.copytree(ROOT / "conf", conf, ignore=shutil.ignore_patterns("cluster", "state"))
    result = CliRunner().invoke(cli, ["cluster", "new", "--dir",
                                      str(conf / "example-cluster" / "cluster"), "--no-addresses"])
    assert result.exit_code == 0, result.output
    path = conf / "example-cluster" / "node-a.yaml"
    loads = 50
    start = time.perf_counter()
    for _ in range(loads):
        load_node_config(path)
    print(f"load_node_config (example, with policy): "
          f"{(time.perf_counter() - start) * 1000 / loads:.2f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        bench_spent(Path(tmp), args.n)
        bench_held(Path(tmp), args.n)
        bench_config(Path(tmp))


if __name__ == "__main__":
    main()
