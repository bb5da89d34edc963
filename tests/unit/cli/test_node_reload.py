"""SIGHUP's reload on a node built from its config (cli/node_reload.py): live settings are
applied, restart-only ones are logged as not applied and keep their running value, and a
file with a problem changes nothing and is reported at its file:line."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from structlog.testing import capture_logs

from mercury_rt.aio.node_runtime import NodeRuntime
from mercury_rt.cli import node_reload
from mercury_rt.cli.node_reload import LiveReload
from mercury_rt.config import build_node_spec, load_node_config
from mercury_rt.core.identity import eid_to_text, issue_cluster_id, mint_eid
from mercury_rt.core.routing import NotMirroredChoice
from tests.nodecfg_support import config_text, line_of, make_cluster

LOGGING: list[tuple[str, bool]] = []


def _record_logging(level: str, json: bool = False) -> None:
    LOGGING.append((level, json))


@pytest.fixture
def reloadable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LiveReload]:
    make_cluster(tmp_path / "cluster", "127.0.0.1:7401/10/50")
    path = tmp_path / "node-a.yaml"
    path.write_text(config_text())
    config = load_node_config(path)
    spec = build_node_spec(config)
    monkeypatch.setattr(node_reload, "configure_logging", _record_logging)
    live = LiveReload(NodeRuntime(spec), config, path)
    yield live
    spec.store.close()


def test_live_settings_apply_and_restart_only_ones_are_logged_and_kept(
        reloadable: LiveReload) -> None:
    text = reloadable.path.read_text()
    changed = text.replace("inter_port: 7401", "inter_port: 7409").replace(
        "not_mirrored: redirect", "not_mirrored: forward")
    reloadable.path.write_text(changed + "log:\n  level: debug\n")
    with capture_logs() as logs:
        assert reloadable.reload()
    refused = [e["setting"] for e in logs if e["event"] == "reload_not_applied"]
    assert refused == ["listen.inter_port"]
    assert reloadable.config.listen.inter_port == 7401, "the bound port stays in force"
    assert reloadable.config.log.level == "debug"
    assert reloadable.node.core.routing.not_mirrored is NotMirroredChoice.FORWARD
    applied = next(e for e in logs if e["event"] == "reload_applied")
    assert applied["applied"] == ["cluster.routing.not_mirrored", "log.level"]


def test_handler_timeout_and_log_format_change_live(reloadable: LiveReload) -> None:
    LOGGING.clear()
    text = reloadable.path.read_text()
    reloadable.path.write_text(text + "log:\n  format: json\nhandlers:\n  timeout: 0.5\n")
    with capture_logs() as logs:
        assert reloadable.reload()
    applied = next(e for e in logs if e["event"] == "reload_applied")
    assert applied["applied"] == ["handlers.timeout", "log.format"]
    assert LOGGING == [("info", True)]
    assert reloadable.node.spec.invoke_limits.timeout == 0.5


def test_a_config_with_a_problem_changes_nothing_and_names_its_line(
        reloadable: LiveReload) -> None:
    before = reloadable.config
    routing = reloadable.node.core.routing
    text = reloadable.path.read_text().replace("not_mirrored: redirect",
                                               "not_mirrored: sideways")
    reloadable.path.write_text(text)
    with capture_logs() as logs:
        assert not reloadable.reload()
    line = line_of(text, "not_mirrored:")
    problems = [e["problem"] for e in logs if e["event"] == "reload_problem"]
    assert any(p.startswith(f"{reloadable.path}:{line}:") for p in problems), problems
    assert reloadable.config is before and reloadable.node.core.routing is routing
    reloadable.path.write_text("node_id: [unclosed\n")
    with capture_logs() as logs:
        reloadable.on_signal()
    assert any(e["event"] == "reload_rejected" for e in logs)


def test_a_migration_added_to_the_config_is_answered_after_the_reload(
        reloadable: LiveReload) -> None:
    key = Ed25519PrivateKey.generate()
    elsewhere = mint_eid(key, issue_cluster_id(Ed25519PrivateKey.generate(), key, []), b"c")
    text = reloadable.path.read_text() + f"moved: {{bob: {eid_to_text(elsewhere)}}}\n"
    reloadable.path.write_text(text)
    assert b"bob" not in reloadable.node.core.state.view.moved
    with capture_logs() as logs:
        assert reloadable.reload()
    record = reloadable.node.core.state.view.moved[b"bob"]
    assert record.new_eid == elsewhere.encode()
    applied = next(e for e in logs if e["event"] == "reload_applied")
    assert applied["applied"] == ["moved.bob"] and applied["migrations"] == 1
