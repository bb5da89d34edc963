"""What `mercury-rt node status|members` and /readyz report: a typed snapshot of a node.

Built on the event loop from the node's own state (nothing here does I/O), then handed to
the admin server's thread as a frozen value and sent as JSON. `from_json` reads it back
with every field checked, so the CLI prints what the node said or a clear error, never a
traceback about a missing key.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypeVar

from mercury_rt.aio.node_view import ObservedNode
from mercury_rt.core.identity import format_endpoint
from mercury_rt.core.membership import NodeStatus
from mercury_rt.core.transport import Addr

T = TypeVar("T")
LOCAL = "self"
UNHEARD = "unheard"
"""A configured node this node has never had a heartbeat from."""


class StatusFormatError(ValueError):
    """A status document that is not what a node sends (another program on the port?)."""


@dataclass(frozen=True, slots=True)
class Readiness:
    """The conditions /readyz requires: all must hold for the node to take traffic."""

    keys_loaded: bool
    sockets_bound: bool
    membership_settled: bool
    not_draining: bool = True
    """False from the moment a drain starts (the node is leaving: a load balancer or
    orchestrator should send it nothing new, even while it still answers)."""

    @property
    def ready(self) -> bool:
        """Whether every condition holds."""
        return (self.keys_loaded and self.sockets_bound and self.membership_settled
                and self.not_draining)

    def to_json(self) -> dict[str, Any]:
        """The JSON form (the four flags and `ready`)."""
        return {"ready": self.ready, "keys_loaded": self.keys_loaded,
                "sockets_bound": self.sockets_bound,
                "membership_settled": self.membership_settled,
                "not_draining": self.not_draining}

    @classmethod
    def from_json(cls, value: object) -> Readiness:
        """Parse the JSON form (a node from before `not_draining` existed omits it: such
        a node never said it was draining)."""
        doc = _object(value, "ready")
        return cls(_bool(doc, "keys_loaded"), _bool(doc, "sockets_bound"),
                   _bool(doc, "membership_settled"),
                   _bool(doc, "not_draining") if "not_draining" in doc else True)


@dataclass(frozen=True, slots=True)
class MemberStatus:
    """One configured node of the cluster as this node sees it.

    `liveness` is membership's verdict (alive, suspect, dead; `self`; `unheard`), `routed`
    whether routing sends requests to it now, `last_heard` seconds since its last
    heartbeat.
    """

    node_id: str
    liveness: str
    routed: bool
    public: str | None
    intra: str | None
    last_heard: float | None
    incarnation: int | None

    def to_json(self) -> dict[str, Any]:
        """The JSON form."""
        return {"node_id": self.node_id, "liveness": self.liveness, "routed": self.routed,
                "public": self.public, "intra": self.intra, "last_heard": self.last_heard,
                "incarnation": self.incarnation}

    @classmethod
    def from_json(cls, value: object) -> MemberStatus:
        """Parse the JSON form."""
        doc = _object(value, "member")
        return cls(_str(doc, "node_id"), _str(doc, "liveness"), _bool(doc, "routed"),
                   _optional(doc, "public", str), _optional(doc, "intra", str),
                   _optional(doc, "last_heard", float), _optional(doc, "incarnation", int))


@dataclass(frozen=True, slots=True)
class NodeStatusReport:
    """A running node: who it is, its cluster ID, its members, what it holds."""

    node_id: str
    cluster: str
    """The cluster's master hash, hex."""
    cluster_id_version: int
    published: tuple[str, ...]
    """The cluster ID's inter-cluster addresses, host:port/priority/weight."""
    inter: str | None
    intra: str | None
    uptime: float
    readiness: Readiness
    members: tuple[MemberStatus, ...]
    held_pending: int
    sessions: int
    entities: int
    """Entities this node mirrors."""

    def to_json(self) -> dict[str, Any]:
        """The JSON form served at /status."""
        return {"node_id": self.node_id, "cluster": self.cluster,
                "cluster_id_version": self.cluster_id_version,
                "published": list(self.published), "inter": self.inter, "intra": self.intra,
                "uptime": self.uptime, "ready": self.readiness.to_json(),
                "members": [m.to_json() for m in self.members],
                "held_pending": self.held_pending, "sessions": self.sessions,
                "entities": self.entities}

    @classmethod
    def from_json(cls, value: object) -> NodeStatusReport:
        """Parse /status; raises StatusFormatError naming the first bad field."""
        doc = _object(value, "status")
        members = doc.get("members")
        published = doc.get("published")
        if not isinstance(members, list) or not isinstance(published, list) \
                or not all(isinstance(p, str) for p in published):
            raise StatusFormatError("status: members and published must be lists")
        return cls(_str(doc, "node_id"), _str(doc, "cluster"),
                   _int(doc, "cluster_id_version"), tuple(published),
                   _optional(doc, "inter", str), _optional(doc, "intra", str),
                   _float(doc, "uptime"), Readiness.from_json(doc.get("ready")),
                   tuple(MemberStatus.from_json(m) for m in members),
                   _int(doc, "held_pending"), _int(doc, "sessions"), _int(doc, "entities"))


def readiness(node: ObservedNode) -> Readiness:
    """Whether `node` can take traffic: its cluster and transit keys are loaded, both UDP
    sockets are open, membership has settled (the warm-up passed, or every configured
    peer has been heard from alive), so its view of who serves what is not a guess, and
    it is not draining."""
    core = node.core
    cid = core.state.cluster_id
    keys = core.verifier.ring.certified(cid.master_hash, cid.cluster_key_hash) is not None
    sockets = all(e is not None and not e.closed.is_set() for e in (node.inter, node.intra))
    return Readiness(keys and node.transit.keys is not None, sockets, _settled(node),
                     not _draining(node))


def _draining(node: ObservedNode) -> bool:
    """Whether a drain has begun: membership stopped announcing the node (drain phase 1)
    or the node already turns requests away (phase 2; also set without membership)."""
    service = node.membership
    return node.core.draining or (service is not None and service.adapter.draining)


def _settled(node: ObservedNode) -> bool:
    service = node.membership
    if service is None:
        return False
    adapter = service.adapter
    peers = adapter.membership.peers
    configured = [n for n in node.spec.view.nodes if n != node.core.state.view.local_node]
    return adapter.warm or all(n in peers and peers[n].status is NodeStatus.ALIVE
                               for n in configured)


def node_status(node: ObservedNode, now: float, uptime: float) -> NodeStatusReport:
    """The status of `node` at loop time `now`, `uptime` seconds after it started."""
    core = node.core
    state = core.state
    view = state.view
    local = view.local_node
    return NodeStatusReport(
        node_id=_text(local), cluster=core.master_hash.hex(),
        cluster_id_version=state.cluster_id.version,
        published=tuple(str(a) for a in state.cluster_id.addresses),
        inter=_addr(node.inter.local_address) if node.inter is not None else None,
        intra=_addr(node.intra.local_address) if node.intra is not None else None,
        uptime=round(uptime, 3), readiness=readiness(node),
        members=members(node, now), held_pending=node.held.pending_count(),
        sessions=node.transit.inter.session_count + node.transit.intra.session_count,
        entities=sum(1 for nodes in view.mirrors.values() if local in nodes))


def members(node: ObservedNode, now: float) -> tuple[MemberStatus, ...]:
    """Every node of the view (configured or heard from), local node first, then by id."""
    view = node.core.state.view
    adapter = node.membership.adapter if node.membership is not None else None
    records = adapter.membership.peers if adapter is not None else {}
    intra = node.core.state.intra_addresses
    ids = sorted({*view.nodes, *records}, key=lambda n: (n != view.local_node, n))
    result = []
    for node_id in ids:
        info = view.nodes.get(node_id)
        record = records.get(node_id)
        if node_id == view.local_node:
            liveness = LOCAL
            address = node.intra.local_address if node.intra is not None else None
            incarnation = adapter.incarnation if adapter is not None else None
        else:
            liveness = record.status.value if record is not None else UNHEARD
            address = intra.get(node_id)
            incarnation = record.incarnation if record is not None else None
        public = info.public_address if info is not None else None
        result.append(MemberStatus(
            _text(node_id), liveness, info is not None and info.alive,
            format_endpoint(public) if public is not None else None,
            _addr(address) if address is not None else None,
            round(now - record.last_heard, 3) if record is not None else None, incarnation))
    return tuple(result)


def _text(node_id: bytes) -> str:
    return node_id.decode("utf-8", "backslashreplace")


def _addr(address: Addr) -> str:
    host, port = address
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _object(value: object, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise StatusFormatError(f"{what}: expected a JSON object")
    return value


def _str(doc: dict[str, Any], key: str) -> str:
    return _typed(doc, key, str)


def _bool(doc: dict[str, Any], key: str) -> bool:
    return _typed(doc, key, bool)


def _int(doc: dict[str, Any], key: str) -> int:
    value = doc.get(key)
    if isinstance(value, bool) or not isinstance(value, int):
        raise StatusFormatError(f"status field {key!r} must be an integer")
    return value


def _float(doc: dict[str, Any], key: str) -> float:
    value = doc.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise StatusFormatError(f"status field {key!r} must be a number")
    return float(value)


def _typed(doc: dict[str, Any], key: str, kind: type[T]) -> T:
    value = doc.get(key)
    if not isinstance(value, kind):
        raise StatusFormatError(f"status field {key!r} must be a {kind.__name__}")
    return value


def _optional(doc: dict[str, Any], key: str, kind: type[T]) -> T | None:
    if doc.get(key) is None:
        return None
    if kind is float:
        return _float(doc, key)  # type: ignore[return-value]
    if kind is int:
        return _int(doc, key)  # type: ignore[return-value]
    return _typed(doc, key, kind)
