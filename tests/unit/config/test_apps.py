"""Apps named in a node config: whatever an app gets wrong, `node run` says which app and
exits 2 (a config problem), never a traceback."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from carbon.error_codes import ErrorCode
from carbon.protocol_spec import SpecRegistry
from lithium import HandlerRegistry
from mercury_rt.apps import AppError, NodeApp, load_apps
from tests.nodecfg_support import config_text, make_cluster, run
from tungsten.memory import MemoryStore

APPS = {
    "revapp_ok": "def setup(app):\n    app.registry.handler('ok.echo')(lambda ctx, x: x)\n",
    "revapp_raises": "def setup(app):\n    raise ValueError('no database configured')\n",
    "revapp_syntax": "def setup(app) -> None\n    pass\n",
    "revapp_import_fails": "raise RuntimeError('needs BILLING_URL')\n",
    "revapp_no_setup": "VALUE = 1\n",
}


@pytest.fixture
def app_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    folder = tmp_path / "apps"
    folder.mkdir()
    for name, source in APPS.items():
        (folder / f"{name}.py").write_text(source)
    monkeypatch.syspath_prepend(str(folder))
    yield folder
    for name in APPS:
        sys.modules.pop(name, None)


def _app() -> NodeApp:
    return NodeApp("node-a", ("alice",), HandlerRegistry(), SpecRegistry(), MemoryStore())


@pytest.mark.parametrize(("name", "says"), [
    ("revapp_raises", "failed in setup(app): ValueError: no database configured"),
    ("revapp_syntax", "cannot be imported: SyntaxError"),
    ("revapp_import_fails", "cannot be imported: RuntimeError: needs BILLING_URL"),
    ("revapp_no_setup", "has no setup(app) function"),
    ("revapp_not_there", "cannot be imported: ModuleNotFoundError"),
])
def test_a_broken_app_is_an_app_error_naming_it(app_dir: Path, name: str, says: str) -> None:
    with pytest.raises(AppError) as caught:
        load_apps(["revapp_ok", name], _app())
    assert caught.value.code is ErrorCode.NODE_CONFIG_INVALID
    assert f"app {name!r}" in caught.value.message and says in caught.value.message


def test_a_working_app_registers_its_handlers(app_dir: Path) -> None:
    app = _app()
    load_apps(["revapp_ok"], app)
    assert "ok.echo" in app.registry


def test_node_run_reports_a_failing_app_and_exits_2(app_dir: Path, tmp_path: Path) -> None:
    make_cluster(tmp_path / "cluster", "127.0.0.1:7401/10/50")
    config = tmp_path / "node.yaml"
    config.write_text(config_text(extra="apps: [revapp_raises]\n"))
    result = run("node", "run", str(config))
    assert result.exit_code == 2, result.output
    assert "cannot start: app 'revapp_raises' failed in setup(app): ValueError" in result.output


@pytest.mark.parametrize(("name", "says"), [
    ("revapp_not_there", "cannot be imported: ModuleNotFoundError"),
    ("revapp_import_fails", "cannot be imported: RuntimeError: needs BILLING_URL"),
    ("revapp_no_setup", "has no setup(app) function"),
])
def test_node_check_imports_every_app_and_reports_a_bad_one_at_its_line(
        app_dir: Path, tmp_path: Path, name: str, says: str) -> None:
    make_cluster(tmp_path / "cluster", "127.0.0.1:7401/10/50")
    config = tmp_path / "node.yaml"
    text = config_text(extra=f"apps:\n  - revapp_ok\n  - {name}\n")
    config.write_text(text)
    result = run("node", "check", str(config))
    assert result.exit_code == 2, result.output
    line = text.splitlines().index(f"  - {name}") + 1
    assert f"{config}:{line}: apps.1: app {name!r} {says}" in result.output
    assert "error 850 NODE_CONFIG_INVALID" in result.output


def test_node_check_accepts_importable_apps(app_dir: Path, tmp_path: Path) -> None:
    make_cluster(tmp_path / "cluster", "127.0.0.1:7401/10/50")
    config = tmp_path / "node.yaml"
    config.write_text(config_text(extra="apps: [revapp_ok, mercury_rt.apps.echo]\n"))
    result = run("node", "check", str(config))
    assert result.exit_code == 0, result.output
