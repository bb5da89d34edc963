"""LITHIUM: handler registry, dispatch from entity-handler tuples, transactional invocation.

The developer-facing names are re-exported here; see docs/developer-guide.md.

The invoker (`Invoker`, `InvokeLimits`, `Reply`) is loaded on first use rather than here:
it needs asyncio, a thread pool and structlog, while the pure node core imports
`lithium.context`, which runs this module first, and must load none of them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lithium.api import attach, detach
from lithium.calls import EntityCalls, TypedCalls
from lithium.connections import Accept, Offer
from lithium.context import EntityState, HandlerError, IncomingCall, RequestContext
from lithium.registry import HandlerRegistry

if TYPE_CHECKING:
    from lithium.invoke import InvokeLimits, Invoker, Reply

_INVOKER_NAMES = frozenset({"InvokeLimits", "Invoker", "Reply"})

__all__ = ["Accept", "EntityCalls", "EntityState", "HandlerError", "HandlerRegistry",
           "IncomingCall", "InvokeLimits", "Invoker", "Offer", "Reply", "RequestContext",
           "TypedCalls", "attach", "detach"]


def __getattr__(name: str) -> object:
    """Load the invoker's names from lithium.invoke when first asked for."""
    if name in _INVOKER_NAMES:
        from lithium import invoke  # noqa: PLC0415 - deferred on purpose, see the module docstring

        return getattr(invoke, name)
    raise AttributeError(f"module 'lithium' has no attribute {name!r}")
