"""From a validated node config to a running node's parts (keys, state, policy, apps)."""

from __future__ import annotations

from pathlib import Path

import structlog

from carbon.protocol_spec import SpecRegistry
from lithium import HandlerRegistry
from lithium.invoke import InvokeLimits
from mercury_rt.aio.node_runtime import NodeSpec
from mercury_rt.apps import NodeApp, load_apps
from mercury_rt.config import keyfiles
from mercury_rt.config.admin import admin_settings
from mercury_rt.config.etcd_tls import replication_settings
from mercury_rt.config.mint_defaults import load_mint_defaults
from mercury_rt.config.node import NodeConfig
from mercury_rt.config.published import FileVersionSink, load_live
from mercury_rt.config.stores import delivered_store, held_store, spent_store
from mercury_rt.core.identity import ClusterId
from mercury_rt.core.identity.live import HISTORY
from mercury_rt.core.membership import PublicAddress
from mercury_rt.core.node import MembershipSettings
from mercury_rt.core.routing import ClusterView, NodeInfo, ProximityRule
from policy.load import load_policy, parse_policy
from policy.model import Policy
from tungsten.etcd_store import EtcdSettings
from tungsten.store import LmdbStore

OPEN_POLICY = "version: 1\nlevels: [public]\nunknown_cluster_clearance: public\n"
_log = structlog.get_logger("mercury_rt.node")


def build_node_spec(config: NodeConfig) -> NodeSpec:
    """Everything NodeRuntime needs, from a config that `load_node_config` accepted."""
    cluster_key, _ = keyfiles.load_cluster_key(config.cluster_dir)
    history = _resumed_history(config)
    admin = admin_settings(config)  # reads the token file: before the store is opened
    replication = _replication(config)  # reads the TLS files: before the store, too
    store = LmdbStore(config.state_dir)
    registry, specs = HandlerRegistry(), SpecRegistry()
    try:
        load_apps(config.apps, NodeApp(config.node_id, tuple(config.mirrors), registry, specs,
                                       store), config.app_paths)
        cache_store = None if config.replication is None \
            else LmdbStore(config.state_dir / "etcd-cache")
    except BaseException:
        store.close()  # the node will not start: release the LMDB environment
        raise
    listen = config.listen
    return NodeSpec(
        node_id=config.node_id.encode(), cluster_key=cluster_key, cluster_ids=history,
        host=listen.host, inter_port=listen.inter_port, intra_port=listen.intra_port,
        routing=config.cluster.routing.to_config(), view=_view(config, history[-1].version),
        intra_addresses={p.node_id.encode(): p.intra_address for p in config.peers},
        policy=_policy(config.policy), store=store, registry=registry, specs=specs,
        transport=config.limits.transport.apply(config.transport.to_config()),
        signature_budget=config.limits.signatures.to_settings(),
        invoke_limits=InvokeLimits(timeout=config.handlers.timeout),
        spent=spent_store(store, config.gate.spent_store_limit), held_store=held_store(store),
        delivered=delivered_store(store, config.delivered.limit),
        delivered_settings=config.delivered.to_settings(),
        connection_limits=config.connections.to_limits(), audit_file=config.log.audit_file,
        proximity=ProximityRule((listen.ip,)) if config.cluster.routing.prefer_near else None,
        membership=MembershipSettings(
            public=_own_public(config),
            lease_ttl=5 if config.replication is None else config.replication.member_ttl),
        moves=config.moves(),
        owns_store=True,
        admin=admin,
        mint_defaults=load_mint_defaults(config.cluster_dir),
        version_sink=FileVersionSink(config.node_id, config.state_dir, config.cluster_dir),
        replication=replication,
        mirror_cache_store=cache_store)


def _resumed_history(config: NodeConfig) -> list[ClusterId]:
    """The cluster directory's history, plus the highest verified version any node
    recorded (this node's state_dir, the cluster directory's published/): a restarted
    node resumes there, so it never issues a number the cluster already used."""
    seen = load_live(config.cluster_dir, (config.state_dir,))
    for ignored in seen.live.ignored:
        _log.warning("published_version_ignored", source=ignored.source,
                     code=ignored.code.value, reason=ignored.reason)
    if seen.live.source != HISTORY:
        _log.info("cluster_id_resumed", version=seen.live.cluster_id.version,
                  source=seen.live.source)
    return list(seen.live.history)


def _replication(config: NodeConfig) -> EtcdSettings | None:
    """The etcd adapter's settings from the `replication:` section, if there is one (its
    TLS files read now: before the store is opened, like the admin token)."""
    return None if config.replication is None else replication_settings(config.replication)


def _own_public(config: NodeConfig) -> tuple[PublicAddress, ...]:
    """What this node announces as its public addresses: its `public` entry, or nothing.

    Stated explicitly because membership's own guess (the bound inter-cluster address) is
    wrong for a node behind NAT or bound to 0.0.0.0 / :: (its real public address would be
    dropped from the next cluster-ID version) and for a node without `public` (its
    internal address would be published).
    """
    address = config.self_peer.public_address
    return () if address is None else (
        PublicAddress(address.host, address.port, address.priority, address.weight),)


def _view(config: NodeConfig, version: int) -> ClusterView:
    nodes = {p.node_id.encode(): NodeInfo(p.node_id.encode(), True, p.public_address)
             for p in config.cluster.nodes}
    mirrors = {entity.encode(): frozenset(p.node_id.encode() for p in config.mirrors_of(entity))
               for entity in config.entities()}
    return ClusterView(config.node_id.encode(), version, nodes, mirrors, {})


def _policy(path: Path | None) -> Policy:
    if path is None:
        _log.warning("no_policy_configured", effect="every caller is cleared at level public")
        return parse_policy(OPEN_POLICY, "<open policy>")
    return load_policy(path)
