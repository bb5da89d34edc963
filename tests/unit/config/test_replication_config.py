"""The `replication:` section: absent means LMDB only; present, the node is built with the
etcd endpoints and bounds it names; bad endpoints and prefixes are refused at their line."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from mercury_rt.config import load_node_config
from mercury_rt.config.build import build_node_spec
from tests.nodecfg_support import config_text, make_cluster, run
from tungsten.etcd_store import EtcdSettings


@pytest.fixture(scope="module")
def cluster_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_cluster(tmp_path_factory.mktemp("keys") / "cluster", "127.0.0.1:7401/10/50")


def _write(tmp_path: Path, cluster_dir: Path, extra: str) -> Path:
    shutil.copytree(cluster_dir, tmp_path / "cluster")
    path = tmp_path / "node.yaml"
    path.write_text(config_text(extra=extra))
    return path


def test_without_a_section_the_node_keeps_lmdb_only(tmp_path: Path, cluster_dir: Path) -> None:
    spec = build_node_spec(load_node_config(_write(tmp_path, cluster_dir, "")))
    try:
        assert spec.replication is None
    finally:
        spec.store.close()


def test_the_section_becomes_the_adapter_settings(tmp_path: Path, cluster_dir: Path) -> None:
    extra = ("replication: {endpoints: ['10.0.0.5:2379', '[::1]:2381'], prefix: bank/,"
             " timeout: 2.5, record_ttl: 600, allow_plaintext: true}\n")
    spec = build_node_spec(load_node_config(_write(tmp_path, cluster_dir, extra)))
    try:
        assert spec.replication == EtcdSettings((("10.0.0.5", 2379), ("[::1]", 2381)),
                                                b"bank/", 2.5, 1.0, 600)
    finally:
        spec.store.close()


@pytest.mark.parametrize("bad", ["replication: {endpoints: []}\n",
                                 "replication: {endpoints: ['no-port']}\n",
                                 "replication: {endpoints: ['h:99999']}\n",
                                 "replication: {endpoints: ['h:2379'], prefix: nosl}\n",
                                 "replication: {endpoints: ['h:2379'], tls: true}\n"])
def test_bad_sections_fail_the_check(tmp_path: Path, cluster_dir: Path, bad: str) -> None:
    result = run("node", "check", str(_write(tmp_path, cluster_dir, bad)))
    assert result.exit_code == 2, result.output
    assert "replication" in result.output
