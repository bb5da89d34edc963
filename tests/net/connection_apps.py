"""Connection handlers for loopback tests: a server entity that accepts connections and
an opener that offers an interface to be called back on, recording every run."""

from __future__ import annotations

from dataclasses import dataclass, field

from carbon.protocol_spec import Interface, connection, message, request
from lithium import Accept, Offer
from lithium.api import attach
from lithium.context import RequestContext
from mercury_rt.aio.node_runtime import NodeRuntime

CHAT = Interface("/test/chat/v1", ops=[connection(1, "open", str, str)])
TALK = Interface("/test/talk/v1", ops=[request(1, "say", str, str), message(2, "tell", str)])
"""What the server offers on each connection."""
HEAR = Interface("/test/hear/v1", ops=[request(1, "ask", str, str), message(2, "note", str)])
"""What the opener offers the server to call back on."""
OPENER_OFFERS = {1: Offer(HEAR, {"ask": "hear.ask", "note": "hear.note"})}


@dataclass
class Runs:
    """What ran: (node, handler, connection id, caller local part, payload, reestablished)."""

    seen: list[tuple[str, str, bytes | None, bytes, str, bool]] = field(default_factory=list)
    record: bool = True
    """False: keep nothing (benchmarks)."""

    def of(self, handler: str) -> list[tuple[str, str, bytes | None, bytes, str, bool]]:
        """The runs of one handler."""
        return [run for run in self.seen if run[1] == handler]


def serve_chat(node: NodeRuntime, node_id: str, entity: bytes, runs: Runs) -> None:
    """`entity` on `node` accepts connections on endpoint 2 (CHAT) and offers TALK."""
    def record(name: str, ctx: RequestContext, text: str) -> None:
        if runs.record:
            runs.seen.append((node_id, name, ctx.connection_id, ctx.caller.local, text,
                              ctx.reestablished))

    def open_chat(ctx: RequestContext, text: str) -> Accept:
        record("chat.open", ctx, text)
        return Accept(f"welcome {text}", {1: Offer(TALK, {"say": "talk.say",
                                                           "tell": "talk.tell"})})

    def say(ctx: RequestContext, text: str) -> str:
        record("talk.say", ctx, text)
        return f"{node_id}:{text}"

    def tell(ctx: RequestContext, text: str) -> None:
        record("talk.tell", ctx, text)

    registry = node.spec.registry
    node.spec.specs.add(TALK)  # specs come with the code, on every node that serves it
    registry.register("chat.open", open_chat)
    registry.register("talk.say", say)
    registry.register("talk.tell", tell)
    with node.spec.store.writing() as txn:
        attach(txn, entity, CHAT, endpoint=2, specs=node.spec.specs,
               handlers={"open": "chat.open"})


def offer_hear(node: NodeRuntime, node_id: str, runs: Runs) -> None:
    """Register the opener's call-back handlers on `node`."""
    def ask(ctx: RequestContext, text: str) -> str:
        runs.seen.append((node_id, "hear.ask", ctx.connection_id, ctx.caller.local, text,
                          False))
        return f"heard {text}"

    def note(ctx: RequestContext, text: str) -> None:
        runs.seen.append((node_id, "hear.note", ctx.connection_id, ctx.caller.local, text,
                          False))

    node.spec.registry.register("hear.ask", ask)
    node.spec.registry.register("hear.note", note)
