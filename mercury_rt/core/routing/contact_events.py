"""Events, actions and outcomes of the client-side contact machine (contact.py).

An event is what happened to one attempt (`Answered`: a node answered; `NoAnswer`, ...);
an action is what the machine asks for next (`TryAddress`, `ClusterIdReplaced`) or how the
contact ended (`Succeeded`, `Migrated`, `Failed`).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any

from carbon.error_codes import ErrorCode, MercuryError
from mercury_rt.core.identity import ClusterId, Endpoint, format_endpoint
from mercury_rt.core.routing.forwarding import ForwardingRecord


class ContactState(Enum):
    """Where a contact is: not started, waiting on one address, or finished."""

    IDLE = "idle"
    AWAITING = "awaiting"
    SUCCEEDED = "succeeded"
    MIGRATED = "migrated"
    FAILED = "failed"


class Outcome(Enum):
    """What happened to one attempt, as listed in a failure."""

    ANSWERED = "answered"
    NO_ANSWER = "no answer"
    NODE_LOCAL_ERROR = "node-local error"
    CLUSTER_ID_RESTART = "newer cluster ID; restarted"
    CLUSTER_ID_NOT_NEWER = "error with a cluster ID that is not newer"
    CLUSTER_ID_REJECTED = "cluster ID presented as newer failed verification"
    REDIRECTED = "redirected"
    REDIRECT_LOOP = "redirect to an address already tried; not followed"
    REDIRECT_LIMIT = "redirect limit reached; not followed"
    REDIRECT_NOT_LISTED = "redirect to an unlisted address; not followed"
    MOVED = "entity moved"
    MOVE_REJECTED = "forwarding record rejected"


# ---- events (inputs) ----

@dataclass(frozen=True, slots=True)
class Answered:
    """The node answered; `cluster_id` is a newer one it bundled, if any."""

    reply: Any
    cluster_id: ClusterId | None = None


@dataclass(frozen=True, slots=True)
class NoAnswer:
    """The transport gave up on this address (timeout after retransmissions)."""


@dataclass(frozen=True, slots=True)
class NodeLocalError:
    """The node reported a problem of its own (overloaded, no live mirror, shutting down)."""

    code: int
    message: str = ""


@dataclass(frozen=True, slots=True)
class Redirect:
    """The node told us to try `target`, possibly bundling a newer cluster ID."""

    target: Endpoint
    cluster_id: ClusterId | None = None


@dataclass(frozen=True, slots=True)
class ErrorWithClusterId:
    """The node refused because our cluster ID is outdated, and sent its current one."""

    code: int
    cluster_id: ClusterId


@dataclass(frozen=True, slots=True)
class EntityMoved:
    """The entity migrated; the record names its new EID, signed by the old cluster."""

    record: ForwardingRecord


ContactEvent = Answered | NoAnswer | NodeLocalError | Redirect | ErrorWithClusterId | EntityMoved


# ---- actions (outputs) ----

@dataclass(frozen=True, slots=True)
class TryAddress:
    """Send the request to `endpoint`, carrying the cluster-ID version we hold."""

    endpoint: Endpoint
    cluster_id_version: int


@dataclass(frozen=True, slots=True)
class ClusterIdReplaced:
    """Store this cluster ID in place of the old one (TUNGSTEN keeps one per cluster)."""

    cluster_id: ClusterId


@dataclass(frozen=True, slots=True)
class Attempt:
    """One address tried, in which round, and what came of it."""

    round: int
    endpoint: Endpoint
    outcome: Outcome
    detail: str = ""

    def describe(self) -> str:
        """One line for an error message."""
        extra = f" ({self.detail})" if self.detail else ""
        return f"round {self.round}: {format_endpoint(self.endpoint)}: {self.outcome.value}{extra}"


@dataclass(frozen=True, slots=True)
class Succeeded:
    """Success: `endpoint` answered with `reply`."""

    reply: Any
    endpoint: Endpoint
    attempts: tuple[Attempt, ...]


@dataclass(frozen=True, slots=True)
class Migrated:
    """The entity lives elsewhere now: contact `record.new_eid` instead."""

    record: ForwardingRecord
    attempts: tuple[Attempt, ...]


@dataclass(frozen=True, slots=True)
class Failed:
    """No node could take the request; `attempts` lists everything tried."""

    code: ErrorCode
    attempts: tuple[Attempt, ...]
    message: str

    def to_error(self) -> ContactError:
        """The exception a caller's API raises for this outcome."""
        return ContactError(self.message, self.code, self.attempts)


ContactAction = TryAddress | ClusterIdReplaced | Succeeded | Migrated | Failed


class ContactError(MercuryError):
    """Raised to the caller when contact fails; `attempts` says what was tried."""

    code = ErrorCode.NO_NODE_ANSWERED

    def __init__(self, message: str, code: ErrorCode, attempts: tuple[Attempt, ...]) -> None:
        super().__init__(message, code)
        self.attempts = attempts


class InvalidContactTransitionError(MercuryError):
    """The shell fed an event the current state does not accept (a local bug)."""

    code = ErrorCode.INVALID_CONTACT_TRANSITION


@dataclass(frozen=True, slots=True)
class ContactLimits:
    """Bounds on one contact; defaults suit a cluster ID listing a handful of nodes."""

    max_attempts: int = 16
    max_redirects: int = 4
    max_restarts: int = 3
    follow_unlisted_redirects: bool = False

    def __post_init__(self) -> None:
        if self.max_attempts < 1 or self.max_redirects < 0 or self.max_restarts < 0:
            raise ValueError("max_attempts must be >= 1; other limits >= 0")


def reject_all_moves(record: ForwardingRecord) -> None:
    """Default forwarding check: without a verifier, no migration is believed."""
    raise MercuryError("no forwarding-record verifier configured",
                       ErrorCode.FORWARDING_SIGNATURE_INVALID)

