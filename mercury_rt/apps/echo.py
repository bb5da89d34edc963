"""The demo app: `/demo/echo/v1` on endpoint 1 of every mirrored entity.

Operations: 1 `echo` (text -> text; records the text in the entity's state, so tests can
count how often a request ran and where), 2 `whoami` (-> the serving node's id), 3
`note` (one-way text, also recorded).
"""

from __future__ import annotations

from collections.abc import Callable

from carbon.protocol_spec import Interface, message, request
from lithium import HandlerRegistry
from lithium.context import RequestContext
from mercury_rt.apps import NodeApp

ECHO = Interface("/demo/echo/v1", ops=[request(1, "echo", str, str),
                                       request(2, "whoami", None, str),
                                       message(3, "note", str)])
RAN = "/demo/echo/ran"
NOTES = "/demo/echo/notes"
HANDLERS = {"echo": "demo.echo", "whoami": "demo.whoami", "note": "demo.note"}


def register(registry: HandlerRegistry, node_id: str,
             on_note: Callable[[str], None] | None = None, record: bool = True) -> None:
    """Register the demo handlers for node `node_id`."""
    @registry.handler("demo.echo")
    def echo(ctx: RequestContext, text: str) -> str:
        if record:
            ctx.state.put(RAN, (text,), (node_id,))
        return text

    @registry.handler("demo.whoami")
    def whoami(ctx: RequestContext, _: None) -> str:
        return node_id

    @registry.handler("demo.note")
    def note(ctx: RequestContext, text: str) -> None:
        if record:
            ctx.state.put(NOTES, (text,), (node_id,))
        if on_note is not None:
            on_note(text)


def setup(app: NodeApp) -> None:
    """Serve the demo interface on endpoint 1 of every entity this node mirrors."""
    register(app.registry, app.node_id)
    app.attach_to_mirrors(ECHO, endpoint=1, handlers=HANDLERS)
