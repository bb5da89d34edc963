"""Membership: which nodes of this cluster are alive, where they are, and which public
addresses the cluster publishes (pure, time injected).

Everything that decides liveness lives here:
- liveness.py: one node's view. A heartbeat counts only if it verifies, names our cluster
  and is newer (incarnation, sequence) than the last; silence makes a node SUSPECT, then
  DEAD; a higher incarnation is a restart; heartbeats from a new source address mean the
  node moved; the published list is the public addresses of every node not DEAD; the
  ALIVE node with the smallest id publishes; the number of peers tracked is bounded.
- heartbeat.py: the heartbeat: its fields, the domain-tagged bytes the node key signs, the
  sender's intra-cluster address it is bound to, and a bounded codec.
- certs.py: node certificates (a node key certified by the cluster key for one cluster and
  node id), and the verifier of certificate and heartbeat signature, which caches
  certificates it has checked.
- messages.py: the membership envelopes on the intra-cluster path (cluster-ID announcements
  and heartbeats), told apart from operations without decoding them.

This package does not know sockets, the intra-cluster seal or cluster-ID signing: the node
(mercury_rt.core.node, membership.py) sends the heartbeats, turns `AddressListChanged` into
a new cluster-ID version and adopts the versions peers announce.
"""

from mercury_rt.core.membership.certs import (
    NodeCert,
    NodeCertError,
    NodeCertVerifier,
    NodeIdentity,
    cert_message,
    certify_node,
)
from mercury_rt.core.membership.heartbeat import (
    Heartbeat,
    HeartbeatError,
    PublicAddress,
    decode_heartbeat,
)
from mercury_rt.core.membership.liveness import (
    AddressChanged,
    AddressListChanged,
    HeartbeatRejected,
    Membership,
    MembershipConfig,
    MembershipOutput,
    NodeDead,
    NodeJoined,
    NodeRecovered,
    NodeRestarted,
    NodeStatus,
    NodeSuspected,
)
from mercury_rt.core.membership.messages import (
    Announcement,
    HeartbeatMessage,
    classify,
    encode_announcement,
    encode_heartbeat_message,
)

__all__ = [
    "AddressChanged",
    "AddressListChanged",
    "Announcement",
    "Heartbeat",
    "HeartbeatError",
    "HeartbeatMessage",
    "HeartbeatRejected",
    "Membership",
    "MembershipConfig",
    "MembershipOutput",
    "NodeCert",
    "NodeCertError",
    "NodeCertVerifier",
    "NodeDead",
    "NodeIdentity",
    "NodeJoined",
    "NodeRecovered",
    "NodeRestarted",
    "NodeStatus",
    "NodeSuspected",
    "PublicAddress",
    "cert_message",
    "certify_node",
    "classify",
    "decode_heartbeat",
    "encode_announcement",
    "encode_heartbeat_message",
]
