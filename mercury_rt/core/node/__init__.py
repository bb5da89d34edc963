"""The node core: what one node of a cluster decides, serving requests and making calls.

`NodeCore` takes one request's bytes and returns one action (`NodeAction`: respond,
invoke a handler, serve state, forward, fetch keys, drop); `OutgoingCall` takes one call
from a local entity (`CallRequest`) and returns one step at a time (`CallStep`). A host
(aio/node_runtime.py, testing/nodes.py) carries out each action or step and reports back.

Everything a node decides lives in this package:
- actions.py: the actions a host carries out for one request (`NodeAction`).
- server.py: request handling in order: open the seal, decode, check the target EID is
  ours, route (routing.decide_route), the gate call, dispatch to LITHIUM (`Invoke`),
  redirect/forward carry-out (`relay`), one-way message dedup, the key fetch for a caller
  whose cluster keys are unknown, and what a state node's answer means (`state_reply`).
- planner.py: which path a call takes (run here, intra-cluster to a live mirror, or
  contact another cluster once the target EID verifies to its master hash), the request
  it sends, what each answer means to contact, and the proven cluster IDs it holds.
- outgoing.py: one call's steps, including the target's key fetch, SRV failover and
  redirects (through the contact machine), migration, and the one retry with a stamp.
- held.py: which failures hold a one-way message (`should_hold`) and which retry it
  (`settle_attempt`), the held record, its retry schedule and expiry.
- delivered.py: the one-way message ids a node has run, bounded, with a share per source
  cluster so one sender filling its share does not stop the others.
- fetch_budget.py: how many key fetches for unverifiable callers a node starts, and whom
  it asks (all clusters together, per listed address, failures remembered).
- seal.py: the intra-cluster seal (a key derived from the cluster key).
- messages.py, state_messages.py: the node's request and reply formats, including the
  bound on reply text (`MAX_MESSAGE_TEXT`) and the remote-state fetch and commit;
  plain_body.py: a plain request body read byte by byte, exactly the strict decoder's
  fields; request_ids.py: the scoped at-most-once record id.
- minimums.py: the transit minimum of admitted targets, remembered per policy, bounded.
- membership.py, membership_events.py: the node's membership reactions (heartbeats,
  liveness into the view, cluster-ID publishing and adoption).

This package does not know sockets, clocks or asyncio: time comes in as arguments, bytes
go out in actions and steps, and handler code runs only where a host carries out `Invoke`.
"""

from mercury_rt.core.node.actions import (
    Drop,
    FetchKeys,
    Forward,
    Invoke,
    NodeAction,
    ReceivedRequest,
    Respond,
    ServeState,
)
from mercury_rt.core.node.delivered import (
    DeliveredIds,
    DeliveredSettings,
    DeliveredStore,
)
from mercury_rt.core.node.held import (
    HeldError,
    HeldMessage,
    HeldQueue,
    HeldState,
    HeldStore,
    MemoryHeldStore,
    RetryPolicy,
    decode_held,
    settle_attempt,
    should_hold,
)
from mercury_rt.core.node.membership import (
    NodeMembership,
)
from mercury_rt.core.node.membership_events import (
    AnnouncementRejected,
    ClusterIdAdopted,
    ClusterIdLearned,
    ClusterIdPublished,
    EtcdValueRejected,
    MembershipEvent,
    MembershipSettings,
    MembershipStep,
)
from mercury_rt.core.node.messages import (
    MAX_MESSAGE_TEXT,
    ClusterIdQuery,
    DecodedOperation,
    NodeReply,
    NodeRequest,
    decode_node_request,
    decode_reply,
    encode_cluster_id_query,
    encode_operation,
)
from mercury_rt.core.node.outgoing import (
    CallStep,
    FetchKeysStep,
    FinalStep,
    GaveUp,
    GotReply,
    HostStep,
    NeedStamp,
    OutgoingCall,
    RunHereStep,
    SendInterStep,
    SendIntraStep,
    pay_for,
)
from mercury_rt.core.node.planner import (
    CallPlanner,
    CallRequest,
    FetchTargetKeys,
)
from mercury_rt.core.node.seal import (
    IntraSeal,
    SealError,
    derive_intra_key,
)
from mercury_rt.core.node.server import (
    NodeCore,
    NodeState,
)
from mercury_rt.core.node.state_messages import (
    StateCommit,
    StateFetch,
    decode_image,
    encode_state_commit,
    encode_state_fetch,
    state_failure,
)

__all__ = [
    "MAX_MESSAGE_TEXT",
    "AnnouncementRejected",
    "CallPlanner",
    "CallRequest",
    "CallStep",
    "ClusterIdAdopted",
    "ClusterIdLearned",
    "ClusterIdPublished",
    "ClusterIdQuery",
    "DecodedOperation",
    "DeliveredIds",
    "DeliveredSettings",
    "DeliveredStore",
    "Drop",
    "EtcdValueRejected",
    "FetchKeys",
    "FetchKeysStep",
    "FetchTargetKeys",
    "FinalStep",
    "Forward",
    "GaveUp",
    "GotReply",
    "HeldError",
    "HeldMessage",
    "HeldQueue",
    "HeldState",
    "HeldStore",
    "HostStep",
    "IntraSeal",
    "Invoke",
    "MembershipEvent",
    "MembershipSettings",
    "MembershipStep",
    "MemoryHeldStore",
    "NeedStamp",
    "NodeAction",
    "NodeCore",
    "NodeMembership",
    "NodeReply",
    "NodeRequest",
    "NodeState",
    "OutgoingCall",
    "ReceivedRequest",
    "Respond",
    "RetryPolicy",
    "RunHereStep",
    "SealError",
    "SendInterStep",
    "SendIntraStep",
    "ServeState",
    "StateCommit",
    "StateFetch",
    "decode_held",
    "decode_image",
    "decode_node_request",
    "decode_reply",
    "derive_intra_key",
    "encode_cluster_id_query",
    "encode_operation",
    "encode_state_commit",
    "encode_state_fetch",
    "pay_for",
    "settle_attempt",
    "should_hold",
    "state_failure",
]
