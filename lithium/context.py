"""What a handler receives besides its payload: who asked, how, and its entity's state."""

from __future__ import annotations

from dataclasses import dataclass

from carbon.cbor import Value
from carbon.error_codes import ErrorCode, MercuryError
from carbon.principal import Persona, Principal
from carbon.protocol_spec import Operation, OperationKind
from carbon.symbols import Symbol
from carbon.tuples import CarbonTuple
from lithium.calls import NO_CALLS, EntityCalls
from tungsten.api import DEFAULT_SCAN_LIMIT
from tungsten.staged import StagedState


class HandlerError(MercuryError):
    """Raise from a handler to answer with a chosen code and message.

    Any other exception becomes HANDLER_FAILED with no detail, so that internals never
    leak; this one is the deliberate exception: its message goes to the caller as is.
    """

    code = ErrorCode.HANDLER_FAILED


def _section(section: Symbol | str) -> Symbol:
    return section if isinstance(section, Symbol) else Symbol(section)


class EntityState:
    """The target entity's state for one invocation: reads see one snapshot, writes
    commit together when the handler returns and vanish if it raises."""

    __slots__ = ("_entity", "_staged")

    def __init__(self, staged: StagedState, entity: bytes) -> None:
        self._staged = staged
        self._entity = entity

    def get(self, section: Symbol | str, key: CarbonTuple) -> CarbonTuple | None:
        """The value under `key` in one of this entity's sections, or None."""
        return self._staged.get(self._entity, _section(section), key)

    def scan(self, section: Symbol | str,
             limit: int = DEFAULT_SCAN_LIMIT) -> list[tuple[CarbonTuple, CarbonTuple]]:
        """Up to `limit` (key, value) pairs of a section."""
        return self._staged.scan(self._entity, _section(section), limit)

    def put(self, section: Symbol | str, key: CarbonTuple, value: CarbonTuple) -> None:
        """Stage a write; it lands only if the handler returns normally."""
        self._staged.put(self._entity, _section(section), key, value)

    def delete(self, section: Symbol | str, key: CarbonTuple) -> bool:
        """Stage a delete; True if the key exists now."""
        return self._staged.delete(self._entity, _section(section), key)


OPEN, USE, CLOSE = 0, 1, 2
"""The forms of a connection call (docs/protocol.md 5.9, key 10 of the body)."""


@dataclass(frozen=True, slots=True)
class ConnectionCall:
    """What an incoming call does to a connection (the node core decoded key 10).

    `peer_offers` and `reestablished` matter to an open only; `peer_eid` is the
    caller's EID when it came from another cluster (calls back go there); `granted` is
    the reservation the node granted, (rate, burst), echoed in the open reply."""

    form: int
    peer_offers: tuple[tuple[int, str], ...] = ()
    reestablished: bool = False
    peer_eid: bytes = b""
    granted: tuple[int, int] = (0, 0)


@dataclass(frozen=True, slots=True)
class IncomingCall:
    """A request as the node core hands it to LITHIUM (after the security gate).

    `caller` is the principal access control decided on (the one acted for, under a
    delegation certificate); `originator` is the real sender when that differs.
    `deadline` is absolute, in the clock the Invoker was given.
    """

    entity: bytes
    endpoint: int
    operation: int
    kind: OperationKind
    payload: bytes
    caller: Principal
    persona: Persona | None = None
    originator: Principal | None = None
    connection_id: bytes | None = None
    transit: int = 0
    deadline: float | None = None
    connection: ConnectionCall | None = None
    """Set when the call opens, runs on or closes a connection (`connection_id` is its id)."""
    request_id: bytes | None = None
    """The caller-chosen id that stays the same when the caller retries this request at
    another node (docs/protocol.md); replicated state keeps its at-most-once record."""


@dataclass(frozen=True, slots=True)
class RequestContext:
    """Request metadata and state handle passed to every handler as `ctx`."""

    entity: bytes
    interface: Symbol
    endpoint: int
    operation: Operation
    persona: Persona | None
    caller: Principal
    originator: Principal
    connection_id: bytes | None
    transit: int
    deadline: float | None
    state: EntityState
    calls: EntityCalls = NO_CALLS
    """Calls to other entities, as this entity, within `deadline` (lithium.calls)."""
    reestablished: bool = False
    """A CONNECTION handler called again for a connection that already existed (the node
    serving it before is gone): accept it as before, keeping state keyed by its id."""

    @property
    def persona_params(self) -> Value:
        """The persona parameters of the EID the caller addressed (None without persona)."""
        return None if self.persona is None else self.persona.params
