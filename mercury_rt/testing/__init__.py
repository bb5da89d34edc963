"""TODO face.
"""

from mercury_rt.testing.network import (
    LinkProfile,
    SimNetwork,
    TransportHost,
)
from mercury_rt.testing.nodes import (
    Executions,
    SimNode,
    SimNodeSpec,
)

__all__ = [
    "Executions",
    "LinkProfile",
    "SimNetwork",
    "SimNode",
    "SimNodeSpec",
    "TransportHost",
]
