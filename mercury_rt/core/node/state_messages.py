"""Remote-state messages between nodes of one cluster (docs/protocol.md 6.10).

With `routing.not_mirrored: remote-state`, a node that does not mirror an entity runs a
request for it itself, with the entity's state on a node that does: `[4, entity]` asks
that node for the entity's image (every record, bounded), and `[5, entity, changes]`
asks it to re-check and commit what the handler read and wrote. Both are node requests
accepted only over the sealed intra-cluster path, from nodes holding the cluster key.
The image (in the reply payload) and the changes travel as CBOR byte strings so they
are decoded under their own, larger bounds.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from carbon import cbor
from carbon.cbor import Limits
from carbon.error_codes import ErrorCode, MercuryError, known_code
from tungsten.api import Snapshot
from tungsten.errors import ConflictError
from tungsten.keys import MAX_ENTITY_BYTES
from tungsten.remote import changes_from_value, changes_to_value, image_snapshot
from tungsten.staged import EntityChanges

STATE_FETCH = 4
STATE_COMMIT = 5
STATE_LIMITS = Limits(max_bytes=2 * 1024 * 1024, max_depth=6, max_items=3 * 65_536 + 16)
_SMALL_CHANGES = 64 * 1024
"""Below this many bytes a change set cannot reach STATE_LIMITS (each item takes a byte)."""


class StateMessageError(MercuryError):
    """A remote-state message that does not follow docs/protocol.md 6.10."""

    code = ErrorCode.BAD_REMOTE_STATE


@dataclass(frozen=True, slots=True)
class StateFetch:
    """Send me every record of `entity` (you hold its state)."""

    entity: bytes


@dataclass(frozen=True, slots=True)
class StateCommit:
    """Re-check and apply these changes to an entity whose state you hold."""

    changes: EntityChanges

    @property
    def entity(self) -> bytes:
        """The entity the changes are for."""
        return self.changes.entity


def encode_state_fetch(entity: bytes) -> bytes:
    """The node request asking for an entity's image."""
    return cbor.dumps([STATE_FETCH, entity])


def encode_state_commit(changes: EntityChanges) -> bytes:
    """The node request asking to commit a handler's changes.

    Checked here against the bounds the state node decodes them under, so an oversized
    change set fails on the node that ran the handler, with 407 and a reason, rather than
    as a malformed request (408) from the state node.
    """
    inner = cbor.dumps(changes_to_value(changes))
    if len(inner) > _SMALL_CHANGES:
        try:
            cbor.loads(inner, replace(STATE_LIMITS, max_bytes=STATE_LIMITS.max_bytes - 1024))
        except cbor.CodecError as exc:
            raise StateMessageError(
                f"the handler's changes ({len(inner)} bytes) exceed what one remote-state "
                f"commit may carry: {exc.message}; read and write less per call, or route "
                "this entity with forward", ErrorCode.STATE_TOO_LARGE_FOR_REMOTE) from None
    return cbor.dumps([STATE_COMMIT, changes.entity, inner])


def decode_state_request(outer: list[cbor.Value]) -> StateFetch | StateCommit:
    """From a decoded node request whose first element is 4 or 5; raises MercuryError."""
    entity = outer[1] if len(outer) > 1 else None
    if type(entity) is not bytes or not 0 < len(entity) <= MAX_ENTITY_BYTES:
        raise StateMessageError(f"remote state: entity must be 1-{MAX_ENTITY_BYTES} bytes")
    if outer[0] == STATE_FETCH and len(outer) == 2:
        return StateFetch(entity)
    if outer[0] == STATE_COMMIT and len(outer) == 3 and type(outer[2]) is bytes:
        return StateCommit(changes_from_value(entity, cbor.loads(outer[2], STATE_LIMITS)))
    raise StateMessageError("remote state: a request is [4, entity] or [5, entity, changes]")


def state_failure(code: int, message: str, *, committing: bool, answered: bool) -> MercuryError:
    """The error a call run with remote state fails with when the state node failed.

    Nothing has been applied when the fetch failed, when the state node refused the
    commit, or when it never acknowledged the commit: NO_LIVE_MIRROR then (node-local,
    so the caller may try another node). A commit the state node acknowledged but did
    not answer has an unknown outcome: STATE_FAILURE, which no caller retries blindly.
    """
    if code == ErrorCode.STATE_CONFLICT:
        return ConflictError(message)
    if answered:
        known = known_code(code)
        return StateMessageError(f"the node holding the entity's state refused: {message}",
                                 known or ErrorCode.STATE_FAILURE)
    if not committing or code == ErrorCode.NO_ANSWER:
        return StateMessageError("the node holding the entity's state did not answer "
                                 f"({message}); nothing was applied", ErrorCode.NO_LIVE_MIRROR)
    return StateMessageError("the node holding the entity's state took the changes but did "
                             f"not confirm them ({message}); they may or may not be applied",
                             ErrorCode.STATE_FAILURE)


def decode_image(entity: bytes, payload: bytes) -> Snapshot:
    """The snapshot a fetched image reply's payload describes; raises MercuryError."""
    return image_snapshot(entity, cbor.loads(payload, STATE_LIMITS))
