"""Routing: where a request runs, and which node a caller tries next (pure, rng injected).

Everything that decides where a request goes lives here:
- decide.py: the server side. A request for an entity mirrored here runs here; one that
  is not mirrored is, by the cluster's choice, redirected to a public mirror, forwarded
  over the intra-cluster path (at most `max_forward_hops` times) or run here with remote
  state; a migrated entity answers with its forwarding record; a caller holding an
  outdated cluster ID gets the current one bundled.
- contact.py (its events and actions in contact_events.py): the client side. Where a
  caller moves to the next address: SRV order over the cluster ID's list (srv.py), the
  next address on no answer or a node-local error, redirects followed within bounds, a
  new round on a properly superseding cluster ID, and when to give up.
- srv.py: the SRV order (RFC 2782 priority and weight, optionally favouring near nodes),
  over a list's levels and weights worked out once (`SrvTable`, which a caller may keep).
- reply.py: the routing reply body (docs/protocol.md 6.4): what a node sends for each
  decision, and the one contact event each reply means to the caller.
- forwarding.py: forwarding records: signed bytes, bounded decoding, and the check that a
  record is about the EID that was called.

This package does not know sockets or the transport and verifies no signature itself (the
supersede check and the forwarding-record verifier are injected); it takes cluster IDs and
addresses from identity, which never imports it.
"""

from mercury_rt.core.routing.contact import (
    Contact,
    ContactError,
    ContactLimits,
    ContactState,
    EntityMoved,
    ErrorWithClusterId,
    InvalidContactTransitionError,
    Outcome,
    Redirect,
)
from mercury_rt.core.routing.contact_events import (
    Answered,
    Attempt,
    ClusterIdReplaced,
    ContactAction,
    ContactEvent,
    Failed,
    Migrated,
    NoAnswer,
    NodeLocalError,
    Succeeded,
    TryAddress,
)
from mercury_rt.core.routing.decide import (
    NODE_LOCAL_CODES,
    ClusterView,
    ForwardTo,
    NodeInfo,
    NotMirroredChoice,
    Path,
    RedirectMoved,
    RedirectTo,
    Refuse,
    RequestSummary,
    RoutingConfig,
    RunHere,
    RunWithRemoteState,
    SecurityOrder,
    decide_route,
    live_mirrors,
    pick_stable,
)
from mercury_rt.core.routing.forwarding import (
    DOMAIN_TAG,
    ForwardingError,
    ForwardingRecord,
    decode_forwarding_record,
    make_forwarding_record,
    verify_forwarding_record,
)
from mercury_rt.core.routing.reply import (
    RoutingReply,
    RoutingReplyError,
    decode_routing_reply,
    reply_for_decision,
    reply_to_event,
    routing_reply_from_value,
)
from mercury_rt.core.routing.srv import (
    ProximityRule,
    SrvTable,
    common_prefix_bits,
    srv_order,
)

__all__ = [
    "DOMAIN_TAG",
    "NODE_LOCAL_CODES",
    "Answered",
    "Attempt",
    "ClusterIdReplaced",
    "ClusterView",
    "Contact",
    "ContactAction",
    "ContactError",
    "ContactEvent",
    "ContactLimits",
    "ContactState",
    "EntityMoved",
    "ErrorWithClusterId",
    "Failed",
    "ForwardTo",
    "ForwardingError",
    "ForwardingRecord",
    "InvalidContactTransitionError",
    "Migrated",
    "NoAnswer",
    "NodeInfo",
    "NodeLocalError",
    "NotMirroredChoice",
    "Outcome",
    "Path",
    "ProximityRule",
    "Redirect",
    "RedirectMoved",
    "RedirectTo",
    "Refuse",
    "RequestSummary",
    "RoutingConfig",
    "RoutingReply",
    "RoutingReplyError",
    "RunHere",
    "RunWithRemoteState",
    "SecurityOrder",
    "SrvTable",
    "Succeeded",
    "TryAddress",
    "common_prefix_bits",
    "decide_route",
    "decode_forwarding_record",
    "decode_routing_reply",
    "live_mirrors",
    "make_forwarding_record",
    "pick_stable",
    "reply_for_decision",
    "reply_to_event",
    "routing_reply_from_value",
    "srv_order",
    "verify_forwarding_record",
]
