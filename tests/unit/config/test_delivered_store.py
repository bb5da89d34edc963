"""A node's delivered one-way message ids are durable and separate from spent stamps."""

from __future__ import annotations

from pathlib import Path

import pytest

from mercury_rt.config import (
    NodeConfig,
    build_node_spec,
    delivered_store,
    parse_node_config,
    spent_store,
)
from mercury_rt.core.gate import SpendResult
from mercury_rt.core.node import DeliveredSettings, RetryPolicy
from policy.yaml_source import ConfigFileError
from tests.nodecfg_support import config_text, make_cluster
from tungsten.store import LmdbStore


def test_delivered_ids_survive_a_reopen_and_do_not_collide_with_spent_stamps(
        tmp_path: Path) -> None:
    store = LmdbStore(tmp_path)
    delivered, spent = delivered_store(store, limit=2), spent_store(store, limit=10)
    assert delivered.add_if_absent(b"id-1", 1000, 0.0) is SpendResult.ADDED
    assert spent.add_if_absent(b"id-1", 1000, 0.0) is SpendResult.ADDED
    assert delivered.add_if_absent(b"id-2", 1000, 0.0) is SpendResult.ADDED
    assert delivered.add_if_absent(b"id-3", 1000, 0.0) is SpendResult.FULL
    store.close()
    reopened = LmdbStore(tmp_path)
    again = delivered_store(reopened, limit=2)
    assert again.add_if_absent(b"id-1", 1000, 1.0) is SpendResult.ALREADY_SPENT
    assert again.add_if_absent(b"id-3", 3000, 2000.0) is SpendResult.ADDED, "expired ones go"
    reopened.close()


def test_the_durable_store_says_whether_it_holds_an_id_without_adding_it(tmp_path: Path) -> None:
    store = LmdbStore(tmp_path)
    delivered = delivered_store(store, limit=5)
    assert not delivered.contains(b"id-1", 0.0)
    delivered.add_if_absent(b"id-1", 100, 0.0)
    assert delivered.contains(b"id-1", 99.0) and not delivered.contains(b"id-1", 100.0)
    assert len(delivered) == 1  # type: ignore[arg-type]
    store.close()


def _config(tmp_path: Path, extra: str) -> NodeConfig:
    make_cluster(tmp_path / "cluster", "127.0.0.1:7401/10/50")
    return parse_node_config(config_text(extra=extra), tmp_path)


def test_the_node_config_sizes_the_delivered_store(tmp_path: Path) -> None:
    config = _config(tmp_path, "delivered:\n  limit: 50\n  per_cluster: 5\n"
                               "  retention_seconds: 3600\n")
    assert config.delivered.to_settings() == DeliveredSettings(50, 5, 3600.0)
    spec = build_node_spec(config)
    try:
        assert spec.delivered_settings == DeliveredSettings(50, 5, 3600.0)
        assert spec.delivered is not None and spec.delivered.inner.limit == 50  # type: ignore[attr-defined]
    finally:
        spec.store.close()


def test_by_default_a_tenth_each_kept_as_long_as_held_messages_live(tmp_path: Path) -> None:
    settings = _config(tmp_path, "").delivered.to_settings()
    assert settings == DeliveredSettings(1_000_000, 100_000, RetryPolicy().ttl)
    assert _config(tmp_path / "b", "delivered: {limit: 5}\n").delivered.to_settings() \
        .per_cluster == 1


@pytest.mark.parametrize(("extra", "says"), [
    ("delivered: {limit: 5, per_cluster: 6}\n", "per_cluster (6) is above limit (5)"),
    ("delivered: {per_cluster: true}\n", "valid integer"),
    ("delivered: {retention_seconds: 1}\n", "greater than or equal to 60"),
])
def test_bad_delivered_settings_are_reported_at_their_line(tmp_path: Path, extra: str,
                                                           says: str) -> None:
    with pytest.raises(ConfigFileError) as info:
        _config(tmp_path, extra)
    (problem,) = info.value.problems
    assert problem.path.startswith("delivered") and says in problem.message
    assert problem.line == config_text(extra=extra).splitlines().index(extra.strip()) + 1
