"""The node core, client side: how a call from a local entity reaches its target (sans-IO).

Three paths, one API (the design's three cases): a target mirrored on this node runs
here with no network; a target elsewhere in this cluster goes over the sealed
intra-cluster path to a live mirror; a target in another cluster is reached by the
contact state machine over its cluster ID's inter-cluster addresses. This module plans
and translates; the shell sends and waits.
"""

from __future__ import annotations

import random
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from carbon.error_codes import ErrorCode, MercuryError
from carbon.principal import Principal
from mercury_rt.core.gate import PaymentStamp
from mercury_rt.core.identity import (
    ClusterId,
    Eid,
    EndpointKey,
    ServerAddress,
    check_supersedes,
    endpoint_key,
)
from mercury_rt.core.node.messages import (
    MAX_MESSAGE_TEXT,
    NodeReply,
    NodeRequest,
    decode_reply,
    encode_operation,
)
from mercury_rt.core.node.server import NodeCore
from mercury_rt.core.routing import (
    NODE_LOCAL_CODES,
    Answered,
    Contact,
    ContactEvent,
    ForwardingRecord,
    NoAnswer,
    NodeLocalError,
    Path,
    ProximityRule,
    RunHere,
    live_mirrors,
    pick_stable,
    reply_to_event,
    verify_forwarding_record,
)
from mercury_rt.core.transport import Addr

MAX_KNOWN_CLUSTERS = 4096
MAX_SUSPECTS = 1024
SUSPECT_FOR = 30.0
"""Seconds an address that did not answer is tried last by new contacts."""


@dataclass(frozen=True, slots=True)
class SendIntra:
    """The target lives on another node of this cluster."""

    node_id: bytes
    address: Addr


@dataclass(frozen=True, slots=True)
class ContactCluster:
    """The target lives in another cluster; contact it with this (newest known) cluster ID."""

    cluster_id: ClusterId


CallRoute = RunHere | SendIntra | ContactCluster
"""Where a call from a local entity goes. `RunHere` is routing's own decision for a target
mirrored on this node (a local caller always holds the current cluster ID: nothing to bundle)."""


class EncodedEids:
    """`eid.encode()`, remembered for the EIDs a node calls often (a call re-sends its
    target's exact bytes; re-encoding a signed EID each time costs ~30 us). Keyed by
    identity and bounded; each CallPlanner owns one."""

    def __init__(self, limit: int = MAX_KNOWN_CLUSTERS) -> None:
        self.limit = limit
        self._encoded: OrderedDict[int, tuple[Eid, bytes]] = OrderedDict()

    def of(self, eid: Eid) -> bytes:
        """The exact bytes of `eid`."""
        hit = self._encoded.get(id(eid))
        if hit is not None and hit[0] is eid:
            return hit[1]
        data = eid.encode()
        self._encoded[id(eid)] = (eid, data)
        if len(self._encoded) > self.limit:
            self._encoded.popitem(last=False)
        return data


@dataclass(frozen=True, slots=True)
class CallRequest:
    """One call from a local entity, as its caller asked for it.

    Local entity `caller` calls `operation` of `endpoint` on `target` with `payload`.
    `request_key` keeps every attempt of the call on the same mirror (`pick_stable`).
    With `message_id` it is a one-way message: the target's node runs each id once.
    `payments` and `delegation` travel to the target's gate.
    """

    target: Eid
    endpoint: int
    operation: int
    payload: bytes
    caller: bytes
    request_key: bytes
    payments: tuple[PaymentStamp, ...] = ()
    delegation: tuple[bytes, ...] = ()
    message_id: bytes | None = None


class CallPlanner:
    """Plans calls for one node and translates answers into contact events.

    `caller_eid` names a local entity to another cluster (its full EID); an address that
    has not acknowledged a request within `answer_timeout` seconds is passed over.
    """

    def __init__(self, core: NodeCore, rng: random.Random, *,
                 caller_eid: Callable[[bytes], bytes], answer_timeout: float,
                 proximity: ProximityRule | None = None) -> None:
        self.core = core
        self.rng = rng
        self.caller_eid = caller_eid
        self.answer_timeout = answer_timeout
        self.proximity = proximity
        self.known: OrderedDict[bytes, ClusterId] = OrderedDict()
        self.suspects: OrderedDict[Addr, float] = OrderedDict()
        self.encoded = EncodedEids()

    def mark_silent(self, address: Addr, now: float) -> None:
        """`address` did not acknowledge a request: new contacts try it last for a while."""
        self.suspects[address] = now + SUSPECT_FOR
        self.suspects.move_to_end(address)
        if len(self.suspects) > MAX_SUSPECTS:
            self.suspects.popitem(last=False)

    def mark_answered(self, address: Addr) -> None:
        """`address` answered: it is no longer suspect."""
        self.suspects.pop(address, None)

    def silent_addresses(self, cluster_id: ClusterId, now: float) -> frozenset[EndpointKey]:
        """The addresses of `cluster_id` that did not answer lately: a contact tries them last."""
        def silent(a: ServerAddress) -> bool:
            until = self.suspects.get((str(a.host), a.port))
            return until is not None and until > now

        return frozenset(endpoint_key(a) for a in cluster_id.addresses if silent(a))

    def route(self, target: Eid, request_key: bytes) -> CallRoute:
        """Where a call to `target` goes; raises MercuryError when nowhere can take it."""
        cid = target.cluster_id
        if cid.master_hash != self.core.master_hash:
            self.core.verifier.verify(self.encoded.of(target))  # its cluster key: transit
            return ContactCluster(self.newest(cid))
        view = self.core.state.view
        mirrors = view.mirrors.get(target.local)
        if mirrors is None:
            raise MercuryError("no such entity in this cluster", ErrorCode.UNKNOWN_ENTITY)
        if view.local_node in mirrors:
            return RunHere(bundle_cluster_id=False)  # as NodeCore.handle_local will decide
        intra = self.core.state.intra_addresses
        live = [n for n in live_mirrors(view, mirrors) if n in intra]
        if not live:
            raise MercuryError("no live node of this cluster mirrors the entity",
                               ErrorCode.NO_LIVE_MIRROR)
        chosen = pick_stable(request_key, live)
        return SendIntra(chosen, self.core.state.intra_addresses[chosen])

    def operation(self, call: CallRequest, route: CallRoute) -> tuple[bytes, bytes]:
        """(node message, body) for a call; the host sends the message in a transit
        session to the chosen node.

        Within the cluster the caller is vouched for by this node; to another cluster it
        is named by its EID (the target's gate verifies it, and that this node's session
        proves that EID's cluster)."""
        if isinstance(route, ContactCluster):
            version = route.cluster_id.version
            source, vouched = self.caller_eid(call.caller), None
        else:
            version = self.core.state.cluster_id.version
            source, vouched = None, Principal(self.core.master_hash, call.caller)
        request = NodeRequest(self.encoded.of(call.target), call.endpoint, call.operation,
                              call.payload, version, source=source, vouched=vouched,
                              delegation=call.delegation, message_id=call.message_id)
        body = request.body()
        return encode_operation(body, call.payments), body

    def decode(self, path: Path, data: bytes) -> NodeReply:
        """A reply (opened by transit) received over `path`; raises MercuryError if it is
        not one."""
        return decode_reply(data)

    def contact(self, cluster_id: ClusterId, target: Eid, now: float) -> Contact:
        """A contact state machine for one call to another cluster."""
        def supersedes(held: ClusterId, candidate: ClusterId) -> bool:
            if candidate.master_hash == held.master_hash and candidate.version <= held.version:
                return False
            check_supersedes(candidate, held, self.core.verifier.ring)
            return True

        def verify_move(record: ForwardingRecord) -> None:
            self.core.verifier.verify(target)  # proves (and learns) the old cluster's key
            known = self.core.verifier.ring.certified(target.cluster_id.master_hash,
                                                      target.cluster_id.cluster_key_hash)
            if known is None:
                raise MercuryError("the old cluster's key is unknown; cannot trust the move",
                                   ErrorCode.FORWARDING_SIGNATURE_INVALID)
            verify_forwarding_record(record, known.public, target.cluster_id.master_hash,
                                     target.local)

        return Contact(cluster_id, self.rng, supersedes, verify_move=verify_move,
                       proximity=self.proximity,
                       try_last=self.silent_addresses(cluster_id, now))

    def event_for_reply(self, reply: NodeReply) -> ContactEvent:
        """The contact event an inter-cluster reply means."""
        if reply.ok:
            cid = self._decode_cluster_id(reply.cluster_id)
            return Answered(reply, cid)
        event = reply_to_event(reply.routing(), ClusterId.decode)
        if isinstance(event, Answered):
            return Answered(reply, event.cluster_id)
        return event

    def event_for_failure(self, code: int, message: str) -> ContactEvent:
        """The contact event a transport failure means: silence moves on, the rest ends."""
        if code == ErrorCode.NO_ANSWER:
            return NoAnswer()
        if code in NODE_LOCAL_CODES:
            return NodeLocalError(code, message)
        return Answered(NodeReply(code, message=message[:MAX_MESSAGE_TEXT]))

    def newest(self, cluster_id: ClusterId) -> ClusterId:
        """The newest cluster ID we hold for that cluster (the EID's may be older)."""
        known = self.known.get(cluster_id.master_hash)
        if known is not None and known.version >= cluster_id.version:
            self.known.move_to_end(cluster_id.master_hash)
            return known
        self.learn(cluster_id)
        return cluster_id

    def learn(self, cluster_id: ClusterId) -> None:
        """Store a (verified) cluster ID as the newest for its cluster."""
        self.known[cluster_id.master_hash] = cluster_id
        self.known.move_to_end(cluster_id.master_hash)
        if len(self.known) > MAX_KNOWN_CLUSTERS:
            self.known.popitem(last=False)

    @staticmethod
    def _decode_cluster_id(data: bytes | None) -> ClusterId | None:
        if data is None:
            return None
        try:
            return ClusterId.decode(data)
        except MercuryError:
            return None
