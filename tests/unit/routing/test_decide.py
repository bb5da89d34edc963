"""Server-side routing decisions: local, redirect, forward, remote state, moved, refused."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from carbon.error_codes import ErrorCode
from mercury_rt.core.routing import (
    ClusterView,
    ForwardingRecord,
    ForwardTo,
    NodeInfo,
    NotMirroredChoice,
    Path,
    RedirectMoved,
    RedirectTo,
    Refuse,
    RequestSummary,
    RoutingConfig,
    RunHere,
    RunWithRemoteState,
    SecurityOrder,
    decide_route,
)
from tests.routing_support import addr

A, B, C = b"node-a", b"node-b", b"node-c"
PUB_B = addr("192.0.2.2")
RECORD = ForwardingRecord(b"\x01c", b"gone", b"new-eid", 5, b"sig")


def view(alive_b: bool = True, public_b: bool = True, alive_c: bool = True) -> ClusterView:
    return ClusterView(
        local_node=A,
        cluster_id_version=3,
        nodes={A: NodeInfo(A, True, addr("192.0.2.1")),
               B: NodeInfo(B, alive_b, PUB_B if public_b else None),
               C: NodeInfo(C, alive_c, None)},
        mirrors={b"here": frozenset({A, B}), b"there": frozenset({B}),
                 b"internal": frozenset({C}), b"both": frozenset({B, C})},
        moved={b"gone": RECORD},
    )


def req(entity: bytes, version: int | None = 3, via: Path = Path.INTER_CLUSTER,
        hops: int = 0, rid: bytes = b"r1") -> RequestSummary:
    return RequestSummary(entity, rid, version, via, hops)


REDIRECT = RoutingConfig(NotMirroredChoice.REDIRECT)
FORWARD = RoutingConfig(NotMirroredChoice.FORWARD)
REMOTE = RoutingConfig(NotMirroredChoice.RUN_WITH_REMOTE_STATE)


def test_mirrored_locally_runs_locally_whatever_the_config() -> None:
    """Same node: no network at all."""
    for config in (REDIRECT, FORWARD, REMOTE):
        assert decide_route(req(b"here"), config, view()) == RunHere(False)


def test_redirect_to_public_mirror() -> None:
    """REDIRECT names a public node that mirrors the entity, with the security order."""
    decision = decide_route(req(b"there"), REDIRECT, view())
    assert decision == RedirectTo(B, PUB_B, True, False)
    late = RoutingConfig(NotMirroredChoice.REDIRECT, SecurityOrder.REDIRECT_FIRST)
    assert decide_route(req(b"there"), late, view()) == RedirectTo(B, PUB_B, False, False)


def test_redirect_without_public_mirror_forwards() -> None:
    """No mirror has a public address: fall back to forwarding inside the cluster."""
    assert decide_route(req(b"internal"), REDIRECT, view()) == ForwardTo(C, True, False)
    assert decide_route(req(b"there"), REDIRECT, view(public_b=False)) == ForwardTo(
        B, True, False)


def test_intra_cluster_requests_are_not_redirected() -> None:
    """Our own node asked us: pass it on internally rather than bouncing it outside."""
    decision = decide_route(req(b"there", via=Path.INTRA_CLUSTER), REDIRECT, view())
    assert decision == ForwardTo(B, True, False)


def test_forward_and_hop_limit() -> None:
    """FORWARD goes to a live mirror once; an already-forwarded request is not re-forwarded."""
    assert decide_route(req(b"there"), FORWARD, view()) == ForwardTo(B, True, False)
    refused = decide_route(req(b"there", hops=1), FORWARD, view())
    assert isinstance(refused, Refuse) and refused.code is ErrorCode.FORWARD_HOPS_EXCEEDED
    assert refused.node_local


def test_remote_state() -> None:
    """RUN_WITH_REMOTE_STATE runs here with state on a live mirror."""
    assert decide_route(req(b"there"), REMOTE, view()) == RunWithRemoteState(B, False)


def test_dead_mirrors_are_skipped_and_none_live_is_node_local() -> None:
    """Only live mirrors are chosen; with none, the refusal tells the client to move on."""
    assert decide_route(req(b"both"), FORWARD, view(alive_b=False)) == ForwardTo(C, True, False)
    refused = decide_route(req(b"there"), FORWARD, view(alive_b=False))
    assert isinstance(refused, Refuse) and refused.code is ErrorCode.NO_LIVE_MIRROR
    assert refused.node_local


def test_unknown_entity_is_final() -> None:
    """An entity no node mirrors is an end-to-end error, not worth another node."""
    refused = decide_route(req(b"nobody" * 50), FORWARD, view())
    assert isinstance(refused, Refuse) and refused.code is ErrorCode.UNKNOWN_ENTITY
    assert not refused.node_local
    assert len(refused.message) < 120


def test_moved_entity_redirects_with_record() -> None:
    """A migrated entity answers with its signed forwarding record."""
    assert decide_route(req(b"gone"), FORWARD, view()) == RedirectMoved(RECORD, False)


@pytest.mark.parametrize(("caller", "bundle"), [(None, False), (1, True), (2, True), (3, False),
                                                 (4, False)])
def test_outdated_caller_gets_cluster_id_bundled(caller: int | None, bundle: bool) -> None:
    """Only a caller holding an older version than ours gets the new cluster ID."""
    assert decide_route(req(b"here", version=caller), FORWARD, view()).bundle_cluster_id is bundle
    assert decide_route(req(b"nope", version=caller), FORWARD, view()).bundle_cluster_id is bundle


def test_config_validates() -> None:
    """A negative hop bound is a configuration error."""
    with pytest.raises(ValueError):
        RoutingConfig(max_forward_hops=-1)


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
