"""TODO face.
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
