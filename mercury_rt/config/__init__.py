"""A node's configuration, from the operator's files to the parts a running node is built of.

This package is shell-side: it reads files, and may use yaml, pydantic and LMDB; the pure
core never imports it. Every rule about a node's files lives here:
  node      the config model: each key's type, range and default (NodeConfig and parts)
  checks    rules spanning several keys, and the files a config names (cluster directory,
            policy): NodeConfigChecker, cluster_dir_problem
  load      reading a config file or text: the model's rules, then the checks, all problems
            at once (load_node_config, parse_node_config)
  build     from a loaded config to a NodeSpec: keys, state store, policy, apps
  keyfiles  the only module that reads or writes key files (master.key, cluster.key,
            cluster-ids.cbor), with their permissions
  sealed_master  a passphrase-encrypted master.key (scrypt, encrypted PKCS#8)
  mint_defaults  the cluster directory's mint-defaults.yaml: the form of the cluster's EIDs
  srv       a server list from DNS SRV records (dnspython), for the cluster CLI verbs
  stores    tungsten's durable stores adapted to the core's store protocols
  replication  the `replication:` section (etcd endpoints, TLS file names, bounds)
  etcd_tls  its safety rules: TLS files that load (checked at their lines), no plaintext
            to an endpoint off this machine unless allowed
The dependencies point one way: node <- checks <- load, and build uses node, keyfiles and
stores; nothing here imports `load` or `build` back.
"""

from mercury_rt.config.build import (
    OPEN_POLICY,
    build_node_spec,
)
from mercury_rt.config.checks import (
    NodeConfigChecker,
)
from mercury_rt.config.load import (
    load_node_config,
    parse_node_config,
)
from mercury_rt.config.node import (
    DeliveredConfig,
    GateSettings,
    LimitsSettings,
    Listen,
    LogSettings,
    NodeConfig,
    PeerNode,
    RoutingSettings,
    SignatureLimits,
    TransportLimits,
    TransportSettings,
    format_host_port,
    parse_host_port,
)
from mercury_rt.config.stores import (
    DurableSpentStore,
    delivered_store,
    held_store,
    spent_store,
)

__all__ = [
    "OPEN_POLICY",
    "DeliveredConfig",
    "DurableSpentStore",
    "GateSettings",
    "LimitsSettings",
    "Listen",
    "LogSettings",
    "NodeConfig",
    "NodeConfigChecker",
    "PeerNode",
    "RoutingSettings",
    "SignatureLimits",
    "TransportLimits",
    "TransportSettings",
    "build_node_spec",
    "delivered_store",
    "format_host_port",
    "held_store",
    "load_node_config",
    "parse_host_port",
    "parse_node_config",
    "spent_store",
]
