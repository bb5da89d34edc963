"""The developer guide's example runs as written (it is copied into the README)."""

from __future__ import annotations

import re
from pathlib import Path

from carbon.symbols import Symbol
from tungsten.memory import MemoryStore

GUIDE = Path(__file__).resolve().parents[3] / "docs" / "developer-guide.md"


def test_developer_guide_example_runs() -> None:
    """Declare, implement, attach and invoke exactly as the guide's first example shows
    (the walk-through's blocks are files of an app: tests/net/test_developer_walkthrough.py)."""
    blocks = re.findall(r"```python\n(.*?)```", GUIDE.read_text(), re.S)
    assert blocks, "the guide's first example is the one copied into the README"
    namespace: dict[str, object] = {}
    exec(compile(blocks[0], str(GUIDE), "exec"), namespace)
    store = namespace["store"]
    assert isinstance(store, MemoryStore)
    with store.reading() as view:
        assert view.get(b"alice", Symbol("/example/counter"), ("total",)) == (5,)
