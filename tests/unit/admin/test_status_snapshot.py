"""The status snapshot of a node that has not started: nothing bound, nothing heard, yet
the configured members and the cluster ID are reported (no sockets opened)."""

from __future__ import annotations

from pathlib import Path

from mercury_rt.aio.node_collector import families, sample_node
from mercury_rt.aio.node_runtime import NodeRuntime
from mercury_rt.aio.node_status import UNHEARD, Readiness, node_status, readiness
from mercury_rt.config import build_node_spec, parse_node_config
from tests.nodecfg_support import config_text, make_cluster


def _node(tmp_path: Path) -> NodeRuntime:
    make_cluster(tmp_path / "cluster", "127.0.0.1:7401/10/50")
    return NodeRuntime(build_node_spec(parse_node_config(config_text(), tmp_path)))


def test_an_unstarted_node_is_not_ready_and_says_why(tmp_path: Path) -> None:
    node = _node(tmp_path)
    try:
        assert readiness(node) == Readiness(keys_loaded=True, sockets_bound=False,
                                            membership_settled=False)
        report = node_status(node, now=10.0, uptime=0.0)
        assert (report.node_id, report.cluster_id_version) == ("node-a", 1)
        assert report.cluster == node.core.master_hash.hex()
        assert report.published == ("127.0.0.1:7401/10/50",)
        assert report.inter is None and report.intra is None
        assert [(m.node_id, m.liveness) for m in report.members] == [("node-a", "self"),
                                                                    ("node-b", UNHEARD)]
        assert report.members[1].intra == "127.0.0.2:7502"
        assert report.members[1].public == "[2001:db8::2]:7402"
        assert (report.held_pending, report.sessions, report.entities) == (0, 0, 2)
        assert not report.readiness.ready
    finally:
        node.spec.store.close()


def test_a_draining_node_is_not_ready(tmp_path: Path) -> None:
    node = _node(tmp_path)
    try:
        assert readiness(node).not_draining
        node.core.draining = True
        assert readiness(node) == Readiness(keys_loaded=True, sockets_bound=False,
                                            membership_settled=False, not_draining=False)
    finally:
        node.spec.store.close()


def test_an_unstarted_node_has_metrics_without_transport_figures(tmp_path: Path) -> None:
    node = _node(tmp_path)
    try:
        sample = sample_node(node)
        assert sample.transport == {} and sample.membership == {}
        assert sample.caches["spent_stamps"] == 0 and sample.held_pending == 0
        names = {family.name for family in families(sample)}
        assert {"mercury_requests", "mercury_cache_entries", "mercury_ready"} <= names
    finally:
        node.spec.store.close()
