"""What the admin interface reads of a running node: a narrow, read-only view.

The admin modules (admin_http, node_status, node_collector) are typed against this
protocol rather than NodeRuntime, which starts the admin server: so they depend on the
parts they read, not on the runtime, and the runtime can import them without a cycle.
NodeRuntime satisfies it (mypy checks that where the runtime hands itself over).
"""

from __future__ import annotations

from typing import Protocol

from lithium.invoke import Invoker
from mercury_rt.aio.endpoint import TransportEndpoint
from mercury_rt.aio.membership_service import MembershipService
from mercury_rt.aio.node_metrics import NodeMetrics
from mercury_rt.aio.transit_host import NodeTransit
from mercury_rt.core.node import HeldQueue, NodeCore
from mercury_rt.core.routing import ClusterView


class ObservedSpec(Protocol):
    """The part of a node's spec the status reads: the configured view."""

    @property
    def view(self) -> ClusterView:
        """The cluster view the node was configured with (every configured node)."""
        ...


class ObservedNode(Protocol):
    """The parts of a running node its admin interface reads (on the node's loop)."""

    @property
    def spec(self) -> ObservedSpec:
        """What the node was built from."""
        ...

    @property
    def core(self) -> NodeCore:
        """The node core: state, view, verifier, counters."""
        ...

    @property
    def transit(self) -> NodeTransit:
        """Transit keys and responders."""
        ...

    @property
    def held(self) -> HeldQueue:
        """Held one-way messages."""
        ...

    @property
    def metrics(self) -> NodeMetrics:
        """The request-path counters."""
        ...

    @property
    def membership(self) -> MembershipService | None:
        """The membership service, once started."""
        ...

    @property
    def invoker(self) -> Invoker | None:
        """LITHIUM's invoker, once started."""
        ...

    @property
    def inter(self) -> TransportEndpoint | None:
        """The inter-cluster endpoint, once bound."""
        ...

    @property
    def intra(self) -> TransportEndpoint | None:
        """The intra-cluster endpoint, once bound."""
        ...

    def cache_sizes(self) -> dict[str, int]:
        """Entries in the runtime's own caches."""
        ...

    def mirror_cache_counters(self) -> dict[str, int]:
        """The mirror cache's counters (reads from it, full reads...); empty without
        replication."""
        ...
