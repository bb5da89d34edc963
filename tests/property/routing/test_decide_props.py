"""Routing decisions over random requests, configs and views: only live mirrors, never us."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from mercury_rt.core.routing import (
    ClusterView,
    ForwardTo,
    NotMirroredChoice,
    Path,
    RedirectTo,
    RequestSummary,
    RoutingConfig,
    RunHere,
    RunWithRemoteState,
    SecurityOrder,
    decide_route,
)
from tests.routing_support import A, req, view

entities = st.sampled_from([b"here", b"there", b"internal", b"both", b"gone", b"nope"])
configs = st.builds(RoutingConfig, st.sampled_from(NotMirroredChoice),
                    st.sampled_from(SecurityOrder), st.integers(0, 2))
views = st.builds(view, st.booleans(), st.booleans(), st.booleans())
requests = st.builds(req, entities, st.none() | st.integers(0, 5), st.sampled_from(Path),
                     st.integers(0, 3), st.binary(max_size=16))


@given(requests, configs, views)
def test_decisions_only_target_live_mirrors(request: RequestSummary, config: RoutingConfig,
                                            cluster: ClusterView) -> None:
    """Whatever the input: chosen nodes are live mirrors, never us; choice is deterministic."""
    decision = decide_route(request, config, cluster)
    assert decision == decide_route(request, config, cluster)
    mirrors = cluster.mirrors.get(request.entity_local, frozenset())
    if isinstance(decision, ForwardTo | RedirectTo | RunWithRemoteState):
        node = decision.state_node if isinstance(decision, RunWithRemoteState) \
            else decision.node_id
        assert node in mirrors and node != cluster.local_node and cluster.nodes[node].alive
        assert A not in mirrors
    if isinstance(decision, RedirectTo):
        assert decision.address == cluster.nodes[decision.node_id].public_address
        assert request.arrived_via is not Path.INTRA_CLUSTER
    if isinstance(decision, ForwardTo):
        assert request.forward_hops < config.max_forward_hops
    assert isinstance(decision, RunHere) == (A in mirrors and request.entity_local
                                                not in cluster.moved)
    expected_bundle = (request.caller_cluster_version is not None
                       and request.caller_cluster_version < 3)
    assert decision.bundle_cluster_id is expected_bundle
