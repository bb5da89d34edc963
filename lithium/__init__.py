"""LITHIUM: handler registry, dispatch from entity-handler tuples, transactional invocation.

The developer-facing names are re-exported here; see docs/developer-guide.md.
"""

from lithium.api import attach, detach
from lithium.context import EntityState, HandlerError, IncomingCall, RequestContext
from lithium.invoke import InvokeLimits, Invoker, Reply
from lithium.registry import HandlerRegistry

__all__ = ["EntityState", "HandlerError", "HandlerRegistry", "IncomingCall", "InvokeLimits",
           "Invoker", "Reply", "RequestContext", "attach", "detach"]
