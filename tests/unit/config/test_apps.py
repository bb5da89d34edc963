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
from mercury_rt.config import build_node_spec, load_node_config
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


APP_BESIDE = "def setup(app):\n    app.registry.handler('beside.echo')(lambda ctx, x: x)\n"


def test_an_app_beside_its_config_loads_without_pythonpath(tmp_path: Path) -> None:
    """The config file's own folder is searched: check passes and the node is built with
    the app's handler, from another working directory, with no PYTHONPATH (issue 14 item 6)."""
    make_cluster(tmp_path / "cluster", "127.0.0.1:7401/10/50")
    (tmp_path / "revapp_beside.py").write_text(APP_BESIDE)
    config = tmp_path / "node.yaml"
    config.write_text(config_text(extra="apps: [revapp_beside]\n"))
    try:
        assert run("node", "check", str(config)).exit_code == 0
        spec = build_node_spec(load_node_config(config))
        spec.store.close()
        assert "beside.echo" in spec.registry
    finally:
        sys.modules.pop("revapp_beside", None)


def test_app_paths_are_searched_relative_to_the_config(tmp_path: Path) -> None:
    """`app_paths: [code]` next to the config finds code/revapp_pathed.py (and its package
    siblings); a folder that does not exist is reported at its line."""
    make_cluster(tmp_path / "cluster", "127.0.0.1:7401/10/50")
    (tmp_path / "code" / "revpkg").mkdir(parents=True)
    (tmp_path / "code" / "revpkg" / "__init__.py").write_text("")
    (tmp_path / "code" / "revpkg" / "helper.py").write_text("NAME = 'pathed.echo'\n")
    (tmp_path / "code" / "revpkg" / "app.py").write_text(
        "from revpkg.helper import NAME\n\n"
        "def setup(app):\n    app.registry.handler(NAME)(lambda ctx, x: x)\n")
    config = tmp_path / "node.yaml"
    config.write_text(config_text(extra="app_paths: [code]\napps: [revpkg.app]\n"))
    try:
        assert run("node", "check", str(config)).exit_code == 0
        spec = build_node_spec(load_node_config(config))
        spec.store.close()
        assert "pathed.echo" in spec.registry
        text = config_text(extra="app_paths:\n  - code\n  - nowhere\napps: [revpkg.app]\n")
        config.write_text(text)
        result = run("node", "check", str(config))
        assert result.exit_code == 2
        line = text.splitlines().index("  - nowhere") + 1
        assert f"{config}:{line}: app_paths.1: {tmp_path / 'nowhere'} is not a directory" \
            in result.output
    finally:
        for name in ("revpkg", "revpkg.app", "revpkg.helper"):
            sys.modules.pop(name, None)


def test_a_missing_app_names_where_it_was_looked_for(tmp_path: Path) -> None:
    make_cluster(tmp_path / "cluster", "127.0.0.1:7401/10/50")
    config = tmp_path / "node.yaml"
    text = config_text(extra="app_paths: [.]\napps:\n  - revapp_nowhere_at_all\n")
    config.write_text(text)
    result = run("node", "check", str(config))
    assert result.exit_code == 2
    line = text.splitlines().index("  - revapp_nowhere_at_all") + 1
    assert f"{config}:{line}: apps.0: app 'revapp_nowhere_at_all' cannot be imported: " \
           "ModuleNotFoundError" in result.output
    assert f"looked in {tmp_path}" in result.output and "app_paths" in result.output
