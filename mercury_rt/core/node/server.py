"""The node core, server side: what a node does with one incoming request (sans-IO).

Given a request's payload, the path it came by, a sticky request key and the time, it
returns one action: respond with these bytes, invoke this handler call, forward these
bytes to that node, or drop. It never touches sockets, clocks or LMDB; handler
invocation and forwarding are carried out by the shell, which hands results back
through `finish` and `relay`. Transit (core/transit) has already opened the payload and
seals the reply; the core is told what the session proves. Order of work (docs/protocol.md
6.5, 7 and 8.8): decode, read the target EID (cached, or decoded: its signature unchecked)
and refuse one of another cluster, check the session's algorithm against the operation's
minimum, route, then run the security gate before anything that runs the request (and
before redirecting when so configured). The gate checks the stamp first, for the target
the EID claims, then proves the target EID ours, then the source: junk costs no
signature check (7.1). A request forwarded without the gate has its stamp checked (not
spent) and its target proven before it leaves.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from carbon.error_codes import ErrorCode, MercuryError
from carbon.protocol_spec import OperationKind
from lithium.context import CLOSE, OPEN, USE, ConnectionCall, IncomingCall
from mercury_rt.core.connections import ConnectionForm, Reservation, ServedConnections
from mercury_rt.core.gate import (
    ASSUMED_PROVEN,
    Allow,
    ClusterSpend,
    DecisionCache,
    Deny,
    EidSourceVerifier,
    GateRequest,
    GateState,
    LocalSource,
    MemorySpentStore,
    Paid,
    RemoteSource,
    SessionProof,
    SignatureBudget,
    Source,
    SpendResult,
    SpentStampStore,
    TargetTags,
    authenticate,
    cluster_spend_admits,
    decide_access,
    pay,
)
from mercury_rt.core.identity import ClusterId, Eid, EidVerifier
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
from mercury_rt.core.node.delivered import DeliveredIds, DeliveredSettings, DeliveredStore
from mercury_rt.core.node.fetch_budget import FetchBudget
from mercury_rt.core.node.messages import (
    MAX_MESSAGE_TEXT,
    ClusterIdQuery,
    DecodedOperation,
    NodeReply,
    decode_node_request,
    decode_reply,
    encode_cluster_id_query,
    encode_ok,
    encode_operation,
    error_reply,
    fetched_cluster_id,
)
from mercury_rt.core.node.minimums import TransitMinimums
from mercury_rt.core.node.reply_code import peek_reply_code
from mercury_rt.core.node.request_ids import scoped_request_id
from mercury_rt.core.node.seal import IntraSeal, derive_intra_key
from mercury_rt.core.node.state_messages import StateCommit, StateFetch, state_failure
from mercury_rt.core.routing import (
    NODE_LOCAL_CODES,
    ClusterView,
    ForwardTo,
    Path,
    RedirectMoved,
    RedirectTo,
    Refuse,
    RequestSummary,
    RoutingConfig,
    RunHere,
    RunWithRemoteState,
    decide_route,
    live_mirrors,
    make_forwarding_record,
    reply_for_decision,
)
from mercury_rt.core.transit import (
    TooWeak,
    TransitTable,
    inter_cluster_table,
    intra_cluster_table,
    receiver_check,
)
from mercury_rt.core.transit.responder import Channel
from mercury_rt.core.transport import Addr
from policy.access import PolicyAcls, Ruled, Target
from policy.model import Policy


class NodeError(MercuryError):
    """A request this node cannot take, with a routing or identity code."""

    code = ErrorCode.NODE_LOCAL_ERROR


DEFAULT_DELIVERED = DeliveredSettings()
AuditSink = Callable[[GateRequest, Allow | Deny], None]
"""Where the node reports gate decisions (the shell writes them to the audit log)."""
FETCH_ADDRESSES = 3
FETCH_EVERY = 30.0
"""Seconds between key fetches for one cluster: a peer cannot make us query its listed
addresses (which it chose) more often than this."""
MAX_FETCHES = 1024
SILENT_MIRROR_FOR = 30.0
"""Seconds a mirror that did not acknowledge a forwarded request is tried last (as callers
do with a silent address), so the calls that follow do not each wait for it while
membership has not yet noticed it is gone."""
MAX_SILENT = 1024
PROOF_CHECKS = 2
"""Signature checks a new session's proof costs (its node certificate, its signature)."""


@dataclass(slots=True)
class NodeState:
    """What the node knows that changes while it runs (the shell replaces parts of it)."""

    cluster_id: ClusterId
    policy: Policy
    view: ClusterView
    intra_addresses: Mapping[bytes, Addr]


class NodeCore:
    """One node's request decisions. See module docstring."""

    def __init__(self, state: NodeState, *, routing: RoutingConfig, verifier: EidVerifier,
                 spent: SpentStampStore, seal: IntraSeal,
                 delivered: DeliveredStore | None = None,
                 delivered_settings: DeliveredSettings = DEFAULT_DELIVERED,
                 audit: AuditSink | None = None) -> None:
        self.state = state
        self.audit = audit
        """Told every gate decision (allow or deny) with its request: the audit trail."""
        self.routing = routing
        self.verifier = verifier
        self.sources = EidSourceVerifier(verifier)
        self.spent = spent
        self.seal = seal
        self.delivered = delivered if delivered is not None else MemorySpentStore(
            delivered_settings.limit)  # not `or`: an empty store is falsy (it has __len__)
        self.delivered_ids = DeliveredIds(self.delivered, delivered_settings)
        """Run-once bookkeeping over `delivered`, with a share per source cluster."""
        self._fetched: OrderedDict[bytes, float] = OrderedDict()
        self._fetching: dict[bytes, tuple[Addr, ...]] = {}
        """Clusters whose keys the shell is fetching now, and whom it asks (cleared when
        one answers with the keys): their requests wait for it."""
        self.fetch_budget = FetchBudget()
        self._silent: OrderedDict[bytes, float] = OrderedDict()
        """Mirror node id -> when it last failed to acknowledge a forwarded request."""
        self.target_tags = TargetTags()
        self.signature_budget = SignatureBudget()
        """Signature checks requests from outside this cluster may cost (7.1)."""
        self._tables: dict[Path, TransitTable] = {}
        self._tables_of: Policy | None = None
        self._held_gate_state: GateState | None = None
        self.decisions: DecisionCache[Allow | Deny] = DecisionCache(
            verifier.ring.cluster_generation)
        """The gate's decisions for requests that pay and delegate nothing; bound to the
        policy in force (a reload clears it), keyed by the source cluster's key generation,
        and cleared when our cluster ID changes."""
        self.denied = 0
        self.duplicates = 0
        self.shared_spent = False
        """The cluster shares spent stamps and message ids (replication): an Allow names
        the stamp the shell spends cluster-wide before invoking (`stamp_refusal` judges the
        outcome), and a message id seen here is decided by its etcd record."""
        self.draining = False
        """Set when the node drains (6.11): requests from the network are answered with
        NODE_DRAINING, so callers move on at once; calls of this node's own entities (its
        in-flight handlers) still run."""
        self.minimums = TransitMinimums()
        """Transit minimums of admitted targets, bound to the policy in force."""
        self.connections = ServedConnections()
        """The connections this node serves: their bounds, reservations, idle sweep."""
        self.set_cluster_id(state.cluster_id)

    @classmethod
    def for_cluster(cls, cluster_ids: Sequence[ClusterId], cluster_key: Ed25519PrivateKey,
                    policy: Policy, view: ClusterView, intra_addresses: Mapping[bytes, Addr],
                    *, routing: RoutingConfig, spent: SpentStampStore, seal_prefix: bytes,
                    delivered: DeliveredStore | None = None,
                    delivered_settings: DeliveredSettings = DEFAULT_DELIVERED,
                    audit: AuditSink | None = None) -> NodeCore:
        """A node core from its cluster's configuration, as every host builds it.

        The last of `cluster_ids` is current; the older ones stay verifiable (EIDs minted
        under them keep working). The intra-cluster seal key is derived from the cluster
        key; `seal_prefix` is the 4 random nonce-prefix bytes of this incarnation.
        """
        verifier = EidVerifier()
        for cid in cluster_ids[:-1]:
            verifier.add_cluster_id(cid)
        seal = IntraSeal(derive_intra_key(cluster_key), seal_prefix)
        state = NodeState(cluster_ids[-1], policy, view, intra_addresses)
        return cls(state, routing=routing, verifier=verifier, spent=spent, seal=seal,
                   delivered=delivered, delivered_settings=delivered_settings, audit=audit)

    @property
    def master_hash(self) -> bytes:
        """Our cluster's identity."""
        return self.state.cluster_id.master_hash

    def set_cluster_id(self, cluster_id: ClusterId) -> None:
        """Adopt a new cluster-ID version (key rotation or address change)."""
        self.verifier.add_cluster_id(cluster_id)
        self.state.cluster_id = cluster_id
        self.state.view = replace(self.state.view, cluster_id_version=cluster_id.version)
        self._cluster_id_bytes = cluster_id.encode()
        self._keep_known()
        self.decisions.clear()

    def _keep_known(self) -> None:
        """Our cluster and the policy's trusted clusters keep their rotation history in the
        key ring however many strangers' clusters pass through it (protocol.md 4.5)."""
        policy = self.state.policy
        self._kept_for = policy
        self.verifier.ring.keep({self.master_hash, *policy.clusters})

    def record_move(self, local: bytes, new_eid: bytes, issued_at: int,
                    cluster_key: Ed25519PrivateKey) -> None:
        """Entity `local` moved to another cluster as `new_eid`: from now on requests for
        it are answered with this forwarding record, signed by our cluster key (6.6)."""
        record = make_forwarding_record(self.master_hash, local, new_eid, issued_at,
                                        cluster_key)
        view = self.state.view
        self.state.view = replace(view, moved={**view.moved, local: record})

    def handle(self, path: Path, payload: bytes, request_key: bytes, deadline: float,
               now: float, one_way: bool = False, *, sealed: bool = False,
               proof: SessionProof | None = None, transit: int = 0,
               peer: Addr | None = None) -> NodeAction:
        """Decide what to do with one request or one-way message from the network.

        `payload` has been opened by transit (the shell seals the reply again): `sealed`
        when it came in a session a certified node of this cluster opened, `proof` for a
        session from another cluster, `transit` the algorithm id that protected it, `peer`
        the address it came from (charged for the signature checks it costs, 7.1).
        `deadline` is in the shell's monotonic clock; `now` is wall-clock (Unix) time,
        which stamp dates and certificate expiries are measured in.
        """
        if path is Path.INTRA_CLUSTER and not sealed:
            return Drop("intra-cluster node messages must come in a session opened by a "
                        "certified node of this cluster")
        request = ReceivedRequest(path, sealed, payload, request_key, deadline, one_way,
                                  proof, transit, peer)
        return self._decoded(request, now, fetch_allowed=True)

    def handle_opened(self, path: Path, payload: bytes, channel: Channel | None,
                      peer: Addr, request_key: bytes, deadline: float, now: float,
                      one_way: bool = False) -> NodeAction:
        """`handle` for what transit opened on `path`'s port from `peer`: what the session
        proves follows from the port (intra-cluster: a certified node of this cluster opened
        it; inter-cluster: its proof goes to the gate), its algorithm from the session.
        `channel` None is a cleartext query (transit's `Plain`)."""
        if channel is None:
            return self.handle(path, payload, request_key, deadline, now, one_way, peer=peer)
        session = channel.session
        inter = path is Path.INTER_CLUSTER
        return self.handle(path, payload, request_key, deadline, now, one_way,
                           sealed=not inter, proof=session.proof if inter else None,
                           transit=session.algorithm.id, peer=peer)

    def retry(self, fetch: FetchKeys, now: float) -> NodeAction:
        """Decide a request again after its caller's cluster keys were fetched (or not);
        never asks for another fetch."""
        return self._decoded(fetch.retry, now)

    def fetch_finished(self, master_hash: bytes) -> None:
        """The shell's fetch of that cluster's keys ended (learned or not): from now on
        its requests are decided without waiting, and the FETCH_EVERY spacing applies.
        Addresses asked in vain are not asked for that cluster again for a while."""
        asked = self._fetching.pop(master_hash, ())
        if asked:
            self.fetch_budget.failed(master_hash, asked, self._fetched.get(master_hash, 0.0))

    def learn_keys(self, master_hash: bytes, reply: bytes) -> bool:
        """Take a fetched cluster ID if it proves itself and is the one asked for."""
        cluster_id = fetched_cluster_id(master_hash, reply)
        if cluster_id is None:
            return False
        try:
            self.verifier.add_cluster_id(cluster_id)
        except MercuryError:
            return False
        if master_hash in self._fetching:
            self._fetching[master_hash] = ()  # the fetch succeeded: no address failed
        return True

    def handle_local(self, payload: bytes, request_key: bytes, deadline: float, now: float,
                     one_way: bool = False,
                     decoded: DecodedOperation | None = None) -> NodeAction:
        """A call from an entity on this node: decided exactly like an intra-cluster one
        (same routing, same gate), with nothing sealed since nothing leaves the process.
        `decoded`: what decoding `payload` gives, when the caller knows it
        (`decoded_plain`), so it is not decoded again."""
        request = ReceivedRequest(Path.INTRA_CLUSTER, False, payload, request_key, deadline,
                                  one_way)
        return self._decoded(request, now, known=decoded)

    def _decoded(self, request: ReceivedRequest, now: float,
                 fetch_allowed: bool = False,
                 known: DecodedOperation | None = None) -> NodeAction:
        sealed = request.sealed
        try:
            decoded = decode_node_request(request.payload) if known is None else known
        except MercuryError as exc:
            return self._respond(sealed, error_reply(exc))
        if isinstance(decoded, ClusterIdQuery):
            return self._respond(sealed, self._cluster_id_answer(decoded))
        if isinstance(decoded, StateFetch | StateCommit):
            return self._state_access(sealed, decoded)
        action = self._operation(request, decoded, now)
        if fetch_allowed and self.sources.wanted and isinstance(action, Respond) \
                and decoded.request.source:
            fetch = self._fetch_for(decoded.request.source, now)
            if fetch is not None:
                return FetchKeys(*fetch, retry=request)
        return action

    def _fetch_for(self, source: bytes, now: float) -> tuple[bytes, tuple[Addr, ...],
                                                               bytes] | None:
        """A key fetch for an unverifiable source EID, at most once per FETCH_EVERY and
        within the FetchBudget (all clusters, each listed address); while one is under way,
        every request from that cluster joins it (the shell sends the queries once) and is
        decided again when it ends."""
        wanted = self.sources.wanted.pop(self._cluster_of(source), None)
        if wanted is None:
            return None
        eid = Eid.decode(wanted)
        master = eid.cluster_id.master_hash
        if master not in self._fetching:
            last = self._fetched.get(master)
            if last is not None and now - last < FETCH_EVERY:
                return None
            if len(self._fetching) >= MAX_FETCHES:
                return None
            listed = ((str(a.host), a.port) for a in sorted(
                eid.cluster_id.addresses, key=lambda a: a.priority))
            addresses = self.fetch_budget.start(master, listed, now, FETCH_ADDRESSES)
            if not addresses:
                return None
            self._fetched[master] = now
            self._fetching[master] = addresses
            if len(self._fetched) > MAX_FETCHES:
                self._fetched.popitem(last=False)
        return master, self._fetching[master], encode_cluster_id_query(master)

    def _cluster_of(self, source: bytes) -> bytes:
        try:
            return Eid.decode(source).cluster_id.master_hash
        except MercuryError:
            return b""

    def finish(self, action: Invoke | ServeState, payload: bytes | None, code: int | None,
               message: str = "") -> bytes:
        """The reply bytes for a finished invocation or state access."""
        if isinstance(action, Invoke):
            self._connection_finished(action.call, code)
        if code is None and payload is not None and action.bundle is None:
            return encode_ok(payload)  # the common reply: no NodeReply built
        if code is None:
            reply = NodeReply(payload=payload, cluster_id=action.bundle)
        else:
            reply = NodeReply(code, message=message[:MAX_MESSAGE_TEXT],
                              cluster_id=action.bundle)
        return reply.encode()

    def stamp_refusal(self, action: Invoke, spend: ClusterSpend,
                      stored: bytes | None) -> bytes | None:
        """After the shell spent `action`'s stamp cluster-wide (`stored`: the request it
        was spent for before, None if spent now): None to invoke, else the 606 reply. The
        same request retried (same principal, id and target) passes: it then gets its
        stored reply, or runs once, through its at-most-once record."""
        if cluster_spend_admits(stored, action.call.request_id):
            return None
        self.denied += 1
        self._connection_finished(action.call, int(ErrorCode.HASHCASH_DOUBLE_SPENT))
        return NodeReply(int(ErrorCode.HASHCASH_DOUBLE_SPENT), cluster_id=action.bundle,
                         required_bits=spend.cost, message="stamp was already spent in this "
                         f"cluster by another request; send a new {spend.cost}-bit stamp"
                         ).encode()

    def _connection_finished(self, call: IncomingCall, code: int | None) -> None:
        """A close, or the refused first open of an id, leaves the served table."""
        connection, cid = call.connection, call.connection_id
        if connection is None or cid is None:
            return
        if connection.form == OPEN:
            if code is None:
                self.connections.opened(call.entity, cid)
            else:
                self.connections.open_failed(call.entity, cid)
        elif connection.form == CLOSE and code is None:
            self.connections.release(call.entity, cid)

    def relay(self, action: Forward, reply: bytes | None, code: int | None = None,
              message: str = "") -> bytes:
        """The reply bytes for a forwarded request, from the mirror's (opened) reply."""
        if reply is not None:
            return reply
        text = f"forwarding to a mirror failed: {message}"
        failure = NodeReply(_node_local(code), message=text[:MAX_MESSAGE_TEXT])
        return failure.encode()

    def forward_failed(self, action: Forward, code: int, message: str = "",
                       now: float = 0.0) -> Forward | bytes:
        """After the mirror `action` went to failed at the transport (at wall-clock `now`):
        the same request to the entity's next live mirror if that one never acknowledged
        it (so it did not run there), else the node-local reply that sends the caller to
        its next address. A mirror that did not acknowledge is tried last for a while."""
        if code == ErrorCode.NO_ANSWER:
            again = self._next_mirror(action, now)
            if again is not None:
                return again
        return self.relay(action, None, code, message)

    def forward_answered(self, action: Forward, reply: bytes, now: float) -> Forward | bytes:
        """The mirror's (opened) reply, relayed; but a mirror that is draining ran nothing,
        so the request goes to the entity's next live mirror as after silence."""
        draining = peek_reply_code(reply) == ErrorCode.NODE_DRAINING
        again = self._next_mirror(action, now) if draining else None
        return reply if again is None else again

    def _next_mirror(self, action: Forward, now: float) -> Forward | bytes | None:
        """The same request to the next live mirror after `action`'s (now tried last for a
        while); None when there is none."""
        self._silent[action.node_id] = now
        self._silent.move_to_end(action.node_id)
        if len(self._silent) > MAX_SILENT:
            self._silent.popitem(last=False)
        nodes = self.state.view.nodes
        rest = tuple(n for n in action.fallbacks if n in nodes and nodes[n].alive)
        if not rest:
            return None
        again = self._forward_to(action.sealed, action.payload, rest[0], rest[1:])
        return again if isinstance(again, Forward) else again.reply

    # ----- the decision -----------------------------------------------------------------

    def _operation(self, request: ReceivedRequest, op: DecodedOperation,
                   now: float) -> NodeAction:
        sealed = request.sealed
        if self.draining and (sealed or request.path is Path.INTER_CLUSTER):
            return self._respond(sealed, self._draining_reply(op))
        try:
            target = self._target_claim(op.request.target)
        except MercuryError as exc:
            return self._respond(sealed, error_reply(exc))
        goal = Target(target.local, op.request.endpoint, op.request.operation)
        policy = self.state.policy
        minimum = self.minimums.level(policy, goal)
        transit = self._transit_check(request, minimum)
        if isinstance(transit, TooWeak):
            return self._respond(sealed, NodeReply(
                int(transit.code), acceptable=transit.acceptable,
                message=f"transit algorithm {transit.algorithm} is below this operation's "
                        f"minimum; use one of {list(transit.acceptable)}"[:MAX_MESSAGE_TEXT]))
        connection = op.request.connection  # a connection's uses stay on one mirror
        sticky = request.request_key if connection is None else connection.connection_id
        summary = RequestSummary(target.local, sticky, op.request.version, request.path,
                                 op.hops)
        decision = decide_route(summary, self.routing, self.state.view)
        bundle = self._cluster_id_bytes if decision.bundle_cluster_id else None
        if isinstance(decision, Refuse):
            return self._respond(sealed, _from_routing(decision, self._cluster_id_bytes))
        if isinstance(decision, RedirectMoved):
            try:  # a forwarding record is for the holders of a genuine EID
                self._target_eid(op.request.target, target)
            except MercuryError as exc:
                return self._respond(sealed, error_reply(exc))
            return self._respond(sealed, _from_routing(decision, self._cluster_id_bytes))
        allow: Allow | None = None
        if isinstance(decision, RunHere | RunWithRemoteState) or \
                decision.check_security_first:
            verdict = self._gate(request, op, target, now)
            if isinstance(verdict, Deny):
                self.denied += 1
                return self._respond(sealed, NodeReply(
                    int(verdict.code), message=verdict.message[:MAX_MESSAGE_TEXT],
                    cluster_id=bundle, required_bits=verdict.required_bits))
            allow = verdict
        elif isinstance(decision, ForwardTo):
            unpaid = self._unpaid_forward(request, op, target, now)
            if unpaid is not None:
                return self._respond(sealed, unpaid)
        if allow is None:
            try:
                self._target_eid(op.request.target, target)
            except MercuryError as exc:
                return self._respond(sealed, error_reply(exc))
        if isinstance(decision, RedirectTo):
            return self._respond(sealed, _from_routing(decision, self._cluster_id_bytes))
        if isinstance(decision, ForwardTo):
            unproven = self._unproven_source(request, op)
            if unproven is not None:
                return self._respond(sealed, unproven)
            return self._forward(sealed, op, decision.node_id, target.local, now)
        if isinstance(decision, RunWithRemoteState) and op.request.message_id is not None:
            return self._forward(sealed, op, decision.state_node, target.local, now)
        assert allow is not None
        self.minimums.keep(policy, goal, minimum)
        admitted = _Admitted(op, target, allow, bundle, transit)
        if isinstance(decision, RunWithRemoteState):
            return self._run_with_remote_state(request, admitted, decision.state_node, now)
        return self._run_here(request, admitted, now)

    def _draining_reply(self, op: DecodedOperation) -> NodeReply:
        """NODE_DRAINING, with our cluster ID when the caller's is older: the newer one no
        longer lists this node, so the caller stops trying it."""
        bundle = op.request.version < self.state.cluster_id.version
        return NodeReply(int(ErrorCode.NODE_DRAINING), message="this node is draining; try "
                         "another node", cluster_id=self._cluster_id_bytes if bundle else None)

    def _transit_check(self, request: ReceivedRequest, minimum: int) -> int | TooWeak:
        """The message's transit classification here, or the refusal of an algorithm too
        weak for the operation, whose transit minimum is `minimum` (docs/protocol.md 8.7).
        A call from this node (transit 0) never crossed a network: it has the minimum."""
        policy = self.state.policy
        if not request.transit:
            return minimum
        if self._tables_of is not policy:
            self._tables_of = policy
            self._tables = {Path.INTER_CLUSTER: inter_cluster_table(policy),
                            Path.INTRA_CLUSTER: intra_cluster_table(policy)}
        verdict = receiver_check(self._tables[request.path], request.transit, minimum)
        return verdict if isinstance(verdict, TooWeak) else verdict.classification

    def _run_here(self, request: ReceivedRequest, admitted: _Admitted,
                  now: float) -> NodeAction:
        """Invoke here; a one-way message id seen before is acknowledged, not run again.
        With replication the id's record in etcd decides instead (the invoker answers a
        recorded one from it): an attempt here that ran nothing (etcd unreachable) must
        not make its redelivery look done."""
        sealed, bundle = request.sealed, admitted.bundle
        message_id = admitted.op.request.message_id
        if message_id is not None:
            sender = admitted.allow.originator.cluster
            seen = self.delivered_ids.add(sender, message_id, now)
            if seen is SpendResult.ALREADY_SPENT and not self.shared_spent:
                self.duplicates += 1
                return self._respond(sealed, NodeReply(payload=b"", cluster_id=bundle))
            if seen is SpendResult.FULL:
                return self._respond(sealed, NodeReply(
                    int(ErrorCode.OVERLOADED), cluster_id=bundle,
                    message="too many one-way message ids remembered for your cluster or "
                            "in all; retry later"))
        call = self._admit_connection(
            _incoming(request, admitted, request.one_way or message_id is not None), now)
        if isinstance(call, NodeReply):
            return self._respond(sealed, call)
        return Invoke(call, sealed, bundle, admitted.allow)

    def _run_with_remote_state(self, request: ReceivedRequest, admitted: _Admitted,
                               state_node: bytes, now: float) -> NodeAction:
        """Run here, state on `state_node`. (A one-way message with an id is forwarded
        instead, so its id is remembered where the entity's state lives.)"""
        address = self.state.intra_addresses.get(state_node)
        if address is None:
            return self._respond(request.sealed, NodeReply(
                int(ErrorCode.NO_LIVE_MIRROR), cluster_id=admitted.bundle,
                message="the node holding the entity's state has no intra-cluster address"))
        call = self._admit_connection(_incoming(request, admitted, request.one_way), now)
        if isinstance(call, NodeReply):
            return self._respond(request.sealed, call)
        return Invoke(call, request.sealed, admitted.bundle, admitted.allow, state_at=address)

    def _admit_connection(self, call: IncomingCall, now: float) -> IncomingCall | NodeReply:
        """An open within this node's connection bounds (the reservation it grants goes
        to the open's reply), or the refusal; a use marks its connection as not idle."""
        connection, cid = call.connection, call.connection_id
        if connection is None or cid is None:
            return call
        peer = call.originator or call.caller
        if connection.form == USE:
            self.connections.touch(call.entity, cid, (peer.cluster, peer.local), now)
        if connection.form != OPEN:
            return call
        asked = Reservation(*connection.granted)
        granted = self.connections.admit(call.entity, cid, (peer.cluster, peer.local),
                                         asked, now)
        if isinstance(granted, ErrorCode):
            return NodeReply(int(granted), message=_REFUSED_OPEN[granted])
        return replace(call, connection=replace(connection,
                                                granted=(granted.rate, granted.burst)))

    def state_reply(self, answer: bytes, *, committing: bool) -> bytes:
        """The payload of a state node's (opened) answer to our fetch or commit, or the
        error that answer becomes for the call (`state_failure`); raises MercuryError."""
        try:
            reply = decode_reply(answer)
        except MercuryError as exc:
            raise state_failure(int(exc.code or ErrorCode.BAD_REMOTE_STATE), exc.message,
                                committing=committing, answered=True) from None
        if not reply.ok:
            raise state_failure(reply.code, reply.message, committing=committing,
                                answered=True)
        return reply.payload or b""

    def _state_access(self, sealed: bool, request: StateFetch | StateCommit) -> NodeAction:
        """Serve a remote-state request: only sealed (another node of this cluster), and
        only for an entity this node mirrors."""
        if not sealed:
            return self._respond(False, NodeReply(
                int(ErrorCode.BAD_REMOTE_STATE),
                message="remote-state requests are accepted only over the intra-cluster path"))
        view = self.state.view
        if view.local_node not in view.mirrors.get(request.entity, frozenset()):
            return self._respond(sealed, NodeReply(
                int(ErrorCode.ENTITY_NOT_ON_NODE),
                message="this node does not hold that entity's state"))
        return ServeState(request, sealed)

    def _target_claim(self, data: bytes) -> Eid:
        """The target EID as it claims to be, its signature not yet checked: the cached
        result of a genuine target, else a decode. Cheap, so the stamp can be checked
        before any signature (docs/protocol.md 7.1); `_target_eid` proves it before
        anything runs or is forwarded. Refused at once if it names another cluster."""
        cached = self.verifier.cached(data)
        eid = cached.eid if cached is not None else Eid.decode(data)
        if eid.cluster_id.master_hash != self.master_hash:
            raise NodeError("the target EID belongs to another cluster",
                            ErrorCode.UNKNOWN_ENTITY)
        return eid

    def _target_eid(self, data: bytes, claimed: Eid) -> Eid:
        """Prove the claimed target EID ours (a cache hit for a genuine target seen before)."""
        result = self.verifier.verify(data, claimed)
        if result.principal.cluster != self.master_hash:
            raise NodeError("the target EID belongs to another cluster",
                            ErrorCode.UNKNOWN_ENTITY)
        if not result.fully_verified:
            raise NodeError(f"target EID not verifiable here: {result.missing}",
                            ErrorCode.NODE_LOCAL_ERROR)
        return result.eid

    def _gate_request(self, received: ReceivedRequest, op: DecodedOperation,
                      target: Eid) -> GateRequest | Deny:
        """What the gate decides on: the request and who it says sent it."""
        path, request = received.path, op.request
        source: Source
        if request.source is not None:
            source = RemoteSource(request.source,
                                  FORWARDED if received.sealed else received.proof)
        elif path is Path.INTRA_CLUSTER and request.vouched is not None:
            source = LocalSource(request.vouched)
        else:
            return Deny(ErrorCode.SOURCE_UNVERIFIED, "a vouched caller identity is only "
                        "accepted over the intra-cluster path; send a source EID", "source",
                        "source")
        return GateRequest(
            Target(target.local, request.endpoint, request.operation), source,
            b"", op.payments, request.delegation, target.persona,
            has_request_id=request.request_id is not None or request.message_id is not None,
            body=op.body)

    def _pay_for_checks(self, received: ReceivedRequest, gate_request: GateRequest,
                        op: DecodedOperation, now: float, *, spend: bool) -> Paid | Deny:
        """The stamp (stage 1), and the signature checks the rest will cost charged to the
        signature budget; when it cannot pay, the stamp must be worth its `demand_bits`
        instead (then nothing is charged). The stamp's bits, or the Deny."""
        budget = self.signature_budget
        cost, cluster, known = self._checks_needed(received, gate_request.source,
                                                   op.request.target)
        demand = None
        if cost and not budget.allows(received.peer, cluster, known, cost, now):
            demand = Ruled(budget.settings.demand_bits, "node.signature_budget")
        paid = pay(gate_request, self.state.policy, self._gate_state(), now, demand,
                   spend=spend)
        if isinstance(paid, Deny):
            budget.demanded += demand is not None
        elif cost and paid.bits < budget.settings.demand_bits:
            budget.charge(received.peer, cluster, known, cost, now)
        return paid

    def _checks_needed(self, received: ReceivedRequest, source: Source,
                       target: bytes) -> tuple[int, bytes, bool]:
        """The signature checks proving this request's target and source would cost (0
        for anything cached, and for every request from this cluster: its nodes proved
        theirs), the source cluster charged, and whether that cluster is one the node
        trusts or called (its key ring holds it apart from strangers: not charged to the
        strangers' budget; a stranger's cluster whose keys verified is still a stranger)."""
        if received.sealed or not isinstance(source, RemoteSource):
            return 0, b"", True
        verifier = self.verifier
        cost = 0 if verifier.cached(target) is not None or verifier.known_bad(target) else 1
        ring = verifier.ring
        cached = verifier.cached(source.eid)
        if cached is not None:
            cluster = cached.principal.cluster
            proven = source.proof is not None and source.proof.checked
            return cost + (0 if proven else PROOF_CHECKS), cluster, ring.held_apart(cluster)
        if verifier.known_bad(source.eid):
            return cost, b"", False
        try:
            cid = Eid.decode(source.eid).cluster_id
        except MercuryError:
            return cost, b"", False
        master = cid.master_hash
        held = ring.certified(master, cid.cluster_key_hash) is not None
        if not held and cid.cluster_key.key is None:
            return cost, master, False  # nothing to check it with: its keys are fetched
        if not held:  # names that cluster, unproven: a stranger's claim, whatever it names
            return cost + 2 + PROOF_CHECKS, b"", False
        return cost + 1 + PROOF_CHECKS, master, ring.held_apart(master)

    def _gate_state(self) -> GateState:
        """The gate's collaborators, built again only when one of them was replaced (a new
        policy, cluster, verifier, spent store or tag cache): twice per request otherwise."""
        policy = self.state.policy
        if policy is not self._kept_for:
            self._keep_known()
        held = self._held_gate_state
        if held is not None:
            acls = held.acls
            if (isinstance(acls, PolicyAcls) and acls.policy is policy
                    and held.verifier is self.sources and held.spent is self.spent
                    and held.tags is self.target_tags
                    and held.shared_spent == self.shared_spent
                    and held.decisions is self.decisions
                    and held.local_cluster == self.master_hash):
                return held
        held = GateState(self.master_hash, self.sources, self.spent, PolicyAcls(policy),
                         tags=self.target_tags, shared_spent=self.shared_spent,
                         decisions=self.decisions)
        self._held_gate_state = held
        return held

    def _unpaid_forward(self, received: ReceivedRequest, op: DecodedOperation, target: Eid,
                        now: float) -> NodeReply | None:
        """Before proving the target of a request to forward: its stamp, checked but not
        spent (the mirror spends it), so junk costs no signature here either (None: paid)."""
        gate_request = self._gate_request(received, op, target)
        if isinstance(gate_request, Deny):
            self.denied += 1  # a vouched caller from outside: the mirror would believe it
            return NodeReply(int(gate_request.code),
                             message=gate_request.message[:MAX_MESSAGE_TEXT])
        paid = self._pay_for_checks(received, gate_request, op, now, spend=False)
        if isinstance(paid, Deny):
            self.denied += 1
            return NodeReply(int(paid.code), message=paid.message[:MAX_MESSAGE_TEXT],
                             required_bits=paid.required_bits)
        return None

    def _gate(self, received: ReceivedRequest, op: DecodedOperation, target: Eid,
              now: float) -> Allow | Deny:
        """The gate (docs/protocol.md 7.1): the stamp, paid for the target the EID claims;
        then the target EID proven ours; then source, delegation, MAC, DAC."""
        gate_request = self._gate_request(received, op, target)
        if isinstance(gate_request, Deny):
            return gate_request
        decision = self._decide(received, gate_request, op, target, now)
        if self.audit is not None:
            self.audit(gate_request, decision)
        return decision

    def _decide(self, received: ReceivedRequest, gate_request: GateRequest,
                op: DecodedOperation, claimed: Eid, now: float) -> Allow | Deny:
        policy, state = self.state.policy, self._gate_state()
        paid = self._pay_for_checks(received, gate_request, op, now, spend=True)
        if isinstance(paid, Deny):
            return paid
        try:
            self._target_eid(op.request.target, claimed)
        except MercuryError as exc:
            return Deny(exc.code or ErrorCode.NODE_LOCAL_ERROR, exc.message, "target",
                        "target")
        return decide_access(gate_request, policy, state, now, paid.bits, spend=paid.spend)

    def _unproven_source(self, received: ReceivedRequest,
                         op: DecodedOperation) -> NodeReply | None:
        """Before forwarding a request from another cluster, prove its source: the mirror
        trusts this node to have done so, as it trusts a vouched caller (None: proven)."""
        source = op.request.source
        if received.sealed or source is None:
            return None
        proven = authenticate(RemoteSource(source, received.proof), self.sources)
        if isinstance(proven, Deny):
            self.denied += 1
            return NodeReply(int(proven.code), message=proven.message[:MAX_MESSAGE_TEXT])
        return None

    def _forward(self, sealed: bool, op: DecodedOperation, node: bytes, entity: bytes,
                 now: float) -> NodeAction:
        """To `node` (routing's stable choice), then the entity's other live mirrors in
        byte order after it; mirrors silent within SILENT_MIRROR_FOR go last."""
        view = self.state.view
        live = live_mirrors(view, view.mirrors.get(entity, frozenset()))
        after = live.index(node) + 1 if node in live else 0
        order = [node, *(n for n in live[after:] + live[:after] if n != node)]
        order.sort(key=lambda n: now - self._silent.get(n, -SILENT_MIRROR_FOR)
                   < SILENT_MIRROR_FOR)  # stable: the silent ones move to the end
        payload = encode_operation(op.body, op.payments, op.hops + 1)
        return self._forward_to(sealed, payload, order[0], tuple(order[1:]))

    def _forward_to(self, sealed: bool, payload: bytes, node: bytes,
                    fallbacks: tuple[bytes, ...]) -> Forward | Respond:
        address = self.state.intra_addresses.get(node)
        if address is None:
            reply = NodeReply(int(ErrorCode.NO_LIVE_MIRROR),
                              message="the chosen mirror has no intra-cluster address")
            return self._respond(sealed, reply)
        return Forward(node, address, payload, sealed, fallbacks)

    def _cluster_id_answer(self, query: ClusterIdQuery) -> NodeReply:
        if query.master_hash != self.master_hash:
            return NodeReply(int(ErrorCode.UNKNOWN_ENTITY),
                             message="this node serves another cluster")
        return NodeReply(cluster_id=self._cluster_id_bytes)

    @staticmethod
    def _respond(sealed: bool, reply: NodeReply) -> Respond:
        return Respond(reply.encode())


FORWARDED = ASSUMED_PROVEN
"""A request a node of this cluster forwarded: it proved the source's session before
forwarding (`_unproven_source`), and its own session is certified."""


@dataclass(frozen=True, slots=True)
class _Admitted:
    """An operation the gate let through: what runs, on which entity, as whom."""

    op: DecodedOperation
    target: Eid
    allow: Allow
    bundle: bytes | None
    """Our cluster ID for the reply, when the caller's is outdated."""
    transit: int
    """The message's transit classification, in this cluster's levels."""


def _incoming(received: ReceivedRequest, admitted: _Admitted, one_way: bool) -> IncomingCall:
    request, target, allow = admitted.op.request, admitted.target, admitted.allow
    originator = allow.originator if allow.originator != allow.principal else None
    kind = OperationKind.MESSAGE if one_way else OperationKind.REQUEST
    field = request.connection
    connection, cid = None, None
    if field is not None:
        cid = field.connection_id
        if field.form is ConnectionForm.OPEN:
            kind = OperationKind.CONNECTION
        asked = field.reservation  # the core's admission replaces it by what it grants
        connection = ConnectionCall(int(field.form), field.offers, field.reestablish,
                                    request.source or b"", (asked.rate, asked.burst))
    return IncomingCall(target.local, request.endpoint, request.operation, kind,
                        request.payload, allow.principal, target.persona, originator,
                        cid, admitted.transit, received.deadline, connection,
                        scoped_request_id(allow.principal, request, target.local))


_REFUSED_OPEN = {
    ErrorCode.CONNECTION_ID_IN_USE: "this connection id belongs to another peer's "
                                    "connection; open with a fresh id",
    ErrorCode.TOO_MANY_CONNECTIONS: "this node serves as many connections as it takes; "
                                    "retry later or elsewhere",
    ErrorCode.TOO_MANY_ENTITY_CONNECTIONS: "the entity holds as many connections as this "
                                           "node allows it; close one",
    ErrorCode.TOO_MANY_PEER_CONNECTIONS: "you hold as many connections to this node as it "
                                         "allows one entity; close one",
}


def _node_local(code: int | None) -> int:
    """The code a failed forward is answered with: always one the caller treats as
    node-local (docs/protocol.md 6.3), so it tries its next address."""
    if code is not None and code in NODE_LOCAL_CODES:
        return code
    if code == ErrorCode.NO_ANSWER:
        return int(ErrorCode.NO_LIVE_MIRROR)
    return int(ErrorCode.NODE_LOCAL_ERROR)


def _from_routing(decision: RedirectTo | RedirectMoved | Refuse, cluster_id: bytes) -> NodeReply:
    routing = reply_for_decision(decision, cluster_id)
    return NodeReply(routing.code, message=routing.message, cluster_id=routing.cluster_id,
                     target=routing.target, forwarding=routing.forwarding)
