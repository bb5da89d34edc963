"""pyproject's runtime dependencies are exactly what the five packages import (issue 14
item 11): a library declared but never imported installs for nothing on every node (and is
one more package to trust); one imported but not declared breaks a clean install. Test-only
and bench-only libraries belong in the `test` and `bench` extras."""

from __future__ import annotations

import ast
import importlib.metadata
import re
import sys
import tomllib
from collections.abc import Iterator
from typing import Any

from tests.import_graph_support import PACKAGES, ROOT, module_files

PLUGIN_IMPORTS = {"pytest": "test"}
"""Imported only by `mercury_rt/testing/pytest_plugin.py`, which pytest alone loads (the
`pytest11` entry point): such a library belongs in the named extra, not on every node."""


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _declared(section: list[str]) -> set[str]:
    """Distribution names of requirement strings ("name>=1; marker" -> "name")."""
    return {_normal(re.split(r"[<>=!~;\[ ]", req, maxsplit=1)[0]) for req in section}


def _project() -> dict[str, Any]:
    project: dict[str, Any] = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return project


def _top_level_imports() -> Iterator[str]:
    for path in module_files().values():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                yield from (alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
                yield node.module.split(".")[0]


def imported_distributions() -> set[str]:
    """The installed distributions the packages import (own packages and stdlib aside)."""
    owners = importlib.metadata.packages_distributions()
    third_party = {m for m in _top_level_imports()
                   if m not in sys.stdlib_module_names and m not in PACKAGES
                   and m not in PLUGIN_IMPORTS}
    unknown = {m for m in third_party if m not in owners}
    assert not unknown, f"imported but not installed by any distribution: {unknown}"
    return {_normal(dist) for m in third_party for dist in owners[m]}


def test_every_runtime_dependency_is_imported_by_the_packages() -> None:
    declared = _declared(_project()["dependencies"])
    unused = declared - imported_distributions()
    assert not unused, (f"declared in [project] dependencies but never imported by "
                        f"{PACKAGES}: {sorted(unused)}; use it or move it to an extra")


def test_every_imported_library_is_a_runtime_dependency() -> None:
    declared = _declared(_project()["dependencies"])
    missing = imported_distributions() - declared
    assert not missing, f"imported by the packages but not declared: {sorted(missing)}"


def test_plugin_only_libraries_live_in_their_extras() -> None:
    extras = _project()["optional-dependencies"]
    for library, extra in PLUGIN_IMPORTS.items():
        assert library in _declared(extras[extra])
        assert library not in _declared(_project()["dependencies"])


def test_test_and_bench_libraries_live_in_their_extras() -> None:
    extras = _project()["optional-dependencies"]
    assert {"hypothesis", "hashcash"} <= _declared(extras["test"])
    assert "asyncio-dgram" in _declared(extras["bench"])
    assert not {"hypothesis", "hashcash", "asyncio-dgram"} & \
        _declared(_project()["dependencies"])
