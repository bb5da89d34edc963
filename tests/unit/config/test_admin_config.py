"""The admin section of a node config: loopback unless a token says otherwise, the token
file's rules at their lines, what the node is built with, and how the CLI finds it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from mercury_rt.aio.admin_http import AdminSettings
from mercury_rt.cli.admin_client import AdminClient, AdminClientError
from mercury_rt.config import load_node_config
from mercury_rt.config.admin import ADDRESS_FILE, admin_settings
from tests.nodecfg_support import config_text, line_of, make_cluster, run

TOKEN = "0123456789abcdef0123456789abcdef"
GUIDE = Path(__file__).parents[3] / "docs" / "operator-guide.md"


@pytest.fixture(scope="module")
def cluster_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_cluster(tmp_path_factory.mktemp("keys") / "cluster", "127.0.0.1:7401/10/50")


@pytest.fixture
def workdir(tmp_path: Path, cluster_dir: Path) -> Path:
    shutil.copytree(cluster_dir, tmp_path / "cluster")
    return tmp_path


def _config(workdir: Path, admin: str) -> tuple[Path, str]:
    text = config_text(extra=admin)
    path = workdir / "node.yaml"
    path.write_text(text)
    return path, text


def _token(workdir: Path, text: str = TOKEN, mode: int = 0o600) -> Path:
    path = workdir / "admin.token"
    path.write_text(text + "\n")
    path.chmod(mode)
    return path


def _check_fails_at(path: Path, line: int, message: str) -> None:
    result = run("node", "check", str(path))
    assert result.exit_code == 2, result.output
    assert f"{path}:{line}: {message}" in result.output, result.output


def test_by_default_the_admin_interface_is_on_loopback_with_an_ephemeral_port(
        workdir: Path) -> None:
    path, _ = _config(workdir, "")
    config = load_node_config(path)
    assert admin_settings(config) == AdminSettings("127.0.0.1", 0, None,
                                                   workdir / "state" / ADDRESS_FILE)


def test_a_non_loopback_host_without_a_token_is_refused_at_its_line(workdir: Path) -> None:
    path, text = _config(workdir, "admin:\n  host: 0.0.0.0\n  port: 7601\n")
    _check_fails_at(path, line_of(text, "host: 0.0.0.0"),
                    "admin.host: 0.0.0.0 is not a loopback address: set admin.token_file")


def test_a_non_loopback_host_with_a_token_is_accepted_and_the_token_loaded(
        workdir: Path) -> None:
    _token(workdir)
    path, _ = _config(workdir, "admin: {host: 192.0.2.1, port: 7601, token_file: admin.token}\n")
    assert run("node", "check", str(path)).exit_code == 0
    settings = admin_settings(load_node_config(path))
    assert settings is not None and settings.token == TOKEN.encode()
    assert (settings.host, settings.port) == ("192.0.2.1", 7601)


@pytest.mark.parametrize(("mode", "text", "message"), [
    (0o644, TOKEN, "is accessible by group/others (mode 0644)"),
    (0o600, "short", "the token must be 16-4096 characters (it has 5)"),
    (0o600, "has spaces in it, sixteen+", "the token must be printable ASCII without spaces"),
])
def test_a_bad_token_file_is_refused_at_its_line(workdir: Path, mode: int, text: str,
                                                 message: str) -> None:
    _token(workdir, text, mode)
    path, config = _config(workdir, "admin:\n  token_file: admin.token\n")
    _check_fails_at(path, line_of(config, "token_file:"), "admin.token_file: ")
    assert message in run("node", "check", str(path)).output


def test_a_missing_token_file_is_refused(workdir: Path) -> None:
    path, config = _config(workdir, "admin:\n  token_file: nowhere.token\n")
    _check_fails_at(path, line_of(config, "token_file:"), "admin.token_file: ")


def test_a_disabled_admin_interface_is_not_built_and_cli_says_so(workdir: Path) -> None:
    path, _ = _config(workdir, "admin: {enabled: false, host: 0.0.0.0}\n")
    config = load_node_config(path)
    assert admin_settings(config) is None
    result = run("node", "status", str(path))
    assert result.exit_code == 5 and "admin.enabled is false" in result.output


def test_the_client_connects_to_a_configured_port_or_the_recorded_one(workdir: Path) -> None:
    _token(workdir)
    path, _ = _config(workdir, "admin: {host: 0.0.0.0, port: 7601, token_file: admin.token}\n")
    client = AdminClient.for_config(load_node_config(path))
    assert client == AdminClient("http://127.0.0.1:7601", TOKEN.encode())

    path, _ = _config(workdir, "admin: {host: '::1'}\n")
    config = load_node_config(path)
    with pytest.raises(AdminClientError, match="is not running") as info:
        AdminClient.for_config(config)
    assert not info.value.running
    (workdir / "state").mkdir()
    (workdir / "state" / ADDRESS_FILE).write_text(json.dumps({"url": "http://[::1]:40001"}))
    assert AdminClient.for_config(config).url == "http://[::1]:40001"


def test_node_status_of_a_node_that_is_not_running_exits_4(workdir: Path) -> None:
    path, _ = _config(workdir, "")
    result = run("node", "members", str(path))
    assert result.exit_code == 4
    assert "node node-a is not running" in result.output


def test_the_operator_guide_lists_every_admin_key() -> None:
    section = GUIDE.read_text().split("## Node configuration", 1)[1]
    for key in ("admin.enabled", "admin.host", "admin.port", "admin.token_file"):
        assert f"`{key}`" in section, key


def test_the_recorded_address_gives_only_its_port_so_the_token_stays_on_the_configured_host(
        workdir: Path) -> None:
    _token(workdir)
    path, _ = _config(workdir, "admin: {token_file: admin.token}\n")
    config = load_node_config(path)
    (workdir / "state").mkdir()
    record = workdir / "state" / ADDRESS_FILE
    record.write_text(json.dumps({"url": "http://203.0.113.7:40001"}))
    assert AdminClient.for_config(config).url == "http://127.0.0.1:40001"
    record.write_text(json.dumps({"url": "http://203.0.113.7"}))
    with pytest.raises(AdminClientError, match="no admin URL with a port"):
        AdminClient.for_config(config)
