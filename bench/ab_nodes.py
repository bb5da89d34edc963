"""Interleaved A/B runs of bench_nodes.py across worktrees: medians and ratios.

Each variant is `label=WORKTREE[ extra bench_nodes.py arguments]`; the worktree's own
.venv runs *this* worktree's bench_nodes.py copied into it beforehand (so a commit older
than the script measures with the same code). Runs go variant by variant, round by round
(base, new, base, new, ...), each under `flock /tmp/mercury-suite.lock` so test suites of
other sessions do not overlap a measurement. Every figure is the median of the rounds;
ratios are against the first variant.

    python bench/ab_nodes.py --runs 3 --seconds 3 base=/work/wt/tbench-base new=/work/wt/tbench
"""

from __future__ import annotations

import argparse
import json
import shlex
import shutil
import statistics
import subprocess
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
LOCK = "/tmp/mercury-suite.lock"


def flatten(value: Any, prefix: str = "") -> dict[str, float]:
    """Numeric leaves of a bench_nodes.py --json result, by dotted path."""
    if isinstance(value, dict):
        out: dict[str, float] = {}
        for key, item in value.items():
            out.update(flatten(item, f"{prefix}{key}."))
        return out
    if isinstance(value, int | float) and not isinstance(value, bool):
        return {prefix[:-1]: float(value)}
    return {}


def run_once(tree: Path, extra: list[str], seconds: float) -> dict[str, float]:
    script = tree / "bench" / "bench_nodes.py"
    if tree.resolve() != HERE.parent:
        shutil.copyfile(HERE / "bench_nodes.py", script)
    cmd = ["flock", LOCK, str(tree / ".venv" / "bin" / "python"), str(script), "--json",
           "--seconds", str(seconds), *extra]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, cwd=tree,
                         timeout=900)
    return flatten(json.loads(out.stdout.strip().splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("variants", nargs="+", help="label=WORKTREE[ extra args]")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--save", help="write every run's figures to this JSON file")
    args = parser.parse_args()
    variants = []
    for spec in args.variants:
        label, rest = spec.split("=", 1)
        tree, *extra = shlex.split(rest)
        variants.append((label, Path(tree), extra))
    runs: dict[str, list[dict[str, float]]] = {label: [] for label, _, _ in variants}
    for round_no in range(args.runs):
        for label, tree, extra in variants:
            runs[label].append(run_once(tree, extra, args.seconds))
            print(f"round {round_no + 1} {label} done", flush=True)
    if args.save:
        Path(args.save).write_text(json.dumps(runs, indent=1))
    report(runs)


def report(runs: dict[str, list[dict[str, float]]]) -> None:
    labels = list(runs)
    keys = sorted({k for rs in runs.values() for r in rs for k in r})
    print(f"{'figure (median of runs)':62s}" + "".join(f"{label:>12s}" for label in labels)
          + "".join(f"{label + '/' + labels[0]:>14s}" for label in labels[1:]))
    for key in keys:
        medians = [statistics.median(r[key] for r in runs[label]) if all(
            key in r for r in runs[label]) else None for label in labels]
        cells = "".join(f"{m:12.1f}" if m is not None else f"{'-':>12s}" for m in medians)
        ratios = "".join(f"{m / medians[0]:14.2f}" if m is not None and medians[0] else
                         f"{'-':>14s}" for m in medians[1:])
        print(f"{key:62s}{cells}{ratios}")


if __name__ == "__main__":
    main()
