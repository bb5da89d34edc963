"""Importing any module of the core, in a fresh interpreter, loads no I/O, clock, thread,
storage, YAML, validation or logging library: the core is sans-IO all the way down.

Modules are discovered with pkgutil, so a new core module is covered without editing this
file. Each is imported in its own interpreter (all of them run at once), after the
forbidden modules already loaded at start-up are dropped from `sys.modules` (`time` is, by
zipimport), so `import time` anywhere on the way is seen. The child records which module
was being loaded when each module was first loaded, and a failure shows the chain.
"""

from __future__ import annotations

import json
import pkgutil
import subprocess
import sys
from functools import cache

import pytest

import mercury_rt.core
from tests.import_graph_support import ROOT

FORBIDDEN = ("asyncio", "socket", "time", "threading", "concurrent.futures", "lmdb", "yaml",
             "pydantic", "structlog")

_CHILD = r"""
import importlib
import importlib._bootstrap as bootstrap
import json
import sys

forbidden = json.loads(sys.argv[2])
for name in forbidden:
    sys.modules.pop(name, None)
loading, loaded_by = [], {}
load = bootstrap._load_unlocked

def traced(spec):
    loaded_by.setdefault(spec.name, loading[-1] if loading else None)
    loading.append(spec.name)
    try:
        return load(spec)
    finally:
        loading.pop()

bootstrap._load_unlocked = traced
importlib.import_module(sys.argv[1])
found = {}
for name in forbidden:
    if name in sys.modules:
        chain = [name]
        while loaded_by.get(chain[-1]):
            chain.append(loaded_by[chain[-1]])
        found[name] = chain[::-1]
print(json.dumps(found))
"""


def core_modules() -> list[str]:
    """mercury_rt.core and every module under it."""
    found = pkgutil.walk_packages(mercury_rt.core.__path__, "mercury_rt.core.")
    return ["mercury_rt.core", *sorted(info.name for info in found)]


@cache
def _loaded() -> dict[str, dict[str, list[str]] | str]:
    """For each core module, the forbidden modules its import loaded (with their import
    chains), or the child's error output if the import failed."""
    children = {module: subprocess.Popen(
        [sys.executable, "-c", _CHILD, module, json.dumps(FORBIDDEN)], cwd=ROOT,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for module in core_modules()}
    results: dict[str, dict[str, list[str]] | str] = {}
    for module, child in children.items():
        out, err = child.communicate(timeout=120)
        results[module] = json.loads(out) if child.returncode == 0 else err
    return results


@pytest.mark.parametrize("module", core_modules())
def test_core_module_imports_nothing_impure(module: str) -> None:
    result = _loaded()[module]
    assert not isinstance(result, str), f"importing {module} failed:\n{result}"
    assert not result, "\n".join(f"importing {module} loads {name}: {' -> '.join(chain)}"
                                 for name, chain in result.items())
