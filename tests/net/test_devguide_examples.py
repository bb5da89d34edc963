"""Every example of the developer guide runs as written, in order, in one namespace (the
later ones build on the first's counter); the fixture example runs under the fixture."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from mercury_rt.testing.clusters import NetworkStarter

pytestmark = pytest.mark.net
GUIDE = Path(__file__).parents[2] / "docs" / "developer-guide.md"


def test_every_developer_guide_example_runs() -> None:
    """The walk-through's blocks are files of an app folder (test_developer_walkthrough.py
    writes and runs them), so they are left out here."""
    blocks = re.findall(r"(?<!-->\n)```python\n(.*?)```", GUIDE.read_text(), re.S)
    assert len(blocks) >= 4
    namespace: dict[str, object] = {"__name__": "guide_example"}
    for block in blocks:
        exec(compile(block, str(GUIDE), "exec"), namespace)
    tests = [fn for name, fn in namespace.items() if name.startswith("test_")]
    assert tests, "the fixture example defines a test"
    for test in tests:
        starter = NetworkStarter()
        try:
            test(mercury_network=starter)  # type: ignore[operator]
        finally:
            starter.close()
