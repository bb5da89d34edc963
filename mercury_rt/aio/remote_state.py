"""The shell side of remote-state routing: reach an entity's state on another node.

Implements LITHIUM's StateElsewhere over the intra-cluster endpoint: each request goes in
a transit session to the state node, and `state_failure` decides which error a failure
becomes; this module only moves the bytes (docs/protocol.md 6.10).
"""

from __future__ import annotations

from collections.abc import Callable

from carbon.error_codes import ErrorCode
from mercury_rt.aio.endpoint import CallError, TransportEndpoint
from mercury_rt.aio.secure_calls import SecureCaller
from mercury_rt.core.node import (
    NodeCore,
    decode_image,
    encode_state_commit,
    encode_state_fetch,
    state_failure,
)
from mercury_rt.core.transport import Addr
from tungsten.api import Snapshot
from tungsten.staged import EntityChanges


class IntraStateElsewhere:
    """One call's access to its entity's state on the node at `address`."""

    def __init__(self, core: NodeCore, caller: SecureCaller, endpoint: TransportEndpoint,
                 address: Addr, entity: bytes, deadline: float, answer_timeout: float,
                 clock: Callable[[], float]) -> None:
        self._core, self._endpoint, self._address = core, endpoint, address
        self._caller = caller
        self._entity, self._deadline = entity, deadline
        self._answer_timeout, self._clock = answer_timeout, clock

    async def fetch(self) -> Snapshot:
        """The entity's image from the state node."""
        payload = await self._ask(encode_state_fetch(self._entity), committing=False)
        return decode_image(self._entity, payload)

    async def commit(self, changes: EntityChanges) -> None:
        """Apply the handler's changes on the state node (durable when this returns)."""
        await self._ask(encode_state_commit(changes), committing=True)

    async def _ask(self, request: bytes, *, committing: bool) -> bytes:
        remaining = max(self._deadline - self._clock(), 0.001)
        try:
            raw = await self._caller.call(self._endpoint, self._address,
                                          self._core.master_hash, request, timeout=remaining,
                                          answer_timeout=self._answer_timeout)
        except CallError as exc:
            raise state_failure(int(exc.code or ErrorCode.NODE_LOCAL_ERROR), exc.message,
                                committing=committing, answered=False) from None
        return self._core.state_reply(raw, committing=committing)
