"""/metrics shows the gate decision cache: hits, misses, evictions and invalidations move
as the node's cache decides, and its size is a cache gauge (no sockets)."""

from __future__ import annotations

from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from carbon.principal import Principal
from mercury_rt.aio.node_collector import NodeCollector, sample_node
from mercury_rt.core.gate import GateState, MemorySpentStore, decide_access
from tests.gate_support import LOCAL, NOW, PARTNER, CountingVerifier
from tests.unit.admin.test_status_snapshot import _node
from tests.unit.gate.test_decision_cache import POLICY, remote

NAMES = ("hits", "misses", "evictions", "invalidations")


def scraped(read: object) -> dict[str, float]:
    registry = CollectorRegistry()
    registry.register(NodeCollector(read))  # type: ignore[arg-type]
    text = generate_latest(registry).decode()
    return {sample.name + repr(sorted(sample.labels.items())): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


def test_the_decision_cache_counters_move_on_metrics(tmp_path: Path) -> None:
    node = _node(tmp_path)
    try:
        cache = node.core.decisions
        cache.max_entries = 1
        state = GateState(LOCAL, CountingVerifier(), MemorySpentStore(), decisions=cache)
        before = scraped(lambda: sample_node(node))
        assert [before[f"mercury_gate_cache_{n}_total[]"] for n in NAMES] == [0, 0, 0, 0]
        bob, eve = Principal(PARTNER, b"bob"), Principal(PARTNER, b"eve")
        for who in (bob, bob, eve):  # a miss, a hit, a miss that pushes bob out
            decide_access(remote(who), POLICY, state, NOW)
        shown = scraped(lambda: sample_node(node))
        assert [shown[f"mercury_gate_cache_{n}_total[]"] for n in NAMES] == [1, 2, 1, 0]
        assert shown["mercury_cache_entries[('cache', 'gate_decisions')]"] == 1
        node.core.set_cluster_id(node.core.state.cluster_id)  # forgets every decision
        cleared = scraped(lambda: sample_node(node))
        assert cleared["mercury_gate_cache_invalidations_total[]"] == 1
        assert cleared["mercury_cache_entries[('cache', 'gate_decisions')]"] == 0
    finally:
        node.spec.store.close()
