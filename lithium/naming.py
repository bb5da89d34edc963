"""A cluster's naming entity: `/argon/carbon/naming/v1` resolve, backed by TUNGSTEN.

The naming entity keeps `(name,) -> (EID bytes,)` in its section `/argon/carbon/names`.
Register the handler once per node, attach the interface to the naming entity, and add
names in ordinary write transactions. Clients validate names before asking and pin what
they get (carbon.names.NamePins).
"""

from __future__ import annotations

from carbon.error_codes import ErrorCode, MercuryError
from carbon.names import NAMING_SPEC, check_resolved_eid, parse_name
from carbon.protocol_spec import SpecRegistry
from carbon.symbols import Symbol
from lithium.api import attach
from lithium.context import HandlerError, RequestContext
from lithium.registry import HandlerRegistry
from tungsten.api import WriteView

NAMES_SECTION = Symbol("/argon/carbon/names")
RESOLVE_HANDLER_ID = "carbon.naming.resolve"


def resolve_handler(ctx: RequestContext, text: str) -> bytes:
    """Answer `resolve`: the EID bytes stored for a valid, known name."""
    try:
        name = parse_name(text)
    except MercuryError as exc:
        raise HandlerError(exc.message, exc.code) from None
    found = ctx.state.get(NAMES_SECTION, (name.text,))
    if found is None or not found or not isinstance(found[0], bytes):
        raise HandlerError(f"no entity is named {name}", ErrorCode.NAME_NOT_FOUND)
    return found[0]


def register_naming(registry: HandlerRegistry) -> None:
    """Make the built-in resolve handler available under its handler ID."""
    registry.register(RESOLVE_HANDLER_ID, resolve_handler)


def attach_naming(txn: WriteView, entity: bytes, *, endpoint: int,
                  specs: SpecRegistry | None = None) -> None:
    """Offer the naming interface on `entity`."""
    attach(txn, entity, NAMING_SPEC, endpoint=endpoint, specs=specs,
           handlers={"resolve": RESOLVE_HANDLER_ID})


def set_name(txn: WriteView, naming_entity: bytes, name: str, eid: bytes) -> None:
    """Publish (or replace) a name; validated so that only resolvable names are stored."""
    parsed = parse_name(name)
    txn.put(naming_entity, NAMES_SECTION, (parsed.text,), (check_resolved_eid(parsed, eid),))


def remove_name(txn: WriteView, naming_entity: bytes, name: str) -> bool:
    """Withdraw a name; True if it existed."""
    return txn.delete(naming_entity, NAMES_SECTION, (parse_name(name).text,))
