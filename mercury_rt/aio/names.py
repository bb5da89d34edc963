"""Resolving readable names (`alice@example-cluster`) to EIDs through a naming entity.

A cluster publishes names in a naming entity (lithium/naming.py; the app
mercury_rt.apps.naming serves one as the entity `names`). A caller that knows that
entity's EID asks its endpoint 0 where `/argon/carbon/naming/v1` is, then `resolve`s the
name; what comes back is pinned (carbon.names.NamePins), so a later, different answer is
reported, not silently followed.
"""

from __future__ import annotations

from carbon.error_codes import ErrorCode
from carbon.names import (
    NAMING_SPEC,
    RESOLVE,
    NameNotFoundError,
    NamePins,
    check_resolved_eid,
    parse_name,
)
from carbon.types import dumps_typed, loads_typed
from mercury_rt.aio.metadata_client import Calls, list_interfaces

NAMING_ENTITY = b"names"
"""The local name of the entity that serves a cluster's names (mercury_rt.apps.naming)."""


async def resolve_name(node: Calls, pins: NamePins | None, text: str, naming: bytes, *,
                       caller: bytes, timeout: float = 10.0) -> bytes:
    """The EID bytes `text` names, asked of naming entity `naming` (EID bytes) as local
    entity `caller`. Raises InvalidNameError, NameNotFoundError, NamePinMismatchError or
    NodeCallError (the naming entity refused or could not be reached), each coded."""
    name = parse_name(text)
    imap = await list_interfaces(node, naming, caller=caller, timeout=timeout)
    endpoint = imap.endpoint_of(NAMING_SPEC.interface)
    if endpoint is None:
        raise NameNotFoundError(f"{name}: the naming entity offers no "
                                f"{NAMING_SPEC.interface} interface",
                                ErrorCode.UNKNOWN_INTERFACE)
    op = NAMING_SPEC.operation(RESOLVE)
    assert op is not None
    raw = await node.call(naming, endpoint, RESOLVE, dumps_typed(op.message, name.text),
                          caller=caller, timeout=timeout)
    eid = check_resolved_eid(name, loads_typed(op.reply, raw))
    return eid if pins is None else pins.pin(name, eid)
