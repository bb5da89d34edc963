"""The developer guide's walk-through runs as written (issue 14 item 12): its app, node
config, calling program and test are taken from the guide, the cluster is made with the
guide's command, `node check` passes, the program's call answers 5 on loopback and the
test passes. Ports are swapped for free ones so parallel runs do not collide."""

from __future__ import annotations

import re
import shlex
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from mercury_rt.cli.main import cli
from mercury_rt.localcluster import free_port

pytestmark = pytest.mark.net
GUIDE = (Path(__file__).parents[2] / "docs" / "developer-guide.md").read_text()
FILES = dict(re.findall(r"<!-- walkthrough: (\S+) -->\n```\w+\n(.*?)```", GUIDE, re.S))
COMMANDS = [shlex.split(c.replace("\\\n", " "), comments=True)
            for block in re.findall(r"```sh\n(.*?)```", GUIDE[GUIDE.index("## Walk-through"):],
                                    re.S)
            for c in re.split(r"\n(?=mercury-rt )", block.strip())]


@pytest.fixture
def shop(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    inter, intra = free_port("127.0.0.1"), free_port("127.0.0.1")
    for name, text in FILES.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text.replace("7401", str(inter)).replace("7501", str(intra)))
    monkeypatch.chdir(tmp_path)
    yield tmp_path
    for module in ("counter_app", "test_counter"):
        sys.modules.pop(module, None)


def _cli(args: list[str]) -> str:
    assert args[0] == "mercury-rt"
    result = CliRunner().invoke(cli, args[1:])
    assert result.exit_code == 0, (args, result.output)
    return result.output


def test_the_guide_has_the_whole_walk_through() -> None:
    assert set(FILES) == {"shop/counter_app.py", "shop/node-a.yaml", "shop/call.py",
                          "shop/test_counter.py"}
    verbs = [c[1:3] for c in COMMANDS]
    assert ["cluster", "new"] in verbs and ["node", "check"] in verbs


def test_write_run_call_and_test_as_the_guide_says(shop: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    _cli(next(c for c in COMMANDS if c[1:3] == ["cluster", "new"]))
    check = next(c for c in COMMANDS if c[1:3] == ["node", "check"])
    assert ": ok (node node-a" in _cli(check)
    sys.path.insert(0, str(shop / "shop"))  # as `python shop/call.py` and pytest would
    try:
        exec(compile(FILES["shop/call.py"], "shop/call.py", "exec"), {"__name__": "__main__"})
        assert capsys.readouterr().out.strip().splitlines()[-1] == "5"
        namespace: dict[str, object] = {"__name__": "test_counter"}
        exec(compile(FILES["shop/test_counter.py"], "shop/test_counter.py", "exec"), namespace)
        test = namespace["test_add_accumulates"]
        assert callable(test)
        test()
    finally:
        sys.path.remove(str(shop / "shop"))
