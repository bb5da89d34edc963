"""`connections:` in the node YAML: the bounds a node built from it serves connections
under (each refused with its own code), and bad values reported at their file:line."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from carbon.error_codes import ErrorCode
from mercury_rt.aio.node_runtime import NodeRuntime
from mercury_rt.config import build_node_spec, load_node_config
from mercury_rt.core.connections import ConnectionLimits
from mercury_rt.core.connections.wire import NO_RESERVATION
from policy.yaml_source import ConfigFileError
from tests.nodecfg_support import config_text, line_of, make_cluster


@pytest.fixture(scope="module")
def cluster_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_cluster(tmp_path_factory.mktemp("keys") / "cluster", "127.0.0.1:7401/10/50")


def _write(tmp_path: Path, cluster_dir: Path, extra: str) -> Path:
    shutil.copytree(cluster_dir, tmp_path / "cluster")
    path = tmp_path / "node.yaml"
    path.write_text(config_text(extra=extra))
    return path


def test_a_node_serves_connections_under_the_configured_bounds(
        tmp_path: Path, cluster_dir: Path) -> None:
    path = _write(tmp_path, cluster_dir, "connections:\n  max_total: 3\n  max_per_entity: 2\n"
                  "  max_per_peer: 1\n  idle_timeout: 30\n")
    spec = build_node_spec(load_node_config(path))
    try:
        assert spec.connection_limits == ConnectionLimits(3, 2, 1, 30.0,
                                                          ConnectionLimits().reservable)
        served = NodeRuntime(spec).core.connections
        peer = (b"m" * 32, b"dave")
        assert served.admit(b"carol", b"c1", peer, NO_RESERVATION, 0.0) == NO_RESERVATION
        assert served.admit(b"carol", b"c2", peer, NO_RESERVATION, 0.0) \
            is ErrorCode.TOO_MANY_PEER_CONNECTIONS
    finally:
        spec.store.close()


def test_defaults_are_the_core_s_bounds(tmp_path: Path, cluster_dir: Path) -> None:
    spec = build_node_spec(load_node_config(_write(tmp_path, cluster_dir, "")))
    try:
        assert spec.connection_limits == ConnectionLimits()
    finally:
        spec.store.close()


@pytest.mark.parametrize(("extra", "key"), [
    ("connections:\n  max_per_peer: 0\n", "max_per_peer:"),
    ("connections:\n  max_total: true\n", "max_total:"),
    ("connections:\n  max_total: 10\n  max_per_entity: 11\n", "connections:"),
    ("connections:\n  idle_timeout: 0.5\n", "idle_timeout:"),
    ("connections:\n  per_peer: 3\n", "per_peer:"),
])
def test_a_bad_bound_is_reported_at_its_line(tmp_path: Path, cluster_dir: Path, extra: str,
                                             key: str) -> None:
    path = _write(tmp_path, cluster_dir, extra)
    with pytest.raises(ConfigFileError) as caught:
        load_node_config(path)
    text = path.read_text()
    assert any(str(p).startswith(f"{path}:{line_of(text, key)}:")
               for p in caught.value.problems), [str(p) for p in caught.value.problems]
