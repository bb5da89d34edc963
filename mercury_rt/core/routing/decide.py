"""Server side of request routing: where a request that reached this node should run.

The design: a node that receives a request for an entity it does not mirror may redirect
the caller to a public node that mirrors it, pass the request internally to a node that
mirrors it, or run it here with the entity's state accessed remotely; whether the security
checks run before redirecting is also the cluster's choice. This module is that decision as
a pure function of (request summary, routing configuration, cluster view), plus the two
rules that apply to every reply: a caller holding an outdated cluster-ID version gets the
current one bundled, and a migrated entity answers with its signed forwarding record.

Rules beyond the design's text, chosen so behaviour is predictable:
- A migrated entity's forwarding record wins over everything (it should not be mirrored).
- A request that arrived over the intra-cluster path is never redirected (the caller is our
  own node; a public redirect would send it out and back in): REDIRECT acts as FORWARD.
- REDIRECT with no live mirror that has a public address falls back to FORWARD.
- A forwarded request is not forwarded again beyond `max_forward_hops` (views of two nodes
  can disagree for a moment; this stops ping-pong) and is refused as node-local.
- Among several live mirrors, the one chosen is a stable hash of the request ID, so the
  same request (a retransmission) goes to the same node and load still spreads.
- Forwarding records and refusals are answered without security checks: they reveal only
  what the EID and the public forwarding record already say.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import Enum

from carbon.error_codes import ErrorCode
from mercury_rt.core.identity import Endpoint
from mercury_rt.core.routing.forwarding import ForwardingRecord


class NotMirroredChoice(Enum):
    """The cluster's choice for requests to entities this node does not mirror."""

    REDIRECT = "redirect"
    FORWARD = "forward"
    RUN_WITH_REMOTE_STATE = "remote-state"


class SecurityOrder(Enum):
    """Whether security checks run on this node before redirecting/forwarding, or after."""

    CHECK_BEFORE_REDIRECT = "check-before-redirect"
    REDIRECT_FIRST = "redirect-first"


class Path(Enum):
    """How the request reached this node (a call from a local entity is decided as
    intra-cluster: NodeCore.handle_local)."""

    INTRA_CLUSTER = "intra-cluster"
    INTER_CLUSTER = "inter-cluster"


@dataclass(frozen=True, slots=True)
class RoutingConfig:
    """Cluster-wide routing settings (from the cluster entity's configuration)."""

    not_mirrored: NotMirroredChoice = NotMirroredChoice.FORWARD
    security: SecurityOrder = SecurityOrder.CHECK_BEFORE_REDIRECT
    max_forward_hops: int = 1

    def __post_init__(self) -> None:
        if self.max_forward_hops < 0:
            raise ValueError("max_forward_hops must be >= 0")


@dataclass(frozen=True, slots=True)
class RequestSummary:
    """What routing needs from a request: target, identity for stickiness, versions, path."""

    entity_local: bytes
    request_id: bytes
    caller_cluster_version: int | None = None
    arrived_via: Path = Path.INTER_CLUSTER
    forward_hops: int = 0


@dataclass(frozen=True, slots=True)
class NodeInfo:
    """One node of this cluster as membership currently sees it."""

    node_id: bytes
    alive: bool
    public_address: Endpoint | None = None


@dataclass(frozen=True, slots=True)
class ClusterView:
    """This node's view: who it is, the current cluster-ID version, nodes, mirrors, moves."""

    local_node: bytes
    cluster_id_version: int
    nodes: Mapping[bytes, NodeInfo]
    mirrors: Mapping[bytes, frozenset[bytes]]
    moved: Mapping[bytes, ForwardingRecord]


@dataclass(frozen=True, slots=True)
class RunHere:
    """The entity is mirrored here: check security, then dispatch locally."""

    bundle_cluster_id: bool


@dataclass(frozen=True, slots=True)
class RedirectTo:
    """Tell the caller to contact `address` (a public node that mirrors the entity)."""

    node_id: bytes
    address: Endpoint
    check_security_first: bool
    bundle_cluster_id: bool


@dataclass(frozen=True, slots=True)
class ForwardTo:
    """Pass the request over the intra-cluster path to `node_id`, which mirrors the entity."""

    node_id: bytes
    check_security_first: bool
    bundle_cluster_id: bool


@dataclass(frozen=True, slots=True)
class RunWithRemoteState:
    """Check security and run here; every state access goes to `state_node`."""

    state_node: bytes
    bundle_cluster_id: bool


@dataclass(frozen=True, slots=True)
class RedirectMoved:
    """The entity migrated: reply with its signed forwarding record."""

    record: ForwardingRecord
    bundle_cluster_id: bool


@dataclass(frozen=True, slots=True)
class Refuse:
    """No route: `code` says whether it is node-local (try another node) or final."""

    code: ErrorCode
    message: str
    bundle_cluster_id: bool

    @property
    def node_local(self) -> bool:
        """True if another node of the cluster might do better (the client moves on)."""
        return self.code in NODE_LOCAL_CODES


MAX_SHOWN_ENTITY = 64
"""Bytes of an entity's local part a refusal message quotes."""

NODE_LOCAL_CODES = frozenset({ErrorCode.NO_LIVE_MIRROR, ErrorCode.FORWARD_HOPS_EXCEEDED,
                              ErrorCode.NODE_LOCAL_ERROR, ErrorCode.OVERLOADED,
                              ErrorCode.NODE_DRAINING})

RoutingDecision = RunHere | RedirectTo | ForwardTo | RunWithRemoteState | RedirectMoved | Refuse


def decide_route(request: RequestSummary, config: RoutingConfig,
                 view: ClusterView) -> RoutingDecision:
    """Decide where `request` runs; never raises for any request content."""
    bundle = (request.caller_cluster_version is not None
              and request.caller_cluster_version < view.cluster_id_version)
    entity = request.entity_local
    record = view.moved.get(entity)
    if record is not None:
        return RedirectMoved(record, bundle)
    mirrors = view.mirrors.get(entity)
    if mirrors is None:
        return Refuse(ErrorCode.UNKNOWN_ENTITY,
                      f"no entity {_show(entity)} in this cluster", bundle)
    if view.local_node in mirrors:
        return RunHere(bundle)
    live = live_mirrors(view, mirrors)
    if not live:
        return Refuse(ErrorCode.NO_LIVE_MIRROR,
                      f"no live node mirrors entity {_show(entity)}; try another node", bundle)
    return _not_mirrored(request, config, view, live, bundle)


def _not_mirrored(request: RequestSummary, config: RoutingConfig, view: ClusterView,
                  live: list[bytes], bundle: bool) -> RoutingDecision:
    """Apply the cluster's configured choice for an entity mirrored only elsewhere."""
    check_first = config.security is SecurityOrder.CHECK_BEFORE_REDIRECT
    choice = config.not_mirrored
    if choice is NotMirroredChoice.RUN_WITH_REMOTE_STATE:
        return RunWithRemoteState(pick_stable(request.request_id, live), bundle)
    if choice is NotMirroredChoice.REDIRECT and request.arrived_via is not Path.INTRA_CLUSTER:
        public = [n for n in live if view.nodes[n].public_address is not None]
        if public:
            chosen = pick_stable(request.request_id, public)
            address = view.nodes[chosen].public_address
            assert address is not None
            return RedirectTo(chosen, address, check_first, bundle)
    if request.forward_hops >= config.max_forward_hops:
        return Refuse(ErrorCode.FORWARD_HOPS_EXCEEDED,
                      f"request already forwarded {request.forward_hops} times; not "
                      "forwarding again (cluster views disagree; retry shortly)", bundle)
    return ForwardTo(pick_stable(request.request_id, live), check_first, bundle)


def live_mirrors(view: ClusterView, mirrors: Iterable[bytes]) -> list[bytes]:
    """The nodes of `mirrors` membership currently sees alive, in byte order of node id."""
    return sorted(n for n in mirrors if n in view.nodes and view.nodes[n].alive)


def pick_stable(request_id: bytes, candidates: list[bytes]) -> bytes:
    """Stable choice: the same request ID always lands on the same candidate."""
    digest = hashlib.sha256(request_id).digest()
    return candidates[int.from_bytes(digest[:4], "big") % len(candidates)]


def _show(entity: bytes) -> str:
    """Entity local part for messages, truncated so a hostile name cannot bloat a reply."""
    text = entity[:MAX_SHOWN_ENTITY].decode("utf-8", "backslashreplace")
    return repr(text + ("..." if len(entity) > MAX_SHOWN_ENTITY else ""))
