"""The demo app: `/demo/echo/v1` on endpoint 1 of every mirrored entity.

Operations: 1 `echo` (text -> text; records the text in the entity's state, so tests can
count how often a request ran and where), 2 `whoami` (-> the serving node's id), 3
`note` (one-way text, also recorded). A text is recorded under the key `(text,)` when it
is at most RECORDED_TEXT UTF-8 bytes, else under `("sha256:" + hex digest,)`: a state key
is bounded (511 bytes with the entity and section) and texts are not, so any text the
transport carries echoes.
"""

from __future__ import annotations

import hashlib
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
RECORDED_TEXT = 200


def recorded_key(text: str) -> tuple[str]:
    """The state key a text is recorded under (see the module docstring)."""
    if len(text.encode()) <= RECORDED_TEXT:
        return (text,)
    return ("sha256:" + hashlib.sha256(text.encode()).hexdigest(),)


def register(registry: HandlerRegistry, node_id: str,
             on_note: Callable[[str], None] | None = None, record: bool = True) -> None:
    """Register the demo handlers for node `node_id`."""
    @registry.handler("demo.echo")
    def echo(ctx: RequestContext, text: str) -> str:
        if record:
            ctx.state.put(RAN, recorded_key(text), (node_id,))
        return text

    @registry.handler("demo.whoami")
    def whoami(ctx: RequestContext, _: None) -> str:
        return node_id

    @registry.handler("demo.note")
    def note(ctx: RequestContext, text: str) -> None:
        if record:
            ctx.state.put(NOTES, recorded_key(text), (node_id,))
        if on_note is not None:
            on_note(text)


def setup(app: NodeApp) -> None:
    """Serve the demo interface on endpoint 1 of every entity this node mirrors."""
    register(app.registry, app.node_id)
    app.attach_to_mirrors(ECHO, endpoint=1, handlers=HANDLERS)
