"""The node core, client side: how a call from a local entity reaches its target (sans-IO).

Three paths, one API (the design's three cases): a target mirrored on this node runs
here with no network; a target elsewhere in this cluster goes over the sealed
intra-cluster path to a live mirror; a target in another cluster is reached by the
contact state machine over its cluster ID's inter-cluster addresses, once its EID verifies
to its master hash (the keys fetched from the cluster first for a hashes-only EID). The
planner holds, per cluster, the newest cluster ID proven to that cluster's master hash.
This module plans and translates; the shell sends and waits.
"""

from __future__ import annotations

import random
from collections import Counter, OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from carbon.error_codes import ErrorCode, MercuryError
from carbon.principal import Persona, Principal
from mercury_rt.core.connections import ConnectionField
from mercury_rt.core.gate import PaymentStamp
from mercury_rt.core.identity import (
    ClusterId,
    Eid,
    EndpointKey,
    IdentityError,
    check_supersedes,
)
from mercury_rt.core.node.contact_views import ContactViews
from mercury_rt.core.node.messages import (
    MAX_MESSAGE_TEXT,
    NodeReply,
    NodeRequest,
    encode_cluster_id_query,
    fetched_cluster_id,
)
from mercury_rt.core.node.request_body import RequestBodies, operation_payload
from mercury_rt.core.node.server import FETCH_ADDRESSES, NodeCore
from mercury_rt.core.node.transit_plan import TransitPlans
from mercury_rt.core.routing import (
    NODE_LOCAL_CODES,
    Answered,
    Attempt,
    Contact,
    ContactEvent,
    ForwardingRecord,
    NoAnswer,
    NodeLocalError,
    Outcome,
    ProximityRule,
    RunHere,
    live_mirrors,
    pick_stable,
    reply_to_event,
    verify_forwarding_record,
)
from mercury_rt.core.transport import Addr

TRANSIT_NODE_LOCAL = frozenset({
    ErrorCode.UNKNOWN_TRANSIT_KEY, ErrorCode.UNKNOWN_SESSION, ErrorCode.TRANSIT_OPEN_FAILED,
    ErrorCode.STALE_FIRST_DATAGRAM, ErrorCode.TRANSIT_CERT_INVALID,
    ErrorCode.RETRY_TOKEN_REQUIRED, ErrorCode.SESSION_LIMIT, ErrorCode.TRANSIT_MALFORMED})
"""Transit failures that say something about one node (a fake one at a listed address, a
restart mid-call, a full session table), not about the call: the contact tries the next
address (docs/protocol.md 8.7)."""
MAX_KNOWN_CLUSTERS = 4096
MAX_SUSPECTS = 1024
SUSPECT_FOR = 30.0
"""Seconds an address that did not answer is tried last by new contacts."""
_RUN_HERE = RunHere(bundle_cluster_id=False)
_REFUSED = {Outcome.REDIRECT_NOT_LISTED: "redirect_not_listed",
            Outcome.CLUSTER_ID_REJECTED: "cluster_id_rejected"}


@dataclass(frozen=True, slots=True)
class SendIntra:
    """The target lives on another node of this cluster."""

    node_id: bytes
    address: Addr


@dataclass(frozen=True, slots=True)
class ContactCluster:
    """The target lives in another cluster; contact it with this (newest known) cluster ID."""

    cluster_id: ClusterId


@dataclass(frozen=True, slots=True)
class FetchTargetKeys:
    """The target EID carries only key hashes (or no master certificate) and its cluster's
    keys are not in the key ring: ask `addresses` (nodes of that cluster) with `query`,
    give each answer to `CallPlanner.learn_keys`, then route the call again."""

    master_hash: bytes
    addresses: tuple[Addr, ...]
    query: bytes


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
    classification: int | None = None
    """A transit classification the caller asks for, above its entity's transit floor."""
    caller_persona: Persona | None = None
    """The persona of its own the caller acts as (the target sees it in its principal)."""
    connection: ConnectionField | None = None
    """Opens, runs on or closes a connection (docs/protocol.md 5.9)."""
    request_id: bytes | None = None
    """Sent as the request body's key 11, the same on every attempt and every node."""


class CallPlanner:
    """Plans calls for one node and translates answers into contact events.

    `caller_eid` names a local entity to another cluster (its full EID); an address that
    has not acknowledged a request within `answer_timeout` seconds is passed over.
    """

    def __init__(self, core: NodeCore, rng: random.Random, *,
                 caller_eid: Callable[[bytes], bytes], answer_timeout: float,
                 proximity: ProximityRule | None = None,
                 persona_eid: Callable[[bytes, Persona], bytes] | None = None) -> None:
        self.core = core
        self.rng = rng
        self.caller_eid = caller_eid
        self.persona_eid = persona_eid
        self.answer_timeout = answer_timeout
        self.proximity = proximity
        self.known: OrderedDict[bytes, ClusterId] = OrderedDict()
        """The newest cluster ID per master hash, each proven to that master hash."""
        self.suspects: OrderedDict[Addr, float] = OrderedDict()
        self.encoded = EncodedEids()
        self.bodies = RequestBodies()
        """Request bodies around their payload, by call shape (request_body.py)."""
        self.views = ContactViews()
        """Each called cluster's SRV table and listed addresses (contact_views.py)."""
        self.plans = TransitPlans()
        """The transit plans of calls by shape (transit_plan.py)."""
        self._principals: dict[bytes, Principal] = {}
        self.lazy_contact = True
        """Whether a call to another cluster whose listed nodes are none suspect sends to
        its first address before building its contact state machine, and builds none when
        that node answers OK (outgoing.py). False: every such call builds it at once, the
        general path the equivalence property compares with."""
        self.refusals: Counter[str] = Counter()
        """What peers sent that calls refused to trust, by kind (for metrics)."""

    def note_attempts(self, attempts: tuple[Attempt, ...]) -> None:
        """Count what a finished contact refused to trust: redirects to unlisted addresses
        and cluster IDs that claimed to be newer but did not verify."""
        for attempt in attempts:
            if attempt.outcome in _REFUSED:
                self.refusals[_REFUSED[attempt.outcome]] += 1

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
        return self.views.of(cluster_id, self.proximity).silent(self.suspects, now)

    def route(self, target: Eid, request_key: bytes,
              fetch_allowed: bool = True) -> CallRoute | FetchTargetKeys:
        """Where a call to `target` goes; raises MercuryError when nowhere can take it.

        A target in another cluster is contacted only once its EID verifies to its master
        hash (or the shell is asked to fetch the keys that proves it, once per call): an
        EID that does not is refused with its identity code (docs/protocol.md 4.5)."""
        cid = target.cluster_id
        if cid.master_hash != self.core.master_hash:
            proven = self._verified_target(target, fetch_allowed)
            if isinstance(proven, FetchTargetKeys):
                return proven
            return ContactCluster(self.newest(cid, proof=target))
        view = self.core.state.view
        mirrors = view.mirrors.get(target.local)
        if mirrors is None:
            raise MercuryError("no such entity in this cluster", ErrorCode.UNKNOWN_ENTITY)
        if view.local_node in mirrors:
            return _RUN_HERE  # as NodeCore.handle_local will decide
        chosen = self.intra_route(mirrors, request_key)
        if chosen is None:
            raise MercuryError("no live node of this cluster mirrors the entity",
                               ErrorCode.NO_LIVE_MIRROR)
        return chosen

    def intra_route(self, mirrors: frozenset[bytes], request_key: bytes,
                    passed_over: frozenset[bytes] = frozenset()) -> SendIntra | None:
        """The live mirror of this cluster a call goes to, not one of `passed_over` (nodes
        that answered NODE_DRAINING to this call); None when none is left."""
        intra = self.core.state.intra_addresses
        live = [n for n in live_mirrors(self.core.state.view, mirrors)
                if n in intra and n not in passed_over]
        if not live:
            return None
        chosen = pick_stable(request_key, live)
        return SendIntra(chosen, intra[chosen])

    def _verified_target(self, target: Eid,
                         fetch_allowed: bool) -> ClusterId | FetchTargetKeys:
        """`target`'s cluster ID once the EID verifies to its master hash; a key fetch when
        only the keys are missing; else a coded IdentityError."""
        verifier = self.core.verifier
        try:
            result = verifier.verify(self.encoded.of(target))
        except MercuryError as exc:
            self.refusals["target_eid"] += 1
            raise IdentityError(f"target EID does not verify: {exc.message}", exc.code) from None
        if result.fully_verified:
            verifier.ring.pin(target.cluster_id.master_hash)  # a cluster we call: its
            return target.cluster_id  # rotation history outlives any flood of strangers
        if fetch_allowed:
            return self._key_fetch(target)
        self.refusals["target_eid"] += 1
        master = target.cluster_id.master_hash
        if verifier.ring.master_public(master) is not None:
            raise IdentityError("target EID's cluster key is not certified by its cluster's "
                                "master key", ErrorCode.BAD_CLUSTER_KEY_CERT)
        raise IdentityError(f"target EID cannot be verified to its master hash: no node of "
                            f"its cluster supplied the keys ({result.missing})",
                            ErrorCode.KEYS_UNAVAILABLE)

    def _key_fetch(self, target: Eid) -> FetchTargetKeys:
        """Ask the cluster's nodes we already trust first, then those the EID lists (lowest
        priority first); at most FETCH_ADDRESSES in all."""
        cid = target.cluster_id
        known = self.known.get(cid.master_hash)
        listed = [*(known.addresses if known is not None else ()),
                  *sorted(cid.addresses, key=lambda a: a.priority)]
        addresses: list[Addr] = []
        for a in listed:
            address = (str(a.host), a.port)
            if address not in addresses:
                addresses.append(address)
        return FetchTargetKeys(cid.master_hash, tuple(addresses[:FETCH_ADDRESSES]),
                               encode_cluster_id_query(cid.master_hash))

    def learn_keys(self, fetch: FetchTargetKeys, reply: bytes) -> bool:
        """Take a fetched cluster ID if it is the one asked for and proves itself (its
        master certificate and signature verify, docs/protocol.md 4.3); its keys go to the
        key ring and, when it is newer than what we hold, it becomes our newest."""
        cluster_id = fetched_cluster_id(fetch.master_hash, reply)
        try:
            if cluster_id is not None:
                self.learn(cluster_id)
                return True
        except MercuryError:
            pass
        self.refusals["fetched_keys"] += 1
        return False

    def operation(self, call: CallRequest, route: CallRoute) -> tuple[bytes, bytes]:
        """(node message, body) for a call; the host sends the message in a transit
        session to the chosen node."""
        data, body, _ = self.operation_parts(call, route)
        return data, body

    def operation_parts(self, call: CallRequest,
                        route: CallRoute) -> tuple[bytes, bytes, NodeRequest]:
        """`operation`, with the NodeRequest the message carries.

        Within the cluster the caller is vouched for by this node; to another cluster it
        is named by its EID (the target's gate verifies it, and that this node's session
        proves that EID's cluster)."""
        persona = call.caller_persona
        if isinstance(route, ContactCluster):
            version = route.cluster_id.version
            source, vouched = self._source_eid(call.caller, persona), None
        else:
            version = self.core.state.cluster_id.version
            source, vouched = None, self._vouched(call.caller, persona)
        request = NodeRequest(self.encoded.of(call.target), call.endpoint, call.operation,
                              call.payload, version, source=source, vouched=vouched,
                              delegation=call.delegation, message_id=call.message_id,
                              connection=call.connection, request_id=call.request_id)
        body = self.bodies.body(request)
        return operation_payload(body, call.payments), body, request

    def _vouched(self, caller: bytes, persona: Persona | None) -> Principal:
        """The principal this node vouches for within its cluster: kept per caller without
        a persona (one frozen construction less per call), bounded, rebuilt if the
        node's master hash were ever another."""
        if persona is not None:
            return Principal(self.core.master_hash, caller, persona)
        principal = self._principals.get(caller)
        if principal is None or principal.cluster != self.core.master_hash:
            principal = Principal(self.core.master_hash, caller, None)
            if len(self._principals) >= MAX_KNOWN_CLUSTERS:
                self._principals.clear()
            self._principals[caller] = principal
        return principal

    def _source_eid(self, caller: bytes, persona: Persona | None) -> bytes:
        """The caller's EID for another cluster: with its persona when it acts as one."""
        if persona is None:
            return self.caller_eid(caller)
        if self.persona_eid is None:
            raise MercuryError("this node cannot name its entities' personas to other "
                               "clusters", ErrorCode.NODE_LOCAL_ERROR)
        return self.persona_eid(caller, persona)

    def contact(self, cluster_id: ClusterId, target: Eid, now: float,
                try_last: frozenset[EndpointKey] | None = None) -> Contact:
        """A contact state machine for one call to another cluster; it tries `try_last`
        last (by default the listed addresses suspect at `now`)."""
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

        view = self.views.of(cluster_id, self.proximity)
        if try_last is None:
            try_last = view.silent(self.suspects, now)
        return Contact(cluster_id, self.rng, supersedes, verify_move=verify_move,
                       proximity=self.proximity, try_last=try_last, table=view.table)

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
        if code in NODE_LOCAL_CODES or code in TRANSIT_NODE_LOCAL:
            return NodeLocalError(code, message)
        return Answered(NodeReply(code, message=message[:MAX_MESSAGE_TEXT]))

    def newest(self, cluster_id: ClusterId, proof: Eid | None = None) -> ClusterId:
        """The newest cluster ID we hold for that cluster (the EID's may be older); a newer
        one is adopted only as `learn` allows (raises IdentityError otherwise)."""
        known = self.known.get(cluster_id.master_hash)
        if known is not None and known.version >= cluster_id.version:
            self.known.move_to_end(cluster_id.master_hash)
            return known
        self.learn(cluster_id, proof)
        return cluster_id

    def held(self, cluster_id: ClusterId) -> ClusterId:
        """The newest cluster ID we hold for that cluster, or `cluster_id` (already proven
        by the caller) when we hold none newer; never learns."""
        known = self.known.get(cluster_id.master_hash)
        return known if known is not None and known.version > cluster_id.version \
            else cluster_id

    def learn(self, cluster_id: ClusterId, proof: Eid | None = None) -> bool:
        """Store `cluster_id` as the newest for its cluster once it is proven to its master
        hash: `proof`, an EID embedding it, verifies fully (its signature under the cluster
        key, that key certified by the master key the master hash names), or else the
        cluster ID verifies standalone (master certificate and cluster-ID signature, 4.3).
        Raises IdentityError and stores nothing when it is not proven; returns False (and
        keeps ours) when it is not newer than the one held."""
        self._prove(cluster_id, proof)
        master = cluster_id.master_hash
        known = self.known.get(master)
        if known is not None and known.version >= cluster_id.version:
            return False
        self.known[master] = cluster_id
        self.known.move_to_end(master)
        self.views.forget(master)
        if len(self.known) > MAX_KNOWN_CLUSTERS:
            self.known.popitem(last=False)
        return True

    def _prove(self, cluster_id: ClusterId, proof: Eid | None) -> None:
        verifier = self.core.verifier
        if proof is None:
            verifier.add_cluster_id(cluster_id)
            return
        if proof.cluster_id != cluster_id:
            raise IdentityError("the proof EID embeds another cluster ID")
        if not verifier.verify(self.encoded.of(proof)).fully_verified:
            raise IdentityError("the EID does not verify to its master hash",
                                ErrorCode.KEYS_UNAVAILABLE)

    @staticmethod
    def _decode_cluster_id(data: bytes | None) -> ClusterId | None:
        if data is None:
            return None
        try:
            return ClusterId.decode(data)
        except MercuryError:
            return None
