"""What node membership takes and gives: settings, messages to send, events to report.

Kept apart from membership.py so the shell and tests can name these without the
adapter, and the adapter module stays about behaviour.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from carbon.error_codes import ErrorCode
from mercury_rt.core.identity import ClusterId, EndpointKey, ServerAddress
from mercury_rt.core.membership import (
    MembershipConfig,
    MembershipOutput,
    NodeIdentity,
    PublicAddress,
)
from mercury_rt.core.transport import Addr


@dataclass(frozen=True, slots=True)
class MembershipSettings:
    """How a node takes part in membership. `public` overrides the public addresses the
    node announces (default: its cluster-ID entries for its inter-cluster address, else
    that address with `priority` and `weight`). Every `announce_intervals` heartbeats
    the node also announces its cluster ID to every peer (anti-entropy: a peer that missed
    a version, or came back from a partition, catches up within that many intervals)."""

    config: MembershipConfig = field(default_factory=MembershipConfig)
    priority: int = 10
    weight: int = 10
    public: tuple[PublicAddress, ...] | None = None
    settle_intervals: int = 2
    announce_intervals: int = 5
    identity: NodeIdentity | None = None
    incarnation: int | None = None
    cas: bool = False
    """Publish through a compare-and-swap the shell carries out (etcd, `proposals` in a
    step) instead of adopting a new version at once: set with a `replication:` section."""
    lease_ttl: int = 5
    """Seconds of the etcd lease a node keeps its liveness key on (config.leases): a
    killed node is seen dead about this long after it stopped renewing."""


@dataclass(frozen=True, slots=True)
class Outgoing:
    """Send `payload` (already sealed) one-way to `address` on the intra-cluster port."""

    address: Addr
    payload: bytes


@dataclass(frozen=True, slots=True)
class ClusterIdPublished:
    """This node signed and adopted a new cluster-ID version with these addresses."""

    version: int
    addresses: tuple[ServerAddress, ...]


@dataclass(frozen=True, slots=True)
class ClusterIdAdopted:
    """This node adopted a newer cluster-ID version announced by a peer."""

    version: int
    source: EndpointKey


@dataclass(frozen=True, slots=True)
class AnnouncementRejected:
    """An announced cluster ID that is malformed, forged or not newer than ours."""

    code: ErrorCode
    reason: str
    source: EndpointKey


@dataclass(frozen=True, slots=True)
class ClusterIdLearned:
    """This node adopted a newer version it read from etcd (a watch, a re-read)."""

    version: int


@dataclass(frozen=True, slots=True)
class EtcdValueRejected:
    """etcd's cluster-ID key holds something that is not a valid cluster ID of this
    cluster (not adopted; the next publication replaces it)."""

    code: ErrorCode
    reason: str


@dataclass(frozen=True, slots=True)
class PublishFailed:
    """This node should publish but cannot sign (e.g. it lacks the current cluster key)."""

    code: ErrorCode
    reason: str


MembershipEvent = (MembershipOutput | ClusterIdPublished | ClusterIdAdopted
                   | ClusterIdLearned | EtcdValueRejected | AnnouncementRejected
                   | PublishFailed)


@dataclass(frozen=True, slots=True)
class MembershipStep:
    """What one input produced: messages to send, events to log or count, and cluster-ID
    versions to publish by compare-and-swap (settings.cas only)."""

    sends: tuple[Outgoing, ...] = ()
    events: tuple[MembershipEvent, ...] = ()
    proposals: tuple[ClusterId, ...] = ()

    def __add__(self, other: MembershipStep) -> MembershipStep:
        return MembershipStep(self.sends + other.sends, self.events + other.events,
                              self.proposals + other.proposals)


NOTHING = MembershipStep()
