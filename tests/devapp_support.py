"""A developer's app as a user would write one, for the typed-client and fixture tests.

Three interfaces on every mirrored entity: a counter (request + one-way message), "who"
(tells the caller who it was seen as; a persona-specific handler answers for the VIP
persona) and a relay whose async handler calls another entity through `ctx.calls`,
optionally acting as one of its own personas.
"""

from __future__ import annotations

from typing import Any

from carbon.principal import Persona
from carbon.protocol_spec import Interface, message, request
from carbon.symbols import Symbol
from carbon.types import BYTES, INT, STR, optional, record
from lithium import RequestContext, attach
from mercury_rt.apps import NodeApp

SECTION = "/test/counter"
VIP = Symbol("/test/persona/vip")
ADMIN = Persona(Symbol("/test/persona/admin"), {"tier": 2})

COUNTER = Interface("/test/counter/v1", ops=[
    request(1, "add", record(n=INT), INT),
    request(2, "total", None, INT),
    message(3, "reset", None),
])
WHO = Interface("/test/who/v1", ops=[
    request(1, "whoami", None, record(local=STR, persona=optional(STR), vip=bool)),
])
RELAY = Interface("/test/relay/v1", ops=[
    request(1, "add-remote", record(target=BYTES, n=INT, as_admin=bool),
            record(total=INT, seen_as=STR, persona=optional(STR))),
])


def _total(ctx: RequestContext) -> int:
    found = ctx.state.get(SECTION, ("total",))
    return 0 if found is None else int(found[0])  # type: ignore[call-overload]


def add(ctx: RequestContext, msg: dict[str, Any]) -> int:
    """Add n to the entity's total; return the new total."""
    total = _total(ctx) + msg["n"]
    ctx.state.put(SECTION, ("total",), (total,))
    return total


def total(ctx: RequestContext, msg: None) -> int:
    """The entity's total."""
    return _total(ctx)


def reset(ctx: RequestContext, msg: None) -> None:
    """Forget the total (one-way)."""
    ctx.state.delete(SECTION, ("total",))


def whoami(ctx: RequestContext, msg: None, vip: bool = False) -> dict[str, Any]:
    """Who called: its local part and the persona it acted as."""
    persona = ctx.caller.persona
    return {"local": ctx.caller.local.decode(), "vip": vip,
            "persona": None if persona is None else persona.cls.text}


def whoami_vip(ctx: RequestContext, msg: None) -> dict[str, Any]:
    """whoami, as answered when the caller addressed this entity's VIP persona."""
    return whoami(ctx, msg, vip=True)


async def add_remote(ctx: RequestContext, msg: dict[str, Any]) -> dict[str, Any]:
    """Add n on another entity and ask it who it saw: as this entity (or its admin)."""
    persona = ADMIN if msg["as_admin"] else None
    total = await ctx.calls.client(msg["target"], COUNTER, persona=persona).add(n=msg["n"])
    seen = await ctx.calls.client(msg["target"], WHO, persona=persona).whoami()
    return {"total": total, "seen_as": seen["local"], "persona": seen["persona"]}


def broken(ctx: RequestContext, msg: dict[str, Any]) -> int:
    """A handler with a bug."""
    raise ZeroDivisionError("the secret internal detail")


def setup(app: NodeApp) -> None:
    """Register the handlers; attach the interfaces to every mirrored entity."""
    for handler_id, fn in (("test.add", add), ("test.total", total), ("test.reset", reset),
                           ("test.whoami", whoami), ("test.whoami-vip", whoami_vip),
                           ("test.add-remote", add_remote)):
        app.registry.register(handler_id, fn)
    app.attach_to_mirrors(COUNTER, endpoint=4, handlers={
        "add": "test.add", "total": "test.total", "reset": "test.reset"})
    app.attach_to_mirrors(WHO, endpoint=7, handlers={"whoami": "test.whoami"})
    app.attach_to_mirrors(RELAY, endpoint=9, handlers={"add-remote": "test.add-remote"})
    with app.store.writing() as txn:
        for entity in app.mirrors:
            attach(txn, entity.encode(), WHO, endpoint=7, persona=VIP,
                   handlers={"whoami": "test.whoami-vip"})
