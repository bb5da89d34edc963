"""`handlers.timeout` and `log.format` in the node YAML: defaults, what a node is built
with, and bad values reported at their file:line like every other key."""

from __future__ import annotations

import io
import json
import shutil
from collections.abc import Coroutine
from pathlib import Path

import pytest
import structlog

from mercury_rt.cli import node as node_cli
from mercury_rt.config import build_node_spec, load_node_config
from mercury_rt.logs import configure_logging
from policy.yaml_source import ConfigFileError
from tests.nodecfg_support import config_text, line_of, make_cluster, run


@pytest.fixture(scope="module")
def cluster_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_cluster(tmp_path_factory.mktemp("keys") / "cluster", "127.0.0.1:7401/10/50")


@pytest.fixture
def workdir(tmp_path: Path, cluster_dir: Path) -> Path:
    shutil.copytree(cluster_dir, tmp_path / "cluster")
    return tmp_path


def _write(workdir: Path, extra: str) -> Path:
    path = workdir / "node.yaml"
    path.write_text(config_text(extra=extra))
    return path


def test_defaults_are_five_seconds_and_console_logs(workdir: Path) -> None:
    config = load_node_config(_write(workdir, ""))
    assert config.handlers.timeout == 5.0
    assert config.log.format == "console"


def test_a_node_from_yaml_runs_handlers_under_the_configured_timeout(workdir: Path) -> None:
    config = load_node_config(_write(workdir, "handlers:\n  timeout: 12\nlog:\n  format: json\n"))
    assert config.log.format == "json"
    spec = build_node_spec(config)
    try:
        assert spec.invoke_limits.timeout == 12.0
    finally:
        spec.store.close()


@pytest.mark.parametrize(("extra", "snippet", "key"), [
    ("handlers:\n  timeout: 0\n", "timeout: 0", "handlers.timeout"),
    ("handlers:\n  timeout: 7200\n", "timeout: 7200", "handlers.timeout"),
    ("handlers:\n  timeout: soon\n", "timeout: soon", "handlers.timeout"),
    ("handlers:\n  timout: 3\n", "timout: 3", "handlers.timout"),
    ("log:\n  format: xml\n", "format: xml", "log.format"),
])
def test_a_bad_value_is_reported_at_its_line(workdir: Path, extra: str, snippet: str,
                                             key: str) -> None:
    path = _write(workdir, extra)
    with pytest.raises(ConfigFileError) as info:
        load_node_config(path)
    [problem] = info.value.problems
    assert problem.line == line_of(path.read_text(), snippet)
    assert problem.path == key
    assert str(problem).startswith(f"{path}:{problem.line}: {key}")


@pytest.mark.parametrize(("extra", "json_wanted"), [
    ("", False), ("log:\n  format: json\n  level: warning\n", True)])
def test_node_run_sets_up_logging_in_the_configured_format(
        workdir: Path, monkeypatch: pytest.MonkeyPatch, extra: str, json_wanted: bool) -> None:
    seen: dict[str, object] = {}

    def fake_configure(level: str = "info", stream: object = None, json: bool = False) -> None:
        seen.update(level=level, json=json)

    def fake_run(main: Coroutine[object, object, None]) -> None:
        main.close()  # the node itself is not started: this checks the wiring only
    monkeypatch.setattr(node_cli, "configure_logging", fake_configure)
    monkeypatch.setattr(node_cli, "build_node_spec", lambda config: None)
    monkeypatch.setattr(node_cli, "tune_gc", lambda: None)
    monkeypatch.setattr(node_cli, "run", fake_run)
    result = run("node", "run", str(_write(workdir, extra)))
    assert result.exit_code == 0, result.output
    assert seen == {"level": "warning" if json_wanted else "info", "json": json_wanted}


def test_json_format_writes_one_json_object_per_event() -> None:
    stream = io.StringIO()
    configure_logging("info", stream=stream, json=True)
    try:
        structlog.get_logger("test").info("handler_failed", incident="node-a-1f2e3d-1")
    finally:
        structlog.reset_defaults()
    [line] = stream.getvalue().splitlines()
    event = json.loads(line)
    assert event["event"] == "handler_failed" and event["incident"] == "node-a-1f2e3d-1"
    assert event["level"] == "info" and "timestamp" in event
