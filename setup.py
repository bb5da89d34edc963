"""Build hook beside pyproject.toml: the optional C accelerators, and nothing else.

Every accelerator in mercury_rt/core/transport/accelerator.py's table is compiled when a
C compiler works, recording the hash of its sources in the extension (the import-time
check against a stale build). Without a compiler, or if a compile fails, the install
still succeeds and mercury-rt runs its pure-Python code, which gives the same results;
`MERCURY_PURE=1` at install builds nothing and removes an earlier in-place build.
"""

from __future__ import annotations

import os
import sys
from importlib.util import module_from_spec, spec_from_file_location
from pathlib import Path
from types import ModuleType

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

ROOT = Path(__file__).resolve().parent


def _accelerator() -> ModuleType:
    """accelerator.py, read by path: nothing of the project is installed yet."""
    spec = spec_from_file_location("_mercury_accelerator",
                                   ROOT / "mercury_rt" / "core" / "transport" / "accelerator.py")
    assert spec is not None and spec.loader is not None
    module = module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _note(text: str) -> None:
    print(f"mercury-rt build: note: {text}", file=sys.stderr)


def _extensions(accelerator: ModuleType) -> list[Extension]:
    """One Extension per accelerator, its sources' digest compiled in as SOURCE_SHA256."""
    extensions = []
    for name, sources in accelerator.ACCELERATED.items():
        paths = [accelerator.HERE / source for source in sources]
        digest = accelerator.source_digest(paths)
        extensions.append(Extension(
            name, [paths[0].relative_to(ROOT).as_posix()],
            define_macros=[("MERCURY_SOURCE_SHA256", f'"{digest}"')],
            extra_compile_args=["-O2"] if os.name == "posix" else []))
    return extensions


def _remove_inplace_builds(accelerator: ModuleType) -> None:
    for name in accelerator.ACCELERATED:
        for built in accelerator.HERE.glob(name.rpartition(".")[2] + ".*.so"):
            built.unlink()
            _note(f"{accelerator.PURE_ENV} is set: removed the earlier build {built.name}")


class OptionalBuildExt(build_ext):
    """A C accelerator that cannot be built leaves the pure-Python code in use: a note,
    never a failed install (the code is the same without it, only slower)."""

    def run(self) -> None:
        try:
            super().run()
        except Exception as exc:  # no compiler, or one that fails: setuptools' errors vary
            _note(f"C accelerators not built ({type(exc).__name__}: {exc}); "
                  "using the pure-Python codec")


def main() -> None:
    accelerator = _accelerator()
    if os.environ.get(accelerator.PURE_ENV):
        _remove_inplace_builds(accelerator)
        setup()
        return
    setup(ext_modules=_extensions(accelerator), cmdclass={"build_ext": OptionalBuildExt})


main()
