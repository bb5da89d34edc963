"""The node's YAML configuration: who this node is, where it listens, what it mirrors.

Read by mercury_rt.config.load through policy.yaml_source, so every problem is reported as
`file:line: key.path: what` like the policy file, and all problems are reported at once
(an operator fixing a config one error per restart is an operator who gives up). Models are
frozen and forbid unknown keys, so a misspelt key is an error instead of a silently ignored
setting.

Addresses are kept as the operator's text (validated), and parsed by accessors, so the
model round-trips to YAML and error messages quote what was written. Relative paths are
resolved against the config file's directory, so a config works from any working directory.
Cross-field rules (this node is listed, ids and addresses are unique, ...) and the cluster
directory check live in mercury_rt.config.checks.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import replace
from ipaddress import IPv4Address, IPv6Address
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from carbon.error_codes import MercuryError
from mercury_rt.config.replication import ReplicationConfig
from mercury_rt.core.connections import ConnectionLimits
from mercury_rt.core.gate import BudgetSettings
from mercury_rt.core.identity import Eid, IdentityError, ServerAddress, eid_from_text, eid_to_text
from mercury_rt.core.node import DeliveredSettings
from mercury_rt.core.routing import NotMirroredChoice, RoutingConfig, SecurityOrder
from mercury_rt.core.transport import TransportConfig

MAX_NODES = 1024
MAX_MIRRORS = 100_000
MAX_LOCAL_BYTES = 255
_NODE_ID = re.compile(r"[a-z0-9][a-z0-9-]{0,62}\Z")
_TRANSPORT_DEFAULTS = TransportConfig()


def _node_id(text: str) -> str:
    if not _NODE_ID.match(text):
        raise ValueError(f"node id {text!r} must be 1-63 of a-z 0-9 - starting with a letter "
                         "or digit, e.g. node-a")
    return text


def _host(text: str) -> str:
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        raise ValueError(f"{text!r} is not an IPv4 or IPv6 address (host names are not "
                         "accepted: a node binds to an address)") from None


def _entity_local(text: str) -> str:
    size = len(text.encode())
    if not 1 <= size <= MAX_LOCAL_BYTES:
        raise ValueError(f"entity local part is {size} bytes in UTF-8; must be "
                         f"1..{MAX_LOCAL_BYTES}")
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in text):
        raise ValueError(f"entity local part {text!r} contains control characters")
    return text


def parse_host_port(text: str) -> tuple[str, int]:
    """Parse `host:port` (IPv6 in brackets: `[::1]:7000`) into (address text, port 1..65535)."""
    host_text, sep, port_text = text.rpartition(":")
    if not sep:
        raise ValueError(f"{text!r}: expected host:port, e.g. 127.0.0.1:7501 or [::1]:7501")
    if host_text.startswith("[") and host_text.endswith("]"):
        host_text = host_text[1:-1]
    elif ":" in host_text:
        raise ValueError(f"{text!r}: put an IPv6 host in brackets, e.g. [::1]:7501")
    host = _host(host_text)
    if not (port_text.isascii() and port_text.isdigit()) or not 1 <= int(port_text) <= 65_535:
        raise ValueError(f"{text!r}: port must be 1..65535")
    return host, int(port_text)


def format_host_port(host: str, port: int) -> str:
    """The inverse of parse_host_port."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _intra(text: str) -> str:
    return format_host_port(*parse_host_port(text))


def _public(text: str) -> str:
    try:
        return str(ServerAddress.parse(text))
    except IdentityError as exc:
        raise ValueError(exc.message) from None


def _eid_text(text: str) -> str:
    try:
        return eid_to_text(Eid.decode(eid_from_text(text)))
    except MercuryError as exc:
        raise ValueError(f"not an EID: {exc.message}") from None


NodeId = Annotated[str, AfterValidator(_node_id)]
Host = Annotated[str, AfterValidator(_host)]
EntityLocal = Annotated[str, AfterValidator(_entity_local)]
Mirrors = Annotated[list[EntityLocal], Field(max_length=MAX_MIRRORS)]
Port = Annotated[int, Field(ge=0, le=65_535, strict=True)]
Seconds = Annotated[float, Field(gt=0, le=86_400, strict=True)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Listen(_Strict):
    """Where this node listens. Port 0 means "any free port" and is meant for tests."""

    host: Host
    inter_port: Port
    intra_port: Port

    @property
    def ip(self) -> IPv4Address | IPv6Address:
        """The listen host as an address object."""
        return ipaddress.ip_address(self.host)


class PeerNode(_Strict):
    """One node of the cluster as every node sees it (the same list on every node)."""

    node_id: NodeId
    intra: Annotated[str, AfterValidator(_intra)]
    public: Annotated[str, AfterValidator(_public)] | None = None
    mirrors: Mirrors = []

    @property
    def intra_address(self) -> tuple[str, int]:
        """(host, port) of the node's intra-cluster socket."""
        return parse_host_port(self.intra)

    @property
    def public_address(self) -> ServerAddress | None:
        """The node's inter-cluster address as published in the cluster ID, if public."""
        return None if self.public is None else ServerAddress.parse(self.public)


class RoutingSettings(_Strict):
    """The cluster's routing choices; see the operator guide, "Running nodes"."""

    not_mirrored: Literal["redirect", "forward", "remote-state"] = "forward"
    security: Literal["check-before-redirect", "redirect-first"] = "check-before-redirect"
    max_forward_hops: Annotated[int, Field(ge=0, le=16, strict=True)] = 1
    prefer_near: Annotated[bool, Field(strict=True)] = False
    """Calling other clusters, favour their nodes that share a long address prefix with
    this node (a /24 for IPv4, a /48 for IPv6; weight x 4; priorities unchanged)."""

    def to_config(self) -> RoutingConfig:
        """The routing core's settings object."""
        return RoutingConfig(NotMirroredChoice(self.not_mirrored),
                             SecurityOrder(self.security), self.max_forward_hops)


class ClusterNodes(_Strict):
    """Every node of the cluster and the cluster-wide routing settings."""

    nodes: Annotated[list[PeerNode], Field(min_length=1, max_length=MAX_NODES)]
    routing: RoutingSettings = RoutingSettings()


class TransportSettings(_Strict):
    """The transport tunables an operator may change (times in seconds, sizes in bytes)."""

    initial_rto: Seconds = _TRANSPORT_DEFAULTS.initial_rto
    min_rto: Seconds = _TRANSPORT_DEFAULTS.min_rto
    max_rto: Seconds = _TRANSPORT_DEFAULTS.max_rto
    default_timeout: Seconds = _TRANSPORT_DEFAULTS.default_timeout
    reassembly_timeout: Seconds = _TRANSPORT_DEFAULTS.reassembly_timeout
    max_message: Annotated[int, Field(ge=1024, le=2**32 - 1, strict=True)] = \
        _TRANSPORT_DEFAULTS.max_message
    max_datagram: Annotated[int, Field(ge=512, le=65_000, strict=True)] = \
        _TRANSPORT_DEFAULTS.max_datagram
    amplification_factor: Annotated[int, Field(ge=1, le=100, strict=True)] = \
        _TRANSPORT_DEFAULTS.amplification_factor

    @model_validator(mode="after")
    def _consistent(self) -> TransportSettings:
        self.to_config()  # TransportConfig's own rules (rto order, reassembly vs max_rto)
        return self

    def to_config(self) -> TransportConfig:
        """The transport's settings object; other tunables keep their defaults."""
        return TransportConfig(
            max_datagram=self.max_datagram, max_message=self.max_message,
            initial_rto=self.initial_rto, min_rto=self.min_rto, max_rto=self.max_rto,
            default_timeout=self.default_timeout, reassembly_timeout=self.reassembly_timeout,
            amplification_factor=self.amplification_factor)


class GateSettings(_Strict):
    """Security-gate resources: how many spent hashcash stamps are remembered at most."""

    spent_store_limit: Annotated[int, Field(ge=1, le=100_000_000, strict=True)] = 1_000_000


class DeliveredConfig(_Strict):
    """The store of one-way message ids this node ran (exactly-once delivery): its bound,
    the share one source cluster may fill, and how long an id is kept (by default the
    held-message lifetime: senders retry a held message until then, never after)."""

    limit: Annotated[int, Field(ge=1, le=100_000_000, strict=True)] = \
        DeliveredSettings().limit
    per_cluster: Annotated[int, Field(ge=1, le=100_000_000, strict=True)] | None = None
    """None: a tenth of `limit` (at least 1)."""
    retention_seconds: Annotated[float, Field(ge=60, le=366 * 86_400, strict=True)] | None = \
        None

    @model_validator(mode="after")
    def _share_within_limit(self) -> DeliveredConfig:
        if self.per_cluster is not None and self.per_cluster > self.limit:
            raise ValueError(f"per_cluster ({self.per_cluster}) is above limit ({self.limit})")
        return self

    def to_settings(self) -> DeliveredSettings:
        """The node core's settings object."""
        retention = self.retention_seconds or DeliveredSettings().retention
        share = self.per_cluster or max(1, self.limit // 10)
        return DeliveredSettings(self.limit, share, retention)


_BUDGET_DEFAULTS = BudgetSettings()
Rate = Annotated[float, Field(gt=0, le=10_000_000, strict=True)]
Burst = Annotated[float, Field(ge=10, le=100_000_000, strict=True)]
"""At least 10 checks: a request from a new cluster costs up to 5, so a smaller bucket
would never let one through."""
Count = Annotated[int, Field(ge=1, le=100_000_000, strict=True)]
Size = Annotated[int, Field(ge=65_536, le=2**40, strict=True)]


class SignatureLimits(_Strict):
    """The signature budget (protocol.md 7.1): how many signature checks a second the
    requests of strangers may cost this node, per sending address, per source cluster and
    for all strangers together, before it demands a hashcash stamp instead."""

    strangers_rate: Rate = _BUDGET_DEFAULTS.rate
    strangers_burst: Burst = _BUDGET_DEFAULTS.burst
    address_rate: Rate = _BUDGET_DEFAULTS.address_rate
    address_burst: Burst = _BUDGET_DEFAULTS.address_burst
    cluster_rate: Rate = _BUDGET_DEFAULTS.cluster_rate
    cluster_burst: Burst = _BUDGET_DEFAULTS.cluster_burst
    demand_bits: Annotated[int, Field(ge=1, le=30, strict=True)] = _BUDGET_DEFAULTS.demand_bits
    tracked: Count = _BUDGET_DEFAULTS.tracked

    def to_settings(self) -> BudgetSettings:
        """The gate's settings object."""
        return BudgetSettings(self.strangers_rate, self.strangers_burst, self.address_rate,
                              self.address_burst, self.cluster_rate, self.cluster_burst,
                              self.demand_bits, self.tracked)


class TransportLimits(_Strict):
    """What peers can make the transport hold (protocol.md 3.4, 3.7): the tables a
    stranger could otherwise fill, each with its per-address share."""

    max_peers: Count = _TRANSPORT_DEFAULTS.max_peers
    max_epochs_per_peer: Annotated[int, Field(ge=1, le=4096, strict=True)] = \
        _TRANSPORT_DEFAULTS.max_epochs_per_peer
    max_epochs_per_host: Count = _TRANSPORT_DEFAULTS.max_epochs_per_host
    max_records: Count = _TRANSPORT_DEFAULTS.max_records
    max_records_per_peer: Count = _TRANSPORT_DEFAULTS.max_records_per_peer
    max_cached_reply_bytes: Size = _TRANSPORT_DEFAULTS.max_cached_reply_bytes
    max_reply_bytes_per_peer: Size = _TRANSPORT_DEFAULTS.max_reply_bytes_per_peer
    max_reassemblies_per_peer: Annotated[int, Field(ge=1, le=4096, strict=True)] = \
        _TRANSPORT_DEFAULTS.max_reassemblies_per_peer
    max_reassembly_bytes: Size = _TRANSPORT_DEFAULTS.max_reassembly_bytes
    max_reassembly_bytes_per_peer: Size = _TRANSPORT_DEFAULTS.max_reassembly_bytes_per_peer
    max_validated_addresses: Count = _TRANSPORT_DEFAULTS.max_validated_addresses
    max_address_accounts: Count = _TRANSPORT_DEFAULTS.max_address_accounts

    @model_validator(mode="after")
    def _shares_within_totals(self) -> TransportLimits:
        pairs = (("max_epochs_per_peer", "max_epochs_per_host"),
                 ("max_records_per_peer", "max_records"),
                 ("max_reply_bytes_per_peer", "max_cached_reply_bytes"),
                 ("max_reassembly_bytes_per_peer", "max_reassembly_bytes"))
        for share, total in pairs:
            if getattr(self, share) > getattr(self, total):
                raise ValueError(f"{share} ({getattr(self, share)}) is above {total} "
                                 f"({getattr(self, total)})")
        return self

    def apply(self, config: TransportConfig) -> TransportConfig:
        """`config` with these bounds; a call's span shrinks with the per-address record
        share (a peer with the same settings must accept our calls)."""
        fields = self.model_dump()
        return replace(config, **fields,
                       max_call_span=min(config.max_call_span, self.max_records_per_peer))


class LimitsSettings(_Strict):
    """How much work and memory strangers can make this node spend (issue 17)."""

    signatures: SignatureLimits = SignatureLimits()
    transport: TransportLimits = TransportLimits()


class LogSettings(_Strict):
    """Log verbosity, format and the optional audit log file (JSON lines)."""

    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["console", "json"] = "console"
    """console: one readable line per event; json: one JSON object per line (collectors)."""
    audit_file: Path | None = None


class ConnectionBounds(_Strict):
    """What peers can make this node hold in connections it serves (docs/protocol.md 5.9):
    each bound refused with its own code (447 in all, 448 per entity, 449 per peer)."""

    max_total: Annotated[int, Field(ge=1, le=10_000_000, strict=True)] = \
        ConnectionLimits().total
    max_per_entity: Annotated[int, Field(ge=1, le=10_000_000, strict=True)] = \
        ConnectionLimits().per_entity
    max_per_peer: Annotated[int, Field(ge=1, le=10_000_000, strict=True)] = \
        ConnectionLimits().per_peer
    """Connections one peer entity holds to all entities of this node."""
    idle_timeout: Annotated[float, Field(ge=1, le=30 * 86_400, strict=True)] = \
        ConnectionLimits().idle_timeout
    """Seconds without a use after which a served connection is swept."""
    reservable: Annotated[int, Field(ge=0, le=10**12, strict=True)] = \
        ConnectionLimits().reservable
    """Bytes per second this node grants to all reservations together."""

    @model_validator(mode="after")
    def _shares_within_total(self) -> ConnectionBounds:
        for name in ("max_per_entity", "max_per_peer"):
            if getattr(self, name) > self.max_total:
                raise ValueError(f"{name} ({getattr(self, name)}) is above max_total "
                                 f"({self.max_total})")
        return self

    def to_limits(self) -> ConnectionLimits:
        """The node core's bounds object."""
        return ConnectionLimits(self.max_total, self.max_per_entity, self.max_per_peer,
                                self.idle_timeout, self.reservable)


class HandlerSettings(_Strict):
    """Bounds on this node's handlers (see the developer guide, "Rules worth knowing")."""

    timeout: Annotated[float, Field(gt=0, le=3_600, strict=True)] = 5.0
    """Seconds a handler may run before the caller gets HANDLER_TIMEOUT (a call's own,
    shorter deadline still wins)."""


class AdminConfig(_Strict):
    """The node's admin HTTP interface (/metrics, /healthz, /readyz, /status).

    Port 0 (the default) takes any free port and writes it to `state_dir/admin.json`,
    where `mercury-rt node status` finds it; give a port for Prometheus to scrape. A
    `host` that is not a loopback address needs `token_file` (config/admin.py checks it).
    """

    enabled: Annotated[bool, Field(strict=True)] = True
    host: Host = "127.0.0.1"
    port: Port = 0
    token_file: Path | None = None
    """A file (mode 0600) holding the bearer token every request must present."""


_MODULE_NAME = r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$"


def app_search_path(app_paths: list[Path], base: Path) -> list[Path]:
    """Where apps are looked for: each of `app_paths` (relative ones under `base`, the config
    file's folder), then `base` itself, without repeats."""
    folders = [p if p.is_absolute() else base / p for p in app_paths]
    return list(dict.fromkeys([*folders, base]))


class NodeConfig(_Strict):
    """One node's configuration file. Load with `load_node_config` (resolves paths)."""

    node_id: NodeId
    cluster_dir: Path
    state_dir: Path
    policy: Path | None = None
    listen: Listen
    mirrors: Mirrors = []
    cluster: ClusterNodes
    transport: TransportSettings = TransportSettings()
    gate: GateSettings = GateSettings()
    delivered: DeliveredConfig = DeliveredConfig()
    limits: LimitsSettings = LimitsSettings()
    log: LogSettings = LogSettings()
    handlers: HandlerSettings = HandlerSettings()
    connections: ConnectionBounds = ConnectionBounds()
    admin: AdminConfig = AdminConfig()
    replication: ReplicationConfig | None = None
    """etcd for mirrored state (config/replication.py); absent: LMDB only."""
    apps: list[Annotated[str, Field(pattern=_MODULE_NAME)]] = []
    """Python modules with setup(app) serving this node's entities (mercury_rt.apps)."""
    app_paths: Annotated[list[Path], Field(max_length=64)] = []
    """Folders searched for `apps` (relative to the config file), before the config file's
    own folder and the installed packages."""

    moved: Annotated[dict[EntityLocal, Annotated[str, AfterValidator(_eid_text)]],
                     Field(max_length=MAX_MIRRORS)] = {}
    """Entities migrated to another cluster: local name -> new EID (meid1...). Kept in
    the node's state once seen, like `entity migrate`; applied live on reload."""

    def moves(self) -> tuple[tuple[bytes, bytes], ...]:
        """`moved` as (local part, encoded new EID) pairs."""
        return tuple((local.encode(), Eid.decode(eid_from_text(text)).encode())
                     for local, text in sorted(self.moved.items()))

    @property
    def self_peer(self) -> PeerNode:
        """This node's own entry in `cluster.nodes` (validated to exist)."""
        return next(n for n in self.cluster.nodes if n.node_id == self.node_id)

    @property
    def peers(self) -> tuple[PeerNode, ...]:
        """The other nodes of the cluster, in the order given."""
        return tuple(n for n in self.cluster.nodes if n.node_id != self.node_id)

    def public_addresses(self) -> tuple[ServerAddress, ...]:
        """The cluster's inter-cluster addresses (nodes with `public`), in the order given."""
        return tuple(a for n in self.cluster.nodes if (a := n.public_address) is not None)

    def mirrors_of(self, entity: str) -> tuple[PeerNode, ...]:
        """Every node that mirrors `entity` (this node included), in the order given."""
        return tuple(n for n in self.cluster.nodes if entity in n.mirrors)

    def entities(self) -> frozenset[str]:
        """Every entity some node of the cluster mirrors."""
        return frozenset(e for n in self.cluster.nodes for e in n.mirrors)

    def resolved(self, base: Path) -> NodeConfig:
        """A copy whose relative paths are taken relative to `base` (the config's folder);
        `app_paths` becomes the whole app search path, ending with `base` itself."""
        def at(path: Path) -> Path:
            return path if path.is_absolute() else base / path
        log = self.log.model_copy(update={"audit_file": None if self.log.audit_file is None
                                          else at(self.log.audit_file)})
        admin = self.admin.model_copy(update={
            "token_file": None if self.admin.token_file is None else at(self.admin.token_file)})
        return self.model_copy(update={
            "cluster_dir": at(self.cluster_dir), "state_dir": at(self.state_dir),
            "policy": None if self.policy is None else at(self.policy), "log": log,
            "admin": admin,
            "replication": None if self.replication is None
            else self.replication.resolved(base),
            "app_paths": app_search_path(self.app_paths, base)})
