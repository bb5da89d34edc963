"""Client side of contacting an entity: which published address to try next, and when to stop.

The design: try the EID's published addresses in SRV order; on no answer or a node-local
error, try the next; follow a redirect, and if that fails continue in priority order; an
error or redirect carrying a more recent cluster ID replaces the stored one and restarts the
search with its address list. This is that procedure as an h11-style state machine: the
shell feeds events (what happened to the last `TryAddress`), the machine returns actions.
Any event not in the transition table for the current state is a local programming error
(`InvalidContactTransitionError`); anything a peer sends maps to an event and never raises.

Bounds, so hostile replies cannot keep a caller busy: at most `max_attempts` addresses tried
in all, `max_redirects` redirects followed, `max_restarts` cluster-ID restarts; a redirect
to an address already tried in this round is never followed. A round is the search over one
cluster ID's address list; only a properly superseding cluster ID starts a new one. A
redirect that bundles a superseding cluster ID starts the new round at the redirect target,
then continues with the new list in SRV order ("if that fails as well, ... start again from
the beginning").

A cluster ID that fails verification while claiming to be newer marks the whole reply as
untrustworthy: a redirect carrying it is not followed, and the attempt counts as failed.
Whether a candidate supersedes is injected (`SupersedeCheck`; a node passes identity's key
ring check), so this module verifies no signature itself.

Addresses the caller saw fall silent recently (`try_last`) are tried after every other
address of the first round, each group in SRV order; a newer cluster ID's round is plain
SRV order.

End-to-end replies (a handler's result, a security-gate refusal) are `Answered`: the request
reached a node that decided it, so trying another node could run it twice.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from enum import Enum
from typing import Any

from carbon.error_codes import ErrorCode, MercuryError
from mercury_rt.core.identity import (
    ClusterId,
    Endpoint,
    EndpointKey,
    ServerAddress,
    endpoint_key,
    format_endpoint,
)
from mercury_rt.core.routing.contact_events import (
    Answered,
    Attempt,
    ClusterIdReplaced,
    ContactAction,
    ContactError,
    ContactEvent,
    ContactLimits,
    ContactState,
    EntityMoved,
    ErrorWithClusterId,
    Failed,
    InvalidContactTransitionError,
    Migrated,
    NoAnswer,
    NodeLocalError,
    Outcome,
    Redirect,
    Succeeded,
    TryAddress,
    reject_all_moves,
)
from mercury_rt.core.routing.forwarding import ForwardingRecord
from mercury_rt.core.routing.srv import ProximityRule, SrvTable, srv_order

__all__ = [
    "Answered",
    "Attempt",
    "ClusterIdReplaced",
    "Contact",
    "ContactAction",
    "ContactError",
    "ContactEvent",
    "ContactLimits",
    "ContactState",
    "EntityMoved",
    "ErrorWithClusterId",
    "Failed",
    "InvalidContactTransitionError",
    "Migrated",
    "NoAnswer",
    "NodeLocalError",
    "Outcome",
    "Redirect",
    "Succeeded",
    "SupersedeCheck",
    "TryAddress",
]

Actions = list[ContactAction]

SupersedeCheck = Callable[[ClusterId, ClusterId], bool]
"""(held, candidate) -> True if the candidate is properly signed by the same cluster and
newer; False if it is merely not newer (stale but harmless); raises a MercuryError if it
claims to be newer but fails verification (forged or from another cluster)."""


class _Verdict(Enum):
    SUPERSEDES = "supersedes"
    NOT_NEWER = "not newer"
    REJECTED = "rejected"


class Contact:
    """One request's search for a node that answers; feed events, act on returned actions."""

    def __init__(self, cluster_id: ClusterId, rng: random.Random,
                 supersedes: SupersedeCheck, *,
                 verify_move: Callable[[ForwardingRecord], None] = reject_all_moves,
                 limits: ContactLimits | None = None,
                 proximity: ProximityRule | None = None,
                 try_last: frozenset[EndpointKey] = frozenset(),
                 table: SrvTable | None = None) -> None:
        self.cluster_id = cluster_id
        self.state = ContactState.IDLE
        self.limits = limits or ContactLimits()
        self._rng = rng
        self._supersedes = supersedes
        self._verify_move = verify_move
        self._proximity = proximity
        self._try_last = try_last
        self._table = table
        """`SrvTable.of(cluster_id.addresses, proximity)` when the caller keeps one: the
        first round's order is drawn from it (the same draws); a restart drops it."""
        self._attempts: list[Attempt] = []
        self._queue: list[Endpoint] = []  # what is left of this round, in order
        self._tried: set[EndpointKey] = set()
        self._current: Endpoint | None = None
        self._round = 0
        self._redirects = 0
        self._restarts = 0
        self._refusal: ErrorCode | None = None

    @property
    def attempts(self) -> tuple[Attempt, ...]:
        """Every attempt so far, in order."""
        return tuple(self._attempts)

    def start(self, order: list[Endpoint] | None = None) -> Actions:
        """Begin the first round: returns the first TryAddress (or Failed if none listed).

        `order`: the first round's order when the caller already drew it, exactly as this
        contact would (`SrvTable.order` of the cluster ID's list, no `try_last`), so a
        caller may send to the first address before it needs the contact at all."""
        self._require(ContactState.IDLE, "start")
        self.state = ContactState.AWAITING
        return self._begin_round(first=None, order=order)

    def handle(self, event: ContactEvent) -> Actions:
        """Advance on what happened to the address last returned in a TryAddress."""
        handler = _TABLE.get((self.state, type(event)))
        if handler is None:
            raise InvalidContactTransitionError(
                f"{type(event).__name__} is not allowed in contact state {self.state.value}")
        return handler(self, event)

    # ---- transitions (the table at the bottom maps event types to these) ----

    def _on_answered(self, event: Answered) -> Actions:
        actions: Actions = []
        detail = ""
        if event.cluster_id is not None:
            verdict, why = self._judge(event.cluster_id)
            if verdict is _Verdict.SUPERSEDES:
                self.cluster_id = event.cluster_id
                actions.append(ClusterIdReplaced(event.cluster_id))
            detail = f"bundled cluster ID {verdict.value}{why}"
        endpoint = self._record(Outcome.ANSWERED, detail)
        self.state = ContactState.SUCCEEDED
        actions.append(Succeeded(event.reply, endpoint, self.attempts))
        return actions

    def _on_no_answer(self, event: NoAnswer) -> Actions:
        self._record(Outcome.NO_ANSWER)
        return self._next()

    def _on_node_local_error(self, event: NodeLocalError) -> Actions:
        self._record(Outcome.NODE_LOCAL_ERROR, f"code {event.code} {event.message}".strip())
        return self._next()

    def _on_error_with_cluster_id(self, event: ErrorWithClusterId) -> Actions:
        verdict, why = self._judge(event.cluster_id)
        if verdict is _Verdict.SUPERSEDES:
            self._record(Outcome.CLUSTER_ID_RESTART, f"version {event.cluster_id.version}")
            return self._restart(event.cluster_id, first=None)
        outcome = Outcome.CLUSTER_ID_REJECTED
        if verdict is _Verdict.NOT_NEWER:
            outcome, self._refusal = Outcome.CLUSTER_ID_NOT_NEWER, ErrorCode.CLUSTER_ID_NOT_NEWER
        self._record(outcome, f"code {event.code}{why}")
        return self._next()

    def _on_redirect(self, event: Redirect) -> Actions:
        target = event.target
        if event.cluster_id is not None:
            verdict, why = self._judge(event.cluster_id)
            if verdict is _Verdict.REJECTED:
                self._record(Outcome.CLUSTER_ID_REJECTED, f"redirect not followed{why}")
                return self._next()
            if verdict is _Verdict.SUPERSEDES:
                self._record(Outcome.CLUSTER_ID_RESTART,
                             f"version {event.cluster_id.version}, redirect to "
                             f"{format_endpoint(target)}")
                first = target if self._may_follow(target, event.cluster_id) else None
                return self._restart(event.cluster_id, first=first)
        refusal = self._redirect_refusal(target)
        if refusal is not None:
            self._record(refusal, format_endpoint(target))
            return self._next()
        self._record(Outcome.REDIRECTED, format_endpoint(target))
        self._redirects += 1
        return self._try(target)

    def _on_entity_moved(self, event: EntityMoved) -> Actions:
        try:
            self._verify_move(event.record)
        except MercuryError as exc:
            self._refusal = exc.code
            self._record(Outcome.MOVE_REJECTED, exc.message)
            return self._next()
        self._record(Outcome.MOVED)
        self.state = ContactState.MIGRATED
        return [Migrated(event.record, self.attempts)]

    # ---- helpers ----

    def _judge(self, candidate: ClusterId) -> tuple[_Verdict, str]:
        """Ask the injected check whether `candidate` properly supersedes what we hold."""
        try:
            newer = self._supersedes(self.cluster_id, candidate)
        except MercuryError as exc:
            self._refusal = ErrorCode.CLUSTER_ID_REJECTED
            return _Verdict.REJECTED, f": {exc.message}"
        return (_Verdict.SUPERSEDES, "") if newer else (_Verdict.NOT_NEWER, "")

    def _redirect_refusal(self, target: Endpoint) -> Outcome | None:
        if self._redirects >= self.limits.max_redirects:
            self._refusal = ErrorCode.TOO_MANY_REDIRECTS
            return Outcome.REDIRECT_LIMIT
        if endpoint_key(target) in self._tried:
            self._refusal = ErrorCode.REDIRECT_LOOP
            return Outcome.REDIRECT_LOOP
        if not self._may_follow(target, self.cluster_id):
            self._refusal = ErrorCode.REDIRECT_NOT_LISTED
            return Outcome.REDIRECT_NOT_LISTED
        return None

    def _may_follow(self, target: Endpoint, cluster_id: ClusterId) -> bool:
        if self._redirects >= self.limits.max_redirects:
            return False
        if self.limits.follow_unlisted_redirects:
            return True
        return endpoint_key(target) in {endpoint_key(a) for a in cluster_id.addresses}

    def _restart(self, cluster_id: ClusterId, first: Endpoint | None) -> Actions:
        if self._restarts >= self.limits.max_restarts:
            return self._fail(ErrorCode.TOO_MANY_CLUSTER_ID_RESTARTS,
                              f"gave up after {self._restarts} cluster-ID restarts")
        self._restarts += 1
        self.cluster_id = cluster_id
        self._try_last = frozenset()
        self._table = None
        actions: Actions = [ClusterIdReplaced(cluster_id)]
        if first is not None:
            self._redirects += 1
        actions.extend(self._begin_round(first))
        return actions

    def _begin_round(self, first: Endpoint | None,
                     order: list[Endpoint] | None = None) -> Actions:
        self._round += 1
        self._tried.clear()
        self._queue = self._ordered(self.cluster_id.addresses) if order is None else order
        if first is not None:
            self._queue.insert(0, first)
        if not self._queue:
            return self._fail(ErrorCode.NO_NODE_ANSWERED,
                              f"cluster ID version {self.cluster_id.version} lists no addresses")
        return self._next()

    def _ordered(self, addresses: tuple[ServerAddress, ...]) -> list[Endpoint]:
        """SRV order, the `try_last` addresses after all the others."""
        if not self._try_last:  # no suspect: the same order (and draws) without the split
            table = self._table or SrvTable.of(addresses, self._proximity)
            return [*table.order(self._rng)]
        late = [a for a in addresses if endpoint_key(a) in self._try_last]
        early = [a for a in addresses if endpoint_key(a) not in self._try_last]
        return [*srv_order(early, self._rng, self._proximity),
                *srv_order(late, self._rng, self._proximity)]

    def _next(self) -> Actions:
        while self._queue:
            candidate = self._queue.pop(0)
            if endpoint_key(candidate) not in self._tried:
                return self._try(candidate)
        return self._fail(self._refusal or ErrorCode.NO_NODE_ANSWERED,
                          "no listed node answered")

    def _try(self, endpoint: Endpoint) -> Actions:
        if len(self._attempts) >= self.limits.max_attempts:
            return self._fail(ErrorCode.CONTACT_ATTEMPTS_EXHAUSTED,
                              f"stopped after {len(self._attempts)} attempts")
        self._tried.add(endpoint_key(endpoint))
        self._current = endpoint
        return [TryAddress(endpoint, self.cluster_id.version)]

    def _record(self, outcome: Outcome, detail: str = "") -> Endpoint:
        assert self._current is not None
        self._attempts.append(Attempt(self._round, self._current, outcome, detail))
        return self._current

    def _fail(self, code: ErrorCode, summary: str) -> Actions:
        self.state = ContactState.FAILED
        tried = "; ".join(a.describe() for a in self._attempts) or "nothing"
        return [Failed(code, self.attempts, f"{summary} ({code.name}); tried: {tried}")]

    def _require(self, state: ContactState, what: str) -> None:
        if self.state is not state:
            raise InvalidContactTransitionError(
                f"{what} is not allowed in contact state {self.state.value}")


_AWAIT = ContactState.AWAITING
_TABLE: dict[tuple[ContactState, type], Callable[[Contact, Any], Actions]] = {
    (_AWAIT, Answered): Contact._on_answered,
    (_AWAIT, NoAnswer): Contact._on_no_answer,
    (_AWAIT, NodeLocalError): Contact._on_node_local_error,
    (_AWAIT, Redirect): Contact._on_redirect,
    (_AWAIT, ErrorWithClusterId): Contact._on_error_with_cluster_id,
    (_AWAIT, EntityMoved): Contact._on_entity_moved,
}
"""The transition table: (state, event type) -> handler. IDLE accepts only start(); the
terminal states (SUCCEEDED, MIGRATED, FAILED) accept nothing."""
