"""TODO face.
"""

from mercury_rt.config.build import (
    OPEN_POLICY,
    build_node_spec,
)
from mercury_rt.config.checks import (
    NodeConfigChecker,
)
from mercury_rt.config.node import (
    GateSettings,
    Listen,
    LogSettings,
    NodeConfig,
    PeerNode,
    RoutingSettings,
    TransportSettings,
    format_host_port,
    load_node_config,
    parse_host_port,
    parse_node_config,
)
from mercury_rt.config.stores import (
    DurableSpentStore,
    delivered_store,
    held_store,
    spent_store,
)

__all__ = [
    "OPEN_POLICY",
    "DurableSpentStore",
    "GateSettings",
    "Listen",
    "LogSettings",
    "NodeConfig",
    "NodeConfigChecker",
    "PeerNode",
    "RoutingSettings",
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
