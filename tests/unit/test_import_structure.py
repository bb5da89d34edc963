"""The packages' import graph has no cycle, and its layers depend one way.

The graph is read from the source (tests/import_graph_support.py). Only module-level
imports count, including those under `if TYPE_CHECKING:` (a cycle that exists only for
the type checker still means neither module can be read without the other); imports
inside a function body do not count.
"""

from __future__ import annotations

from tests.import_graph_support import cycle_path, cycles, import_graph

ALLOWED = {
    "carbon": {"carbon"},
    "tungsten": {"tungsten", "carbon"},
    "policy": {"policy", "carbon"},
    "lithium": {"lithium", "carbon", "tungsten", "policy"},
}
"""Each lower package and the packages it may import (mercury_rt sits on top of all)."""
SHELL = ("mercury_rt.aio", "mercury_rt.cli", "mercury_rt.config", "mercury_rt.testing")
"""Packages around the core that the core must not import."""


def test_no_import_cycle() -> None:
    graph = import_graph()
    found = [" -> ".join(cycle_path(graph, component)) for component in cycles(graph)]
    assert not found, "import cycles:\n" + "\n".join(found)


def test_lower_packages_import_only_the_packages_below() -> None:
    wrong = [f"{module} -> {target}"
             for module, targets in sorted(import_graph().items())
             if (allowed := ALLOWED.get(module.split(".")[0])) is not None
             for target in sorted(targets) if target.split(".")[0] not in allowed]
    assert not wrong, "imports against the layering:\n" + "\n".join(wrong)


def test_core_imports_nothing_of_the_shell() -> None:
    wrong = [f"{module} -> {target}"
             for module, targets in sorted(import_graph().items())
             if module == "mercury_rt.core" or module.startswith("mercury_rt.core.")
             for target in sorted(targets)
             if any(target == shell or target.startswith(shell + ".") for shell in SHELL)]
    assert not wrong, "the core imports the shell:\n" + "\n".join(wrong)


CORE_AREAS = {
    "transport": set(),
    "identity": set(),
    "gate": {"identity"},
    "routing": {"identity"},
    "membership": {"identity", "routing"},
    "transit": {"identity", "membership"},
    "connections": set(),
    "node": {"transport", "identity", "gate", "routing", "membership", "transit",
             "connections"},
}
"""Each area of the pure core and the other areas it may import (mercury_rt/core/__init__)."""


def test_core_areas_depend_one_way() -> None:
    wrong = [f"{module} -> {target}"
             for module, targets in sorted(import_graph().items())
             if module.startswith("mercury_rt.core.")
             for target in sorted(targets) if target.startswith("mercury_rt.core.")
             if (area := module.split(".")[2]) != (used := target.split(".")[2])
             and used not in CORE_AREAS.get(area, set())]
    assert not wrong, "core areas importing against their order:\n" + "\n".join(wrong)
    assert set(CORE_AREAS) == {m.split(".")[2] for m in import_graph()
                               if m.startswith("mercury_rt.core.")}, "an area is unlisted"
