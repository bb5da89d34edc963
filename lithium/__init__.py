"""LITHIUM: handler registry, dispatch from entity-handler tuples, transactional invocation.

The developer-facing names are re-exported here; see docs/developer-guide.md.

Two halves, and only one of them is pure:
  registry, api, bindings, context, dispatch, naming   pure: what a handler is, where it is
                                                       bound, how a call finds it
  invoke, commit                                       the asyncio host: runs handlers on a
                                                       thread pool, commits their writes

The node core imports `lithium.context`, and importing any submodule runs this file
first. So the asyncio half is not imported here: `Invoker`, `InvokeLimits` and `Reply`
are resolved on first use by the module `__getattr__` below (PEP 562), which keeps
`from lithium import Invoker` working while `import lithium.context` loads no asyncio,
thread pool or structlog.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

from lithium.api import attach, detach
from lithium.context import EntityState, HandlerError, IncomingCall, RequestContext
from lithium.registry import HandlerRegistry

if TYPE_CHECKING:
    from lithium.invoke import InvokeLimits, Invoker, Reply

__all__ = ["EntityState", "HandlerError", "HandlerRegistry", "IncomingCall", "InvokeLimits",
           "Invoker", "Reply", "RequestContext", "attach", "detach"]

_FROM_INVOKE = frozenset({"InvokeLimits", "Invoker", "Reply"})


def __getattr__(name: str) -> object:
    if name in _FROM_INVOKE:
        value = getattr(import_module("lithium.invoke"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'lithium' has no attribute {name!r}")
