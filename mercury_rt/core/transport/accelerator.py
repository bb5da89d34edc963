"""Loading a C accelerator only when it was built from the sources beside it.

`setup.py` compiles `_fastwire.c` (fastwire.py's codec in C) when a C compiler is present,
recording in the extension `SOURCE_SHA256`: the hash of the C file and of the Python
module it replaces. Why the check: with an editable install the `.so` sits beside the
sources, so an edit to either file without a rebuild would otherwise run the old code,
silently. `load` refuses such a build (and says once what to run), refuses any build
when `MERCURY_PURE=1` is set, and returns None when there is none: the caller keeps its
pure-Python functions, which give the same results. Import-time plumbing, not protocol
logic: it reads two source files once per process.
"""

from __future__ import annotations

import hashlib
import importlib
import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

PURE_ENV = "MERCURY_PURE"
"""Set (to anything but empty) at install time: build nothing; at run time: load nothing."""
ACCELERATED = {"mercury_rt.core.transport._fastwire": ("_fastwire.c", "fastwire.py")}
"""Each C extension and the sources (beside it) that it is built from and stands in for;
setup.py builds from this table."""
HERE = Path(__file__).resolve().parent


def source_digest(sources: Sequence[Path]) -> str:
    """The SHA-256 of the sources, in order: what a build of them records."""
    digest = hashlib.sha256()
    for source in sources:
        digest.update(source.read_bytes())
    return digest.hexdigest()


def stale_reason(module: ModuleType, sources: Sequence[Path]) -> str | None:
    """Why `module` must not stand in for `sources`, or None if it was built from them."""
    try:
        current = source_digest(sources)
    except OSError as exc:
        return f"cannot read its sources ({exc})"
    if getattr(module, "SOURCE_SHA256", None) != current:
        return ", ".join(source.name for source in sources) + " changed since it was built"
    return None


def load(name: str) -> ModuleType | None:
    """The C extension `name` if present, fresh and not disabled by MERCURY_PURE."""
    if os.environ.get(PURE_ENV):
        return None
    try:
        module = importlib.import_module(name)
    except ImportError:
        return None
    reason = stale_reason(module, [HERE / source for source in ACCELERATED[name]])
    if reason is not None:
        warnings.warn(f"mercury-rt: the compiled {name} is stale ({reason}); using the "
                      f"pure-Python code. Rebuild with `pip install -e .` (or set "
                      f"{PURE_ENV}=1 to use pure Python on purpose)",
                      RuntimeWarning, stacklevel=2)
        return None
    return module
