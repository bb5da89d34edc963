"""Server-side routing decisions: local, redirect, forward, remote state, moved, refused."""

from __future__ import annotations

import pytest

from carbon.error_codes import ErrorCode
from mercury_rt.core.routing import (
    ForwardTo,
    NotMirroredChoice,
    Path,
    RedirectMoved,
    RedirectTo,
    Refuse,
    RoutingConfig,
    RunHere,
    RunWithRemoteState,
    SecurityOrder,
    decide_route,
)
from tests.routing_support import PUB_B, RECORD, B, C, req, view

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




