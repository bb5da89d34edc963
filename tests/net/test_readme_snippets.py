"""Every Python example in README.md runs as written (one opens loopback sockets)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.net
README = (Path(__file__).parents[2] / "README.md").read_text()
BLOCKS = re.findall(r"```python\n(.*?)```", README, re.S)


@pytest.mark.parametrize("block", BLOCKS, ids=[f"block-{i}" for i in range(len(BLOCKS))])
def test_readme_example_runs(block: str, capsys: pytest.CaptureFixture[str]) -> None:
    exec(compile(block, "README.md", "exec"), {"__name__": "readme_example"})
    if "b'hi there'" in block:
        assert "b'hi there'" in capsys.readouterr().out


def test_readme_has_examples() -> None:
    assert len(BLOCKS) >= 2
