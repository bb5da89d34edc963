"""The pure core stays pure transitively: importing it loads no I/O, clock or heavy library.

mercury_rt/core decides and never acts; the shell acts. A core module that imports asyncio,
a socket, the clock or a thread (or a package that does, however indirectly) breaks the
sans-IO contract even if its own code never calls them. The check runs in a fresh
interpreter: the forbidden modules that Python itself loads at start-up (time, via
zipimport) are dropped from sys.modules first, and an import hook records the chain of
modules that was executing when one of them was asked for again. Importing every core
module in one interpreter proves each one clean: what one module loads, all of them load.
"""

from __future__ import annotations

import functools
import json
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

FORBIDDEN = ("asyncio", "socket", "time", "threading", "concurrent.futures", "lmdb", "yaml",
             "pydantic", "structlog")

_PROBE = textwrap.dedent("""
    import importlib, json, pkgutil, sys

    FORBIDDEN = tuple(sys.argv[1].split(","))
    for name in list(sys.modules):
        if any(name == f or name.startswith(f + ".") for f in FORBIDDEN):
            del sys.modules[name]
    found = {}

    class Recorder:
        def find_spec(self, name, path=None, target=None):
            if name in FORBIDDEN and name not in found:
                frame, chain = sys._getframe(1), []
                while frame is not None:
                    module = frame.f_globals.get("__name__", "")
                    if frame.f_code.co_name == "<module>" and module.split(".")[0] in (
                            "mercury_rt", "carbon", "tungsten", "lithium", "policy"):
                        chain.append(module)
                    frame = frame.f_back
                found[name] = list(reversed(chain))
            return None

    sys.meta_path.insert(0, Recorder())
    import mercury_rt.core as core
    modules = ["mercury_rt.core"] + [
        m.name for m in pkgutil.walk_packages(core.__path__, "mercury_rt.core.")]
    for module in modules:
        importlib.import_module(module)
    loaded = [f for f in FORBIDDEN if f in sys.modules]
    print(json.dumps({"modules": modules, "loaded": loaded, "chains": found}))
""")


@functools.cache
def _probe() -> dict[str, object]:
    out = subprocess.run([sys.executable, "-c", _PROBE, ",".join(FORBIDDEN)], cwd=ROOT,
                         capture_output=True, text=True, timeout=120, check=True)
    result: dict[str, object] = json.loads(out.stdout)
    return result


def test_importing_any_core_module_loads_no_io_clock_thread_or_heavy_library() -> None:
    result = _probe()
    chains = result["chains"]
    assert isinstance(chains, dict)
    problems = [f"{name} (imported by {' -> '.join(chains.get(name) or ['?'])})"
                for name in result["loaded"]]  # type: ignore[attr-defined]
    assert not problems, "the pure core loads: " + "; ".join(problems)


def test_the_probe_covers_every_core_module() -> None:
    on_disk = {
        ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        for path in (ROOT / "mercury_rt" / "core").rglob("*.py")}
    modules = _probe()["modules"]
    assert isinstance(modules, list)
    assert set(modules) == on_disk
