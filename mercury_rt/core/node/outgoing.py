"""One outgoing call's whole life as a pure step machine (sans-IO).

`OutgoingCall` decides; its user (the asyncio shell, or a simulated host) carries out one
step at a time and reports back. Host steps (`HostStep`): run here, send over the
intra-cluster path, send to an inter-cluster address (with an answer timeout, so silence
moves on to the next address), fetch the target cluster's keys, mint a hashcash stamp.
Final steps (`FinalStep`): the call got its reply (`GotReply`), or no node could take it
(`GaveUp`). It covers routing, SRV failover and redirects (through the contact state
machine), entity migration (bounded) and one retry with a stamp when the target demands
proof of work. A target in another cluster is contacted only once its EID verifies to its
master hash; for a hashes-only EID whose keys are unknown the call first fetches them from
the target's cluster (once per target).

The common call needs no contact state machine: while none of the called cluster's
listed nodes is suspect, the first round's order is drawn from the planner's kept contact
view, the first address is sent to, and an OK answer ends the call; only another answer
or a failure builds the contact, in the state it would have reached by then
(`CallPlanner.lazy_contact`; a property test holds the two paths to the same decisions).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import lru_cache
from ipaddress import IPv4Address, IPv6Address

from carbon.error_codes import ErrorCode, MercuryError
from mercury_rt.core.gate import (
    PaymentStamp,
    hashcash_payment,
    mint_stamp,
    request_digest,
    stamp_resource,
    target_tag,
)
from mercury_rt.core.identity import ClusterId, Eid, Endpoint
from mercury_rt.core.node.messages import (
    DecodedOperation,
    NodeReply,
    decode_reply,
    decoded_plain,
)
from mercury_rt.core.node.planner import (
    CallPlanner,
    CallRequest,
    CallRoute,
    ContactCluster,
    FetchTargetKeys,
    SendIntra,
)
from mercury_rt.core.node.transit_plan import TransitPlan, replan
from mercury_rt.core.routing import (
    ClusterIdReplaced,
    Contact,
    ContactAction,
    Failed,
    Migrated,
    NodeLocalError,
    RunHere,
    Succeeded,
    TryAddress,
)
from mercury_rt.core.transport import Addr

MAX_MIGRATIONS = 2
MAX_STAMP_BITS = 24
MAX_STAMPS = 2
"""Stamps one call mints at most, each for more bits than the last: a policy's demand,
then a signature budget's larger one (protocol.md 7.1) that a smaller stamp cannot pay."""


@dataclass(frozen=True, slots=True)
class RunHereStep:
    """Hand `payload` to this node's own core (`handle_local`), report its reply.

    `decoded`: what decoding `payload` gives, when the request is plain enough to know
    it without decoding (`decoded_plain`); `handle_local` then skips the decode."""

    payload: bytes
    decoded: DecodedOperation | None = None


@dataclass(frozen=True, slots=True)
class SendIntraStep:
    """Send `payload` to a node of this cluster over the intra-cluster port, in a transit
    session under `algorithm`."""

    address: Addr
    payload: bytes
    algorithm: int = 0


@dataclass(frozen=True, slots=True)
class SendInterStep:
    """Send `payload` to an inter-cluster address of cluster `cluster` (its master hash:
    the transit session must verify to it); give up on it after `answer_timeout` without
    an acknowledgement (report NO_ANSWER)."""

    address: Addr
    payload: bytes
    answer_timeout: float
    cluster: bytes = b""
    algorithm: int = 0
    """The transit algorithm of the session (transit_plan.py)."""


@dataclass(frozen=True, slots=True)
class FetchKeysStep:
    """Send `payload`, the key query `[1, master_hash]` (docs/protocol.md 6.9), to an
    inter-cluster address of the target's cluster; report its reply (`on_reply`) or failure
    (`on_failure`) exactly as for a SendInterStep. It carries no request: a cluster ID is
    public, and the caller verifies the answer itself before using it."""

    address: Addr
    payload: bytes
    answer_timeout: float


@dataclass(frozen=True, slots=True)
class NeedStamp:
    """Mint a hashcash stamp of `bits` for `resource` (off the event loop), report it."""

    resource: str
    bits: int


@dataclass(frozen=True, slots=True)
class GotReply:
    """The call got its answer (which may be an end-to-end error reply)."""

    reply: NodeReply


@dataclass(frozen=True, slots=True)
class GaveUp:
    """No node could take the call; `message` says what was tried."""

    code: int
    message: str


HostStep = RunHereStep | SendIntraStep | SendInterStep | FetchKeysStep | NeedStamp
"""A step the host carries out and reports back on (`on_reply`, `on_failure`, `on_stamp`)."""
FinalStep = GotReply | GaveUp
"""The call's end: nothing more to carry out."""
CallStep = HostStep | FinalStep


def pay_for(step: NeedStamp, now: float, nonce: bytes) -> PaymentStamp:
    """The payment `step` asks for, minted at wall-clock `now` with a fresh `nonce`.

    CPU-bound (up to 2**MAX_STAMP_BITS hashes): an event-loop host runs it off the loop."""
    return hashcash_payment(mint_stamp(step.resource, step.bits, now, nonce))


class OutgoingCall:
    """One call (`CallRequest`) from a local entity. Feed results; get the next step.

    With a `message_id` it is a one-way message: the handler runs as a message sink, the
    reply only acknowledges, and the target's node runs each message id once.
    """

    def __init__(self, planner: CallPlanner, request: CallRequest, now: float) -> None:
        self.planner = planner
        self.request = request
        """The call as it stands: its target follows a migration, its payments a stamp."""
        self.migrations = 0
        self.now = now
        self.stamped = bool(request.payments)
        self.minted_bits = 0
        """Bits of the last stamp this call minted (0: none yet)."""
        self.mints = 0
        self._cluster_id: ClusterId | None = None
        self._address: Addr | None = None
        self._route: CallRoute | None = None
        self._contact: Contact | None = None
        self._order: list[Endpoint] | None = None
        """The first round's order, drawn at start while no listed node was suspect, as
        long as the call has not needed its contact state machine (a call whose first
        node answers OK never builds one: issue 13)."""
        self._body = b""
        self._fetch: FetchTargetKeys | None = None
        self._fetch_queue: list[Addr] = []
        self._fetched = False
        self._plan: TransitPlan | None = None
        self._drained: frozenset[bytes] = frozenset()
        """Nodes of this cluster that answered NODE_DRAINING: the call goes elsewhere."""

    @property
    def request_key(self) -> bytes:
        """The call's sticky key (the host hands it to `NodeCore.handle_local`)."""
        return self.request.request_key

    @property
    def answered_by(self) -> Addr | None:
        """The address of the node whose answer the call ended with, as far as this node
        knows: the target cluster's node it last sent to, or the mirror of its own cluster;
        None when the call ran on this node or reached no node (a CLI prints it)."""
        if self._contacting:
            return self._address
        if isinstance(self._route, SendIntra):
            return self._route.address
        return None

    def start(self) -> CallStep:
        """The first step."""
        self._order = None
        try:
            route = self.planner.route(self.request.target, self.request_key,
                                       fetch_allowed=not self._fetched)
        except MercuryError as exc:
            return GaveUp(int(exc.code), exc.message)
        if isinstance(route, FetchTargetKeys):
            self._fetched = True
            self._fetch, self._fetch_queue = route, list(route.addresses)
            return self._next_fetch()
        self._route = route
        try:
            self._plan = self._transit_plan(route)
        except MercuryError as exc:
            return GaveUp(int(exc.code), exc.message)
        if isinstance(route, ContactCluster):
            self._cluster_id = route.cluster_id
            return self._contact_start(route.cluster_id)
        if isinstance(route, RunHere):
            data, self._body, request = self.planner.operation_parts(self.request, route)
            decoded = decoded_plain(request, self._body) if not self.request.payments \
                else None
            return RunHereStep(data, decoded)
        return SendIntraStep(route.address, self._data(route), self._algorithm)

    @property
    def _contacting(self) -> bool:
        """Whether the call is contacting another cluster (its contact built, or its
        first round's order drawn and the contact not needed yet)."""
        return self._contact is not None or self._order is not None

    def _contact_start(self, cluster_id: ClusterId) -> CallStep:
        """The first address to try. While none of the cluster's listed nodes is suspect,
        the first round's order is drawn from the kept view (exactly the draws the
        contact would make) and the contact is built only when an answer needs it."""
        planner = self.planner
        view = planner.views.of(cluster_id, planner.proximity)
        if planner.lazy_contact and not view.silent(planner.suspects, self.now):
            order: list[Endpoint] = [*view.table.order(planner.rng)]
            if order:  # an empty list drew nothing: the contact reports it below
                self._contact, self._order = None, order
                return self._send_to(order[0])
        self._contact = planner.contact(cluster_id, self.request.target, self.now)
        return self._drive(self._contact.start())

    def _contact_now(self) -> Contact:
        """The call's contact; when the call has not needed it yet, built now in the state
        starting it on the order drawn at start leaves it in (its first address tried)."""
        if self._contact is None:
            assert self._cluster_id is not None and self._order is not None
            contact = self.planner.contact(self._cluster_id, self.request.target, self.now,
                                           try_last=frozenset())
            contact.start(self._order)
            self._contact, self._order = contact, None
        return self._contact

    def _transit_plan(self, route: CallRoute) -> TransitPlan | None:
        """The algorithm a call's messages travel under; None for a call that stays here."""
        if isinstance(route, RunHere):
            return None
        call = self.request
        return self.planner.plans.plan(isinstance(route, ContactCluster),
                                       self.planner.core.state.policy, call.caller,
                                       call.target, call.endpoint, call.operation,
                                       call.classification)

    @property
    def _algorithm(self) -> int:
        return 0 if self._plan is None else self._plan.algorithm

    def _retry_stronger(self, reply: NodeReply) -> CallStep | None:
        """After an (authenticated) 707, the same node again under the cheapest algorithm
        both sides accept, once; None if the reply is no such refusal."""
        if reply.code != ErrorCode.ALGORITHM_TOO_WEAK or reply.acceptable is None \
                or self._plan is None:
            return None
        try:
            self._plan = replan(self._plan, reply.acceptable)
        except MercuryError as exc:
            return GaveUp(int(exc.code), exc.message)
        route = self._route
        if isinstance(route, SendIntra):
            return SendIntraStep(route.address, self._data(route), self._algorithm)
        assert self._cluster_id is not None and self._address is not None
        return SendInterStep(self._address, self._data(ContactCluster(
            self.planner.held(self._cluster_id))), self.planner.answer_timeout,
            self._cluster_id.master_hash, self._algorithm)

    def on_reply(self, raw: bytes) -> CallStep:
        """The step's reply arrived (transport payload)."""
        if self._fetch is not None:
            return self._on_keys(raw)
        try:
            reply = decode_reply(raw)
        except MercuryError as exc:
            if not self._contacting:
                return GaveUp(int(exc.code), f"undecodable reply: {exc.message}")
            return self._drive(self._contact_now().handle(
                NodeLocalError(int(exc.code), f"undecodable reply: {exc.message}")))
        stronger = self._retry_stronger(reply)
        if stronger is not None:
            return stronger
        if not self._contacting:
            return self._next_mirror(reply) or self._answered(reply)
        if self._address is not None:
            self.planner.mark_answered(self._address)
        if self._contact is None and reply.ok and reply.cluster_id is None:
            return self._answered(reply)  # what the contact decides: Succeeded, at the
            # first address, with nothing refused to count
        return self._drive(self._contact_now().handle(self.planner.event_for_reply(reply)))

    def _next_mirror(self, reply: NodeReply) -> CallStep | None:
        """After NODE_DRAINING from a node of this cluster (nothing ran there), the same
        call to the entity's next live mirror; None for any other reply or none left."""
        route = self._route
        if reply.code != ErrorCode.NODE_DRAINING or not isinstance(route, SendIntra):
            return None
        self._drained |= {route.node_id}
        mirrors = self.planner.core.state.view.mirrors.get(self.request.target.local)
        again = None if mirrors is None else self.planner.intra_route(
            mirrors, self.request_key, self._drained)
        if again is None:
            return None
        self._route = again
        return SendIntraStep(again.address, self._data(again), self._algorithm)

    def on_failure(self, code: int, message: str, now: float) -> CallStep:
        """The step failed at the transport (NO_ANSWER, TIMEOUT, ...) at time `now`."""
        if self._fetch is not None:
            return self._next_fetch()
        if not self._contacting:
            return GaveUp(code, message)
        if code == ErrorCode.NO_ANSWER and self._address is not None:
            self.planner.mark_silent(self._address, now)
        return self._drive(self._contact_now().handle(
            self.planner.event_for_failure(code, message)))

    def on_stamp(self, stamp: PaymentStamp) -> CallStep:
        """The stamp asked for is ready: send the call again, paid."""
        self.request = replace(self.request, payments=(stamp,))
        return self.start()

    def _on_keys(self, raw: bytes) -> CallStep:
        assert self._fetch is not None
        if self.planner.learn_keys(self._fetch, raw):
            self._fetch = None
            return self.start()
        return self._next_fetch()

    def _next_fetch(self) -> CallStep:
        """Ask the next address for the keys; when none is left, route again (which now
        fails with a coded error unless the keys were learnt meanwhile)."""
        assert self._fetch is not None
        if self._fetch_queue:
            return FetchKeysStep(self._fetch_queue.pop(0), self._fetch.query,
                                 self.planner.answer_timeout)
        self._fetch = None
        return self.start()

    def _drive(self, actions: list[ContactAction]) -> CallStep:
        for action in actions:
            if isinstance(action, ClusterIdReplaced):
                self.planner.learn(action.cluster_id)
                self._cluster_id = action.cluster_id
            elif isinstance(action, TryAddress):
                return self._send_to(action.endpoint)
            elif isinstance(action, Succeeded):
                assert isinstance(action.reply, NodeReply)
                self.planner.note_attempts(action.attempts)
                return self._answered(action.reply)
            elif isinstance(action, Migrated):
                self.planner.note_attempts(action.attempts)
                return self._migrate(action.record.new_eid)
            elif isinstance(action, Failed):
                self.planner.note_attempts(action.attempts)
                return GaveUp(int(action.code), action.message)
        return GaveUp(int(ErrorCode.NO_NODE_ANSWERED), "contact stopped without a step")

    def _send_to(self, endpoint: Endpoint) -> SendInterStep:
        assert self._cluster_id is not None
        route = ContactCluster(self.planner.held(self._cluster_id))
        self._address = (_host_text(endpoint.host), endpoint.port)
        return SendInterStep(self._address, self._data(route), self.planner.answer_timeout,
                             self._cluster_id.master_hash, self._algorithm)

    def _answered(self, reply: NodeReply) -> CallStep:
        bits = reply.required_bits
        if bits is not None and bits <= MAX_STAMP_BITS and self._may_mint(bits):
            self.stamped, self.minted_bits, self.mints = True, bits, self.mints + 1
            call = self.request
            resource = stamp_resource(target_tag(call.target.principal()), call.endpoint,
                                      call.operation, request_digest(self._body))
            return NeedStamp(resource, bits)
        return GotReply(reply)

    def _may_mint(self, bits: int) -> bool:
        """Whether to mint a stamp of `bits` now: the first one if the caller paid none;
        another, once, for more bits than the last stamp paid (a caller's own or ours), so
        a budget demand after a smaller stamp is met in the same call."""
        if not self.stamped:
            return True
        return self.mints < MAX_STAMPS and bits > self.minted_bits

    def _migrate(self, new_eid: bytes) -> CallStep:
        self.migrations += 1
        if self.migrations > MAX_MIGRATIONS:
            return GaveUp(int(ErrorCode.ENTITY_MOVED),
                              f"entity moved more than {MAX_MIGRATIONS} times")
        try:
            target = Eid.decode(new_eid)
        except MercuryError as exc:
            return GaveUp(int(exc.code), f"forwarding record names a bad EID: {exc.message}")
        self.request = replace(self.request, target=target, payments=())
        self.stamped, self._contact, self._order, self._fetched = False, None, None, False
        self.minted_bits = self.mints = 0
        return self.start()

    def _data(self, route: CallRoute) -> bytes:
        data, self._body = self.planner.operation(self.request, route)
        return data


@lru_cache(maxsize=1024)
def _host_text(host: IPv4Address | IPv6Address) -> str:
    """The socket layer's text for a listed host. Why cached: `str()` of an ipaddress
    object costs more than the rest of choosing the address, on every call."""
    return str(host)
