"""Every Python example in README.md runs as written (one opens loopback sockets), and its
quick start stays two commands, the first running the demo to exit 0."""

from __future__ import annotations

import re
import subprocess
import sys
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


def test_the_quick_start_is_two_commands_and_the_first_runs_the_demo() -> None:
    section = README[README.index("## Quick start"):README.index("\n## ", README.index(
        "## Quick start") + 1)]
    (block,) = re.findall(r"```sh\n(.*?)```", section, re.S)
    commands = block.strip().splitlines()
    assert len(commands) == 2, commands
    assert commands[0].endswith("mercury-rt demo") and commands[1] == "./test.sh"
    demo = subprocess.run([sys.executable, "-m", "mercury_rt", "demo"], capture_output=True,
                          text=True, timeout=120, check=False)
    assert demo.returncode == 0, demo.stdout + demo.stderr
    assert "demo finished: all exchanges succeeded" in demo.stdout
